"""One call: the only place that knows the order of the stages.

transport in -> endpointer -> recognizer -> dialog -> voice -> transport out. Caller turns are
taken one at a time by a single worker; audio keeps flowing meanwhile so barge-in and no-input
are always heard.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from ivr.asr.numbers import normalise
from ivr.dialog.agent import DialogReply
from ivr.audio.endpointer import Endpointer, Timing
from ivr.audio.pcm import resample
from ivr.audio.recording import Recording
from ivr.events import (FREE, AudioChunk, Dtmf, Escalation, Expectation, NoInput, Prompt,
                        SpeechEnded, SpeechStarted, Transcript, TrailingSilence, Turn)
from ivr.masking import HIDDEN, Seal
from ivr.transports.base import Hangup, Transport

log = logging.getLogger(__name__)

NO_INPUT = "/no_input"
NO_MATCH = "/nlu_fallback"
# Said by the call itself when the dialog cannot answer (Rasa or its actions failed): a broken
# dialog cannot say it, and the caller must never be left in silence.
APOLOGY = "I'm sorry, something went wrong on our side. Let me connect you with an agent."


@dataclass
class CallResult:
    call_id: str
    outcome: str  # self_served | escalated | abandoned | ended
    task: Optional[str]
    escalation: Optional[Escalation]
    greeting: list[str]
    turns: list[Turn]
    seconds: float
    started_at: Optional[datetime] = None  # UTC
    ended_at: Optional[datetime] = None
    channel: str = ""  # microphone | files | sip | websocket | audiosocket
    caller_number: Optional[str] = None
    queue_entry: Optional[int] = None  # the escalation queue entry, when the caller was queued
    queue_outcome: Optional[str] = None  # taken | callback | abandoned | waiting (left unresolved)

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id, "channel": self.channel, "caller_number": self.caller_number,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "outcome": self.outcome, "task": self.task,
            "escalation": asdict(self.escalation) if self.escalation else None,
            "queue_entry": self.queue_entry, "queue_outcome": self.queue_outcome,
            "greeting": self.greeting, "seconds": round(self.seconds, 3),
            "turns": [asdict(turn) for turn in self.turns],
        }


@dataclass
class _CallerTurn:
    """A caller turn waiting to be taken: an utterance, keypad digits, or silence."""
    kind: str  # speech | dtmf | no_input
    utterance: Any = None
    ended: Optional[SpeechEnded] = None
    digits: str = ""
    said: str = ""


@dataclass
class _State:
    expects: Expectation = FREE
    prompt: str = ""  # the name of the bot's last question
    barge_in: bool = True
    speaking: bool = False
    interrupted: bool = False
    ignore_utterance: bool = False
    digits: str = ""
    outcome: Optional[str] = None
    task: Optional[str] = None
    escalation: Optional[Escalation] = None
    turns: list[Turn] = field(default_factory=list)
    greeting: list[str] = field(default_factory=list)


class Call:
    def __init__(self, transport: Transport, recognizer, dialog, voice, timing: Timing, seal: Seal,
                 recording: Optional[Recording] = None, call_id: Optional[str] = None,
                 scripted: Optional[list[str]] = None, channel: str = ""):
        self.call_id = call_id or uuid.uuid4().hex[:12]
        self.transport, self.recognizer, self.dialog, self.voice = transport, recognizer, dialog, voice
        self.seal = seal
        self.channel = channel
        self.endpointer = Endpointer(transport.rate, timing)
        self.recording = recording
        self._scripted = list(scripted or [])  # what a simulated caller says, for the record
        self._state = _State()
        self._asr = ThreadPoolExecutor(1, thread_name_prefix=f"asr-{self.call_id}")
        self._queue: asyncio.Queue[_CallerTurn] = asyncio.Queue()
        self._utterance = None
        self._done = asyncio.Event()
        self.on_turn: Optional[Callable[[Turn], None]] = None  # e.g. print each exchange as it happens

    async def run(self) -> CallResult:
        started, started_at = time.monotonic(), datetime.now(timezone.utc)
        worker = asyncio.create_task(self._take_turns())
        listener = asyncio.create_task(self._listen())
        ended = asyncio.create_task(self._done.wait())
        try:
            reply = await self.dialog.start(self.call_id)
            self._state.greeting = [p.text for p in reply.prompts]
            await self._answer(reply, Turn())
            await asyncio.wait({worker, listener, ended}, return_when=asyncio.FIRST_COMPLETED)
            if listener.done() and not self._done.is_set():
                await self._queue.join()  # the caller hung up: finish what they already said
        finally:
            for task in (worker, listener, ended):
                task.cancel()
            await asyncio.gather(worker, listener, ended, return_exceptions=True)
            self._asr.shutdown(wait=False, cancel_futures=True)
            await self.transport.close()
        for task in (worker, listener):
            if task.done() and not task.cancelled() and task.exception():
                raise task.exception()
        state = self._state
        return CallResult(self.call_id, state.outcome or "abandoned", state.task, state.escalation,
                          state.greeting, state.turns, time.monotonic() - started, started_at=started_at,
                          ended_at=datetime.now(timezone.utc), channel=self.channel)

    # -- transport in -> endpointing -------------------------------------------------------

    async def _listen(self) -> None:
        async for item in self.transport.incoming():
            if isinstance(item, Hangup):
                return
            if isinstance(item, Dtmf):
                self._on_dtmf(item.digits)
            else:
                self._on_audio(item)

    def _on_audio(self, chunk: AudioChunk) -> None:
        if self.recording:  # a PIN or card number said aloud is not kept
            self.recording.caller(chunk if not self._state.expects.secret else AudioChunk(
                bytes(len(chunk.pcm)), chunk.rate, chunk.timestamp))
        was_speaking = self.endpointer.in_speech
        for event in self.endpointer.feed(chunk):
            if isinstance(event, SpeechStarted):
                self._speech_started()
            elif isinstance(event, TrailingSilence) and self._utterance:
                self._asr.submit(self._utterance.speculate)
            elif isinstance(event, SpeechEnded):
                self._speech_ended(event)
            elif isinstance(event, NoInput):  # a scripted caller's silence is one of its turns too
                self._queue.put_nowait(_CallerTurn("no_input", said=self._scripted.pop(0) if self._scripted else ""))
        if was_speaking and self._utterance is not None and self.endpointer.in_speech:
            self._asr.submit(self._utterance.feed, chunk)

    def _speech_started(self) -> None:
        state = self._state
        state.ignore_utterance = state.speaking and not state.barge_in
        if state.ignore_utterance:
            return
        if state.speaking:
            self._barge_in()
        self._utterance = self.recognizer.utterance(self.transport.rate, state.expects)
        self._asr.submit(self._utterance.feed, self.endpointer.utterance_so_far())

    def _speech_ended(self, ended: SpeechEnded) -> None:
        if self._state.ignore_utterance or self._utterance is None:
            self._state.ignore_utterance = False
            return
        said = self._scripted.pop(0) if self._scripted else ""
        self._queue.put_nowait(_CallerTurn("speech", self._utterance, ended, said=said))
        self._utterance = None

    def _on_dtmf(self, digits: str) -> None:
        state = self._state
        if state.speaking:
            self._barge_in()
        for key in digits:
            if key == "*":
                state.digits = ""
            elif key == "#" and not state.digits:
                continue  # the pound key after an entry already complete at its length
            elif key == "#" or (state.expects.length and len(state.digits + key) >= state.expects.length):
                typed = state.digits + (key if key != "#" else "")
                state.digits = ""
                self.endpointer.stop_waiting()
                self._queue.put_nowait(_CallerTurn("dtmf", digits=typed, said=f"dtmf:{digits}"))
            else:
                state.digits += key

    def _barge_in(self) -> None:
        self._state.interrupted = True
        self.transport.clear()

    # -- ASR -> dialog -> voice -> transport out ----------------------------------------------

    async def _take_turns(self) -> None:
        while True:
            caller_turn = await self._queue.get()
            try:
                await self._take(caller_turn)
            finally:
                self._queue.task_done()
            if self._state.outcome:
                self._done.set()
                return

    async def _take(self, caller_turn: _CallerTurn) -> None:
        turn = Turn(said=caller_turn.said, kind=caller_turn.kind, prompt=self._state.prompt)
        began = time.monotonic()
        if caller_turn.kind == "speech":
            turn.latency["endpoint"] = caller_turn.ended.endpoint_at - caller_turn.ended.timestamp
            transcript = await asyncio.get_running_loop().run_in_executor(self._asr, caller_turn.utterance.finish)
            turn.latency["asr"] = time.monotonic() - began
            text = self._understood(transcript, turn)
        elif caller_turn.kind == "dtmf":
            text = turn.heard = caller_turn.digits
        else:
            text = NO_INPUT
        text = self._kept_secret(text, turn, spoken=caller_turn.kind == "speech")
        rasa_began = time.monotonic()
        reply = await self._respond(text)
        turn.latency["dialog"] = time.monotonic() - rasa_began
        turn.intent, turn.confidence = reply.intent, reply.confidence
        await self._answer(reply, turn, began)

    async def _respond(self, text: str):
        try:
            reply = await self.dialog.respond(self.call_id, text)
        except Exception:  # noqa: BLE001 - whatever broke, the caller hears an apology, not silence
            log.exception("call %s: the dialog failed on a caller turn", self.call_id)
            reply = None
        if reply is not None and (reply.prompts or reply.ended):
            return reply
        log.error("call %s: the dialog gave no prompt; apologising and transferring", self.call_id)
        return DialogReply(prompts=[Prompt(APOLOGY, "apology", barge_in=False)],
                           intent=reply.intent if reply else None, escalation=Escalation("dialog_failure"),
                           task=reply.task if reply else None)

    def _kept_secret(self, text: str, turn: Turn, spoken: bool) -> str:
        text, hidden = self.seal.answer(text, self._state.expects, spoken)
        if hidden:
            turn.heard = turn.said = HIDDEN
        return text

    def _understood(self, transcript: Transcript, turn: Turn) -> str:
        text = normalise(transcript.text, self._state.expects).strip()
        turn.heard, turn.confidence = text, transcript.confidence
        return text or NO_MATCH

    async def _answer(self, reply, turn: Turn, began: Optional[float] = None) -> None:
        state = self._state
        state.task = reply.task or state.task
        if began is not None:
            state.turns.append(turn)
        if reply.escalation:
            state.escalation = reply.escalation
        await self._speak(reply.prompts, turn, began)
        if self.on_turn:
            self.on_turn(turn)
        if reply.escalation:
            state.outcome = "escalated"
        elif reply.task_completed and reply.ended:
            state.outcome = "self_served"
        elif reply.ended:
            state.outcome = "ended"
        elif not self.endpointer.in_speech and self._queue.empty():
            self.endpointer.expect_answer(self.transport.now())

    async def _speak(self, prompts: list[Prompt], turn: Turn, began: Optional[float]) -> None:
        state = self._state
        state.speaking, state.interrupted = True, False
        loop = asyncio.get_running_loop()
        try:
            for prompt in prompts:
                turn.bot.append(prompt.text)
                state.expects, state.barge_in, state.prompt = prompt.expects, prompt.barge_in, prompt.name
                sentences = self.voice.render_sentences(prompt.text)
                while (chunk := await loop.run_in_executor(None, next, sentences, None)) is not None:
                    if state.interrupted:
                        return
                    if began is not None and "first_audio" not in turn.latency:
                        turn.latency["tts"] = time.monotonic() - began - sum(
                            turn.latency.get(k, 0) for k in ("asr", "dialog"))
                        turn.latency["first_audio"] = turn.latency.get("endpoint", 0) + time.monotonic() - began
                    audio = resample(chunk, self.transport.rate)
                    if self.recording:
                        self.recording.bot(AudioChunk(audio.pcm, audio.rate, self.transport.now()))
                    await self.transport.play(audio)
            await self.transport.flush()
        finally:
            state.speaking = False
