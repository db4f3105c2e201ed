"""The caller's side coming in: audio through the endpointer to the recognizer, keypad digits, typed lines,
and silence. Each finished answer becomes a CallerTurn on the call's queue; barge-in (speech or a key
while the bot talks over a prompt that allows it) is the one urgent signal sent back to the speaker.

Audio never waits for a turn to be taken: recognition runs on the call's own ASR thread as the caller
speaks, so barge-in and no-input are heard whatever the dialog is doing.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

from ivr.asr.numbers import complete_answer
from ivr.audio.endpointer import Endpointer
from ivr.audio.recording import Recording
from ivr.events import AudioChunk, Dtmf, NoInput, SpeechEnded, SpeechStarted, TrailingSilence
from ivr.speaker import Speaker
from ivr.transports.base import Hangup, Typed

log = logging.getLogger(__name__)
# Whether the dialog reads a finished sentence as a request it knows (ivr.call gives it the dialog's NLU).
Understands = Callable[[str], Awaitable[bool]]


@dataclass
class CallerTurn:
    """A caller turn waiting to be taken: an utterance, keypad digits, a typed line, or silence."""
    kind: str  # speech | dtmf | no_input | typed | agent_hung_up | line_dropped (back from an agent: ivr.call)
    utterance: Any = None  # the recognizer's Utterance, finished when the turn is taken
    ended: Optional[SpeechEnded] = None
    digits: str = ""
    said: str = ""  # a scripted caller's words, for the record


class CallerInput:
    def __init__(self, endpointer: Endpointer, recognizer, speaker: Speaker, asr: Executor,
                 turns: "asyncio.Queue[CallerTurn]", recording: Optional[Recording] = None,
                 scripted: Optional[list[str]] = None, understands: Optional[Understands] = None):
        """`understands`: without it, free speech always waits the full trailing silence."""
        self.endpointer, self.recognizer, self.speaker = endpointer, recognizer, speaker
        self._understands = understands
        self._readings: dict[str, Optional[bool]] = {}  # this utterance's guesses as the dialog read them
        self._reading: set[asyncio.Future] = set()  # kept, so none is collected mid-way, and cancelled at the end
        self.transport = speaker.transport
        self._asr, self._turns, self.recording = asr, turns, recording
        self._scripted = list(scripted or [])  # what a simulated caller says, for the record
        self._utterance = None
        self._ignoring = False  # this utterance began over a prompt the caller may not talk over
        self._digits = ""  # keys pressed towards an entry not yet complete
        self._caller_heard = False  # a key or a typed word: someone is there (a voice is judged by its energy)

    async def listen(self) -> None:
        """Until the caller hangs up (or their line ends)."""
        try:
            async for item in self.transport.incoming():
                if isinstance(item, Hangup):
                    return
                if isinstance(item, Dtmf):
                    self._on_keys(item.digits)
                elif isinstance(item, Typed):
                    self._on_typed(item.text)
                else:
                    self._on_audio(item)
        finally:
            for reading in self._reading:
                reading.cancel()

    def expect_answer(self) -> None:
        """The bot has asked and is quiet: the no-input timer runs (for the prompt's own patience), unless the
        caller is already talking or an answer is waiting to be taken."""
        if not self.endpointer.in_speech and self._turns.empty():
            self.endpointer.expect_answer(self.transport.now(), self.speaker.asking.no_input_ms)

    def start_afresh(self) -> None:
        """The caller is back from an agent: a sentence cut off at the put-through, keys half typed and the
        dialog's readings are dropped, so nothing said before counts as an answer to what comes next."""
        if self.endpointer.in_speech:
            self.endpointer.end_early(self.transport.now())
        self.endpointer.stop_waiting()
        self._utterance, self._ignoring, self._digits, self._readings = None, False, "", {}

    def dead_air(self, voice_level_dbfs: float) -> bool:
        """Only silence so far on a line that carries audio: no frame at `voice_level_dbfs` the voice
        detector called speech, no key, no typed word. A pocket dial or a dead line, not a caller."""
        endpointer = self.endpointer
        return endpointer.heard_audio and not self._caller_heard and endpointer.loudest_voice_dbfs < voice_level_dbfs

    def _next_said(self) -> str:
        return self._scripted.pop(0) if self._scripted else ""

    def _on_audio(self, chunk: AudioChunk) -> None:
        if self.recording:  # a PIN or card number said aloud is not kept
            self.recording.caller(chunk if not self.speaker.asking.expects.secret else AudioChunk(
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
                self._turns.put_nowait(CallerTurn("no_input", said=self._next_said()))
        if was_speaking and self._utterance is not None and self.endpointer.in_speech:
            self._asr.submit(self._utterance.feed, chunk)
            if self._answered():
                self._speech_ended(self.endpointer.end_early(chunk.timestamp))

    def _answered(self) -> bool:
        """A short pause after a complete answer ends the turn: the caller who said all eight digits, a bare
        yes, or a finished sentence the dialog reads as a request it knows ("What is my balance?") is not kept
        waiting for the silence that ends free speech. The dialog's reading starts as soon as the guess is in,
        so it is ready by the time the pause is long enough."""
        expects, timing = self.speaker.asking.expects, self.endpointer.timing
        wait = dict(timing.answered_ms).get(expects.kind)
        if wait is None or self._ignoring:
            return False
        reads = expects.kind == "free" and self._understands is not None and bool(timing.answered_free_intents)
        if self.endpointer.silence_ms < (timing.pause_ms if reads else wait):  # the guess is looked at per frame:
            return False  # only from when it can help (the speculation starts at pause_ms)
        guess = getattr(self._utterance, "guess", lambda: None)()
        if guess is None or not complete_answer(guess.text, expects):
            return False
        if expects.kind == "free" and not (reads and self._understood(guess.text)):
            return False
        return self.endpointer.silence_ms >= wait

    def _understood(self, text: str) -> bool:
        """True once the dialog has read `text` as a request it knows; until then (or without a dialog) False."""
        if self._understands is None:
            return False
        if text not in self._readings:
            self._readings[text] = None
            reading = asyncio.ensure_future(self._understands(text))
            self._reading.add(reading)
            reading.add_done_callback(self._reading.discard)
            reading.add_done_callback(lambda done: self._readings.__setitem__(text, _read(done)))
        return bool(self._readings[text])

    def _speech_started(self) -> None:
        speaker = self.speaker
        self._ignoring = speaker.speaking and not speaker.asking.barge_in
        if self._ignoring:
            return
        if speaker.speaking:
            speaker.interrupt()
        self._utterance = self.recognizer.utterance(self.transport.rate, speaker.asking.expects)
        self._readings = {}
        self._asr.submit(self._utterance.feed, self.endpointer.utterance_so_far())

    def _speech_ended(self, ended: SpeechEnded) -> None:
        if self._ignoring or self._utterance is None:
            self._ignoring = False
            return
        self._turns.put_nowait(CallerTurn("speech", self._utterance, ended, said=self._next_said()))
        self._utterance = None

    def _on_keys(self, digits: str) -> None:
        length = self.speaker.asking.expects.length
        self._caller_heard = True
        for key in digits:
            if key == "#" and not self._digits:
                continue  # the pound key after an entry already complete at its length: the read-back plays on
            if self.speaker.speaking:
                self.speaker.interrupt()
            if key == "*":
                self._digits = ""
            elif key == "#" or (length and len(self._digits + key) >= length):
                keyed, self._digits = self._digits + (key if key != "#" else ""), ""
                self.endpointer.stop_waiting()
                self._turns.put_nowait(CallerTurn("dtmf", digits=keyed, said=f"dtmf:{digits}"))
            else:
                self._digits += key

    def _on_typed(self, text: str) -> None:
        """A typed caller (`ivr chat`): a line ending in # is keyed, like the keypad; an empty one is silence."""
        text = text.strip()
        self._caller_heard = self._caller_heard or bool(text)
        keyed = text[:-1].strip()
        if text.endswith("#") and keyed.isascii() and keyed.isdigit():
            self._turns.put_nowait(CallerTurn("dtmf", digits=keyed, said=text))
        else:
            self._turns.put_nowait(CallerTurn("typed" if text else "no_input", said=text))


def _read(reading: "asyncio.Future[bool]") -> bool:
    """The dialog's reading; one that failed is no reason to end the turn early (the full wait still ends it)."""
    if reading.cancelled():
        return False
    if reading.exception() is not None:
        log.warning("the dialog could not read a caller's sentence early (%s): the turn keeps its full wait",
                    reading.exception())
        return False
    return bool(reading.result())
