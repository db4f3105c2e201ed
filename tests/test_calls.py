"""Scripted callers through the real pipeline: synthesized speech -> endpointer -> ASR -> Rasa -> pyttsx3."""
from pathlib import Path

import pytest

from ivr.simulate import find_scenarios, load_scenario, run_scenario

SCENARIOS = Path(__file__).parent / "scenarios"
FILES = find_scenarios([SCENARIOS])


def test_the_scenario_set_covers_both_channels_and_all_caller_engines():
    scenarios = [load_scenario(p) for p in FILES]
    assert len(scenarios) >= 10
    assert {s.channel for s in scenarios} == {"wideband", "phone"}
    assert {s.voice.split(":")[0] for s in scenarios} == {"espeak", "flite", "festival"}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(bot, event_loop_for_bot, path):
    result = event_loop_for_bot.run_until_complete(run_scenario(bot, load_scenario(path)))
    turns = "\n".join(f"  said {t['said']!r} heard {t['heard']!r} -> {t['intent']} / bot: {t['bot']!r}"
                      for t in result["turns"])
    assert result["passed"], f"{result['failures']}\n{turns}"


def test_the_bot_answers_every_caller_turn_with_speech(bot, event_loop_for_bot):
    """No dead air: every spoken turn gets a prompt, and its first audio comes soon after the endpoint."""
    result = event_loop_for_bot.run_until_complete(run_scenario(bot, load_scenario(SCENARIOS / "pay_bill_espeak.yml")))
    for turn in result["turns"]:
        assert turn["bot"].strip()
        assert turn["latency"]["first_audio"] > turn["latency"]["endpoint"]
