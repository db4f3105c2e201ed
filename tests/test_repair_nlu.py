"""Repair moves typed, through the call's understanding and the real NLU: the set in
tests/data/repair.yml was written apart from the training data (none of it is a training example)."""
from collections import defaultdict

from conftest import ROOT
from ivr.tools.accuracy import intent_matches, load_set
from ivr.asr.numbers import normalise

REPAIR_SET = ROOT / "tests" / "data" / "repair.yml"


def test_the_repair_set_is_not_training_data_and_covers_every_move():
    items = load_set(REPAIR_SET)
    training = (ROOT / "dialogs" / "data" / "nlu.yml").read_text().lower()
    assert len(items) >= 150
    assert not [i.say for i in items if f"- {i.say.lower()}\n" in training]
    assert {i.move for i in items} == {"close", "cancel", "switch", "correct", "repeat", "help", "wait", "dont_know",
                                       "out_of_scope", "person"}


def test_repair_moves_typed_are_understood_at_least_95_percent(bot, event_loop_for_bot):
    by_move, misses = defaultdict(list), []
    for item in load_set(REPAIR_SET):
        intent, _ = event_loop_for_bot.run_until_complete(bot.dialog.parse(normalise(item.say, item.expects)))
        right = intent_matches(item.intent, intent)
        by_move[item.move].append(right)
        if not right:
            misses.append(f"{item.move}: {item.say!r} -> {intent} (wanted {item.intent})")
    overall = sum(map(sum, by_move.values())) / sum(map(len, by_move.values()))
    report = "\n".join(misses) + "\n" + ", ".join(f"{m} {sum(r)}/{len(r)}" for m, r in sorted(by_move.items()))
    assert overall >= 0.95, report
    assert all(sum(r) / len(r) >= 0.8 for r in by_move.values()), report  # no move left behind
