"""Callers handed to people: what the agent is told, how the caller waits, and why the bot transfers.

Scripted callers through the real pipeline (caller voices -> endpointer -> Whisper -> Rasa ->
pyttsx3) into the real queue store (SQLite under the test's var/), checked from the queue's side.
"""
from dataclasses import replace

import pytest

from ivr.dialog.frustration import PROFANITY, FrustrationMeter
from ivr.dialog.settings import DialogError, load_voice_settings
from ivr.events import Escalation, Turn
from ivr.masking import HIDDEN
from ivr.queue.handoff import handoff
from ivr.queue.model import ABANDONED, CALLBACK
from ivr.queue import routing

from conftest import ROOT

PHRASES = load_voice_settings(ROOT / "dialogs").frustration


# -- frustration, turn by turn ------------------------------------------------------------------

def test_a_calm_caller_stays_calm_through_a_whole_task():
    meter = FrustrationMeter(PHRASES)
    for text, intent in [("I want to pay my bill", "pay_bill"), ("4 8 1 5 1 6 2 3", "inform"), ("yes", "affirm"),
                         ("no", "deny"), ("the full balance", "inform"), ("yes that's right", "affirm"),
                         ("no thanks", "deny")]:
        meter.hear(text, intent)
    assert max(meter.history) < 0.3 and not meter.upset


def test_anger_in_words_crosses_the_threshold_at_once():
    meter = FrustrationMeter(PHRASES)
    meter.hear("I want to pay my bill", "pay_bill")
    assert meter.hear("This is ridiculous, I'm sick of this stupid machine", "out_of_scope") >= PHRASES.threshold
    assert meter.upset


@pytest.mark.parametrize("said, profane", [("what the hell is going on with my bill", True),
                                            ("this is bullshit", True), ("son of a bitch", True),
                                            ("this is sh*t", True), ("what the f*ck is this", True),
                                            ("I want to pay my bill", False), ("assess the class schedule", False)])
def test_a_swear_word_or_phrase_from_the_profanity_list_counts_and_words_that_merely_contain_one_do_not(said, profane):
    meter, calm = FrustrationMeter(PHRASES), FrustrationMeter(PHRASES)
    assert (meter.hear(said, "out_of_scope") - calm.hear("I have a question about my account", "out_of_scope")
            >= PROFANITY - 0.01) is profane


def test_repeating_yourself_and_no_after_no_build_up_and_fade():
    meter = FrustrationMeter(PHRASES)
    repeated = [meter.hear("change my address", "change_address") for _ in range(3)]
    assert repeated[0] < 0.05 < repeated[1] < repeated[2]
    meter = FrustrationMeter(PHRASES)
    denied = [meter.hear(text, "deny") for text in ("no", "no", "no that is not it")]
    assert denied == sorted(denied) and denied[-1] > 0.4  # it builds up...
    for _ in range(4):
        meter.hear("yes", "affirm")
    assert meter.score < 0.1  # ...and fades once the call goes well


# -- what the agent is told ----------------------------------------------------------------------

def test_the_handoff_is_one_sentence_with_masked_answers_and_no_secrets():
    turns = [Turn(heard="I want to pay my bill", kind="speech", bot=["Please say your account number."]),
             Turn(heard="48151623", kind="dtmf", bot=["Now your PIN."]),
             Turn(heard=HIDDEN, kind="dtmf", bot=["How much?"]),
             Turn(heard="my card is 4111 1111 1111 1111", kind="speech", bot=["Sorry, I'll get you an agent."])]
    slots = {"account_number": "48151623", "authenticated": True, "amount_cents": 5000, "card_on_file": "4242",
             "pin": '/inform{"sealed": "gAAAAAB..."}', "task": "bill_pay"}
    escalation = handoff(Escalation("payment_failed"), call_id="c1", channel="sip", caller_number="+12175550123",
                         task="bill_pay", slots=slots, greeting=["Hello."], turns=turns, frustration=0.42)
    assert escalation.summary == ("Authenticated caller wants to pay $50.00 on 48…623; the payment was refused; "
                                  "frustration 0.42.")
    assert escalation.slots["account"] == "48…623" and escalation.slots["amount"] == "$50.00"
    assert escalation.account == "48…623" and escalation.authenticated
    shown = repr(escalation)
    assert "48151623" not in shown.replace("(keyed) 48151623", "")  # only the caller's own keyed line has it
    assert "4111" not in shown and "sealed" not in shown and "gAAAA" not in shown
    assert [line.speaker for line in escalation.transcript][:3] == ["bot", "caller", "bot"]
    assert escalation.transcript[-2].text == "my card is card ending 1111"
    assert routing.priority(escalation) == routing.HIGH and routing.skills(escalation) == ("en", "billing")


def test_hold_settings_with_mistakes_are_reported_by_file_and_line(tmp_path):
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "voice.yml").write_text("hold:\n  announce_every_s: 5\n  announcement: 'You are {place} in line'\n"
                                       "frustration:\n  threshold: 3\n")
    with pytest.raises(DialogError) as error:
        load_voice_settings(dialogs)
    message = str(error.value)
    assert f"{dialogs / 'voice.yml'}:2: hold.announce_every_s" in message
    assert f"{dialogs / 'voice.yml'}:3: hold.announcement may only use" in message
    assert f"{dialogs / 'voice.yml'}:5: frustration.threshold" in message


# -- through the real pipeline into the real queue ---------------------------------------------------

def test_an_upset_caller_is_queued_first_with_their_mood_and_words(call, bot):
    result = call("frustrated_caller_flite.yml")
    entry = bot.backstage.queue.entry(result["queue_entry"])
    assert entry.state == ABANDONED  # the scripted caller hung up after the acknowledgement
    assert entry.escalation.reason == "frustration" and entry.escalation.frustration >= 0.7
    assert entry.priority == routing.URGENT and entry.skills == ("en", "billing")
    caller_lines = [line.text for line in entry.escalation.transcript if line.speaker == "caller"]
    assert any("ridiculous" in line.lower() for line in caller_lines)
    record = bot.backstage.records.get(result["call_id"])
    assert record["outcome"] == "escalated" and record["queue_outcome"] == ABANDONED


def test_a_caller_who_keys_a_callback_number_keeps_their_place(call, bot):
    result = call("hold_callback_keypad.yml")
    entry = bot.backstage.queue.entry(result["queue_entry"])
    assert (entry.state, entry.callback_number) == (CALLBACK, "+12175550123")
    assert entry.id in [e.id for e in bot.backstage.queue.routable()]  # still waiting for a person


def test_the_number_from_the_line_is_used_for_a_spoken_callback(call, bot):
    result = call("hold_callback_spoken.yml")
    entry = bot.backstage.queue.entry(result["queue_entry"])
    assert (entry.state, entry.callback_number) == (CALLBACK, "+16175551212")
    assert entry.escalation.caller_number == "+16175551212"


def test_a_failed_identification_hands_over_without_the_pin(call, bot):
    result = call("wrong_length_then_keypad.yml")
    entry = bot.backstage.queue.entry(result["queue_entry"])
    shown = repr(entry.escalation)
    for pin in ("1111", "2222", "3333"):
        assert pin not in shown
    assert entry.escalation.slots.get("account") == "48…623"
