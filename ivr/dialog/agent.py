"""The dialog stage: Rasa in-process, loaded once and shared by every call of this process.

Rasa (and TensorFlow under it) runs on its own thread with its own event loop, so a call's loop
never waits on it; the rasa_sdk actions run in an action server `ivr` starts on a free port.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ivr.dialog.quiet import quiet_rasa
from ivr.dialog.settings import DialogError, VoiceSettings, load_yaml
from ivr.dialog.training import model_path
from ivr.events import Escalation, Prompt

PR_SET_PDEATHSIG = 1  # prctl(2)

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


class ActionServer:
    """The rasa_sdk action server for ivr.actions, on a free localhost port, for as long as we run.

    Its output goes to a log file (appended): a pipe nobody drains would stall it once full.
    """

    def __init__(self, log_path: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        # Only this machine may call the actions: they post payments. (rasa_sdk binds 0.0.0.0 by default.)
        env = dict(os.environ, PYTHONUNBUFFERED="1", SANIC_HOST="127.0.0.1")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        with open(log_path, "ab") as log_file:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "rasa_sdk", "--actions", "ivr.actions", "--port", str(self.port)],
                stdout=log_file, stderr=subprocess.STDOUT, env=env, preexec_fn=_dies_with_parent)
        self.url = f"http://127.0.0.1:{self.port}/webhook"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise DialogError(f"the action server for ivr.actions exited ({self.log_path}): {tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise DialogError(f"the action server did not answer on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()


def _dies_with_parent() -> None:
    """In the child, before exec: Linux ends it when we end, however we end (even SIGKILL)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def configured_action_url(dialogs_dir: Path) -> Optional[str]:
    endpoints = dialogs_dir / "endpoints.yml"
    data = load_yaml(endpoints) if endpoints.exists() else None
    action = (data or {}).get("action_endpoint") if isinstance(data, dict) else None
    return str(action["url"]) if isinstance(action, dict) and action.get("url") else None


class Dialog:
    def __init__(self, agent, loop: asyncio.AbstractEventLoop, thread: threading.Thread,
                 settings: VoiceSettings, prompt_names: dict[str, str], server: Optional[ActionServer]):
        self._agent, self._loop, self._thread = agent, loop, thread
        self._settings, self._prompt_names, self._server = settings, prompt_names, server

    @classmethod
    async def load(cls, dialogs_dir: Path, models_dir: Path, settings: VoiceSettings, var_dir: Path) -> "Dialog":
        model = model_path(models_dir)
        if not model.exists():
            raise DialogError(f"{model}:0: no trained dialog model; run `ivr train` (or `make setup`)")
        url = configured_action_url(dialogs_dir)
        server = None if url else ActionServer(var_dir / "logs" / "actions.log")  # starts while the model loads
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="rasa", daemon=True)
        thread.start()
        try:
            agent = await _on(loop, _load_agent(model, url or server.url))
            if server:
                await asyncio.get_running_loop().run_in_executor(None, server.wait_ready)
        except BaseException:
            if server:
                server.stop()
            loop.call_soon_threadsafe(loop.stop)
            raise
        return cls(agent, loop, thread, settings, _prompt_texts(agent), server)

    @property
    def action_port(self) -> Optional[int]:
        """The port of the action server we started (None when endpoints.yml names another)."""
        return self._server.port if self._server else None

    async def start(self, call_id: str) -> DialogReply:
        return await self.respond(call_id, GREETING)

    async def respond(self, call_id: str, text: str) -> DialogReply:
        messages, tracker = await _on(self._loop, self._handle(call_id, text))
        return self._reply(messages, tracker)

    async def history(self, call_id: str) -> list[dict]:
        """Everything the dialog's tracker store holds for a call, as its events."""
        tracker = await _on(self._loop, self._agent.processor.get_tracker(call_id))
        return [event.as_dict() for event in tracker.events]

    async def parse(self, text: str) -> tuple[Optional[str], Optional[float]]:
        """The intent of one caller text on its own, outside any conversation."""
        parsed = await _on(self._loop, self._agent.parse_message(text))
        intent = parsed.get("intent") or {}
        return intent.get("name"), intent.get("confidence")

    async def _handle(self, call_id: str, text: str):
        messages = await self._agent.handle_text(text, sender_id=call_id)
        tracker = await self._agent.processor.get_tracker(call_id)
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
            tasks_completed=list(slots.get("tasks_completed") or []))

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
        if self._server:
            self._server.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)


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


async def _load_agent(model: Path, action_url: str):
    quiet_rasa()
    with warnings.catch_warnings():  # TensorFlow and friends warn about their own internals on import
        warnings.simplefilter("ignore")
        # skops (which loads the intent classifier) scans every loaded module when first imported:
        # after TensorFlow that takes ~11 s, before it ~1 s.
        import skops.io  # noqa: F401
        from rasa.core.agent import load_agent
        from rasa.core.utils import AvailableEndpoints
        from rasa.utils.endpoints import EndpointConfig
    quiet_rasa()  # again: importing Rasa installs warning filters of its own

    return await load_agent(model_path=str(model), endpoints=AvailableEndpoints(action=EndpointConfig(url=action_url)))


def _prompt_texts(agent) -> dict[str, str]:
    """Fixed response texts -> response name, for messages that arrive without their name."""
    names = {}
    for name, variants in agent.domain.responses.items():
        for variant in variants:
            if variant.get("text"):
                names.setdefault(variant["text"], name)
    return names
