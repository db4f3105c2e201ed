"""The call's voice out: prompts (TTS, sentence by sentence) and hold music, one path to the line.

Everything the caller hears goes voice -> resample -> recording -> transport; the speaker also knows what
it is saying now (the prompt, what an answer to it looks like, whether the caller may talk over it), which
the caller's input reads to decide on barge-in and to shape recognition.
"""
from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field
from typing import Optional

from ivr.audio.hold_music import hold_music
from ivr.audio.pcm import resample
from ivr.audio.recording import Recording
from ivr.events import FREE, AudioChunk, Expectation, Prompt, Turn
from ivr.transports.base import Transport


class Voicing(enum.Enum):
    QUIET = "quiet"
    SPEAKING = "speaking"
    INTERRUPTED = "interrupted"  # the caller barged in: the rest of this prompt is dropped


@dataclass
class Asking:
    """The bot's last question: what the caller's answer to it looks like, and how long it waits for one."""
    expects: Expectation = FREE
    prompt: str = ""  # its name, e.g. utter_ask_zip_code
    barge_in: bool = True
    no_input_ms: Optional[int] = None  # its own patience, when it has one


@dataclass
class Speaker:
    transport: Transport
    voice: object  # ivr.tts.cache.PromptCache (or a typed line's NoVoice)
    recording: Optional[Recording] = None
    state: Voicing = Voicing.QUIET
    asking: Asking = field(default_factory=Asking)
    _music_at: float = 0.0  # where in the hold music the caller is, so it carries on between announcements

    @property
    def speaking(self) -> bool:
        return self.state is not Voicing.QUIET

    def interrupt(self) -> None:
        """Barge-in, the one urgent signal back up the pipeline: stop now, drop what is queued."""
        self.state = Voicing.INTERRUPTED
        self.transport.clear()

    async def say(self, prompts: list[Prompt], turn: Turn, began: Optional[float] = None) -> None:
        """Each prompt in order, its first sentence playing while the next renders; `began` (the caller's
        turn's start) times the first audio for the latency figures."""
        self.state = Voicing.SPEAKING
        loop = asyncio.get_running_loop()
        try:
            for prompt in prompts:
                turn.bot.append(prompt.text)
                self.asking = Asking(prompt.expects, prompt.name, prompt.barge_in, prompt.no_input_ms)
                sentences = self.voice.render_sentences(prompt.text)
                while (chunk := await loop.run_in_executor(None, next, sentences, None)) is not None:
                    if self.state is Voicing.INTERRUPTED:
                        return
                    if began is not None and "first_audio" not in turn.latency:
                        _time_first_audio(turn, began)
                    await self._out(chunk)
            await self.transport.flush()
        finally:
            self.state = Voicing.QUIET

    async def music(self, seconds: float, offer: Expectation) -> None:
        """Hold music, paced by the wall clock whatever the transport (caller files play instantly); the
        caller may answer `offer` over it."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        music = hold_music(self.transport.rate, seconds, self._music_at)
        self._music_at += seconds
        self.state, self.asking = Voicing.SPEAKING, Asking(offer, self.asking.prompt)
        try:
            await self._out(music)
            await self.transport.flush()
        finally:
            self.state = Voicing.QUIET
        await asyncio.sleep(max(0.0, until - loop.time()))

    async def _out(self, chunk: AudioChunk) -> None:
        audio = resample(chunk, self.transport.rate)
        if self.recording:
            self.recording.bot(AudioChunk(audio.pcm, audio.rate, self.transport.now()))
        await self.transport.play(audio)


def _time_first_audio(turn: Turn, began: float) -> None:
    turn.latency["tts"] = time.monotonic() - began - sum(turn.latency.get(k, 0) for k in ("asr", "dialog"))
    turn.latency["first_audio"] = turn.latency.get("endpoint", 0) + time.monotonic() - began
