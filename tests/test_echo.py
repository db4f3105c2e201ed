"""The bot's own voice leaking from a loudspeaker into the microphone: removed before endpointing.

The echo is the bot's prompt played back 120 ms late at half level, as a laptop speaker would.
"""
import numpy as np
import pytest

from ivr.audio.echo import EchoCanceller
from ivr.audio.endpointer import Endpointer
from ivr.audio.pcm import rms_dbfs
from ivr.events import AudioChunk, SpeechStarted

RATE, BLOCK = 16000, 320  # 20 ms blocks, as the microphone delivers them
DELAY = int(RATE * 0.12)


def pcm(samples: np.ndarray) -> bytes:
    return samples.clip(-32768, 32767).astype("<i2").tobytes()


def samples(chunk: AudioChunk) -> np.ndarray:
    return np.frombuffer(chunk.pcm, "<i2").astype(np.int32)


def room(prompt: np.ndarray, caller: np.ndarray, caller_at: float) -> tuple[np.ndarray, np.ndarray]:
    """What the speaker plays and what the microphone hears: the echo, plus the caller from `caller_at`."""
    length = len(prompt) + DELAY + RATE
    played = np.zeros(length, np.int32)
    played[: len(prompt)] = prompt
    heard = np.zeros(length, np.int32)
    heard[DELAY: DELAY + len(prompt)] = prompt // 2
    start = int(caller_at * RATE)
    heard[start: start + len(caller)] += caller[: length - start]
    return played, heard


def through(canceller, played: np.ndarray, heard: np.ndarray, speaker_ahead: int = 3) -> tuple[bytes, list]:
    """Blocks in the order devices deliver them: the speaker's are handed over `speaker_ahead` blocks
    before the microphone block recorded as they start to play (negative: that many blocks after it)."""
    endpointer, cleaned, events = Endpointer(RATE), bytearray(), []
    handed = 0
    for n, i in enumerate(range(0, len(heard) - BLOCK + 1, BLOCK)):
        while canceller and handed <= n + speaker_ahead:
            canceller.played(pcm(played[handed * BLOCK: (handed + 1) * BLOCK]))
            handed += 1
        near = pcm(heard[i: i + BLOCK])
        if canceller:
            near = canceller.heard(near)
        cleaned += near
        events += endpointer.feed(AudioChunk(near, RATE, i / RATE))
    return bytes(cleaned), events


def starts(events) -> list[float]:
    return [round(e.timestamp, 2) for e in events if isinstance(e, SpeechStarted)]


@pytest.mark.parametrize("speaker_ahead", [3, -3])
def test_the_bots_echo_never_looks_like_a_caller_starting_to_speak(speak, speaker_ahead):
    prompt = samples(speak("Hello, thanks for calling. You can pay a bill, check your balance, or change your address."))
    played, heard = room(prompt, np.zeros(0, np.int32), 0)

    _, raw_events = through(None, played, heard)
    cleaned, events = through(EchoCanceller(RATE), played, heard, speaker_ahead)

    assert starts(raw_events), "without cancelling, the echo itself would barge in"
    assert starts(events) == []
    echo_seconds = slice(RATE, len(prompt))  # after the canceller's first second of learning
    assert rms_dbfs(cleaned[echo_seconds.start * 2: echo_seconds.stop * 2]) < rms_dbfs(pcm(heard[echo_seconds])) - 30


def test_a_caller_talking_over_the_prompt_is_still_heard(speak):
    prompt = samples(speak("Please say or key in your 8 digit account number, one digit at a time."))
    caller = samples(speak("agent please", voice="en-us+f3"))
    caller_at = 2.5
    played, heard = room(prompt, caller, caller_at)

    cleaned, events = through(EchoCanceller(RATE), played, heard)

    assert len(starts(events)) == 1 and caller_at <= starts(events)[0] < caller_at + 0.4
    spoken = slice(int(caller_at * RATE), int(caller_at * RATE) + len(caller))
    caller_level = rms_dbfs(pcm(caller))
    assert rms_dbfs(cleaned[spoken.start * 2: spoken.stop * 2]) > caller_level - 6  # the caller's voice survives
