"""One call: the only place that knows the order of the stages.

transport in -> endpointing (ivr.caller_input) -> recognizer -> dialog -> voice (ivr.speaker) -> transport
out; a caller handed to a person goes to the queue and the hold (ivr.queue.handover). Caller turns are
taken one at a time by a single worker; audio keeps flowing meanwhile so barge-in and no-input are always
heard.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from ivr.audio.endpointer import Endpointer, Timing
from ivr.audio.recording import Recording
from ivr.call_result import CallResult, RecordSoFar
from ivr.caller_input import CallerInput, CallerTurn
from ivr.dialog.agent import DialogReply
from ivr.dialog.agent_survey import agent_survey_due
from ivr.dialog.frustration import FrustrationMeter, FrustrationSettings
from ivr.dialog.settings import HoldSettings, JunkSettings, SurveySettings
from ivr.events import Escalation, Expectation, Prompt, Turn
from ivr.masking import Seal, mask_card_numbers
from ivr.queue.desk import QueueDesk
from ivr.queue.handoff import handoff, shown_account
from ivr.queue.handover import AGENT_HUNG_UP, LINE_DROPPED, Handover
from ivr.queue.hold import HoldLine
from ivr.speaker import Speaker
from ivr.transports.base import Transport
from ivr.understanding import NO_INPUT, NO_MATCH, kept_secret, text_of

log = logging.getLogger(__name__)

FRUSTRATED = "/frustrated"  # the caller's frustration reached the threshold: the dialog acknowledges and transfers
DEAD_AIR = "/dead_air"  # still silence after the reprompts, on a line that never carried a voice: the dialog hangs up
AGENT_DONE = "/agent_done"  # the agent hung up first and the caller, drawn for the survey, is the bot's again
# Said by the call itself when the dialog cannot answer (Rasa or its actions failed): a broken
# dialog cannot say it, and the caller must never be left in silence.
APOLOGY = "I'm sorry, something went wrong on our side. Let me connect you with an agent."
# After an agent's call the caller was served: a failing dialog closes the call instead of queueing them again.
GOODBYE = "Thank you for calling. Goodbye."
# The agent's line was lost on the network: the caller was cut off, not done, so no question about the call.
# (The queue cannot give a caller once put through their place back yet: they are asked to call again.)
AGENT_LINE_DROPPED = "I'm sorry, the line to your agent dropped. Please call us again. Goodbye."
BACK_FROM_AGENT = (AGENT_HUNG_UP, LINE_DROPPED)  # the turn the call gives its worker when the caller comes back


class Phase(enum.Enum):
    TALKING = "talking"  # the caller and the bot, turn by turn
    ON_HOLD = "on_hold"  # handed over: what the caller says goes to the hold, until the call ends
    ENDED = "ended"  # the dialog ended the call, or the queue could not take the caller


@dataclass(frozen=True)
class Backstage:
    """Where a call hands callers to people and leaves its record; None of these: the call just ends."""
    queue: Any = None  # ivr.queue.store.QueueStore
    records: Any = None  # ivr.records.store.CallRecords
    hold: HoldSettings = HoldSettings()
    frustration: FrustrationSettings = FrustrationSettings()
    junk: JunkSettings = JunkSettings()
    survey: SurveySettings = SurveySettings()  # after_agent: a drawn caller comes back from their agent


class Call:
    def __init__(self, transport: Transport, recognizer, dialog, voice, timing: Timing, seal: Seal,
                 recording: Optional[Recording] = None, call_id: Optional[str] = None,
                 scripted: Optional[list[str]] = None, channel: str = "", caller_number: Optional[str] = None,
                 backstage: Backstage = Backstage(), asr: Optional[Executor] = None):
        """`asr`: where recognition runs (default: a thread of the call's own, so audio never waits for it)."""
        self.call_id = call_id or uuid.uuid4().hex[:12]
        self.transport, self.dialog, self.seal, self.recording = transport, dialog, seal, recording
        self.channel, self.caller_number, self.backstage = channel, caller_number, backstage
        self.worker: Optional[str] = None  # the serving process's name, set by its switchboard
        self.frustration = FrustrationMeter(backstage.frustration)
        self.phase, self._record = Phase.TALKING, RecordSoFar()
        self._asr = asr or ThreadPoolExecutor(1, thread_name_prefix=f"asr-{self.call_id}")
        self._turns: asyncio.Queue[CallerTurn] = asyncio.Queue()
        self.speaker = Speaker(transport, voice, recording)
        self.input = CallerInput(Endpointer(transport.rate, timing), recognizer, self.speaker, self._asr,
                                 self._turns, recording, scripted, understands=self._reads_as_request)
        self._requests = (timing.answered_free_confidence, frozenset(timing.answered_free_intents))
        desk = QueueDesk(backstage.queue) if backstage.queue is not None else None
        self.handover = Handover(desk, backstage.hold, HoldLine(self._say_on_hold, self.speaker.music, desk),
                                 transport, caller_number)
        self._holding: Optional[asyncio.Task] = None
        # The caller's time bridged to an agent, left out of the record's seconds (the bot's handle time).
        self._with_agent, self._bridged_at = 0.0, None
        self._csat_agent: Optional[str] = None  # the agent the survey was about, asked once the caller came back
        self._done = asyncio.Event()
        # Dead air is a run of silence on a line that never carried a caller: a quiet voice on a weak line
        # that was understood once is someone there, and silences spread over a call are no run.
        self._silent_in_a_row, self._caller_understood = 0, False
        self.on_turn: Optional[Callable[[Turn], None]] = None  # e.g. print each exchange as it happens

    async def run(self) -> CallResult:
        started, started_at, clock_began = time.monotonic(), datetime.now(timezone.utc), self.transport.now()
        worker = asyncio.create_task(self._take_turns())
        listener = asyncio.create_task(self.input.listen())
        ended = asyncio.create_task(self._done.wait())
        try:
            reply = await self.dialog.start(self.call_id)
            self._record.greeting = [p.text for p in reply.prompts]
            await self._answer(reply, Turn())
            await asyncio.wait({worker, listener, ended}, return_when=asyncio.FIRST_COMPLETED)
            if listener.done() and not self._done.is_set():
                await self._turns.join()  # the caller hung up: finish what they already said
        finally:
            await self._stop(worker, listener, ended)
        for task in (worker, listener):
            if task.done() and not task.cancelled() and task.exception():
                raise task.exception()
        # On the call's own clock: a caller file's call lasts as long as its audio, not its processing.
        seconds = (self.transport.now() - clock_began) or time.monotonic() - started
        result = self._result(started_at, seconds - self._time_with_agent())
        result.ended_at = started_at + timedelta(seconds=seconds)  # the call's real end, the agent's part too
        await self._keep_record(result)
        return result

    async def _stop(self, *tasks: asyncio.Task) -> None:
        running = [task for task in (*tasks, self._holding) if task]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if self._holding and not self._holding.cancelled() and self._holding.exception():
            log.error("call %s: the hold failed", self.call_id, exc_info=self._holding.exception())
        self._asr.shutdown(wait=False, cancel_futures=True)
        await self.transport.close()
        await self.handover.left()

    def _result(self, started_at: datetime, seconds: float) -> CallResult:
        result = self._record.result(self.call_id, started_at, seconds, channel=self.channel,
                                     caller_number=self.caller_number, queue_entry=self.handover.entry_id,
                                     queue_outcome=self.handover.outcome, worker=self.worker)
        if result.csat and self._csat_agent:  # asked after the agent's call: whose call it rates
            result.csat = {**result.csat, "agent": self._csat_agent}
        return result

    def _time_with_agent(self) -> float:
        bridged = self.transport.now() - self._bridged_at if self._bridged_at is not None else 0.0
        return self._with_agent + bridged

    async def _keep_record(self, result: CallResult) -> None:
        if self.backstage.records is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.backstage.records.save, result)
        except Exception:  # noqa: BLE001 - a lost record must not turn into a failed call
            log.exception("call %s: could not store the call record", self.call_id)

    # -- caller turn -> ASR -> dialog -> voice ---------------------------------------------------

    async def _take_turns(self) -> None:
        while True:
            caller_turn = await self._turns.get()
            try:
                await self._take(caller_turn)
            finally:
                self._turns.task_done()
            if self.phase is Phase.ENDED:
                self._done.set()
                return

    async def _take(self, caller_turn: CallerTurn) -> None:
        if caller_turn.kind in BACK_FROM_AGENT:
            await self._after_agent(caller_turn.kind)
            return
        turn = Turn(said=caller_turn.said, kind=caller_turn.kind, prompt=self.speaker.asking.prompt)
        began = time.monotonic()
        text = await text_of(caller_turn, turn, self.speaker.asking.expects, self._asr, began)
        if self.phase is Phase.ON_HOLD:  # what the caller says goes to the hold (a callback), not the dialog
            self._on_hold_heard(turn, caller_turn.kind)
            return
        self._count_silence(caller_turn.kind, turn.heard)
        text = kept_secret(self.seal, text, turn, self.speaker.asking.expects, caller_turn.kind in ("speech", "typed"))
        if caller_turn.kind == "no_input" and self._dead_air():
            text = DEAD_AIR
        elif caller_turn.kind == "speech" and (turn.confidence or 0) < self.backstage.junk.prank_min_confidence \
                and (await self.dialog.parse(text))[0] == "prank":
            text = NO_MATCH  # chatter the recognizer doubts is garbled or foreign speech: not understood, not a prank
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

    async def _reads_as_request(self, text: str) -> bool:
        """A finished sentence of free speech that the dialog reads as a request (voice.yml's
        answered_free_intents), surely enough to answer it before the full trailing silence (ivr.caller_input
        asks, at the caller's pause). Never on hold: what a waiting caller says goes to the hold, not the dialog."""
        if self.phase is not Phase.TALKING:
            return False
        least, requests = self._requests
        intent, confidence = await self.dialog.parse(mask_card_numbers(text))  # as a turn's text would be
        return intent in requests and (confidence or 0) >= least

    def _count_silence(self, kind: str, heard: str) -> None:
        self._silent_in_a_row = self._silent_in_a_row + 1 if kind == "no_input" else 0
        self._caller_understood = self._caller_understood or (kind == "speech" and bool(heard))

    def _dead_air(self) -> bool:
        junk = self.backstage.junk
        return self._silent_in_a_row > junk.silent_reprompts and not self._caller_understood \
            and self.input.dead_air(junk.voice_level_dbfs)

    def _on_hold_heard(self, turn: Turn, kind: str) -> None:
        if kind == "no_input" or not self.handover.hold.hear(turn.heard):
            return  # nothing the hold acts on (the hold music's own echo taken for words) is no caller turn
        turn.heard, turn.said = mask_card_numbers(turn.heard), mask_card_numbers(turn.said)
        self._record.turns.append(turn)
        if self.on_turn:
            self.on_turn(turn)

    async def _respond(self, text: str) -> DialogReply:
        """The dialog's reply; when it fails or is silent, an apology and a transfer (after an agent's call:
        goodbye, the hand-over and its reason kept)."""
        try:
            reply = await self.dialog.respond(self.call_id, text)
        except Exception:  # noqa: BLE001 - whatever broke, the caller hears an apology, not silence
            log.exception("call %s: the dialog failed on a caller turn", self.call_id)
            reply = None
        if reply is not None and (reply.prompts or reply.ended):
            return reply
        if text == AGENT_DONE:
            log.error("call %s: the dialog gave no prompt after the agent's call; saying goodbye", self.call_id)
            return DialogReply(prompts=[Prompt(GOODBYE, "goodbye", barge_in=False)], ended=True)
        log.error("call %s: the dialog gave no prompt; apologising and transferring", self.call_id)
        return DialogReply(prompts=[Prompt(APOLOGY, "apology", barge_in=False)],
                           intent=reply.intent if reply else None, escalation=Escalation("dialog_failure"),
                           task=reply.task if reply else None)

    async def _answer(self, reply: DialogReply, turn: Turn, began: Optional[float] = None) -> None:
        record = self._record
        # only a proved account: a mistyped number would join two callers in the reports
        record.heard(reply, turn, account=shown_account(reply.slots) if reply.slots.get("authenticated") else None)
        if began is not None:
            record.turns.append(turn)
        if reply.escalation:
            record.escalation = reply.escalation
        await self.speaker.say(reply.prompts, turn, began)
        if self.on_turn:
            self.on_turn(turn)
        if reply.escalation:
            record.outcome = "escalated"
            record.escalation = handoff(reply.escalation, call_id=self.call_id, channel=self.channel,
                                        caller_number=self.caller_number, task=record.task, slots=reply.slots,
                                        greeting=record.greeting, turns=record.turns,
                                        frustration=self.frustration.score)
            await self._hand_over(record.escalation, reply.slots)
        elif reply.ended:  # self_served when a task was done (ivr.call_result.outcome_of); escalated stays so
            record.outcome, self.phase = record.outcome or "ended", Phase.ENDED
        else:
            self.input.expect_answer()

    # -- escalation -> queue -> on hold -----------------------------------------------------------

    async def _hand_over(self, escalation: Escalation, slots: dict) -> None:
        self.handover.come_back = agent_survey_due(slots, self.call_id, self.backstage.survey)  # the dialog's rule
        if not await self.handover.join(escalation):
            self.phase = Phase.ENDED
            return
        self.phase = Phase.ON_HOLD
        self._holding = asyncio.create_task(self._wait_on_hold())

    async def _wait_on_hold(self) -> None:
        came_back = None
        try:
            await self.handover.wait()
            self._bridged_at = self.transport.now() if self.handover.comes_back else None
            came_back = await self.handover.back_from_agent()
        finally:  # taken and put through, a callback, or the queue failed (and the caller was told)
            if came_back is None:
                self._done.set()
        if came_back is not None:
            self._with_agent, self._bridged_at = self._time_with_agent(), None
            self._take_back(came_back)

    def _take_back(self, came_back: str) -> None:
        """The caller is the call's again: what they said or keyed before the put-through (or on hold) is no
        answer to what comes next, so their input starts afresh; the worker takes it from here, one turn at a
        time as always (and a failure there ends the call like any other, logged)."""
        while not self._turns.empty():
            self._turns.get_nowait()
            self._turns.task_done()
        self.input.start_afresh()
        self._turns.put_nowait(CallerTurn(came_back))

    async def _after_agent(self, came_back: str) -> None:
        """The agent hung up first: the dialog closes the call (the survey about the agent, or goodbye). Their
        line dropped instead: the caller is told, and not asked about a call cut off."""
        self.phase = Phase.TALKING
        if came_back == LINE_DROPPED:
            reply = DialogReply([Prompt(AGENT_LINE_DROPPED, "agent_line_dropped", barge_in=False)], ended=True)
        else:
            reply = await self._respond(AGENT_DONE)
            if reply.survey_asked and self._record.csat is None:
                self._csat_agent = self.handover.agent_name
        await self._answer(reply, Turn())

    async def _say_on_hold(self, text: str, name: str, expects: Expectation) -> None:
        turn = self._record.turns[-1] if self._record.turns else Turn()  # the record keeps it with the last turn
        if self.on_turn:
            self.on_turn(Turn(kind="", bot=[text]))
        await self.speaker.say([Prompt(text, name, expects, barge_in=True)], turn, None)
