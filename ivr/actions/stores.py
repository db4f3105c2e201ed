"""What the actions reach beyond the tracker: the accounts store, card tokens and the caller's seal.

In the bot, the dialog runs each action with its own settings' Backing (ivr.dialog.actions); an
external rasa_sdk action server (endpoints.yml) opens one per process, on first use, from the environment.
"""
from __future__ import annotations

from contextvars import ContextVar
from functools import lru_cache
from typing import Optional

from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from ivr.accounts import CardTokens, Store, StoreUnavailable, card_tokens, open_store
from ivr.config import Settings
from ivr.dialog.settings import load_voice_settings
from ivr.masking import Seal


class Backing:
    """The store opens on first use and again after a failure: a database that is down when the
    action server starts (or goes down later) is an apology and a transfer, not a broken server."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._store: Optional[Store] = None
        self.cards: CardTokens = card_tokens(settings)
        self.seal = Seal(settings.var_dir)
        # dialogs/voice.yml as the bot read it at start (the junk-call and survey settings the actions apply):
        # a bad file is refused then, not found out mid-call.
        self.voice = load_voice_settings(settings.dialogs_dir)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self._settings, create=False)  # raises StoreUnavailable; only `ivr db seed` creates
        return self._store

    def unsealed(self, text: object) -> Optional[str]:
        """What the caller said at a secret prompt, from the sealed message the call sent instead."""
        return self.seal.opened(text)


class NotIdentified(StoreUnavailable):
    """The call holds no proof that it identified this account (a forged or stale 'authenticated'): the
    account is not read or changed, and the caller hears the same apology as for a store that is down."""


def identified_account(tracker) -> str:
    """The account this call proved it may use (PIN checked in this call), or NotIdentified."""
    account = tracker.get_slot("account_number")
    if not backing().seal.vouches(tracker.get_slot("identity"), tracker.sender_id, account):
        raise NotIdentified(f"call {tracker.sender_id} has not identified the account it names")
    return account


def transfer_after_trouble(dispatcher: CollectingDispatcher) -> list:
    """The accounts database is down: one apology, then a person, never dead air."""
    dispatcher.utter_message(response="utter_store_trouble")
    return [SlotSet("escalation_reason", "store_unavailable")]


_serving: ContextVar[Optional[Backing]] = ContextVar("ivr_actions_backing", default=None)


def serving(backing_: Backing) -> None:
    """The Backing the actions run in this context use (the bot's dialog sets it per action call)."""
    _serving.set(backing_)


def backing() -> Backing:
    return _serving.get() or _from_environment()


@lru_cache(maxsize=1)
def _from_environment() -> Backing:
    return Backing(Settings.from_env())
