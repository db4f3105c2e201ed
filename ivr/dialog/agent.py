"""The dialog stage: Rasa in-process, loaded once and shared by every call of this process.

Rasa (and TensorFlow under it) runs on its own thread with its own event loop, so a call's loop
never waits on it; the rasa_sdk actions run in this process too (ivr.dialog.actions): no port.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ivr.config import Settings
from ivr.dialog import tensorflow_free
from ivr.dialog.quiet import quiet_rasa
from ivr.dialog.settings import DialogError, VoiceSettings, load_yaml
from ivr.dialog.model import load_agent, model_path
from ivr.events import Escalation, Prompt

if TYPE_CHECKING:
    from ivr.dialog.actions import InProcessActions

log = logging.getLogger(__name__)
GREETING = "/greet"


@dataclass
class DialogReply:
    prompts: list[Prompt]
    intent: Optional[str] = None
    confidence: Optional[float] = None
    escalation: Optional[Escalation] = None
    ended: bool = False
    task: Optional[str] = None
    task_completed: bool = False
    slots: dict[str, Any] = field(default_factory=dict)
    tasks_started: list[str] = field(default_factory=list)  # every task the caller began, in order
    tasks_completed: list[str] = field(default_factory=list)
    junk: Optional[str] = None  # dead_air | prank: the dialog ended a call that was no caller's need
    survey_asked: bool = False
    satisfaction: Optional[int] = None  # the survey's score, 1 to 5, once the caller gave one


def configured_action_url(dialogs_dir: Path) -> Optional[str]:
    endpoints = dialogs_dir / "endpoints.yml"
    data = load_yaml(endpoints) if endpoints.exists() else None
    action = (data or {}).get("action_endpoint") if isinstance(data, dict) else None
    return str(action["url"]) if isinstance(action, dict) and action.get("url") else None


class Dialog:
    def __init__(self, agent, loop: asyncio.AbstractEventLoop, thread: threading.Thread,
                 settings: VoiceSettings, prompt_names: dict[str, str], actions: Optional["InProcessActions"],
                 trackers=None):
        self._agent, self._loop, self._thread, self._trackers = agent, loop, thread, trackers
        self._settings, self._prompt_names, self._actions = settings, prompt_names, actions
        self.loaded_in: dict[str, float] = {}  # what loading took, part by part (ivr bench latency prints it)

    @classmethod
    async def load(cls, dialogs_dir: Path, models_dir: Path, settings: VoiceSettings, var_dir: Path) -> "Dialog":
        """The actions run in this process (ivr.dialog.actions) unless endpoints.yml names an action server."""
        model = model_path(models_dir)
        if not model.exists():
            raise DialogError(f"{model}:0: no trained dialog model; run `ivr train` (or `make setup`)")
        from ivr.dialog.actions import InProcessActions

        url = configured_action_url(dialogs_dir)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="rasa", daemon=True)
        thread.start()
        began = time.monotonic()
        imported = asyncio.ensure_future(_on(loop, _import_rasa(model)))  # the longest part: the actions load meanwhile
        try:
            actions = None if url else await asyncio.get_running_loop().run_in_executor(
                None, InProcessActions, replace(Settings.from_env(), var_dir=var_dir))
            imported_in, without_tensorflow = await imported
            agent, trackers = await _on(loop, _load_agent(model, url, actions))
            tensorflow_free.seal()
        except BaseException:
            imported.cancel()
            loop.call_soon_threadsafe(loop.stop)
            raise
        if actions is not None:
            actions.warm()  # after the load, so it never delays it
        dialog = cls(agent, loop, thread, settings, _prompt_texts(agent), actions, trackers)
        rasa_part = "Rasa imported without TensorFlow" if without_tensorflow else "Rasa imported"
        dialog.loaded_in = {rasa_part: imported_in, "model loaded": time.monotonic() - began - imported_in}
        return dialog

    @property
    def answers_actions_itself(self) -> bool:
        """The actions run in this process (no action server), as they do unless endpoints.yml names one."""
        return self._actions is not None

    async def start(self, call_id: str) -> DialogReply:
        return await self.respond(call_id, GREETING)

    async def respond(self, call_id: str, text: str) -> DialogReply:
        return await _on(self._loop, self._reply_to(call_id, text))

    async def history(self, call_id: str) -> list[dict]:
        """Everything the dialog's tracker store holds for a call, as its events."""
        tracker = await _on(self._loop, self._agent.processor.get_tracker(call_id))
        return [event.as_dict() for event in tracker.events]

    async def parse(self, text: str) -> tuple[Optional[str], Optional[float]]:
        """The intent of one caller text on its own, outside any conversation."""
        parsed = await _on(self._loop, self._agent.parse_message(text))
        intent = parsed.get("intent") or {}
        return intent.get("name"), intent.get("confidence")

    async def _reply_to(self, call_id: str, text: str) -> DialogReply:
        """On Rasa's thread, the reply built from the tracker too: the caller's event loop paces every line's
        audio and must not walk a tracker's events."""
        messages, tracker = await self._handle(call_id, text)
        return self._reply(messages, tracker)

    async def _handle(self, call_id: str, text: str):
        messages = await self._agent.handle_text(text, sender_id=call_id)
        saved = self._trackers.just_saved(call_id) if self._trackers else None  # no rebuild from JSON (lean_rasa)
        tracker = saved or await self._agent.processor.get_tracker(call_id)
        return messages or [], tracker

    def _reply(self, messages: list[dict], tracker) -> DialogReply:
        slots = tracker.current_slot_values()
        intent = _latest_intent(tracker)
        reason = slots.get("escalation_reason")
        prompts = [self._prompt(m, slots, tracker) for m in messages if m.get("text")]
        return DialogReply(
            prompts=prompts, intent=intent.get("name"), confidence=intent.get("confidence"),
            escalation=Escalation(reason) if reason else None, ended=bool(slots.get("call_ended")),
            task=slots.get("task"), task_completed=bool(slots.get("task_completed")), slots=slots,
            tasks_started=list(slots.get("tasks_started") or []),
            tasks_completed=list(slots.get("tasks_completed") or []), junk=slots.get("junk"),
            survey_asked=bool(slots.get("survey_asked")), satisfaction=_score(slots.get("satisfaction")))

    def _prompt(self, message: dict, slots: dict, tracker) -> Prompt:
        name = (message.get("utter_action") or (message.get("metadata") or {}).get("utter_action")
                or self._prompt_names.get(message["text"], ""))
        if not name and slots.get("requested_slot"):
            name = f"utter_ask_{slots['requested_slot']}"  # e.g. "I heard 7 digits…" then the same question
        setting = self._settings.prompt(name)
        expects = setting.expects
        if expects.kind == "question":  # "take your time": the answer still is the last question's
            expects = self._settings.prompt(self._last_question(slots, tracker)).expects
        return Prompt(message["text"], name, expects, setting.barge_in, setting.no_input_ms)

    def _last_question(self, slots: dict, tracker) -> str:
        if slots.get("requested_slot"):
            return f"utter_ask_{slots['requested_slot']}"
        for event in reversed(tracker.events):
            name = (getattr(event, "metadata", None) or {}).get("utter_action") or ""
            if name and self._settings.prompt(name).expects.kind != "question" and not name.startswith("utter_help"):
                return name
        return ""

    async def close(self) -> None:
        if self._actions:
            self._actions.close()
        self._loop.call_soon_threadsafe(self._loop.stop)


def _score(answer: Any) -> Optional[int]:
    """The survey slot holds the score said or keyed ("4"), or "skipped"."""
    return int(answer) if str(answer) in ("1", "2", "3", "4", "5") else None


def _latest_intent(tracker) -> dict:
    """The intent of the caller's newest turn (the tracker's latest_message lags inside forms)."""
    from rasa.shared.core.events import UserUttered

    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return event.intent or {}
    return {}


async def _on(loop: asyncio.AbstractEventLoop, coroutine):
    """Run a coroutine on Rasa's loop and wait for it from ours."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))


async def _import_rasa(model: Path) -> tuple[float, bool]:
    """Rasa and what it imports; the seconds it took and whether TensorFlow was left out (tensorflow_free)."""
    began = time.monotonic()
    without_tensorflow = tensorflow_free.uses_no_tensorflow(model) and tensorflow_free.stand_in()
    quiet_rasa()
    # TensorFlow imports JAX, when installed, for TFLite conversion: ~0.3 s of CPU at every start for
    # nothing a dialog uses. TensorFlow expects JAX may be absent; here it is.
    sys.modules.setdefault("jax", None)
    with warnings.catch_warnings():  # TensorFlow and friends warn about their own internals on import
        warnings.simplefilter("ignore")
        # skops (which loads the intent classifier) scans every loaded module when first imported:
        # after TensorFlow that takes ~11 s, before it ~1 s.
        import skops.io  # noqa: F401
        import rasa.core.agent  # noqa: F401
    quiet_rasa()  # again: importing Rasa installs warning filters of its own
    from ivr.dialog.lean_rasa import make_rasa_lean

    make_rasa_lean()
    return time.monotonic() - began, without_tensorflow


async def _load_agent(model: Path, action_url: Optional[str], actions: Optional["InProcessActions"]):
    from rasa.utils.endpoints import EndpointConfig

    from ivr.dialog.lean_rasa import CallTrackers

    # A damaged model file is refused here in one line, not found out mid-call (ivr.dialog.model).
    trackers = CallTrackers()
    return load_agent(model, actions if actions is not None else EndpointConfig(url=action_url), trackers), trackers


def _prompt_texts(agent) -> dict[str, str]:
    """Fixed response texts -> response name, for messages that arrive without their name."""
    names = {}
    for name, variants in agent.domain.responses.items():
        for variant in variants:
            if variant.get("text"):
                names.setdefault(variant["text"], name)
    return names
