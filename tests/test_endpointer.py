"""Turn-taking as timelines: caller speech and silence in, endpoint events out, faster than real time."""
import tracemalloc

import numpy as np

from ivr.audio.endpointer import Endpointer, Timing
from ivr.audio.pcm import split
from ivr.events import AudioChunk, NoInput, SpeechEnded, SpeechResumed, SpeechStarted, TrailingSilence

RATE = 16000


def silence(seconds: float) -> bytes:
    return bytes(int(RATE * seconds) * 2)


def run(endpointer: Endpointer, pcm: bytes, start: float = 0.0):
    events = []
    for chunk in split(AudioChunk(pcm, RATE, start), 0.02):
        events.extend(endpointer.feed(chunk))
    return events


def test_utterance_is_endpointed_after_the_configured_silence(speak):
    words = speak("I want to pay my bill please")
    endpointer = Endpointer(RATE, Timing(trailing_silence_ms=500))
    endpointer.expect_answer(0.0)
    events = run(endpointer, silence(1.0) + words.pcm + silence(2.0))
    kinds = [type(e) for e in events]
    assert kinds[0] is SpeechStarted and SpeechEnded in kinds and NoInput not in kinds
    started = events[0]
    ended = next(e for e in events if isinstance(e, SpeechEnded))
    assert 1.0 <= started.timestamp <= 1.4  # speech begins at 1.0 s
    voice_stops = np.flatnonzero(np.abs(np.frombuffer(words.pcm, "<i2")) > 30).max() / RATE  # then near-silence
    assert abs(ended.timestamp - (1.0 + voice_stops)) < 0.1  # caller stopped when the words did
    assert abs(ended.endpoint_at - ended.timestamp - 0.5) < 0.05  # decided 500 ms later
    assert ended.audio.seconds >= words.seconds  # nothing of the caller's words is lost (pre-roll kept)
    assert TrailingSilence in kinds  # a speculative decode may start before the endpoint


def test_trailing_silence_is_configurable(speak):
    words = speak("check my balance")
    slow = Endpointer(RATE, Timing(trailing_silence_ms=1200))
    ended = next(e for e in run(slow, silence(0.5) + words.pcm + silence(2.0)) if isinstance(e, SpeechEnded))
    assert abs(ended.endpoint_at - ended.timestamp - 1.2) < 0.05


def test_a_pause_shorter_than_the_endpoint_keeps_one_utterance(speak):
    first, second = speak("my account number is"), speak("four eight one five")
    endpointer = Endpointer(RATE, Timing(trailing_silence_ms=700))
    events = run(endpointer, silence(0.5) + first.pcm + silence(0.3) + second.pcm + silence(1.5))
    assert sum(isinstance(e, SpeechEnded) for e in events) == 1
    assert SpeechResumed in [type(e) for e in events]  # the speculative decode is told to start over


def test_no_input_after_the_timeout_only_while_the_bot_waits():
    endpointer = Endpointer(RATE, Timing(no_input_ms=3000))
    assert run(endpointer, silence(4.0)) == []  # the bot was not waiting for an answer
    endpointer.expect_answer(4.0)
    events = run(endpointer, silence(4.0), start=4.0)
    assert len(events) == 1 and isinstance(events[0], NoInput)
    assert abs(events[0].timestamp - 7.0) < 0.05


def test_speech_while_a_prompt_plays_is_heard_for_barge_in(speak):
    """The bot is speaking (no answer expected yet); caller speech still raises SpeechStarted quickly."""
    words = speak("agent")
    endpointer = Endpointer(RATE)
    events = run(endpointer, silence(2.0) + words.pcm + silence(1.0))
    started = next(e for e in events if isinstance(e, SpeechStarted))
    assert started.timestamp - 2.0 < 0.3  # within 300 ms of the caller starting


def test_ten_minutes_of_noise_is_cut_into_bounded_utterances():
    noise = np.random.default_rng(7).normal(0, 6000, RATE * 10).clip(-32768, 32767).astype("<i2").tobytes()
    endpointer = Endpointer(RATE, Timing(max_utterance_ms=15000))
    tracemalloc.start()
    longest, ends = 0.0, 0
    for minute_tenth in range(60):  # 60 x 10 s = ten minutes, fed 20 ms at a time
        for event in run(endpointer, noise, start=minute_tenth * 10.0):
            if isinstance(event, SpeechEnded):
                ends += 1
                longest = max(longest, event.audio.seconds)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert ends >= 30 and longest <= 15.1  # utterances are cut at the maximum length
    assert peak < 20 * 1024 * 1024  # memory stays bounded however long the noise goes on


def test_audio_at_an_unsupported_rate_is_refused_with_a_reason():
    try:
        Endpointer(44100)
    except ValueError as exc:
        assert "44100" in str(exc) and "16000" in str(exc)
    else:
        raise AssertionError("44.1 kHz must be refused by the endpointer itself")
