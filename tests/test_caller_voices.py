"""Synthetic callers: espeak-ng, flite and festival voices as the simulator uses them."""
import pytest

from ivr.audio.pcm import phone_channel, rms_dbfs
from ivr.tools.caller_voices import parse_voice

SENTENCE = "I want to pay my bill"


@pytest.mark.parametrize("spec", ["espeak:en-us", "en-us+f3", "flite:slt", "flite:rms", "flite:awb", "flite:kal",
                                  "festival:cmu_us_slt_arctic_hts"])
def test_every_caller_voice_speaks(spec):
    audio = parse_voice(spec).speak(SENTENCE)
    assert 0.9 < audio.seconds < 4.0 and rms_dbfs(audio.pcm) > -35


@pytest.mark.parametrize("spec", ["espeak:en-us", "flite:slt"])
def test_the_caller_rate_changes_the_pace(spec):
    voice = parse_voice(spec)
    assert voice.speak(SENTENCE, 100).seconds > 1.4 * voice.speak(SENTENCE, 220).seconds


def test_a_caller_on_the_phone_channel_is_8k():
    assert phone_channel(parse_voice("flite:slt").speak(SENTENCE)).rate == 8000


def test_an_unknown_voice_names_the_installed_ones():
    with pytest.raises(ValueError) as refused:
        parse_voice("flite:nobody")
    assert "nobody" in str(refused.value) and "slt" in str(refused.value)


def test_an_unknown_engine_names_the_engines():
    with pytest.raises(ValueError) as refused:
        parse_voice("polly:joanna")
    assert "polly" in str(refused.value) and "festival" in str(refused.value)
