"""Work Rasa 3.6 repeats on every turn that gives the same answer each time, done once instead.

Imported only once Rasa is (ivr.dialog.agent, after skops: see there). Each lever was measured
(README "Speed"): the same replies, the same errors, less CPU per turn.
"""
from __future__ import annotations

import functools
from typing import Optional

from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker


def make_rasa_lean() -> None:
    """Called once, before the dialog model loads."""
    check_action_results_with_one_validator()
    find_event_types_once()


# Trackers kept at most: a worker runs for weeks, and every call's tracker (its slots: account numbers,
# addresses) would stay in memory until it restarts. The least recently saved go first; a live call saves on
# every turn, so with at most a few dozen calls at once it is never the least recent of this many.
KEEP_TRACKERS = 500


class CallTrackers(InMemoryTrackerStore):
    """Rasa's in-memory tracker store, which also hands the dialog the tracker a turn has just saved:
    reading that turn's slots then costs no second rebuild of the whole call from JSON. It keeps the
    `keep` most recently saved calls' trackers and forgets older ones."""

    def __init__(self, domain: Optional[Domain] = None, keep: int = KEEP_TRACKERS):
        super().__init__(domain or Domain.empty())
        self._just_saved: dict[str, DialogueStateTracker] = {}
        self._keep = keep

    async def save(self, tracker: DialogueStateTracker) -> None:
        self.store.pop(tracker.sender_id, None)  # re-inserted last: dicts keep insertion order
        await super().save(tracker)
        self._just_saved[tracker.sender_id] = tracker
        while len(self.store) > self._keep:
            oldest = next(iter(self.store))
            del self.store[oldest]
            self._just_saved.pop(oldest, None)

    def just_saved(self, sender_id: str) -> Optional[DialogueStateTracker]:
        """The tracker of this call's turn that has just ended (once), or None."""
        return self._just_saved.pop(sender_id, None)


def check_action_results_with_one_validator() -> None:
    """Rasa checks every action's answer with `jsonschema.validate`, which first checks Rasa's own,
    constant schema against the JSON Schema meta-schema: measured, ~85% of a turn's CPU with two
    actions. The schema is checked once here, and each answer still with the same validator and the
    same error (jsonschema's own advice for one schema and many instances)."""
    from jsonschema import ValidationError, exceptions, validators
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    if getattr(RemoteAction._validate_action_result, "lean", False):
        return
    schema = RemoteAction.action_response_format_spec()
    kind = validators.validator_for(schema)
    kind.check_schema(schema)
    validator = kind(schema)

    @functools.wraps(RemoteAction._validate_action_result)
    def validate(self, result) -> bool:
        error = exceptions.best_match(validator.iter_errors(result))
        if error is None:
            return True
        assert isinstance(error, ValidationError)
        error.message += (". Failed to validate Action server response from API, make sure your response from the "
                          f"Action endpoint is valid. For more information about the format visit "
                          f"{DOCS_BASE_URL}/custom-actions")
        raise error

    validate.lean = True  # type: ignore[attr-defined]
    RemoteAction._validate_action_result = validate


def find_event_types_once() -> None:
    """Rasa finds an event's class by its name by walking every subclass of Event, for every event of
    every tracker it rebuilds from JSON (each turn rebuilds the whole call): measured, a tenth of a
    turn's CPU. A name found once is remembered; a name never found still gets Rasa's own answer."""
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    original = Event.resolve_by_type
    if getattr(original, "lean", False):
        return
    known: dict[str, type] = {}

    @functools.wraps(original)
    def resolve_by_type(type_name, default=None):
        if type_name not in known:
            found = next((kind for kind in all_subclasses(Event) if kind.type_name == type_name), None)
            if found is None:
                return original(type_name, default)  # "topic", the default, or Rasa's error
            known[type_name] = found
        return known[type_name]

    resolve_by_type.lean = True  # type: ignore[attr-defined]
    Event.resolve_by_type = staticmethod(resolve_by_type)
