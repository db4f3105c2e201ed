"""`ivr chat`: the typed caller understood as the voice path understands, queued and held on handover."""
import threading

from conftest import ivr_command
from ivr.queue.model import CALLBACK, TAKEN
from typed_caller import TerminalChat, typed_call


def test_typed_answers_are_understood_the_way_spoken_ones_are(bot, event_loop_for_bot, accounts):
    call = typed_call(bot, event_loop_for_bot, ["I want to pay my bill", "four eight one five one six two three",
                                                "2468#", "fifty dollars and twenty-five cents", "yes", "yes"])
    assert "4 8 1 5 1 6 2 3" in call.heard_after(1)
    assert "paying $50.25 with the card ending 4242" in call.heard_after(4)
    assert "payment of $50.25 is done" in call.heard_after(5)
    assert call.result.outcome == "self_served" and call.result.channel == "chat"  # hung up after the payment
    # the account the caller proved, masked: how the reports know them when they call again (first-call resolution)
    assert call.result.as_dict()["account"] == "48…623"


def test_an_account_number_not_proved_by_its_pin_names_no_account_in_the_record(bot, event_loop_for_bot, accounts):
    call = typed_call(bot, event_loop_for_bot, ["what's my balance", "4815 1623", "1111#"])
    assert call.result.as_dict()["account"] is None  # a mistyped number must not join two callers


def test_grouped_digits_dollars_and_keyed_cents(bot, event_loop_for_bot, accounts):
    for amount, heard in (("20 dollars", "$20.00"), ("$50", "$50.00"), ("50", "$50.00"), ("5025#", "$50.25")):
        call = typed_call(bot, event_loop_for_bot, ["pay my bill", "4815 1623", "2468#", amount])
        assert "Thank you. I have account 4 8 1 5 1 6 2 3" in call.heard_after(1), amount
        assert "card ending 4242" in call.heard_after(3), (amount, call.heard_after(3))
        call = typed_call(bot, event_loop_for_bot, ["pay my bill", "4815 1623", "2468#", amount, "yes"])
        assert f"paying {heard} with" in call.heard_after(4), (amount, call.heard_after(4))


def test_a_typed_caller_handed_over_waits_in_the_queue_until_an_agent_takes_them(bot, event_loop_for_bot, accounts):
    queue = bot.backstage.queue
    queue.add_agent("chat-test-agent", "correct horse battery", "en,billing,address")
    queue.set_agent_state("chat-test-agent", "available")
    ended = threading.Event()
    lines = ["I want to check my balance", "let me talk to a person"]

    def read():  # the caller stays on the line; an agent at the console takes them once they are queued
        if lines:
            return lines.pop(0)
        for _ in range(100):  # bounded: the caller is queued right after "I'll connect you"
            waiting = [e for e in queue.routable() if e.escalation.channel == "chat" and e.state == "waiting"]
            if waiting:
                queue.take(waiting[0].id, "chat-test-agent")
                break
            if ended.wait(0.1):
                return None
        ended.wait(30)
        return None

    from ivr.transports.typed import TypedLine

    call = bot.call(TypedLine(read), "chat")
    said = []
    call.on_turn = lambda turn: said.extend(turn.bot)
    try:
        result = event_loop_for_bot.run_until_complete(call.run())
    finally:
        ended.set()
    assert result.outcome == "escalated" and result.queue_outcome == TAKEN and result.channel == "chat"
    assert any("in line" in s for s in said) and said[-1].endswith("Connecting you.")
    entry = queue.entry(result.queue_entry)
    assert entry.state == TAKEN and entry.agent == "chat-test-agent"
    queue.wrap_up(entry.id, "chat-test-agent", "resolved")


def test_ivr_chat_on_the_terminal_holds_and_takes_a_callback(var_dir):
    """A person at the terminal: answers each prompt as it appears, as they would."""
    chat = TerminalChat()
    try:
        chat.until("How can I help")
        chat.say("agent")
        chat.until("in line")
        chat.say("callback")
        chat.until("ten digit number")
        chat.say("2175550123#")
        chat.until("call you back at 2 1 7, 5 5 5, 0 1 2 3")
        chat.process.stdin.close()
        assert chat.process.wait(120) == 0
    finally:
        chat.kill()
    stderr = chat.process.stderr.read()
    assert "escalated; queue entry" in stderr and CALLBACK in stderr, stderr
    record = ivr_command("calls", "last", "--json", timeout=120)
    assert '"channel": "chat"' in record.stdout


def test_a_missing_accounts_database_is_an_apology_and_a_person_never_an_empty_new_one(tmp_path, trained_model):
    """The accounts file deleted (or never seeded): callers are not told they "don't match our records"."""
    var = tmp_path / "var"
    chat = ivr_command("chat", input="check my balance\n48151623\n2468#\n", timeout=240,
                       env={"IVR_VAR": str(var), "IVR_DATABASE_URL": ""})
    assert chat.returncode == 0, chat.stderr
    assert "can't reach your account right now" in chat.stdout and "don't match" not in chat.stdout, chat.stdout
    assert "escalated" in chat.stderr
    assert not (var / "accounts.db").exists()


def test_a_locked_queue_database_is_told_to_the_caller_within_seconds_not_thirty_of_silence(
        bot, event_loop_for_bot, accounts, tmp_path):
    """Another process holds the queue's write lock: the caller promised a person hears the truth."""
    import sqlite3
    from dataclasses import replace

    from ivr.bot import IN_CALL_WAIT_S
    from ivr.queue import QueueStore

    path = tmp_path / "queue.db"
    store = QueueStore(f"sqlite:///{path}", wait_s=IN_CALL_WAIT_S)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # a writer that does not let go
    try:
        busy = replace(bot, backstage=replace(bot.backstage, queue=store))
        call = typed_call(busy, event_loop_for_bot, ["I want a person"], with_queue=True)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        store.close()
    heard = call.heard_after(0)
    assert "connect you with an agent" in heard and "no agent can take your call right now" in heard, heard
    assert call.result.outcome == "escalated" and call.result.queue_outcome == "unavailable"
    assert call.result.queue_entry is None
