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
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from ivr.asr.numbers import normalise
from ivr.audio.hold_music import hold_music
from ivr.dialog.agent import DialogReply
from ivr.dialog.frustration import FrustrationMeter, FrustrationSettings
from ivr.dialog.settings import HoldSettings
from ivr.audio.endpointer import Endpointer, Timing
from ivr.audio.pcm import resample
from ivr.audio.recording import Recording
from ivr.call_result import CallResult, outcome_of, tasks_of
from ivr.events import (FREE, AudioChunk, Dtmf, Escalation, Expectation, NoInput, Prompt,
                        SpeechEnded, SpeechStarted, Transcript, TrailingSilence, Turn)
from ivr.masking import HIDDEN, Seal, mask_card_numbers
from ivr.queue.handoff import handoff
from ivr.queue.hold import HoldLine, OnHold
from ivr.queue.model import TAKEN, WAITING, QueueError
from ivr.transports.base import Hangup, Transport, Typed

log = logging.getLogger(__name__)

NO_INPUT = "/no_input"
NO_MATCH = "/nlu_fallback"
FRUSTRATED = "/frustrated"  # the caller's frustration reached the threshold: the dialog acknowledges and transfers
# Said by the call itself when the dialog cannot answer (Rasa or its actions failed): a broken
# dialog cannot say it, and the caller must never be left in silence.
APOLOGY = "I'm sorry, something went wrong on our side. Let me connect you with an agent."


@dataclass
class _CallerTurn:
    """A caller turn waiting to be taken: an utterance, keypad digits, or silence."""
    kind: str  # speech | dtmf | no_input | typed
    utterance: Any = None
    ended: Optional[SpeechEnded] = None
    digits: str = ""
    said: str = ""


@dataclass
class _State:
    expects: Expectation = FREE
    prompt: str = ""  # the name of the bot's last question
    barge_in: bool = True
    no_input_ms: Optional[int] = None  # the last prompt's patience, when it has its own
    speaking: bool = False
    interrupted: bool = False
    ignore_utterance: bool = False
    digits: str = ""
    outcome: Optional[str] = None
    task: Optional[str] = None
    escalation: Optional[Escalation] = None
    turns: list[Turn] = field(default_factory=list)
    greeting: list[str] = field(default_factory=list)
    queue_entry: Optional[int] = None
    queue_outcome: Optional[str] = None
    tasks_started: list[str] = field(default_factory=list)
    tasks_completed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Backstage:
    """Where a call hands callers to people and leaves its record; None of these: the call just ends."""
    queue: Any = None  # ivr.queue.store.QueueStore
    records: Any = None  # ivr.records.store.CallRecords
    hold: HoldSettings = HoldSettings()
    frustration: FrustrationSettings = FrustrationSettings()


class Call:
    def __init__(self, transport: Transport, recognizer, dialog, voice, timing: Timing, seal: Seal,
                 recording: Optional[Recording] = None, call_id: Optional[str] = None,
                 scripted: Optional[list[str]] = None, channel: str = "", caller_number: Optional[str] = None,
                 backstage: Backstage = Backstage()):
        self.call_id = call_id or uuid.uuid4().hex[:12]
        self.transport, self.recognizer, self.dialog, self.voice = transport, recognizer, dialog, voice
        self.seal = seal
        self.channel, self.caller_number, self.backstage = channel, caller_number, backstage
        self.frustration = FrustrationMeter(backstage.frustration)
        self._hold: Optional[OnHold] = None
        self._holding: Optional[asyncio.Task] = None
        self._music_at = 0.0
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
        started, started_at, clock_began = time.monotonic(), datetime.now(timezone.utc), self.transport.now()
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
            for task in (worker, listener, ended, self._holding):
                if task:
                    task.cancel()
            await asyncio.gather(worker, listener, ended, *([self._holding] if self._holding else []),
                                 return_exceptions=True)
            self._asr.shutdown(wait=False, cancel_futures=True)
            await self.transport.close()
            await self._left_hold()
        for task in (worker, listener):
            if task.done() and not task.cancelled() and task.exception():
                raise task.exception()
        state = self._state
        tasks = tasks_of(state.tasks_started, state.tasks_completed)
        # On the call's own clock: a caller file's call lasts as long as its audio, not its processing.
        seconds = (self.transport.now() - clock_began) or time.monotonic() - started
        result = CallResult(self.call_id, outcome_of(state.outcome, tasks), state.task, state.escalation,
                            state.greeting, state.turns, seconds, started_at=started_at,
                            ended_at=started_at + timedelta(seconds=seconds), channel=self.channel,
                            caller_number=self.caller_number, queue_entry=state.queue_entry,
                            queue_outcome=state.queue_outcome, tasks=tasks)
        await self._keep_record(result)
        return result

    async def _keep_record(self, result: CallResult) -> None:
        if self.backstage.records is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.backstage.records.save, result)
        except Exception:  # noqa: BLE001 - a lost record must not turn into a failed call
            log.exception("call %s: could not store the call record", self.call_id)

    # -- transport in -> endpointing -------------------------------------------------------

    async def _listen(self) -> None:
        async for item in self.transport.incoming():
            if isinstance(item, Hangup):
                return
            if isinstance(item, Dtmf):
                self._on_dtmf(item.digits)
            elif isinstance(item, Typed):
                self._on_typed(item.text)
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
        for key in digits:
            if key == "#" and not state.digits:
                continue  # the pound key after an entry already complete at its length: the read-back plays on
            if state.speaking:
                self._barge_in()
            if key == "*":
                state.digits = ""
            elif key == "#" or (state.expects.length and len(state.digits + key) >= state.expects.length):
                typed = state.digits + (key if key != "#" else "")
                state.digits = ""
                self.endpointer.stop_waiting()
                self._queue.put_nowait(_CallerTurn("dtmf", digits=typed, said=f"dtmf:{digits}"))
            else:
                state.digits += key

    def _on_typed(self, text: str) -> None:
        """A typed caller (`ivr chat`): a line ending in # is keyed, like the keypad; an empty one is silence."""
        text = text.strip()
        keyed = text[:-1].strip()
        if text.endswith("#") and keyed.isascii() and keyed.isdigit():
            self._queue.put_nowait(_CallerTurn("dtmf", digits=keyed, said=text))
        else:
            self._queue.put_nowait(_CallerTurn("typed" if text else "no_input", said=text))

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
            if self._state.outcome and self._hold is None:
                self._done.set()
                return

    async def _take(self, caller_turn: _CallerTurn) -> None:
        turn = Turn(said=caller_turn.said, kind=caller_turn.kind, prompt=self._state.prompt)
        began = time.monotonic()
        if self._hold is not None:
            await self._take_on_hold(caller_turn, turn)
            return
        if caller_turn.kind == "speech":
            turn.latency["endpoint"] = caller_turn.ended.endpoint_at - caller_turn.ended.timestamp
            transcript = await asyncio.get_running_loop().run_in_executor(self._asr, caller_turn.utterance.finish)
            turn.latency["asr"] = time.monotonic() - began
            text = self._understood(transcript, turn)
        elif caller_turn.kind == "typed":  # the same understanding as a transcript: number words, amounts
            text = self._understood(Transcript(caller_turn.said, 1.0), turn)
        elif caller_turn.kind == "dtmf":
            text = turn.heard = caller_turn.digits
        else:
            text = NO_INPUT
        text = self._kept_secret(text, turn, spoken=caller_turn.kind in ("speech", "typed"))
        rasa_began = time.monotonic()
        reply = await self._respond(text)
        turn.intent, turn.confidence = reply.intent, reply.confidence
        turn.frustration = self.frustration.hear(turn.heard if caller_turn.kind != "no_input" else NO_INPUT,
                                                 reply.intent)
        if self.frustration.upset and not (reply.escalation or reply.ended):
            reply = await self._respond(FRUSTRATED)
        elif reply.escalation and reply.escalation.reason == "caller_request" and self.frustration.upset_now:
            reply.escalation = Escalation("frustration")  # "this is ridiculous, get me a person": the agent should know
        turn.latency["dialog"] = time.monotonic() - rasa_began
        await self._answer(reply, turn, began)

    async def _take_on_hold(self, caller_turn: _CallerTurn, turn: Turn) -> None:
        """While queued, what the caller says goes to the hold (a callback), not to the dialog."""
        if caller_turn.kind == "speech":
            transcript = await asyncio.get_running_loop().run_in_executor(self._asr, caller_turn.utterance.finish)
            self._understood(transcript, turn)
        elif caller_turn.kind == "dtmf":
            turn.heard = caller_turn.digits
        elif caller_turn.kind == "typed":
            turn.heard = caller_turn.said
        else:
            return
        if self._hold.hear(turn.heard):
            turn.heard, turn.said = mask_card_numbers(turn.heard), mask_card_numbers(turn.said)
            self._state.turns.append(turn)
            if self.on_turn:
                self.on_turn(turn)

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
        # A card number where none was asked for (keyed after a misheard "new card") is never kept.
        turn.heard, turn.said = mask_card_numbers(turn.heard), mask_card_numbers(turn.said)
        return mask_card_numbers(text)

    def _understood(self, transcript: Transcript, turn: Turn) -> str:
        text = normalise(transcript.text, self._state.expects).strip()
        turn.heard, turn.confidence = text, transcript.confidence
        return text or NO_MATCH

    async def _answer(self, reply, turn: Turn, began: Optional[float] = None) -> None:
        state = self._state
        state.task = reply.task or state.task
        state.tasks_started, state.tasks_completed = reply.tasks_started, reply.tasks_completed
        if began is not None:
            state.turns.append(turn)
        if reply.escalation:
            state.escalation = reply.escalation
        await self._speak(reply.prompts, turn, began)
        if self.on_turn:
            self.on_turn(turn)
        if reply.escalation:
            state.outcome = "escalated"
            state.escalation = handoff(reply.escalation, call_id=self.call_id, channel=self.channel,
                                       caller_number=self.caller_number, task=state.task, slots=reply.slots,
                                       greeting=state.greeting, turns=state.turns,
                                       frustration=self.frustration.score)
            await self._join_queue(state.escalation)
        elif reply.ended:  # self_served when a task was done (ivr.call_result.outcome_of)
            state.outcome = "ended"
        elif not self.endpointer.in_speech and self._queue.empty():
            self.endpointer.expect_answer(self.transport.now(), state.no_input_ms)

    async def _speak(self, prompts: list[Prompt], turn: Turn, began: Optional[float]) -> None:
        state = self._state
        state.speaking, state.interrupted = True, False
        loop = asyncio.get_running_loop()
        try:
            for prompt in prompts:
                turn.bot.append(prompt.text)
                state.expects, state.barge_in, state.prompt = prompt.expects, prompt.barge_in, prompt.name
                state.no_input_ms = prompt.no_input_ms
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

    # -- escalation -> queue -> on hold ----------------------------------------------------------

    async def _join_queue(self, escalation: Escalation) -> None:
        try:
            if self.backstage.queue is None:
                raise QueueError("the agents' queue was unavailable when the bot started")
            entry = await self._queue_call("enqueue", escalation)
        except QueueError as error:  # promised a person, so never silence: say so truly, and end the call
            log.error("call %s: the queue cannot take the caller (%s)", self.call_id, error)
            self._state.queue_outcome = "unavailable"
            await self._say_on_hold(self.backstage.hold.queue_unavailable, "queue_unavailable", FREE)
            return
        self._state.queue_entry, self._state.queue_outcome = entry.id, WAITING
        line = HoldLine(say=self._say_on_hold, play_music=self._play_music, queue_call=self._queue_call)
        self._hold = OnHold(line, entry.id, self.backstage.hold, self.caller_number)
        self._holding = asyncio.create_task(self._wait_on_hold())

    async def _wait_on_hold(self) -> None:
        try:
            while True:
                self._state.queue_outcome = await self._hold.run()
                if self._state.queue_outcome != TAKEN or await self._put_through(self._hold.entry_id):
                    break
                await self._queue_call("return_to_queue", self._hold.entry_id)
                await self._say_on_hold(self.backstage.hold.agent_unreachable, "hold_agent_unreachable", FREE)
                self._hold = OnHold(self._hold.line, self._hold.entry_id, self.backstage.hold, self.caller_number)
        except QueueError as error:  # the caller waiting for a person is told, not left to music forever
            log.error("call %s: the queue failed while the caller was on hold (%s)", self.call_id, error)
            await self._say_on_hold(self.backstage.hold.queue_unavailable, "queue_unavailable", FREE)
        except Exception:  # noqa: BLE001 - a broken hold is told too: it ended calls silently, unlogged
            log.exception("call %s: the hold failed", self.call_id)
            await self._say_on_hold(self.backstage.hold.queue_unavailable, "queue_unavailable", FREE)
        finally:
            self._done.set()

    async def _put_through(self, entry_id: int) -> bool:
        """The agent who took the caller has a phone (a SIP address) and this line can reach it: connect them.
        False when the agent's phone did not answer (the caller goes back to their place in line)."""
        hand_over = getattr(self.transport, "hand_over", None)
        entry = await self._queue_call("entry", entry_id)
        agent = await self._queue_call("agent", entry.agent) if entry.agent else None
        if hand_over is None or agent is None or not agent.sip_address:
            return True  # the agent calls back or picks up on their side; nothing for this line to do
        if await hand_over(agent.sip_address):
            await self._queue_call("connected", entry_id)
            return True
        log.error("call %s: could not connect the caller to %s at %s", self.call_id, agent.name, agent.sip_address)
        return False

    async def _left_hold(self) -> None:
        """The call is over; a caller still waiting hung up: their place is given up (abandoned)."""
        if self._hold is None or self._hold.outcome is not None:
            return
        try:
            self._state.queue_outcome = (await self._queue_call("abandon", self._hold.entry_id)).state
        except QueueError:
            log.exception("call %s: could not mark queue entry %s abandoned", self.call_id, self._hold.entry_id)

    async def _queue_call(self, method: str, *args):
        return await asyncio.get_running_loop().run_in_executor(None, getattr(self.backstage.queue, method), *args)

    async def _say_on_hold(self, text: str, name: str, expects: Expectation) -> None:
        turn = self._state.turns[-1] if self._state.turns else Turn()  # the record keeps it with the last turn
        if self.on_turn:
            self.on_turn(Turn(kind="", bot=[text]))
        await self._speak([Prompt(text, name, expects, barge_in=True)], turn, None)

    async def _play_music(self, seconds: float) -> None:
        """Hold music, paced by the wall clock whatever the transport (files play instantly)."""
        loop, state = asyncio.get_running_loop(), self._state
        until = loop.time() + seconds
        music = hold_music(self.transport.rate, seconds, self._music_at)
        self._music_at += seconds
        state.speaking, state.interrupted, state.barge_in = True, False, True
        state.expects = self._hold.offer
        try:
            if self.recording:
                self.recording.bot(AudioChunk(music.pcm, music.rate, self.transport.now()))
            await self.transport.play(music)
            await self.transport.flush()
        finally:
            state.speaking = False
        await asyncio.sleep(max(0.0, until - loop.time()))
