"""The satisfaction survey after a completed self-service task: keyed, said, skipped or met with silence,
and stored with the call (`ivr calls show --json`); asked of the configured share of calls, never after
an escalation or a junk call. The shipped dialogs ask no one (share 0); these calls run on a copy with
share 1, so every drawn call is asked. Callers are espeak, flite and festival voices."""
import asyncio
import contextvars
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import ivr_command
from ivr.actions.survey import drawn_for_survey
from ivr.tools.simulate import load_scenario, run_scenario
from survey_dialogs import surveying_dialogs
from typed_caller import typed_call

SCENARIOS = Path(__file__).parent / "survey_scenarios"
BALANCE = ["check my balance", "48151623", "2468#"]


@pytest.fixture(scope="module")
def surveying_bot(bot, event_loop_for_bot, tmp_path_factory):
    """The loaded bot with a dialog whose voice.yml asks every caller (its actions read that copy too)."""
    from ivr.dialog.agent import Dialog
    from ivr.dialog.settings import load_voice_settings

    dialogs = surveying_dialogs(tmp_path_factory.mktemp("surveying"))
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


def test_a_caller_back_from_their_agent_is_asked_about_the_agent_and_keys_a_score(surveying_bot, event_loop_for_bot):
    """What the call sends when the agent hung up first ("/agent_done"), on an escalated conversation."""
    dialog, run = surveying_bot.dialog, event_loop_for_bot.run_until_complete
    run(dialog.start("back-from-agent"))
    assert run(dialog.respond("back-from-agent", "I want to speak to an agent")).escalation.reason == "caller_request"
    back = run(dialog.respond("back-from-agent", "/agent_done"))
    assert [prompt.name for prompt in back.prompts] == ["utter_ask_satisfaction_agent"]
    assert back.prompts[0].text.startswith("Thank you for talking with our agent. On a scale of 1 to 5")
    assert (back.prompts[0].expects.kind, back.prompts[0].expects.length) == ("digits", 1)
    assert back.escalation is None and not back.ended and back.survey_asked  # no second hand-over: the survey
    scored = run(dialog.respond("back-from-agent", "4"))
    assert (scored.satisfaction, scored.ended) == (4, True) and "Thank you for your answer" in scored.prompts[0].text


def test_a_caller_back_from_an_agent_call_of_over_an_hour_is_still_asked(surveying_bot, event_loop_for_bot,
                                                                          monkeypatch):
    """One call is one conversation: the dialog's session does not expire during a long talk with an agent (it
    did after 60 minutes, and the caller lost the survey and only heard goodbye)."""
    import time

    import rasa.core.processor

    dialog, run = surveying_bot.dialog, event_loop_for_bot.run_until_complete
    run(dialog.start("long-agent-call"))
    run(dialog.respond("long-agent-call", "I want to speak to an agent"))
    two_hours_on = type("Clock", (), {"time": staticmethod(lambda: time.time() + 2 * 3600)})
    monkeypatch.setattr(rasa.core.processor, "time", two_hours_on)  # the clock Rasa reads for session expiry
    back = run(dialog.respond("long-agent-call", "/agent_done"))
    assert [prompt.name for prompt in back.prompts] == ["utter_ask_satisfaction_agent"] and back.survey_asked


def test_the_shipped_dialogs_say_goodbye_to_a_caller_back_from_their_agent(bot, event_loop_for_bot):
    dialog, run = bot.dialog, event_loop_for_bot.run_until_complete  # share 0: this call was not drawn
    run(dialog.start("not-drawn"))
    run(dialog.respond("not-drawn", "I want to speak to an agent"))
    back = run(dialog.respond("not-drawn", "/agent_done"))
    assert [prompt.name for prompt in back.prompts] == ["utter_goodbye"] and back.ended and not back.survey_asked


@pytest.mark.parametrize("slots, asked", [
    ({"escalation_reason": "caller_request"}, True),
    ({"escalation_reason": "caller_request", "junk": "prank"}, False),  # never after a junk call
    ({"escalation_reason": "caller_request", "survey_asked": True}, False),  # asked once a call at most
    ({}, False),  # nobody was handed to an agent
], ids=["escalated", "junk", "already asked", "not escalated"])
def test_the_survey_after_an_agent_only_for_an_escalated_call_not_yet_asked_and_no_junk(tmp_path, slots, asked):
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from ivr.actions.stores import Backing, serving
    from ivr.actions.survey import AfterAgent
    from ivr.config import Settings
    from ivr.dialog.agent_survey import agent_survey_due
    from ivr.dialog.settings import load_voice_settings

    dialogs = surveying_dialogs(tmp_path)
    tracker = Tracker("sip-drawn", slots, {}, [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()

    def after_agent() -> list:  # in a context of its own: the actions' settings, as the dialog gives them
        serving(Backing(Settings.from_env(dict(os.environ, IVR_DIALOGS=str(dialogs), IVR_VAR=str(tmp_path / "var")))))
        return asyncio.run(AfterAgent().run(dispatcher, tracker, {}))

    events = contextvars.copy_context().run(after_agent)
    assert {"event": "slot", "name": "escalation_reason", "value": None, "timestamp": None} in events
    assert any(event.get("name") == "survey_form" for event in events) == asked
    assert [message["response"] for message in dispatcher.messages] == ([] if asked else ["utter_goodbye"])
    # the call takes back from their agent exactly the callers the dialog will ask (one rule, ivr.dialog.agent_survey)
    assert agent_survey_due(slots, "sip-drawn", load_voice_settings(dialogs).survey) == asked


@pytest.mark.parametrize("setting, value, words", [
    ("share", "most", "survey.share must be a number from 0 (never ask) to 1"),
    ("after_agent", "sometimes", "survey.after_agent must be true (also ask after an agent's call) or false"),
])
def test_a_bad_survey_setting_names_the_file_and_line(tmp_path, setting, value, words):
    from ivr.dialog.settings import DialogError, load_voice_settings

    dialogs = surveying_dialogs(tmp_path)
    voice = dialogs / "voice.yml"
    lines = voice.read_text().splitlines()
    section = lines.index("survey:")
    at = next(n for n in range(section, len(lines)) if lines[n].startswith(f"  {setting}:"))
    lines[at] = f"  {setting}: {value}"
    voice.write_text("\n".join(lines) + "\n")
    with pytest.raises(DialogError) as refused:
        load_voice_settings(dialogs)
    assert f"{voice}:{at + 1}: {words}" in str(refused.value)
