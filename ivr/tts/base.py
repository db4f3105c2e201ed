"""The one interface the bot's voice implements."""
from __future__ import annotations

from typing import Protocol

from ivr.events import AudioChunk


class SynthesisError(RuntimeError):
    """The bot's voice cannot speak; the message says what to install."""


class Synthesizer(Protocol):
    voice: str
    rate: int  # words per minute

    def render(self, text: str) -> AudioChunk:
        """Blocking: the whole text as mono 16-bit PCM."""

    def close(self) -> None:
        """Blocking: stop rendering and remove any scratch files."""
