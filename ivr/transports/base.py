"""What every transport (microphone, SIP, WebSocket, caller files) offers a call."""
from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Protocol, Union, runtime_checkable

from ivr.events import AudioChunk, Dtmf


@dataclass(frozen=True)
class Hangup:
    """The caller's side is gone."""
    timestamp: float


@dataclass(frozen=True)
class Typed:
    """A line a typed caller entered (`ivr chat`): understood as a transcript would be."""
    text: str


Incoming = Union[AudioChunk, Dtmf, Typed, Hangup]


class Transport(Protocol):
    rate: int  # the rate of audio it delivers and wants back (8 kHz or 16 kHz)

    def now(self) -> float:
        """The call's clock, in seconds since it started."""

    def incoming(self) -> AsyncIterator[Incoming]:
        """Caller audio in ~20 ms chunks (or typed lines), keypad tones, and finally Hangup or the end."""

    async def play(self, chunk: AudioChunk) -> None:
        """Queue bot audio at `rate`; returns once queued, not once played."""

    async def flush(self) -> None:
        """Wait until everything queued has been heard (or cleared)."""

    def clear(self) -> None:
        """Barge-in: drop what is playing and queued, now."""

    async def close(self) -> None:
        ...


@runtime_checkable
class ReachesAgents(Protocol):
    """A phone line that can also ring an agent's phone (the SIP line)."""

    async def hand_over(self, address: str, come_back: bool = False) -> bool:
        """Connect the caller to `address` (a SIP URI): bridge the audio or send REFER. True once
        connected; the line then carries caller and agent until either hangs up. `come_back` (only on a
        line that `GivesCallersBack`): when the agent hangs up first, the caller is given back to the call."""


@runtime_checkable
class GivesCallersBack(ReachesAgents, Protocol):
    """A line whose caller, put through with `come_back`, returns to the call when the agent hangs up first
    (the survey after an agent's call); the SIP line is one."""

    async def back_from_agent(self) -> bool:
        """Returns once the agent's leg ended first: the caller's audio and keys go to the call again, and the
        call's voice to the caller. True when the agent's line dropped (no audio from it), False when the agent
        hung up. Never returns when the caller hung up first (their call ends)."""
