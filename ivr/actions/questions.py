"""The forms' questions: each asked as written in domain.yml (utter_ask_<slot>), unless the caller
asked for a moment, for help first, or for the question again (ivr.actions.moves.ask)."""
from __future__ import annotations

from abc import abstractmethod

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from ivr.actions.moves import ask

# Questions with no wording of their own to work out (account number and PIN have theirs in authentication.py).
PLAIN = ("amount_cents", "use_card_on_file", "card_number", "card_expiry", "payment_confirmed", "zip_code",
         "place_confirmed", "street_address", "address_confirmed", "wrong_part")


class Question(Action):
    @property
    @abstractmethod
    def slot(self) -> str:
        """The form slot this question fills."""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        return ask(dispatcher, tracker, domain, self.slot,
                   lambda: dispatcher.utter_message(response=f"utter_ask_{self.slot}"))


for _slot in PLAIN:  # one registered action per question; rasa_sdk finds every concrete Action subclass
    type(f"Ask_{_slot}", (Question,), {"slot": _slot, "__module__": __name__})
