"""The satisfaction survey after a completed self-service task: keyed, said, skipped or met with silence,
and stored with the call (`ivr calls show --json`); asked of the configured share of calls, never after
an escalation or a junk call. The shipped dialogs ask no one (share 0); these calls run on a copy with
share 1, so every drawn call is asked. Callers are espeak, flite and festival voices."""
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import ROOT, ivr_command
from ivr.actions.survey import drawn_for_survey
from ivr.tools.simulate import load_scenario, run_scenario
from typed_caller import typed_call

SCENARIOS = Path(__file__).parent / "survey_scenarios"
BALANCE = ["check my balance", "48151623", "2468#"]


@pytest.fixture(scope="module")
def surveying_bot(bot, event_loop_for_bot, tmp_path_factory):
    """The loaded bot with a dialog whose voice.yml asks every caller (its actions read that copy too)."""
    from ivr.dialog.agent import Dialog
    from ivr.dialog.settings import load_voice_settings

    dialogs = tmp_path_factory.mktemp("surveying") / "dialogs"
    shutil.copytree(ROOT / "dialogs", dialogs)
    voice = dialogs / "voice.yml"
    asking = voice.read_text().replace("survey:\n  share: 0.0", "survey:\n  share: 1.0")
    assert asking != voice.read_text()
    voice.write_text(asking)
    settings = load_voice_settings(dialogs)
    before = os.environ.get("IVR_DIALOGS")
    os.environ["IVR_DIALOGS"] = str(dialogs)  # the in-process actions take their settings from the environment
    try:
        dialog = event_loop_for_bot.run_until_complete(
            Dialog.load(dialogs, bot.settings.models_dir, settings, bot.settings.var_dir))
    finally:
        os.environ.pop("IVR_DIALOGS") if before is None else os.environ.update(IVR_DIALOGS=before)
    yield replace(bot, dialog=dialog, voice_settings=settings)
    event_loop_for_bot.run_until_complete(dialog.close())


def stored(call_id: str) -> dict:
    shown = ivr_command("calls", "show", call_id, "--json", timeout=120)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


@pytest.mark.parametrize("scenario, csat", [
    ("survey_keypad_espeak_phone.yml", {"asked": True, "score": 4, "by": "keypad"}),
    ("survey_spoken_flite.yml", {"asked": True, "score": 5, "by": "voice"}),
    ("survey_skipped_festival.yml", {"asked": True, "score": None, "by": None}),
    ("survey_silence_flite_phone.yml", {"asked": True, "score": None, "by": None}),
])
def test_the_survey_answer_is_stored_with_the_call(surveying_bot, event_loop_for_bot, accounts, scenario, csat):
    result = event_loop_for_bot.run_until_complete(run_scenario(surveying_bot, load_scenario(SCENARIOS / scenario)))
    assert result["passed"], result["failures"]
    record = stored(result["call_id"])
    assert record["csat"] == csat
    assert record["outcome"] == "self_served" and record["junk"] is None and record["queue_entry"] is None


def test_a_typed_answer_with_words_around_the_digit_is_the_score(surveying_bot, event_loop_for_bot, accounts):
    call = typed_call(surveying_bot, event_loop_for_bot, [*BALANCE, "no thanks", "i'd give it a three"])
    assert "On a scale of 1 to 5" in call.heard_after(3) and "Thank you for your answer" in call.heard_after(4)
    assert call.result.csat == {"asked": True, "score": 3, "by": "voice"}


@pytest.mark.parametrize("lines", [
    [*BALANCE, "I want to speak to an agent"],  # an escalation
    ["what are you wearing", "are you single"],  # a junk call
    ["I want to pay my bill", "cancel", "goodbye"],  # nothing completed
], ids=["escalated", "prank", "no task completed"])
def test_no_survey_after_an_escalation_a_junk_call_or_nothing_done(surveying_bot, event_loop_for_bot, accounts, lines):
    call = typed_call(surveying_bot, event_loop_for_bot, lines)
    assert call.result.csat is None
    assert not any("On a scale of 1 to 5" in " ".join(turn.bot) for turn in call.turns)


def test_a_caller_may_still_ask_for_a_person_at_the_survey(surveying_bot, event_loop_for_bot, accounts):
    call = typed_call(surveying_bot, event_loop_for_bot, [*BALANCE, "no", "can I talk to a person"])
    assert call.result.escalation.reason == "caller_request"
    assert call.result.csat == {"asked": True, "score": None, "by": None}


def test_the_shipped_dialogs_ask_no_one_and_say_goodbye(bot, event_loop_for_bot, accounts):
    call = typed_call(bot, event_loop_for_bot, [*BALANCE, "no"])
    assert "Goodbye" in call.heard_after(3) and call.result.csat is None


def test_the_share_asked_is_the_configured_one_and_each_call_draws_the_same_way_every_time():
    calls = [f"call-{n}" for n in range(2000)]
    asked = [c for c in calls if drawn_for_survey(c, 0.25)]
    assert 0.22 <= len(asked) / len(calls) <= 0.28
    assert asked == [c for c in calls if drawn_for_survey(c, 0.25)]
    assert not any(drawn_for_survey(c, 0.0) for c in calls) and all(drawn_for_survey(c, 1.0) for c in calls)
