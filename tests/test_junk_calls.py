"""Junk calls: dead air and pranks are ended by the bot without an agent, and the call record says why;
a caller who speaks but is not understood, who has spoken before going quiet, or who has a real need
the bot cannot serve still reaches a person. Scenario callers are espeak, flite and festival voices."""
import shutil

import numpy as np
import pytest

from conftest import ROOT
from ivr.asr.numbers import normalise
from ivr.audio.endpointer import Endpointer
from ivr.audio.pcm import rms_dbfs
from ivr.dialog.settings import DialogError, load_voice_settings
from ivr.events import AudioChunk, Expectation
from typed_caller import typed_call

ENDED_BY_THE_BOT = [("dead_air_hangs_up.yml", "dead_air"), ("prank_flirting_flite.yml", "prank"),
                    ("prank_call_espeak_phone.yml", "prank")]
REACH_A_PERSON = ["unintelligible_caller_reaches_agent.yml", "out_of_scope_to_agent_festival.yml",
                  "no_input_then_agent.yml"]


def record_of(bot, result: dict) -> dict:
    return bot.backstage.records.get(result["call_id"])


@pytest.mark.parametrize("scenario, junk", ENDED_BY_THE_BOT, ids=[s for s, _ in ENDED_BY_THE_BOT])
def test_junk_calls_end_politely_without_a_queue_entry(call, bot, scenario, junk):
    result = call(scenario)
    record = record_of(bot, result)
    assert record["junk"] == junk and record["outcome"] == "ended"
    assert record["queue_entry"] is None and record["escalation"] is None
    assert record["csat"] is None  # never a survey after a junk call
    assert result["turns"][-1]["bot"].rstrip().endswith(("Goodbye.", "Please call again."))


@pytest.mark.parametrize("scenario", REACH_A_PERSON)
def test_callers_with_a_voice_or_a_need_still_reach_a_person(call, bot, scenario):
    record = record_of(bot, call(scenario))
    assert record["outcome"] == "escalated" and record["queue_entry"] is not None
    assert record["junk"] is None


def test_chatter_the_recognizer_doubts_is_not_understood_never_a_prank(call, bot, event_loop_for_bot):
    """Whisper writes foreign speech as English words; some read as chatter. Heard with little confidence,
    they are "not understood" (the scenario expects nlu_fallback), so the caller reaches a person."""
    result = call("foreign_speech_is_no_prank.yml")
    parse = event_loop_for_bot.run_until_complete
    read_as = [parse(bot.dialog.parse(turn["heard"]))[0] for turn in result["turns"][:2]]
    assert read_as == ["prank", "prank"]  # what was written down would have been taken for a prank
    record = record_of(bot, result)
    assert record["junk"] is None and record["outcome"] == "escalated" and record["queue_entry"] is not None


def test_after_what_the_line_is_for_silence_hears_the_menu_and_a_caller_who_was_served_may_close(
        bot, event_loop_for_bot, accounts):
    quiet = typed_call(bot, event_loop_for_bot, ["are you single", ""])
    assert "customer line" in quiet.heard_after(0) and "You can say pay my bill" in quiet.heard_after(1)
    served = typed_call(bot, event_loop_for_bot, ["check my balance", "48151623", "2468#", "what are you wearing", "no"])
    assert "Goodbye" in served.heard_after(4)
    assert served.result.outcome == "self_served" and served.result.junk is None  # a prank after a task is no junk


# Written apart from dialogs/data/nlu.yml: none of these is a training example.
PRANKS = ["what colour is your underwear", "are you married", "you've got a lovely voice darling",
          "fancy a drink with me later", "i wanna hear you laugh", "is this the pizza place ha ha",
          "i'm only calling cause i'm bored", "do you think i'm handsome", "will you be my valentine",
          "tell me you love me", "is your fridge running", "this is just a joke call",
          "what are you doing tonight baby", "how tall are you", "let's talk about you"]
NOT_PRANKS = ["my internet stopped working", "I want to file a complaint", "I'd like to cancel my subscription",
              "I need a technician to come out", "you overcharged me and I want my money back",
              "what is the weather like tomorrow", "I want to pay my bill", "what's my balance",
              "I moved last month", "can I talk to a real person", "hello", "no thanks goodbye",
              "I don't know my account number", "sorry can you say that again"]


def test_pranks_are_told_apart_from_real_needs_and_the_tasks(bot, event_loop_for_bot):
    def intent(text: str):
        return event_loop_for_bot.run_until_complete(bot.dialog.parse(normalise(text, Expectation())))[0]

    training = (ROOT / "dialogs" / "data" / "nlu.yml").read_text().lower()
    assert not [p for p in PRANKS if f"- {p}\n" in training]
    heard_as_pranks = [p for p in PRANKS if intent(p) == "prank"]
    assert len(heard_as_pranks) >= 0.85 * len(PRANKS), sorted(set(PRANKS) - set(heard_as_pranks))
    assert not [(t, intent(t)) for t in NOT_PRANKS if intent(t) == "prank"]


def noise(seconds: float, dbfs: float, rate: int = 16000) -> AudioChunk:
    samples = np.random.default_rng(7).normal(0, 32768 * 10 ** (dbfs / 20), int(seconds * rate))
    return AudioChunk(np.clip(samples, -32768, 32767).astype("<i2").tobytes(), rate)


def test_the_line_is_judged_by_its_energy_faint_hiss_is_no_voice_a_short_word_is(speak):
    """Dead air is measured, not inferred from empty transcripts: hiss under the voice level leaves the line
    dead, while even a word too short to start a turn counts as someone there."""
    level = load_voice_settings(ROOT / "dialogs").junk.voice_level_dbfs
    hiss = Endpointer(16000)
    hiss.feed(noise(3.0, level - 5))
    assert hiss.heard_audio and hiss.loudest_voice_dbfs < level
    said = speak("hello").pcm
    frame = 2 * 16000 // 50
    start = next(at for at in range(0, len(said), frame) if rms_dbfs(said[at:at + frame]) > level + 10)
    word = Endpointer(16000)
    word.feed(AudioChunk(said[start:start + 5 * frame], 16000))  # 100 ms: under the 120 ms a turn needs to start
    assert not word.in_speech and word.loudest_voice_dbfs > level


@pytest.mark.parametrize("setting, value, words", [
    ("voice_level_dbfs", "loud", "junk_calls.voice_level_dbfs must be a level in dBFS"),
    ("silent_reprompts", "0", "junk_calls.silent_reprompts must be a whole number from 1 to 5"),
    ("prank_turns", "2.5", "junk_calls.prank_turns must be a whole number from 1 to 5"),
    ("prank_min_confidence", "2", "junk_calls.prank_min_confidence must be a number from 0 to 1"),
])
def test_a_bad_junk_call_setting_names_the_file_and_line(tmp_path, setting, value, words):
    dialogs = tmp_path / "dialogs"
    shutil.copytree(ROOT / "dialogs", dialogs)
    voice = dialogs / "voice.yml"
    lines = voice.read_text().splitlines()
    at = next(n for n, line in enumerate(lines) if line.strip().startswith(f"{setting}:"))
    lines[at] = f"  {setting}: {value}"
    voice.write_text("\n".join(lines) + "\n")
    with pytest.raises(DialogError) as refused:
        load_voice_settings(dialogs)
    assert f"{voice}:{at + 1}: {words}" in str(refused.value)
