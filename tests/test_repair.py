"""Callers who don't follow the script: every question in dialogs/voice.yml × every caller move, typed
into a real call (the `ivr chat` line: the call's own understanding, real Rasa, real actions).

Each cell plays the lines that reach the question, then the move, and asserts what the caller hears
next and how the call ends.
"""
from __future__ import annotations

import pytest

from conftest import ROOT
from ivr.dialog.settings import load_voice_settings
from typed_caller import typed_call

PAY = ["I want to pay my bill", "48151623", "2468#"]
ADDRESS = ["I need to change my address", "31415926", "9090#"]
# How a caller reaches each question (the last line's answer is that question).
PATHS = {
    "utter_greet": [],
    "utter_greet_rephrase": ["xyzzy plugh"],
    "utter_ask_account_number": ["I want to pay my bill"],
    "utter_ask_account_number_rephrase": ["I want to pay my bill", "4815"],
    "utter_ask_pin": ["I want to pay my bill", "48151623"],
    "utter_ask_pin_rephrase": ["I want to pay my bill", "48151623", "24"],
    "utter_ask_amount_cents": PAY,
    "utter_ask_use_card_on_file": [*PAY, "forty dollars"],
    "utter_ask_card_number": [*PAY, "forty dollars", "new card"],
    "utter_ask_card_expiry": [*PAY, "forty dollars", "new card", "4111111111111111#"],
    "utter_ask_payment_confirmed": [*PAY, "forty dollars", "yes"],
    "utter_ask_zip_code": ADDRESS,
    "utter_ask_place_confirmed": [*ADDRESS, "62704"],
    "utter_ask_street_address": [*ADDRESS, "62704", "yes"],
    "utter_ask_address_confirmed": [*ADDRESS, "62704", "yes", "12 oak street"],
    "utter_ask_wrong_part": [*ADDRESS, "62704", "yes", "12 oak street", "no"],
    "utter_anything_else": ["check my balance", "48151623", "2468#"],
    "utter_what_else": ["check my balance", "48151623", "2468#", "yes"],
    "utter_offer_agent": ["", "", ""],
    "utter_offer_declined": ["", "", "", "no"],
    "utter_offer_agent_for_it": ["my tv has no picture at all"],
    "utter_offer_agent_instead": ["I want to pay my bill", "I don't have my account number"],
}
SETTINGS = load_voice_settings(ROOT / "dialogs")
# Every prompt that waits for an answer ("take your time" is no question of its own).
ASKED = sorted(name for name, s in SETTINGS.prompts.items() if s.barge_in and s.expects.kind != "question")
IN_A_TASK = {name for name, path in PATHS.items() if path[:1] and path[0] in (PAY[0], ADDRESS[0])
             and name not in ("utter_ask_account_number", "utter_ask_account_number_rephrase",
                              "utter_ask_pin", "utter_ask_pin_rephrase", "utter_offer_agent_instead")}
IDENTIFIED = {name for name, path in PATHS.items() if len(path) >= 3 and path[2] in ("2468#", "9090#")}


def test_every_question_in_the_voice_settings_has_a_path_in_the_matrix():
    assert sorted(set(ASKED) - set(PATHS)) == [], "add a path to PATHS for each new question"


@pytest.fixture
def reach(bot, event_loop_for_bot, accounts):
    def play(question: str, *move: str, with_queue: bool = False):
        path = PATHS[question]
        call = typed_call(bot, event_loop_for_bot, [*path, *move], with_queue=with_queue)
        asked = call.turns[len(path)].bot[-1]
        return call, asked, len(path)
    return play


@pytest.mark.parametrize("question", ASKED)
def test_each_path_reaches_its_question(reach, question):
    call, asked, at = reach(question)
    expected = {"utter_greet": "How can I help", "utter_greet_rephrase": "You can say pay my bill",
                "utter_offer_declined": "You can pay a bill"}
    said = call.turns[at].bot
    assert said, f"nothing said before the question {question}"
    wanted = expected.get(question) or _response_text(question)
    assert wanted[:25] in " ".join(said), f"{question}: heard {said}"


def _response_text(name: str) -> str:
    from ruamel.yaml import YAML
    responses = YAML(typ="safe").load((ROOT / "dialogs" / "domain.yml").read_text())["responses"]
    text = responses[name][-1]["text"]
    return text.split("{")[0]


PERSON = ["agent", "I've had enough of this, connect me to somebody", "representative"]


@pytest.mark.parametrize("question, words", [(q, PERSON[i % len(PERSON)]) for i, q in enumerate(ASKED)])
def test_asking_for_a_person_transfers_at_once(reach, question, words):
    call, _, at = reach(question, words)
    assert call.result.outcome == "escalated"
    assert call.result.escalation.reason in ("caller_request", "frustration")
    assert "connect you with an agent" in call.heard_after(at)


@pytest.mark.parametrize("question", ASKED)
def test_cancel_leaves_the_task_with_nothing_done_and_asks_what_else(reach, question, accounts):
    before = accounts.account("48151623").balance_cents
    call, _, at = reach(question, "never mind", "")
    heard = call.heard_after(at)
    assert "What else can I help you with" in heard, heard
    if question in IN_A_TASK:
        assert "I've stopped the" in heard and "Nothing was changed" in heard
        assert not any(task["completed"] for task in call.result.tasks if task["task"] != "balance")
    assert call.result.escalation is None
    assert accounts.account("48151623").balance_cents == before  # nothing posted


@pytest.mark.parametrize("question", ASKED)
def test_switching_task_serves_the_new_one_at_once(reach, question):
    call, _, at = reach(question, "actually I'd rather hear what I owe")
    heard = call.heard_after(at)
    if question in IDENTIFIED:  # no second identification
        assert "Your balance" in heard and "account number" not in heard, heard
    else:
        assert "account number" in heard or "PIN" in heard, heard
    assert call.result.task == "balance"
    left = [t for t in call.result.tasks if t["task"] != "balance"]
    assert all(not t["completed"] for t in left[-1:]), call.result.tasks


REPEAT = ["say that again", "sorry, what was that?", "can you repeat that"]


@pytest.mark.parametrize("question, words", [(q, REPEAT[i % len(REPEAT)]) for i, q in enumerate(ASKED)])
def test_repeat_says_the_same_question_again(reach, question, words):
    call, asked, at = reach(question, words)
    again = call.turns[at + 1].bot
    assert again[-1].split(".")[-2:] == asked.split(".")[-2:], f"{question}: asked {asked!r}, then {again}"
    assert call.result.escalation is None and len(again) == 1, again  # the question alone: no "didn't catch"


@pytest.mark.parametrize("question", ASKED)
def test_help_explains_then_asks_the_same_question(reach, question):
    call, asked, at = reach(question, "what can I say")
    again = call.turns[at + 1].bot
    assert len(again) >= 2 and again[0] != asked, again
    assert again[-1].split(".")[-2:] == asked.split(".")[-2:], f"{question}: asked {asked!r}, then {again}"
    assert call.result.escalation is None


@pytest.mark.parametrize("question", ASKED)
def test_wait_takes_time_then_asks_again_without_counting_a_failure(reach, question):
    call, asked, at = reach(question, "hold on, let me find it", "", "", "")
    assert "take your time" in call.heard_after(at).lower()
    assert "still here" in call.heard_after(at + 1) and "still here" in call.heard_after(at + 2)
    again = call.turns[at + 4].bot
    assert again[-1].split(".")[-2:] == asked.split(".")[-2:], f"{question}: asked {asked!r}, then {again}"
    assert len(again) == 1, again  # the question alone: no "didn't catch", no offer of an agent
    assert call.result.escalation is None


@pytest.mark.parametrize("question", ASKED)
def test_not_knowing_the_answer_is_explained_and_a_person_offered(reach, question):
    call, _, at = reach(question, "I don't know")
    heard = call.heard_after(at)
    assert "agent" in heard and heard.rstrip().endswith("?"), heard
    assert call.result.escalation is None


CLOSING = ["nope, that's it", "no thanks, bye", "that's everything"]
# At a yes/no question a leading "no" answers it ("nope, that's it" at "Is that right?" is a no).
YES_NO_CLOSING = ["that's everything, goodbye", "that's all for today, bye"]


def closing(index: int, question: str) -> str:
    words = YES_NO_CLOSING if SETTINGS.prompts[question].expects.kind == "yes_no" else CLOSING
    return words[index % len(words)]


@pytest.mark.parametrize("question, words", [(q, closing(i, q)) for i, q in enumerate(ASKED)])
def test_closing_says_goodbye_and_ends_the_call(reach, question, words):
    call, _, at = reach(question, words)
    assert "Goodbye" in call.heard_after(at)
    assert call.result.outcome in ("ended", "self_served") and call.result.escalation is None


@pytest.mark.parametrize("question", ASKED)
def test_silence_never_picks_an_option(reach, question, accounts):
    call, asked, at = reach(question, "")
    again = call.turns[at + 1].bot
    if question == "utter_offer_agent":  # a fourth silence in a row: a person will do better (existing rule)
        assert call.result.escalation and call.result.escalation.reason == "no_input"
        return
    assert call.result.escalation is None and not call.result.outcome == "ended"
    plain = question.removesuffix("_rephrase")
    same = {_response_text(plain), *([_response_text(f"{plain}_rephrase")] if f"{plain}_rephrase" in ASKED else [])}
    if question == "utter_offer_declined":  # a statement, not a question: the menu's question
        same = {_response_text("utter_greet_rephrase")}
    assert any(again[-1].startswith(text) for text in same), f"{question}: asked {asked!r}, then {again}"


@pytest.mark.parametrize("question", ASKED)
def test_a_need_the_bot_cannot_serve_is_said_and_a_person_offered(reach, question):
    call, _, at = reach(question, "my internet has been down since yesterday")
    heard = call.heard_after(at)
    assert "can't help with that" in heard and "agent" in heard and heard.endswith("?"), heard
    assert "account number" not in heard


def test_declining_the_offer_mid_task_carries_on_where_it_stopped(reach):
    call, _, at = reach("utter_ask_amount_cents", "I don't know", "no")
    heard = call.heard_after(at + 1)
    assert "carry on" in heard and "How much would you like to pay" in heard, heard


@pytest.mark.parametrize("question, correction, then", [
    ("utter_ask_place_confirmed", "no, it's 10001", "New York"),
    ("utter_ask_payment_confirmed", "no, make it fifty", "$50.00"),
    ("utter_ask_payment_confirmed", "no, make it the full balance", "$120.75"),
    ("utter_ask_address_confirmed", "no, the house number is 352", "352 Oak Street"),
    ("utter_ask_address_confirmed", "no, it's 9 elm street", "9 Elm Street"),
    ("utter_ask_wrong_part", "the house number is 352", "352 Oak Street"),
])
def test_a_correction_takes_the_new_value_from_the_same_words(reach, question, correction, then):
    call, asked, at = reach(question, correction)
    heard = call.heard_after(at)
    assert then in heard and heard.rstrip().endswith("Is that right?"), heard
    assert "ZIP code of your new address" not in heard and "How much" not in heard


def test_an_upset_request_for_a_person_is_handed_over_as_frustration(reach):
    call, _, at = reach("utter_ask_use_card_on_file", "this is ridiculous, I want a real person")
    assert call.result.escalation.reason == "frustration"


def test_no_thats_all_at_the_amount_is_never_the_full_balance(reach, accounts):
    call, _, at = reach("utter_ask_amount_cents", "no, that's all")
    assert "$120.75" not in call.heard_after(at) and "card ending" not in call.heard_after(at)
    assert accounts.account("48151623").balance_cents == 12075


def test_a_card_number_keyed_where_none_was_asked_for_is_kept_nowhere(reach):
    """Keyed at "Shall I use the card ending 4242?" (a misheard "new card"): not a secret prompt."""
    import json

    call, _, at = reach("utter_ask_use_card_on_file", "4111111111111111#")
    kept = json.dumps(call.result.as_dict()) + json.dumps([t.__dict__ for t in call.turns])
    assert "4111111111111111" not in kept and "card ending 1111" in kept
    assert "card ending 4242" in call.heard_after(at)  # the question again: nothing was taken
