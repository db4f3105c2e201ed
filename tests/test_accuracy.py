"""`ivr bench accuracy`: the figures a dialog developer reads, computed the way they would check them."""
import json

from conftest import ROOT, ivr_command
from ivr.tools.accuracy import comparable, load_set, summary


def test_the_labelled_set_is_large_and_covers_every_intent_and_slot():
    items = load_set(ROOT / "tests" / "data" / "accuracy.yml")
    assert len(items) >= 200
    assert {i.intent for i in items} >= {"greet", "pay_bill", "change_address", "check_balance", "request_agent",
                                         "affirm", "deny", "goodbye", "inform", "out_of_scope"}
    assert {i.prompt for i in items} >= {"account", "pin", "zip", "amount", "street"}


def test_numbers_count_the_same_however_they_are_written():
    assert comparable("Four eight, one five.") == comparable("4815") == "4 8 1 5"
    assert comparable("I want to pay my bill.") == "i want to pay my bill"


def test_one_wrong_digit_fails_the_slot_and_a_confused_intent_is_counted():
    rows = [
        {"said": "four eight", "heard": "4 8", "value": "48", "intent": None, "expected": "inform", "slot": "48",
         "prompt": "account", "voice": "v"},
        {"said": "one five", "heard": "1 6", "value": "16", "intent": None, "expected": "inform", "slot": "15",
         "prompt": "account", "voice": "v"},
        {"said": "pay my bill", "heard": "pay my bill", "value": "pay my bill", "intent": "pay_bill",
         "expected": "pay_bill", "slot": None, "prompt": "free", "voice": "v"},
        {"said": "check my balance", "heard": "check my bill", "value": "check my bill", "intent": "pay_bill",
         "expected": "check_balance", "slot": None, "prompt": "free", "voice": "v"},
    ]
    figures = summary(rows)
    assert figures["slots_exact"] == {"account": 0.5} and figures["digit_strings_exact"] == 0.5
    assert figures["intent_accuracy"] == 0.5
    assert figures["confusion"] == {"check_balance -> pay_bill": 1, "pay_bill -> pay_bill": 1}
    assert figures["word_error_rate"] == 0.2  # "6" for "5" and "bill" for "balance", of 10 words


def test_the_benchmark_reports_three_conditions_and_draws_the_confusion(tmp_path, trained_model):
    plot = tmp_path / "confusion.png"
    done = ivr_command("bench", "accuracy", "--limit", "12", "--json", "--plot", plot, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["utterances"] == 12 and set(report["conditions"]) == {"wideband", "phone", "phone+noise"}
    for figures in report["conditions"].values():
        assert 0 <= figures["word_error_rate"] <= 2 and 0 <= figures["intent_accuracy"] <= 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
