"""Scripted callers through the real pipeline: synthesized speech -> endpointer -> ASR -> Rasa -> pyttsx3."""
from pathlib import Path

import pytest

from ivr.tools.simulate import find_scenarios, load_scenario, run_scenario

SCENARIOS = Path(__file__).parent / "scenarios"
FILES = find_scenarios([SCENARIOS])


def test_the_scenario_set_covers_both_channels_and_all_caller_engines():
    scenarios = [load_scenario(p) for p in FILES]
    assert len(scenarios) >= 10
    assert {s.channel for s in scenarios} == {"wideband", "phone"}
    assert {s.voice.split(":")[0] for s in scenarios} == {"espeak", "flite", "festival"}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(call, path):
    call(path.relative_to(SCENARIOS))  # fails with the turns heard and said unless every expectation holds


def test_the_bot_answers_every_caller_turn_with_speech(bot, event_loop_for_bot):
    """No dead air: every spoken turn gets a prompt, and its first audio comes soon after the endpoint."""
    result = event_loop_for_bot.run_until_complete(run_scenario(bot, load_scenario(SCENARIOS / "pay_bill_espeak.yml")))
    assert all(turn["bot"].strip() for turn in result["turns"])
    spoken = [turn for turn in result["turns"] if "endpoint" in turn["latency"]]  # keypad turns have no endpoint
    assert len(spoken) >= 5
    for turn in spoken:
        assert turn["latency"]["first_audio"] > turn["latency"]["endpoint"]


def test_a_prompt_marked_barge_in_false_plays_on_and_the_words_over_it_are_ignored(bot, event_loop_for_bot, tmp_path):
    import shutil

    from conftest import ROOT
    from ivr.bot import Bot
    from ivr.dialog.agent import Dialog
    from ivr.dialog.settings import load_voice_settings

    dialogs = tmp_path / "dialogs"
    shutil.copytree(ROOT / "dialogs", dialogs)
    voice = dialogs / "voice.yml"
    strict_greeting = voice.read_text().replace("utter_greet: {expects: free,", "utter_greet: {expects: free, barge_in: false,")
    assert strict_greeting != voice.read_text()
    voice.write_text(strict_greeting)
    settings = load_voice_settings(dialogs)
    dialog = event_loop_for_bot.run_until_complete(Dialog.load(dialogs, bot.settings.models_dir, settings, bot.settings.var_dir))
    strict = Bot(bot.settings, settings, bot.recognizer, dialog, bot.voice, 0.0)
    scenario = tmp_path / "strict.yml"
    scenario.write_text(
        'name: caller talks over a greeting that may not be interrupted\n'
        'caller: {voice: "flite:slt", channel: wideband}\n'
        'turns:\n'
        '  - say: "I want to pay my bill."\n'
        '    barge_in_at: 1.0\n'
        '  - say: "I want to pay my bill."\n')
    try:
        result = event_loop_for_bot.run_until_complete(run_scenario(strict, load_scenario(scenario)))
    finally:
        event_loop_for_bot.run_until_complete(dialog.close())
    assert result["barge_ins"] == [{"turn": 1, "stopped_after_ms": None}]  # the greeting was heard to the end
    # what the caller said over it was not taken as a turn; their repeat after it was the first one
    assert len(result["turns"]) == 1
    assert result["turns"][0]["intent"] == "pay_bill" and "account number" in result["turns"][0]["bot"]


def test_when_the_dialog_breaks_the_caller_hears_an_apology_and_is_transferred(bot, event_loop_for_bot, tmp_path):
    """Rasa's actions failing mid-call: no dead air, one apology, a transfer with the reason."""
    import shutil

    from conftest import ROOT
    from ivr.bot import Bot
    from ivr.dialog.agent import Dialog
    from ivr.dialog.settings import load_voice_settings

    dialogs = tmp_path / "dialogs"
    shutil.copytree(ROOT / "dialogs", dialogs)
    dialog = event_loop_for_bot.run_until_complete(
        Dialog.load(dialogs, bot.settings.models_dir, load_voice_settings(dialogs), bot.settings.var_dir))
    fragile = Bot(bot.settings, bot.voice_settings, bot.recognizer, dialog, bot.voice, 0.0)
    scenario = tmp_path / "broken.yml"
    scenario.write_text('name: the actions fail\ncaller: {voice: "flite:slt"}\nturns:\n'
                        '  - say: "I want to pay my bill."\n  - say: "four eight one five one six two three"\n')
    dialog._actions.close()  # the actions die after the bot has started (no thread left to run them)
    try:
        result = event_loop_for_bot.run_until_complete(run_scenario(fragile, load_scenario(scenario)))
    finally:
        event_loop_for_bot.run_until_complete(dialog.close())
    assert result["outcome"] == "escalated"
    assert "something went wrong" in result["turns"][-1]["bot"]
    assert all(turn["bot"] for turn in result["turns"])  # every caller turn was answered
