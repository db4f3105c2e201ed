"""The dialog stage through real Rasa and its real actions: what the caller would hear next."""
import shutil
import uuid
from pathlib import Path

import pytest

from conftest import ROOT
from ivr.dialog.check import check_dialogs
from ivr.dialog.settings import DialogError, load_voice_settings


@pytest.fixture
def talk(bot, event_loop_for_bot):
    def conversation(*texts):
        call_id = f"dialog-test-{uuid.uuid4().hex}"
        replies = [event_loop_for_bot.run_until_complete(bot.dialog.start(call_id))]
        for text in texts:
            replies.append(event_loop_for_bot.run_until_complete(bot.dialog.respond(call_id, text)))
        return replies

    return conversation


def said(reply) -> str:
    return " ".join(p.text for p in reply.prompts)


def test_a_task_asks_for_the_account_number_expecting_eight_digits(talk):
    greeting, asked = talk("i want to pay my bill")
    assert "pay a bill" in said(greeting)
    assert asked.intent == "pay_bill" and asked.task == "bill_pay"
    question = asked.prompts[-1]
    assert "account number" in question.text and question.expects.kind == "digits" and question.expects.length == 8


def test_a_wrong_length_is_explained_and_the_right_number_read_back(talk):
    _, _, wrong, right = talk("check my balance", "4815162", "48151623")
    assert "7 digits" in said(wrong) and wrong.prompts[-1].expects.length == 8 and not wrong.escalation
    assert "4 8 1 5 1 6 2 3" in said(right)
    question = right.prompts[-1]
    assert "PIN" in question.text and question.expects.length == 4 and question.expects.secret and not right.escalation


def test_silence_is_reprompted_twice_then_an_agent_is_offered(talk):
    _, first, second, third, yes = talk("/no_input", "/no_input", "/no_input", "yes")
    assert said(first) and said(second) and not first.escalation and not second.escalation
    assert "agent" in said(third) and third.prompts[-1].expects.kind == "yes_no"
    assert yes.escalation and yes.escalation.reason == "no_input"


def test_answers_that_fit_no_question_count_as_not_understood(talk):
    """Nonsense the classifier takes for a confident "yes" is still a failure: the third offers an agent."""
    *_, second, third = talk("blah blah", "xyzzy plugh", "foo bar baz")
    assert "didn't catch" in said(second) and "agent" not in said(second).split("ask for an agent")[0]
    assert "speak with an agent" in said(third) and third.prompts[-1].expects.kind == "yes_no"


def test_declining_the_agent_goes_back_to_the_menu(talk):
    *_, offer, no = talk("/no_input", "/no_input", "/no_input", "no")
    assert "agent" in said(offer) and not no.escalation and "pay a bill" in said(no)


def test_asking_for_a_person_inside_the_account_question_transfers(talk):
    _, _, transfer = talk("pay my bill", "can i talk to a person")
    assert transfer.escalation and transfer.escalation.reason == "caller_request" and "agent" in said(transfer)


def test_goodbye_ends_the_call(talk):
    _, bye = talk("no thanks goodbye")
    assert bye.ended and "goodbye" in said(bye).lower()


def test_the_shipped_dialogs_pass_their_own_check():
    assert [p for p in check_dialogs(ROOT / "dialogs") if not p.warning] == []


@pytest.fixture
def dialogs_copy(tmp_path) -> Path:
    copy = tmp_path / "dialogs"
    shutil.copytree(ROOT / "dialogs", copy)
    return copy


def test_an_unknown_expectation_in_voice_settings_is_reported_on_its_line(dialogs_copy):
    voice = dialogs_copy / "voice.yml"
    lines = voice.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("  utter_offer_agent"))
    lines[number - 1] = "  utter_offer_agent: {expects: maybe}"
    voice.write_text("\n".join(lines) + "\n")
    problems = [str(p) for p in check_dialogs(dialogs_copy)]
    assert any(f"voice.yml:{number}:" in p and "maybe" in p for p in problems), problems
    with pytest.raises(DialogError, match=f"voice.yml:{number}:"):
        load_voice_settings(dialogs_copy)


@pytest.mark.parametrize("setting, value, words", [
    ("answered_free_confidence", "1.5", "endpointing.answered_free_confidence must be a number above 0 and at most 1"),
    ("answered_free_ms", "soon", "endpointing.answered_free_ms must be a positive whole number"),
])
def test_a_bad_early_end_setting_is_reported_on_its_line_and_a_good_one_reaches_the_endpointing(
        dialogs_copy, setting, value, words):
    voice = dialogs_copy / "voice.yml"
    assert dict(load_voice_settings(dialogs_copy).endpointing.answered_ms)["free"] == 350
    lines = voice.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.strip().startswith(f"{setting}:"))
    lines[number - 1] = f"  {setting}: {value}"
    voice.write_text("\n".join(lines) + "\n")
    with pytest.raises(DialogError, match=f"voice.yml:{number}: {words}"):
        load_voice_settings(dialogs_copy)


def test_a_request_that_may_end_early_must_be_an_intent_of_the_domain(dialogs_copy):
    voice = dialogs_copy / "voice.yml"
    voice.write_text(voice.read_text().replace("answered_free_intents: [pay_bill,", "answered_free_intents: [pay_the_bill,"))
    problems = [str(p) for p in check_dialogs(dialogs_copy)]
    assert any("voice.yml:" in p and "answered_free_intents: intent pay_the_bill is not in domain.yml" in p
               for p in problems), problems


def test_a_prompt_that_is_not_a_response_is_reported(dialogs_copy):
    voice = dialogs_copy / "voice.yml"
    voice.write_text(voice.read_text().replace("utter_goodbye:", "utter_good_bye:"))
    problems = [str(p) for p in check_dialogs(dialogs_copy)]
    assert any("utter_good_bye" in p and "not a response" in p and "voice.yml:" in p for p in problems), problems


def test_open_questions_are_hinted_with_the_callers_own_words_from_nlu(dialogs_copy):
    voice = dialogs_copy / "voice.yml"
    assert load_voice_settings(dialogs_copy).prompt("utter_greet").expects.phrases == ()  # the domain's words
    voice.write_text(voice.read_text().replace("intents: []", "intents: [pay_bill, check_balance, change_address, "
                                                              "request_agent, goodbye]"))
    settings = load_voice_settings(dialogs_copy)
    greet = settings.prompt("utter_greet").expects
    assert "i want to pay my bill" in greet.phrases and "agent" in greet.phrases
    assert settings.prompt("utter_ask_account_number").expects.phrases == ()  # digits have their own hints
    voice.write_text(voice.read_text().replace("request_agent, goodbye]", "request_agent, say_goodbye]"))
    assert any("say_goodbye" in str(p) and "voice.yml:" in str(p) for p in check_dialogs(dialogs_copy))


def test_training_is_skipped_when_nothing_changed_and_redone_when_the_data_changes(tmp_path, trained_model):
    from conftest import ivr_command

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(trained_model, models / trained_model.name)
    shutil.copy(trained_model.with_suffix("").with_suffix(".fingerprint"), models)
    before = (models / trained_model.name).stat().st_mtime
    same = ivr_command("train", env={"IVR_MODELS": str(models)}, timeout=120)
    assert same.returncode == 0 and "unchanged" in same.stderr
    assert (models / trained_model.name).stat().st_mtime == before


def test_an_action_server_named_in_endpoints_yml_is_used_instead_of_our_own(dialogs_copy, bot, event_loop_for_bot):
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from ivr.dialog.agent import Dialog

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    theirs = subprocess.Popen([sys.executable, "-m", "rasa_sdk", "--actions", "ivr.actions", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        (dialogs_copy / "endpoints.yml").write_text(f'action_endpoint:\n  url: "http://127.0.0.1:{port}/webhook"\n')
        dialog = event_loop_for_bot.run_until_complete(
            Dialog.load(dialogs_copy, bot.settings.models_dir, load_voice_settings(dialogs_copy), bot.settings.var_dir))
        run = event_loop_for_bot.run_until_complete
        try:
            run(dialog.start("external"))
            run(dialog.respond("external", "pay my bill"))
            assert "7 digits" in said(run(dialog.respond("external", "4815162")))  # a validation action answered
            theirs.terminate()
            theirs.wait(10)
            assert "7 digits" not in said(run(dialog.respond("external", "4815162")))  # it was theirs, not ours
        finally:
            run(dialog.close())
    finally:
        theirs.kill()


def test_the_actions_run_in_the_bot_with_no_port_anyone_could_post_a_payment_to(bot):
    """They post payments: no action server process, no listening socket of ours for them."""
    import os

    children = []
    for proc in Path("/proc").iterdir():
        try:
            status, cmdline = (proc / "status").read_text(), (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        parent = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        if parent == str(os.getpid()):
            children.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    assert not [c for c in children if "rasa_sdk" in c], children
    assert bot.dialog.answers_actions_itself


def test_with_the_accounts_database_down_the_caller_hears_one_apology_and_is_transferred(bot, event_loop_for_bot,
                                                                                         monkeypatch):
    from ivr.dialog.agent import Dialog
    from ivr.masking import Seal

    monkeypatch.setenv("IVR_DATABASE_URL", "postgresql://ivr@127.0.0.1:1/accounts")  # nothing listens there
    run = event_loop_for_bot.run_until_complete
    settings = bot.settings
    dialog = run(Dialog.load(settings.dialogs_dir, settings.models_dir, load_voice_settings(settings.dialogs_dir),
                             settings.var_dir))
    try:
        run(dialog.start("down"))
        run(dialog.respond("down", "check my balance"))
        run(dialog.respond("down", "48151623"))
        reply = run(dialog.respond("down", Seal(settings.var_dir).message("2468")))
    finally:
        run(dialog.close())
    assert "can't reach your account" in said(reply) and said(reply).count("sorry") <= 1
    assert reply.escalation and reply.escalation.reason == "store_unavailable"


def _last_good_model(tmp_path, trained_model) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(trained_model, models / trained_model.name)
    return models / trained_model.name


def test_the_shipped_dialogs_check_prints_no_warnings_to_wade_through():
    from conftest import ivr_command

    checked = ivr_command("dialogs", "check", timeout=180)
    assert checked.returncode == 0 and checked.stdout.strip().endswith("OK"), checked.stdout
    assert "warning" not in checked.stdout, checked.stdout


def test_a_rule_naming_a_missing_response_fails_the_check_on_its_line_and_training_keeps_the_good_model(
        dialogs_copy, tmp_path, trained_model):
    from conftest import ivr_command

    rules = dialogs_copy / "data" / "rules.yml"
    rules.write_text(rules.read_text() + "\n  - rule: greet the caller warmly\n    steps:\n      - intent: greet\n"
                                         "      - action: utter_warm_welcome\n")
    line = rules.read_text().splitlines().index("      - action: utter_warm_welcome") + 1
    model = _last_good_model(tmp_path, trained_model)
    before = model.read_bytes()
    env = {"IVR_DIALOGS": str(dialogs_copy), "IVR_MODELS": str(model.parent)}
    checked = ivr_command("dialogs", "check", env=env, timeout=180)
    assert checked.returncode != 0 and f"rules.yml:{line}:" in checked.stdout and "utter_warm_welcome" in checked.stdout
    trained = ivr_command("train", env=env, timeout=180)
    assert trained.returncode != 0 and "utter_warm_welcome" in trained.stderr and "Traceback" not in trained.stderr
    assert model.read_bytes() == before


def test_empty_nlu_data_fails_the_check_and_never_replaces_the_good_model(dialogs_copy, tmp_path, trained_model):
    from conftest import ivr_command

    (dialogs_copy / "data" / "nlu.yml").write_text('version: "3.1"\nnlu: []\n')
    model = _last_good_model(tmp_path, trained_model)
    before = model.read_bytes()
    env = {"IVR_DIALOGS": str(dialogs_copy), "IVR_MODELS": str(model.parent)}
    checked = ivr_command("dialogs", "check", env=env, timeout=180)
    assert checked.returncode != 0 and "nlu.yml:1:" in checked.stdout and "understand nothing" in checked.stdout
    assert ivr_command("train", env=env, timeout=180).returncode != 0
    assert model.read_bytes() == before


def test_an_intent_without_examples_is_reported_at_its_line_in_the_domain(dialogs_copy):
    domain = dialogs_copy / "domain.yml"
    domain.write_text(domain.read_text().replace("  - dont_know\n", "  - dont_know\n  - order_pizza\n", 1))
    line = domain.read_text().splitlines().index("  - order_pizza") + 1
    problems = [str(p) for p in check_dialogs(dialogs_copy) if not p.warning]
    assert any(f"domain.yml:{line}:" in p and "order_pizza" in p and "no examples" in p for p in problems), problems
