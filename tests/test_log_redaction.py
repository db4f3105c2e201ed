"""Logs never hold a caller's account number, PIN or sealed token, even when a call fails and Rasa dumps its state."""
import logging
import re
import shutil

from conftest import ROOT
from ivr.logs import MASK, redact
from ivr.masking import Seal
from typed_caller import typed_call

ACCOUNT, PIN = "48151623", "2468"
DEBUGGED = ("", "ivr", "rasa", "rasa_sdk")  # what someone chasing a failing call turns up


def test_a_call_whose_actions_die_mid_call_logs_the_failure_and_rasas_dumps_with_nothing_private(
        bot, event_loop_for_bot, accounts, tmp_path, capfd):
    from ivr.bot import Bot
    from ivr.dialog.agent import Dialog
    from ivr.dialog.settings import load_voice_settings

    dialogs = tmp_path / "dialogs"
    shutil.copytree(ROOT / "dialogs", dialogs)
    dialog = event_loop_for_bot.run_until_complete(
        Dialog.load(dialogs, bot.settings.models_dir, load_voice_settings(dialogs), bot.settings.var_dir))
    fragile = Bot(bot.settings, bot.voice_settings, bot.recognizer, dialog, bot.voice, 0.0)

    def actions_die_after_the_pin(index: int, line: str) -> str:
        if index == 3:
            dialog._actions.close()  # no thread left to run them: the next action fails inside Rasa
        return line

    log_path = tmp_path / "ivr.log"
    with _everything_logged_to(log_path):
        try:
            call = typed_call(fragile, event_loop_for_bot, ["pay my bill", "4815 1623", f"{PIN}#", "fifty dollars"],
                              before_each=actions_die_after_the_pin)
        finally:
            event_loop_for_bot.run_until_complete(dialog.close())
    assert "Now please say or key in your 4 digit PIN" in call.heard_after(1)
    assert "something went wrong" in call.heard_after(3)

    logged = log_path.read_text()
    assert "Encountered an exception while running action" in logged  # the failure is there to debug
    assert "the dialog gave no prompt" in logged
    assert "processor.slots.log" in logged and "account_number: " + MASK in logged  # Rasa's dump, masked
    proof = Seal(bot.settings.var_dir).vouch(call.result.call_id, ACCOUNT)
    printed = capfd.readouterr()
    for where, text in (("log file", logged), ("stdout", printed.out), ("stderr", printed.err)):
        for secret in (ACCOUNT, "4815 1623", "4 8 1 5 1 6 2 3", proof, "gAAAAA"):
            assert secret not in text, (where, secret)
        assert not re.search(rf"(?<!\d){PIN}(?!\d)", text), where


def test_what_is_masked_and_what_is_kept():
    seal_token = "gAAAAABpK0Tt" + "x" * 60 + "=="
    dump = (f"account_number: {ACCOUNT}\n\tpin: /inform{{\"sealed\": \"{seal_token}\"}}\n\tidentity: {'ab' * 32}"
            f"\n\tcard_token: {'0f' * 32}\n\tamount_cents: 5025\n\ttask: bill_pay")
    masked = redact(dump)
    for secret in (ACCOUNT, seal_token, "ab" * 32, "0f" * 32, "5025"):
        assert secret not in masked, secret
    assert "task: bill_pay" in masked
    assert redact("SlotSet(key: street_address, value: 12 Elm Street)") == "SlotSet(key: street_address, value: [redacted])"
    kept = 'File "/x/processor.py", line 1110, in _run_action; call 6309175ba708 from 10.0.0.5:5060 in 2.5 s'
    assert redact(kept) == kept
    for spoken in ("4 8 1 5 1 6 2 3", "4111-1111-1111-1111", "pin 2468."):
        assert not re.search(r"\d{2}", redact(spoken).replace(" ", "").replace("-", "")), spoken


class _everything_logged_to:
    """Every logger a developer would turn up, at DEBUG, into one file; put back afterwards."""

    def __init__(self, path):
        self.handler = logging.FileHandler(path)
        self.handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def __enter__(self):
        self.levels = {name: logging.getLogger(name).level for name in DEBUGGED}
        logging.getLogger().addHandler(self.handler)
        for name in DEBUGGED:
            logging.getLogger(name).setLevel(logging.DEBUG)

    def __exit__(self, *exc_info):
        logging.getLogger().removeHandler(self.handler)
        self.handler.close()
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
