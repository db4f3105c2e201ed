"""A lean dialog turn (ivr/dialog/lean_rasa.py): what Rasa redid on every turn is done once, and a dialog
developer sees the same replies, the same stored conversation and the same errors as before."""
import uuid

import pytest


def test_a_malformed_action_answer_is_still_refused_with_rasas_own_message(bot):  # Rasa loaded as the bot loads it
    from jsonschema import ValidationError, exceptions, validators
    from rasa.core.actions.action import RemoteAction

    from ivr.dialog.lean_rasa import make_rasa_lean

    make_rasa_lean()
    answer = {"events": [{"event": "slot", "name": 7}], "responses": "not a list"}
    schema = RemoteAction.action_response_format_spec()
    expected = exceptions.best_match(validators.validator_for(schema)(schema).iter_errors(answer))
    with pytest.raises(ValidationError) as refused:
        RemoteAction("action_of_theirs", None)._validate_action_result(answer)
    assert refused.value.message.startswith(expected.message + ". Failed to validate Action server response")
    assert "/custom-actions" in refused.value.message
    assert RemoteAction("action_of_theirs", None)._validate_action_result({"events": [], "responses": []})


def test_a_calls_stored_events_are_rebuilt_as_themselves_and_an_unknown_event_is_still_an_error(bot,
                                                                                                event_loop_for_bot):
    from rasa.shared.core.events import Event

    run, call_id = event_loop_for_bot.run_until_complete, f"lean-{uuid.uuid4().hex}"
    run(bot.dialog.start(call_id))
    run(bot.dialog.respond(call_id, "check my balance"))
    stored = run(bot.dialog.history(call_id))
    assert {"user", "bot", "action", "slot", "active_loop"} <= {event["event"] for event in stored}
    assert [Event.from_parameters(event).as_dict() for event in stored] == stored
    with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
        Event.from_parameters({"event": "no_such_event"})


def test_each_reply_carries_the_slots_the_dialog_stored_for_the_call(bot, event_loop_for_bot):
    """The reply is read from the tracker the turn just saved, not rebuilt: it must be that same state."""
    run, call_id = event_loop_for_bot.run_until_complete, f"lean-{uuid.uuid4().hex}"
    run(bot.dialog.start(call_id))
    for text in ("pay my bill", "48151623", "can i talk to a person"):
        reply = run(bot.dialog.respond(call_id, text))
        stored = {e["name"]: e["value"] for e in run(bot.dialog.history(call_id)) if e["event"] == "slot"}
        assert {name: reply.slots.get(name) for name in stored} == stored, text
    assert reply.slots["account_number"] == "48151623" and reply.escalation.reason == "caller_request"


def test_the_latency_benchmark_says_what_each_part_took_to_load_side_by_side(tmp_path, trained_model):
    import re

    from conftest import ivr_command

    env = {"IVR_VAR": str(tmp_path)}
    assert ivr_command("db", "seed", env=env).returncode == 0
    done = ivr_command("bench", "latency", "--no-calibration", "tests/scenarios/goodbye_espeak.yml", env=env,
                       timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    ready = next(i for i, line in enumerate(lines) if line.startswith("ready (models and dialog loaded): "))
    parts = lines[ready + 1]
    assert parts.startswith("  loaded side by side: "), done.stdout
    named = dict(re.findall(r"([a-zA-Z][a-zA-Z ]+?) (\d+\.\d) s", parts))
    # the shipped model runs no TensorFlow, so the bot starts without it (ivr/dialog/tensorflow_free.py)
    assert set(named) == {"dialog", "Rasa imported without TensorFlow", "model loaded", "recognizer", "voice",
                          "queue and records", "mood words"}, parts  # mood words: the frustration meter's lists
    assert re.search(r"^Rasa +\d+ +\d+ +\d+$", done.stdout, re.M), done.stdout  # the dialog stage's p50, p95, max


def test_the_bot_starts_without_tensorflow_its_model_never_uses_and_any_later_use_says_why(tmp_path, trained_model):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    script = """
import asyncio
from ivr.config import Settings
from ivr.dialog.agent import Dialog
from ivr.dialog.settings import load_voice_settings

async def main():
    s = Settings.from_env()
    dialog = await Dialog.load(s.dialogs_dir, s.models_dir, load_voice_settings(s.dialogs_dir), s.var_dir)
    await dialog.start("t")
    print(dialog.loaded_in, (await dialog.respond("t", "i want to pay my bill")).prompts[-1].text)
    import tensorflow
    try:
        tensorflow.constant(1)
    except RuntimeError as refused:
        print(refused)
    await dialog.close()

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=dict(os.environ, IVR_VAR=str(tmp_path)))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Rasa imported without TensorFlow" in done.stdout and "account number" in done.stdout, done.stdout
    assert "tensorflow.constant(): TensorFlow is not loaded in this process, as the dialog model uses none" \
        in done.stdout, done.stdout


def test_a_model_with_a_component_that_may_run_tensorflow_gets_the_real_one(tmp_path, trained_model):
    import io
    import json
    import tarfile

    from ivr.dialog.tensorflow_free import uses_no_tensorflow

    assert uses_no_tensorflow(trained_model)
    metadata = json.dumps({"predict_schema": {"nodes": {
        "tokenizer": {"uses": "rasa.nlu.tokenizers.whitespace_tokenizer.WhitespaceTokenizer"},
        "diet": {"uses": "rasa.nlu.classifiers.diet_classifier.DIETClassifier"}}}}).encode()
    with tarfile.open(tmp_path / "diet.tar.gz", "w:gz") as archive:
        entry = tarfile.TarInfo("metadata.json")
        entry.size = len(metadata)
        archive.addfile(entry, io.BytesIO(metadata))
    assert not uses_no_tensorflow(tmp_path / "diet.tar.gz")
    (tmp_path / "broken.tar.gz").write_bytes(b"not a model")
    assert not uses_no_tensorflow(tmp_path / "broken.tar.gz")  # the model's own check says what is wrong


def test_a_long_running_worker_forgets_the_trackers_of_calls_long_gone_and_keeps_live_ones(bot, event_loop_for_bot):
    """Every call's tracker (account numbers, addresses) stayed in memory until the worker restarted; now the
    least recently saved go once more than `keep` calls were saved after them, and a call still talking stays."""
    from rasa.shared.core.trackers import DialogueStateTracker

    from ivr.dialog.lean_rasa import CallTrackers

    run, trackers = event_loop_for_bot.run_until_complete, CallTrackers(keep=3)
    for call_id in ("live", "gone-1", "gone-2", "live", "new-1", "new-2"):  # "live" speaks again mid-way
        run(trackers.save(DialogueStateTracker(call_id, [])))
    assert set(trackers.store) == {"live", "new-1", "new-2"}
    assert trackers.just_saved("gone-1") is None and trackers.just_saved("new-2").sender_id == "new-2"
