"""What a dialog developer may expect of a whole call in a scenario file (`expect:`): besides the outcome and the
queue, whether the bot ended it as junk (dead_air, prank) and what the satisfaction survey got (a score, skipped,
not_asked). A wrong expectation fails the call with what happened; a misspelt one is refused with its file:line
before any model loads."""
from __future__ import annotations

import pytest

from conftest import ROOT, ivr_command
from ivr.tools.simulate import ScenarioError, load_scenario, run_scenario

SILENCE = ROOT / "tests" / "data" / "silence_1s.wav"


def dead_air(expect: str) -> str:
    """The shipped dead-air call (three silent seconds on a phone line) with the call expectations given."""
    turns = "".join(f"  - audio: {SILENCE}\n" for _ in range(3))
    return f'name: dead air\ncaller: {{voice: "flite:slt", channel: phone}}\nturns:\n{turns}expect:\n{expect}'


def test_a_wrong_junk_or_survey_expectation_fails_the_call_saying_what_happened(bot, event_loop_for_bot, accounts,
                                                                                tmp_path):
    scenario = tmp_path / "wrong.yml"
    scenario.write_text(dead_air("  outcome: ended\n  junk: prank\n  csat: 4\n"))
    result = event_loop_for_bot.run_until_complete(run_scenario(bot, load_scenario(scenario)))
    assert not result["passed"]
    assert result["failures"] == ["call: junk 'dead_air', expected 'prank'", "call: csat 'not_asked', expected '4'"]
    assert (result["junk"], result["csat"]) == ("dead_air", None)  # the report says what the call was


def test_yaml_null_expects_no_junk_rather_than_nothing(bot, event_loop_for_bot, accounts, tmp_path):
    """`junk: ~` is how a developer writes "no junk" in YAML: it is checked like `junk: None`, never skipped."""
    scenario = tmp_path / "null.yml"
    scenario.write_text(dead_air("  outcome: ended\n  junk: ~\n"))
    result = event_loop_for_bot.run_until_complete(run_scenario(bot, load_scenario(scenario)))
    assert result["failures"] == ["call: junk 'dead_air', expected 'None'"]


@pytest.mark.parametrize("expect, problem", [
    ("  outcome: ended\n  jnuk: dead_air\n", "expect: unknown key(s) ['jnuk']; allowed: ['csat', 'junk', 'outcome'"),
    ("  outcome: ended\n  junk: pocket_dial\n", "expect: junk 'pocket_dial' is not one of dead_air, prank, None"),
    ("  outcome: ended\n  csat: 6\n", "expect: csat 6 is not one of 1, 2, 3, 4, 5, skipped, not_asked"),
], ids=["unknown key", "unknown junk", "score out of range"])
def test_a_misspelt_call_expectation_is_refused_with_its_line(tmp_path, expect, problem):
    scenario = tmp_path / "misspelt.yml"
    scenario.write_text(dead_air(expect))
    with pytest.raises(ScenarioError) as refused:
        load_scenario(scenario)
    assert str(refused.value).startswith(f"{scenario}:9: {problem}")  # line 9: the misspelt line, after outcome


def test_an_unknown_key_in_a_turn_is_refused_with_its_line(tmp_path):
    scenario = tmp_path / "turn.yml"
    scenario.write_text('name: typo\nturns:\n  - say: "hello"\n    expect: {intent: greet}\n'
                        '  - say: "goodbye"\n    expect:\n      intnet: goodbye\n')
    with pytest.raises(ScenarioError, match=r"turn.yml:7: turn 2 expect: unknown key\(s\) \['intnet'\]"):
        load_scenario(scenario)


def test_ivr_simulate_refuses_a_misspelt_expectation_in_one_line_before_loading_anything(tmp_path):
    scenario = tmp_path / "misspelt.yml"
    scenario.write_text(dead_air("  outcome: ended\n  junk: pocket_dial\n"))
    done = ivr_command("simulate", scenario, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(
        f"{scenario}:9: expect: junk 'pocket_dial' is not one of dead_air, prank, None")
