"""The forms' questions: each asked as written in domain.yml (utter_ask_<slot>), unless the caller
asked for a moment, for help first, or for the question again (ivr.actions.moves.ask)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from ivr.actions.moves import ask

# Questions with no wording of their own to work out (account number and PIN have theirs in authentication.py).
PLAIN = ("amount_cents", "use_card_on_file", "card_number", "card_expiry", "payment_confirmed", "zip_code",
         "place_confirmed", "street_address", "address_confirmed", "wrong_part")


class Question(Action, metaclass=ABCMeta):  # abstract: only its per-slot subclasses are registered
    @property
    @abstractmethod
    def slot(self) -> str:
        """The form slot this question fills."""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict):
        return ask(dispatcher, tracker, domain, self.slot,
                   lambda: dispatcher.utter_message(response=f"utter_ask_{self.slot}"))


# One action per question; rasa_sdk finds every concrete Action subclass, and this list keeps them alive
# (a class only its base's __subclasses__ knows is garbage collected).
QUESTIONS = [type(f"Ask_{slot}", (Question,), {"slot": slot, "__module__": __name__}) for slot in PLAIN]
