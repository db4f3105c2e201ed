"""A call on a virtual clock: the real Call, endpointer, speaker, hold and queue, with test doubles of the
stage interfaces around it (a recognizer that hears what the script says, a dialog that answers from a
table, a voice whose sentences last a known time, a caller's line that plays on the clock). Timelines of
seconds run in milliseconds and the same way every time: the event loop's clock jumps ahead whenever
nothing is ready, and every piece of work runs inline, so nothing real can be late.

In the style of Pipecat's run_test and LiveKit's timeline tests: what is asserted is when the caller heard
what, when the bot heard what, and when it stopped talking.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ivr.audio.endpointer import Timing
from ivr.audio.pcm import read_wav
from ivr.call import Call
from ivr.dialog.agent import DialogReply
from ivr.events import AudioChunk, Dtmf, Expectation, Prompt, Transcript
from ivr.transports.base import Hangup

RATE = 16000
FRAME = 0.02
SECONDS_PER_CHARACTER = 0.06  # the voice double speaks about as fast as pyttsx3 at rate 165


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """asyncio on a clock that jumps: when the loop would wait for its next timer, time is advanced to it."""

    def __init__(self):
        super().__init__()
        self._now = 0.0
        real_select = self._selector.select

        def select(timeout=None):
            events = real_select(0)
            if events or timeout == 0:
                return events
            if timeout is None:
                raise RuntimeError("the call waits for nothing that can ever happen (no timer, no work)")
            self._now += timeout
            return events

        self._selector.select = select
        self.set_default_executor(Inline())

    def time(self) -> float:
        return self._now


class Inline(concurrent.futures.ThreadPoolExecutor):
    """Runs work at once, on the loop's thread: on a virtual clock nothing may take real time behind its back."""

    def submit(self, fn, /, *args, **kwargs):
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to whoever awaits it, as a thread would
            future.set_exception(error)
        return future


@dataclass
class Heard:
    """One sentence of the bot as the caller heard it: from `start` to `end` on the call's clock."""
    text: str
    start: float
    end: float
    cut: bool = False  # the caller barged in before it ended


class Voice:
    """The voice double: each sentence is a tone lasting SECONDS_PER_CHARACTER per character."""

    def __init__(self):
        self.sentences: dict[int, str] = {}
        self._kept: list[bytes] = []

    def render_sentences(self, text: str):
        for sentence in text.replace("? ", "?|").replace(". ", ".|").split("|"):
            pcm = bytes(int(len(sentence) * SECONDS_PER_CHARACTER * RATE) * 2)
            self._kept.append(pcm)
            self.sentences[id(pcm)] = sentence
            yield AudioChunk(pcm, RATE, 0.0)


class Recognizer:
    """The recognizer double: each utterance is heard as the next line of the caller's script."""

    def __init__(self):
        self.heard: list[str] = []  # what the script says, in the order the caller says it
        self.expected: list[Expectation] = []  # what each utterance was listened for

    def utterance(self, rate: int, expects: Expectation):
        self.expected.append(expects)
        recognizer = self

        class Utterance:
            paused = False

            def feed(self, chunk):
                return None

            def speculate(self):
                self.paused = True

            def guess(self):  # decoded at the caller's pause: what the script says they said
                return Transcript(recognizer.heard[0], 0.9) if self.paused and recognizer.heard else None

            def finish(self):
                return Transcript(recognizer.heard.pop(0) if recognizer.heard else "", 0.9)

        return Utterance()


class Dialog:
    """The dialog double: answers each caller text from a table (text -> reply); records what it was sent."""

    def __init__(self, greeting: DialogReply, answers: dict[str, DialogReply],
                 readings: Optional[dict[str, tuple[str, float]]] = None):
        self.greeting, self.answers = greeting, answers
        self.readings = readings or {}  # text -> (intent, confidence), as the NLU would read it
        self.received: list[tuple[float, str]] = []

    async def parse(self, text: str) -> tuple[Optional[str], Optional[float]]:
        return self.readings.get(text, ("nlu_fallback", 0.4))

    async def start(self, call_id: str) -> DialogReply:
        return self.greeting

    async def respond(self, call_id: str, text: str) -> DialogReply:
        self.received.append((asyncio.get_running_loop().time(), text))
        return self.answers.get(text) or self.answers.get("*") or DialogReply([Prompt("Sorry?", "utter_default")])


@dataclass
class Line:
    """The caller's line on the virtual clock: their speech at set times, silence otherwise, keys, a hang-up;
    the bot's audio plays for as long as it lasts, and barge-in cuts it."""
    speech: AudioChunk  # one real utterance (the endpointer is real), said at each of `says_at`
    says_at: list[float] = field(default_factory=list)
    keys_at: list[tuple[float, str]] = field(default_factory=list)
    hangs_up_at: float = 60.0
    voice: Optional[Voice] = None
    rate: int = RATE
    heard: list[Heard] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)

    def __post_init__(self):
        self._busy_until = 0.0
        self._cleared = asyncio.Event()

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def incoming(self):
        keys = sorted(self.keys_at)
        while self.now() < self.hangs_up_at:
            await asyncio.sleep(FRAME)
            at = self.now()
            while keys and keys[0][0] <= at:
                yield Dtmf(keys.pop(0)[1])
            yield AudioChunk(self._caller_audio(at - FRAME), self.rate, at)
        yield Hangup(self.now())

    def _caller_audio(self, start: float) -> bytes:
        frame = int(FRAME * self.rate) * 2
        for said in self.says_at:
            offset = int(round((start - said) * self.rate)) * 2
            if 0 <= offset < len(self.speech.pcm):
                return self.speech.pcm[offset:offset + frame].ljust(frame, b"\0")
        return bytes(frame)

    async def play(self, chunk: AudioChunk) -> None:
        start = max(self.now(), self._busy_until)
        self._busy_until = start + len(chunk.pcm) / 2 / chunk.rate
        text = self.voice.sentences.get(id(chunk.pcm), "(music)") if self.voice else ""
        self.heard.append(Heard(text, start, self._busy_until))

    async def flush(self) -> None:
        self._cleared.clear()
        try:
            await asyncio.wait_for(self._cleared.wait(), max(0.0, self._busy_until - self.now()))
        except asyncio.TimeoutError:
            pass

    def clear(self) -> None:
        now = self.now()
        self.clears.append(now)
        self.heard = [heard for heard in self.heard if heard.start < now]  # queued, never heard
        for heard in self.heard:
            if heard.end > now:
                heard.end, heard.cut = now, True
        self._busy_until = now
        self._cleared.set()

    async def close(self) -> None:
        return None

    def said(self, text: str) -> Heard:
        """The first sentence the caller heard that contains `text`."""
        return next(heard for heard in self.heard if text in heard.text)


def run_call(line: Line, dialog: Dialog, recognizer: Recognizer, seal, backstage=None,
             timing: Timing = Timing(), before: Optional[Callable[[asyncio.AbstractEventLoop], None]] = None):
    """The call from greeting to hang-up on a fresh virtual clock; returns its CallResult."""
    from ivr.call import Backstage

    loop = VirtualClockLoop()
    try:
        line.voice = line.voice or Voice()
        call = Call(line, recognizer, dialog, line.voice, timing, seal, backstage=backstage or Backstage(),
                    asr=Inline())

        async def go():
            line._cleared = asyncio.Event()
            if before:
                before(asyncio.get_running_loop())
            return await call.run()

        return loop.run_until_complete(go())
    finally:
        loop.close()


def flite_speech(folder: Path, text: str) -> AudioChunk:
    """A real caller's utterance at 16 kHz (flite's slt voice): the endpointer on the virtual clock hears real audio."""
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(folder / "s.wav")], check=True)
    subprocess.run(["sox", str(folder / "s.wav"), "-r", "16000", str(folder / "s16.wav")], check=True)
    return read_wav(folder / "s16.wav")
