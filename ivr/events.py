"""The typed messages the stages of a call exchange."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

SAMPLE_WIDTH = 2  # every AudioChunk is signed 16-bit little-endian mono PCM


@dataclass(frozen=True)
class AudioChunk:
    pcm: bytes
    rate: int
    timestamp: float = 0.0  # seconds since the call started

    @property
    def samples(self) -> int:
        return len(self.pcm) // SAMPLE_WIDTH

    @property
    def seconds(self) -> float:
        return self.samples / self.rate


@dataclass(frozen=True)
class Expectation:
    """What the bot's last prompt waits for: shapes ASR hints, digit normalisation and DTMF."""
    kind: str = "free"  # free | digits | yes_no | amount
    length: Optional[int] = None  # for digits: exact count expected (None = any)
    phrases: tuple[str, ...] = ()  # what callers say here, from the dialog files: recognizer hints
    secret: bool = False  # a PIN or card number: sealed at capture, hidden from records and recordings
    keypad_only: bool = False  # spoken answers are not taken (a card number is keyed, never said)

    @property
    def wants_digits(self) -> bool:
        return self.kind == "digits"


FREE = Expectation()


@dataclass(frozen=True)
class SpeechStarted:
    timestamp: float


@dataclass(frozen=True)
class TrailingSilence:
    """The caller paused: a recognizer may start decoding speculatively."""
    timestamp: float


@dataclass(frozen=True)
class SpeechResumed:
    """The caller went on speaking after a TrailingSilence: drop any speculative result."""
    timestamp: float


@dataclass(frozen=True)
class SpeechEnded:
    """One caller utterance, endpointed."""
    audio: AudioChunk
    timestamp: float  # when the caller stopped speaking (before the endpoint silence)
    endpoint_at: float  # when the endpointer decided
    truncated: bool = False  # cut at the maximum utterance length


@dataclass(frozen=True)
class NoInput:
    timestamp: float


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float
    final: bool = True
    raw: str = ""  # the recognizer's own words before normalisation


@dataclass(frozen=True)
class Dtmf:
    digits: str


@dataclass(frozen=True)
class Prompt:
    text: str
    name: str = ""  # the Rasa response that produced it, e.g. utter_ask_account_number
    expects: Expectation = FREE
    barge_in: bool = True
    no_input_ms: Optional[int] = None  # how long silence after it lasts before it is no input (None: the default)


@dataclass(frozen=True)
class TranscriptLine:
    speaker: str  # caller | bot
    text: str  # already masked: a PIN or card number never reaches here


@dataclass(frozen=True)
class Escalation:
    """The caller handed to a person, with everything the agent needs so nobody asks again.

    Built by the call when the dialog transfers (reason only); `ivr.queue.handoff` fills in the rest.
    """
    reason: str  # caller_request | no_input | no_match | auth_failed | frustration | payment_declined | ...
    summary: str = ""  # one sentence for the agent
    task: Optional[str] = None  # bill_pay | balance | address_change
    slots: dict[str, str] = field(default_factory=dict)  # what the bot collected, masked, ready to show
    transcript: tuple[TranscriptLine, ...] = ()
    frustration: float = 0.0  # 0 calm .. 1 furious, the call's score when it was handed over
    caller_number: Optional[str] = None
    language: str = "en"
    account: Optional[str] = None  # masked, e.g. "48…623"
    authenticated: bool = False
    call_id: str = ""
    channel: str = ""  # microphone | files | sip | websocket | audiosocket


@dataclass
class Turn:
    """One exchange, as recorded for the call record and the simulator."""
    said: str = ""  # scripted text, when known
    kind: str = "speech"  # speech | dtmf | no_input: how the caller answered
    prompt: str = ""  # the name of the bot's question this turn answers, e.g. utter_ask_zip_code
    heard: str = ""
    intent: Optional[str] = None
    confidence: Optional[float] = None
    frustration: float = 0.0  # the caller's frustration after this turn (0..1)
    bot: list[str] = field(default_factory=list)
    latency: dict[str, float] = field(default_factory=dict)
