"""The one interface every recognizer implements."""
from __future__ import annotations

from typing import Optional, Protocol

from ivr.events import AudioChunk, Expectation, Transcript


class RecognitionError(RuntimeError):
    """A model that cannot be loaded or used; the message says what to run."""


class Utterance(Protocol):
    """Recognition of one caller utterance; created per utterance by a Recognizer."""

    def feed(self, chunk: AudioChunk) -> Optional[Transcript]:
        """Take caller audio; may return a partial (final=False) transcript. Never blocks long."""

    def speculate(self) -> None:
        """The caller paused: start decoding what was heard so far, if that helps (may be a no-op)."""

    def finish(self) -> Transcript:
        """Blocking: the final transcript of everything fed. Run off the event loop."""

    def guess(self) -> Optional[Transcript]:
        """Non-blocking: the transcript decoded at the last pause, when it is ready and the caller has been
        quiet since (None otherwise). A complete answer in it may end the turn early."""


class Recognizer(Protocol):
    name: str  # e.g. "vosk (vosk-model-small-en-us-0.15)" or "whisper tiny.en"

    def utterance(self, rate: int, expects: Expectation) -> Utterance:
        """Start recognizing one utterance of `rate` Hz audio for a prompt that expects `expects`."""
