"""Endpointing: one voice-activity detector in front of every recognizer.

Bytes in, events out; no I/O. Decides when the caller starts and stops speaking, when they said
nothing at all (no-input), and when a pause may be worth a speculative decode. Barge-in comes from
here too: a SpeechStarted while a prompt plays is the call's cue to stop the prompt.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Optional, Union

import webrtcvad

from ivr.audio.pcm import FRAME_SECONDS, frame_bytes, rms_dbfs
from ivr.events import (SAMPLE_WIDTH, AudioChunk, NoInput, SpeechEnded, SpeechResumed,
                        SpeechStarted, TrailingSilence)

VAD_RATES = (8000, 16000, 32000, 48000)

EndpointEvent = Union[SpeechStarted, TrailingSilence, SpeechResumed, SpeechEnded, NoInput]


@dataclass(frozen=True)
class Timing:
    trailing_silence_ms: int = 500
    no_input_ms: int = 5000
    max_utterance_ms: int = 15000
    speech_start_ms: int = 120  # voiced audio needed before we believe the caller started
    pause_ms: int = 100  # silence after which a speculative decode may start
    preroll_ms: int = 300  # audio kept from before the detected start
    aggressiveness: int = 2  # webrtcvad 0..3
    # webrtcvad judges shape, not loudness: it calls faint hiss (or an echo canceller's residue)
    # speech. Nobody talking to a phone is this quiet.
    speech_floor_dbfs: float = -55.0
    # A complete answer ends the turn after this much silence instead of trailing_silence_ms: all the digits
    # asked for, a bare yes or no, an amount, or free speech that is a finished sentence the dialog reads as a
    # request at answered_free_confidence or more (ivr.caller_input decides, from the recognizer's guess at the
    # pause; the endpointer only ends the turn when told).
    answered_ms: tuple[tuple[str, int], ...] = (("digits", 200), ("yes_no", 200), ("amount", 250), ("free", 350))
    answered_free_confidence: float = 0.8
    answered_free_intents: tuple[str, ...] = ()  # the requests that may end free speech early (voice.yml)


class Endpointer:
    def __init__(self, rate: int, timing: Timing = Timing()):
        if rate not in VAD_RATES:
            raise ValueError(f"endpointing needs audio at one of {VAD_RATES} Hz, got {rate}")
        self.rate, self.timing = rate, timing
        self._vad = webrtcvad.Vad(timing.aggressiveness)
        self._frame_bytes = frame_bytes(rate)
        self._pending = b""
        self._clock: Optional[float] = None  # timestamp of the next unprocessed sample
        self._preroll: deque[bytes] = deque(maxlen=max(1, timing.preroll_ms // 20))
        self._voiced_run = 0  # consecutive voiced frames before a start
        self._speech: Optional[bytearray] = None  # the utterance being captured
        self._speech_start = 0.0
        self._silence_run = 0  # consecutive unvoiced frames inside an utterance
        self._paused = False
        self._waiting_since: Optional[float] = None  # when the bot began waiting for an answer
        self._no_input_s = timing.no_input_ms / 1000
        # The loudest frame the voice detector called speech, in dBFS: whether the line has carried a voice
        # at all (dead air) is judged on energy, not on empty transcripts.
        self.loudest_voice_dbfs = float("-inf")
        self.heard_audio = False  # any caller audio came through (a typed line has none)

    @property
    def in_speech(self) -> bool:
        return self._speech is not None

    @property
    def silence_ms(self) -> int:
        """How long the caller has been quiet inside the utterance being captured (0 when not in one)."""
        return self._silence_run * 20 if self._speech is not None else 0

    def end_early(self, at: float) -> SpeechEnded:
        """The caller's answer is already complete: the turn ends now, before trailing_silence_ms."""
        return self._end(at, truncated=False)

    def utterance_so_far(self) -> AudioChunk:
        return AudioChunk(bytes(self._speech or b""), self.rate, self._speech_start)

    def expect_answer(self, at: float, no_input_ms: Optional[int] = None) -> None:
        """The bot finished its prompt: the no-input timer runs from `at`, for the prompt's own
        patience when it has one ("take your time" waits longer than a question)."""
        self._waiting_since = at
        self._no_input_s = (no_input_ms or self.timing.no_input_ms) / 1000

    def stop_waiting(self) -> None:
        self._waiting_since = None

    def feed(self, chunk: AudioChunk) -> list[EndpointEvent]:
        if chunk.rate != self.rate:
            raise ValueError(f"endpointer runs at {self.rate} Hz, got a {chunk.rate} Hz chunk")
        # Timestamps are on the transport's clock, which also runs while the bot talks and no caller
        # audio comes: the next unprocessed sample is the leftover before this chunk, every time.
        self._clock = chunk.timestamp - len(self._pending) / SAMPLE_WIDTH / self.rate
        self._pending += chunk.pcm
        events: list[EndpointEvent] = []
        while len(self._pending) >= self._frame_bytes:
            frame, self._pending = self._pending[: self._frame_bytes], self._pending[self._frame_bytes:]
            events.extend(self._frame(frame, self._clock))
            self._clock += FRAME_SECONDS
        return events

    def _frame(self, frame: bytes, at: float) -> list[EndpointEvent]:
        level = rms_dbfs(frame)
        voiced = level > self.timing.speech_floor_dbfs and self._vad.is_speech(frame, self.rate)
        self.heard_audio = True
        if voiced and level > self.loudest_voice_dbfs:
            self.loudest_voice_dbfs = level
        if self._speech is None:
            return self._before_speech(frame, at, voiced)
        return self._during_speech(frame, at, voiced)

    def _before_speech(self, frame: bytes, at: float, voiced: bool) -> list[EndpointEvent]:
        self._preroll.append(frame)
        self._voiced_run = self._voiced_run + 1 if voiced else 0
        if self._voiced_run * 20 >= self.timing.speech_start_ms:
            self._speech = bytearray(b"".join(self._preroll))
            self._speech_start = at + FRAME_SECONDS - len(self._speech) / SAMPLE_WIDTH / self.rate
            self._preroll.clear()
            self._silence_run, self._paused, self._voiced_run = 0, False, 0
            self._waiting_since = None
            return [SpeechStarted(at)]
        if self._waiting_since is not None and at - self._waiting_since >= self._no_input_s:
            self._waiting_since = None
            return [NoInput(at)]
        return []

    def _during_speech(self, frame: bytes, at: float, voiced: bool) -> list[EndpointEvent]:
        assert self._speech is not None
        self._speech += frame
        events: list[EndpointEvent] = []
        if voiced:
            if self._paused:
                events.append(SpeechResumed(at))
            self._silence_run, self._paused = 0, False
        else:
            self._silence_run += 1
            if not self._paused and self._silence_run * 20 >= self.timing.pause_ms:
                self._paused = True
                events.append(TrailingSilence(at))
        too_long = len(self._speech) / SAMPLE_WIDTH / self.rate * 1000 >= self.timing.max_utterance_ms
        if self._silence_run * 20 >= self.timing.trailing_silence_ms or too_long:
            events.append(self._end(at, truncated=too_long and self._silence_run * 20 < self.timing.trailing_silence_ms))
        return events

    def _end(self, at: float, truncated: bool) -> SpeechEnded:
        assert self._speech is not None
        stopped = at + FRAME_SECONDS - self._silence_run * FRAME_SECONDS
        audio = AudioChunk(bytes(self._speech), self.rate, self._speech_start)
        self._speech, self._silence_run, self._paused = None, 0, False
        return SpeechEnded(audio, timestamp=stopped, endpoint_at=at + FRAME_SECONDS, truncated=truncated)
