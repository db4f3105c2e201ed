"""Call records against real databases (SQLite files, a throwaway PostgreSQL) and through the real `ivr calls`."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import make_url

from conftest import fresh_database, ivr_command
from ivr.call_result import CallResult
from ivr.events import Escalation, TranscriptLine, Turn
from ivr.records import CallRecords, RecordsUnavailable, UnknownCall, database_url
from ivr.config import Settings

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    yield from fresh_database(request, tmp_path, "calls.db")


@pytest.fixture
def records(url):
    with CallRecords(url) as opened:
        yield opened


def escalated_call(call_id="c-escalated", at=T0) -> CallResult:
    escalation = Escalation(reason="caller_request", summary="Wants to pay $50 on the card ending 4242.",
                            task="bill_pay", slots={"amount": "$50.00"},
                            transcript=(TranscriptLine("caller", "pay my bill"), TranscriptLine("bot", "Sure.")),
                            frustration=0.4, caller_number="+15551230000", account="48…623", authenticated=True,
                            call_id=call_id, channel="sip")
    turns = [Turn(said="pay my bill", kind="speech", prompt="utter_greet", heard="pay my bill", intent="pay_bill",
                  confidence=0.93, bot=["What is your account number?"], latency={"asr": 0.02, "dialog": 0.1}),
             Turn(said="dtmf:48151623#", kind="dtmf", prompt="utter_ask_account_number", heard="48151623",
                  intent="inform", confidence=1.0, bot=["And your PIN?"]),
             Turn(kind="dtmf", prompt="utter_ask_pin", heard="[hidden]", intent="inform", confidence=1.0,
                  bot=["Thanks."]),
             Turn(kind="no_input", prompt="utter_ask_amount", bot=["How much would you like to pay?"]),
             Turn(said="agent", prompt="utter_ask_amount", heard="agent please", intent="request_agent",
                  confidence=0.88, bot=["Connecting you with an agent."])]
    return CallResult(call_id, "escalated", "bill_pay", escalation, ["Hello, how can I help?"], turns, 74.25,
                      started_at=at, ended_at=at + timedelta(seconds=74.25), channel="sip",
                      caller_number="+15551230000", queue_entry=7, queue_outcome="waiting")


def self_served_call(call_id="c-served", at=T0 + timedelta(hours=1)) -> CallResult:
    turns = [Turn(said="my balance", prompt="utter_greet", heard="what's my balance", intent="check_balance",
                  confidence=0.97, bot=["Your balance is $120.75."])]
    return CallResult(call_id, "self_served", "balance", None, ["Hello, how can I help?"], turns, 31.0,
                      started_at=at, ended_at=at + timedelta(seconds=31), channel="files")


def as_json(result: CallResult) -> dict:
    return json.loads(json.dumps(result.as_dict()))


def test_a_saved_call_reads_back_as_the_call_result_has_it(records):
    call = escalated_call()
    records.save(call)
    assert records.get(call.call_id) == as_json(call)
    assert records.last() == as_json(call)


def test_saving_a_call_again_replaces_it(records):
    call = escalated_call()
    records.save(call)
    settled = replace(call, queue_outcome="taken", turns=call.turns[:2])
    records.save(settled)
    assert records.get(call.call_id) == as_json(settled)
    assert records.counts()["calls"] == 1


def test_last_get_calls_and_counts(records):
    assert records.last() is None
    assert records.calls() == []
    assert records.counts() == {"calls": 0, "self_served": 0, "escalated": 0, "abandoned": 0, "ended": 0,
                                "contained": 0}
    early, late = escalated_call(), self_served_call()
    abandoned = CallResult("c-hung-up", "abandoned", None, None, ["Hello"], [], 3.5, started_at=T0 + timedelta(days=1),
                           ended_at=T0 + timedelta(days=1, seconds=3.5), channel="websocket")
    for call in (late, abandoned, early):  # saved out of order
        records.save(call)
    assert records.last()["call_id"] == "c-hung-up"
    assert [c["call_id"] for c in records.calls()] == ["c-escalated", "c-served", "c-hung-up"]
    assert [c["call_id"] for c in records.calls(T0 + timedelta(minutes=30))] == ["c-served", "c-hung-up"]
    assert records.calls(T0 + timedelta(minutes=30))[0] == as_json(late)  # turns come with each call
    assert records.counts() == {"calls": 3, "self_served": 1, "escalated": 1, "abandoned": 1, "ended": 0,
                                "contained": 2}
    assert records.counts(since=T0 + timedelta(hours=1)) == {"calls": 2, "self_served": 1, "escalated": 0,
                                                             "abandoned": 1, "ended": 0, "contained": 2}
    with pytest.raises(UnknownCall, match="no call 'nope'"):
        records.get("nope")


def test_card_numbers_in_free_text_never_reach_the_database(url, records, tmp_path, request):
    call = escalated_call()
    said = Turn(said="4111 1111 1111 1111", heard="my card is 4111 1111 1111 1111", intent="nlu_fallback",
                prompt="utter_ask_amount", bot=["Sorry, I did not get that."])
    escalation = replace(call.escalation, summary="Caller said 4111111111111111 aloud.",
                         caller_number="+441234567890123")  # 15 digits: a phone number, left as it is
    records.save(replace(call, turns=[*call.turns, said], escalation=escalation, caller_number="+441234567890123"))
    stored = json.dumps(records.get(call.call_id))
    assert "4111" not in stored and stored.count("card ending 1111") == 3
    assert stored.count("+441234567890123") == 2
    if url.startswith("sqlite"):
        files = b"".join(path.read_bytes() for path in (tmp_path / "var").iterdir())
    else:
        server = request.getfixturevalue("postgres")
        files = server.dump(make_url(url).database) + b"".join(p.read_bytes() for p in server.files())
    assert b"4111111111111111" not in files and b"4111 1111 1111 1111" not in files


def test_a_call_without_times_is_stamped_when_saved(records):
    before = datetime.now(timezone.utc)
    records.save(CallResult("c-no-times", "ended", None, None, [], [], 12.0))
    stored = records.get("c-no-times")
    ended, started = datetime.fromisoformat(stored["ended_at"]), datetime.fromisoformat(stored["started_at"])
    assert before <= ended <= datetime.now(timezone.utc) and ended - started == timedelta(seconds=12)


def test_a_bad_outcome_is_refused(records):
    with pytest.raises(ValueError, match="outcome"):
        records.save(replace(self_served_call(), outcome="great"))
    assert records.last() is None


def test_records_live_beside_the_accounts_and_the_queue_in_one_postgresql_database(postgres):
    from ivr.accounts import Store
    from ivr.accounts.store import SCHEMA as accounts_schema
    from ivr.queue import QueueStore
    from ivr.queue.schema import SCHEMA as queue_schema
    from ivr.records.store import SCHEMA as records_schema

    name = postgres.create_database()
    try:
        with Store(postgres.url(name)) as accounts, QueueStore(postgres.url(name)) as queue, \
                CallRecords(postgres.url(name)) as records:
            records.save(self_served_call())
            # each at its own latest version, however many upgrades it has had
            assert (accounts.schema_version(), queue.schema_version(), records.schema_version()) == \
                (accounts_schema.version, queue_schema.version, records_schema.version)
        with CallRecords(postgres.url(name)) as again:  # opening again migrates nothing twice
            assert again.get("c-served")["outcome"] == "self_served"
    finally:
        postgres.drop_database(name)


def test_an_unreachable_database_is_records_unavailable(tmp_path):
    with pytest.raises(RecordsUnavailable, match="call records database .* is unavailable"):
        CallRecords(f"postgresql+psycopg2://postgres@/calls?host={tmp_path / 'nobody'}&port=5432")


def test_the_database_is_var_calls_db_unless_the_environment_names_one(tmp_path):
    settings = Settings(var_dir=tmp_path)
    assert database_url(settings, env={}) == f"sqlite:///{tmp_path.resolve() / 'calls.db'}"
    assert database_url(settings, env={"IVR_DATABASE_URL": "postgresql+psycopg2://ivr@/ivr"}) == \
        "postgresql+psycopg2://ivr@/ivr"


# --- ivr calls -------------------------------------------------------------------------------------------------

def test_ivr_calls_last_show_and_list(tmp_path):
    env = {"IVR_VAR": str(tmp_path), "IVR_DATABASE_URL": ""}
    empty = ivr_command("calls", "last", env=env)
    assert (empty.returncode, empty.stderr.strip()) == (1, "ivr calls last: no calls recorded yet")
    with CallRecords(f"sqlite:///{tmp_path / 'calls.db'}") as records:
        records.save(escalated_call())
        records.save(self_served_call())

    last = ivr_command("calls", "last", "--json", env=env)
    assert last.returncode == 0, last.stderr
    assert json.loads(last.stdout) == as_json(self_served_call())

    shown = ivr_command("calls", "show", "c-escalated", env=env)
    assert shown.returncode == 0, shown.stderr
    for expected in ("call c-escalated  sip  from +15551230000", "outcome: escalated (caller_request), task bill_pay",
                     "queue entry 7: waiting", "caller: pay my bill   [speech, pay_bill 0.93, at utter_greet]",
                     "caller: [hidden]", "caller: (nothing)   [no_input, at utter_ask_amount]",
                     "bot:    Connecting you with an agent."):
        assert expected in shown.stdout
    assert json.loads(ivr_command("calls", "show", "c-escalated", "--json", env=env).stdout) == \
        as_json(escalated_call())

    listed = ivr_command("calls", "list", env=env)
    assert [line.split()[2] for line in listed.stdout.splitlines()] == ["c-escalated", "c-served"]
    since = ivr_command("calls", "list", "--since", "2026-11-20T10:00", env=env)
    assert [line.split()[2] for line in since.stdout.splitlines()] == ["c-served"]
    none = ivr_command("calls", "list", "--since", "2026-11-21", env=env)
    assert (none.returncode, none.stdout, none.stderr.strip()) == \
        (0, "", "no calls recorded since 2026-11-21T00:00:00+00:00")


def test_ivr_calls_errors_are_one_line(tmp_path):
    env = {"IVR_VAR": str(tmp_path), "IVR_DATABASE_URL": ""}
    unknown = ivr_command("calls", "show", "nope", env=env)
    assert (unknown.returncode, unknown.stderr) == \
        (2, "ivr: no call 'nope' in the call records (`ivr calls list` shows them)\n")
    bad_date = ivr_command("calls", "list", "--since", "last tuesday", env=env)
    assert bad_date.returncode == 2 and bad_date.stderr.count("\n") == 1
    assert "is not a date: use YYYY-MM-DD" in bad_date.stderr
    down = ivr_command("calls", "last", env={**env, "IVR_DATABASE_URL":
                                             f"postgresql+psycopg2://postgres@/calls?host={tmp_path}/none&port=1"})
    assert down.returncode == 2 and down.stderr.startswith("ivr: call records database") and \
        down.stderr.count("\n") == 1
