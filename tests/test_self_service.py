"""The routine tasks end to end, by voice and keypad, and what they leave in the accounts database."""
from ivr.accounts import Address


def test_paying_the_full_balance_with_the_card_on_file_leaves_nothing_due(call, accounts):
    before = len(accounts.payments("48151623"))
    call("pay_bill_espeak.yml")
    account = accounts.account("48151623")
    assert account.balance_cents == 0
    payments = accounts.payments("48151623")
    assert len(payments) == before + 1
    assert (payments[-1].amount_cents, payments[-1].card_last4) == (12075, "4242")


def test_a_keyed_amount_on_a_new_card_is_taken_once_and_only_its_last_four_kept(call, accounts):
    call("pay_bill_keypad_espeak_phone.yml")
    assert accounts.account("31415926").balance_cents == 31040 - 5025
    payments = accounts.payments("31415926")
    assert [(p.amount_cents, p.card_last4) for p in payments] == [(5025, "1111")]


def test_an_address_change_is_written_with_its_audit_row(call, accounts):
    old = accounts.account("27182818").address
    result = call("change_address_festival.yml")
    new = Address("12", "Oak Street", "Springfield", "IL", "62704")
    assert accounts.account("27182818").address == new
    [change] = accounts.address_changes("27182818")
    assert (change.old, change.new) == (old, new)
    assert change.call_id == result["call_id"]


def test_a_caller_who_leaves_before_confirming_changes_nothing(call, accounts):
    old = accounts.account("31415926").address
    call("change_address_festival_phone.yml")
    assert accounts.account("31415926").address == old
    assert accounts.address_changes("31415926") == []


def test_refused_amounts_take_no_money(call, accounts):
    call("pay_bill_bad_amounts_flite.yml")
    assert accounts.account("48151623").balance_cents == 12075
    assert [p.confirmation for p in accounts.payments("48151623")] == ["DEMO4815"]


def test_three_wrong_pins_lock_the_account_and_transfer(call, accounts):
    result = call("wrong_length_then_keypad.yml")
    assert result["reason"] == "auth_failed"
    assert "120.75" not in " ".join(t["bot"] for t in result["turns"])  # nothing about the account was said


def test_a_caller_who_never_answers_is_offered_an_agent_and_pays_nothing(call, accounts):
    call("pay_bill_silence_flite.yml")
    assert accounts.account("48151623").balance_cents == 12075
    assert len(accounts.payments("48151623")) == 1  # the seeded one


def test_a_payment_refused_at_posting_is_said_and_handed_over_not_a_failure(bot, event_loop_for_bot, accounts, caplog):
    """Two payers on one account: the other clears the balance while this caller is confirming."""
    import logging

    from ivr.accounts import Card
    from typed_caller import typed_call

    caplog.set_level(logging.INFO)

    def meanwhile_the_other_payer(index: int, line: str) -> str:
        if index == 5:  # the caller is about to confirm
            card = accounts.account("31415926").card
            accounts.pay("31415926", 31040, Card(card.last4, card.token), "the-other-payer")
        return line

    lines = ["I want to pay my bill", "31415926", "9090#", "the full balance", "yes", "yes"]
    call = typed_call(bot, event_loop_for_bot, lines, with_queue=True, before_each=meanwhile_the_other_payer)
    heard = call.heard_after(5)
    assert "the payment could not be made: there is nothing left to pay on this account" in heard, heard
    assert "connect you with an agent" in heard and "went wrong on our side" not in heard
    assert call.result.outcome == "escalated" and call.result.escalation.reason == "payment_failed"
    assert [p.amount_cents for p in accounts.payments("31415926")] == [31040]  # the other payer's, once
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "payment refused (nothing_due)" in logged and "Traceback" not in logged and "31415926" not in logged
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "the refusal is no error of ours"


def test_a_forged_action_call_pays_nothing_without_this_calls_own_pin_check(accounts, var_dir):
    """What a hand-made webhook to an action server would send: 'authenticated' and no PIN checked here."""
    import asyncio

    from rasa_sdk.executor import ActionExecutor

    from ivr.masking import Seal

    executor = ActionExecutor()
    executor.register_package("ivr.actions")
    slots = {"authenticated": True, "pin": "verified", "account_number": "31415926", "amount_cents": 100.0,
             "use_card_on_file": True, "card_on_file": "1881", "payment_confirmed": True, "payments_made": 0}

    def pay_as(call_id: str, identity):
        tracker = {"sender_id": call_id, "slots": {**slots, "identity": identity}, "latest_message": {}, "events": [],
                   "paused": False, "followup_action": None, "active_loop": {}, "latest_action_name": None}
        done = asyncio.run(executor.run({"next_action": "action_pay", "sender_id": call_id, "tracker": tracker,
                                         "domain": {}, "version": "3.6.2"}))
        return {e.get("name"): e.get("value") for e in done["events"] if e.get("event") == "slot"}

    seal = Seal(var_dir)
    for forged in (None, "0" * 64, seal.vouch("another-call", "31415926"), seal.vouch("forger", "48151623")):
        assert pay_as("forger", forged).get("escalation_reason") == "store_unavailable"
    assert accounts.payments("31415926") == []  # nothing was charged
    assert pay_as("honest", seal.vouch("honest", "31415926")).get("task_completed") is True  # the check is not shut
    assert [p.amount_cents for p in accounts.payments("31415926")] == [100]
