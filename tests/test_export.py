"""`ivr calls export --csv`: the calls as a spreadsheet reads them, opened with Python's csv module.

Free text reaches the cells (an escalation reason a dialog developer wrote, a worker's name an operator chose, a
task's name): any cell a spreadsheet would run as a formula is written as text, whatever the column.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from conftest import ivr_command
from ivr.call_result import CallResult
from ivr.events import Escalation
from ivr.queue import QueueStore
from ivr.records import CallRecords
from ivr.reports.export import COLUMNS, safe_cell

NOON = datetime(2026, 11, 3, 12, 0, tzinfo=timezone.utc)
FORMULAS = ("=HYPERLINK(\"http://x.example\",\"click\")", "+1+2", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1")


@pytest.fixture
def var(tmp_path):
    """A var folder with a day of calls: served, an agent's wrap-up, a repeat, junk, surveys, hostile call ids."""
    (tmp_path / "var").mkdir()
    with CallRecords(f"sqlite:///{tmp_path / 'var' / 'calls.db'}") as records, \
            QueueStore(f"sqlite:///{tmp_path / 'var' / 'queue.db'}") as queue:
        queue.add_agent("alice", "a long password", ["en", "billing"])
        queue.set_agent_state("alice", "available", now=NOON - timedelta(days=1))
        records.save(call("paid", 0, "self_served", "bill_pay", number="+15550001111"))
        records.save(call("paid-again", 2, "self_served", "bill_pay", number="+15550001111"))
        records.save(to_alice(queue, "to-alice", 3))
        records.save(call("silent", 4, "ended", None, junk="dead_air"))
        records.save(call("asked", 5, "self_served", "balance", csat={"asked": True, "score": 4, "by": "keypad"},
                          worker="worker-2"))
        records.save(call("skipped", 6, "self_served", "address_change", csat={"asked": True, "score": None,
                                                                                "by": None}))
        for minute, formula in enumerate(FORMULAS, start=10):
            records.save(call(f"hostile-{minute}", minute, "abandoned", None, reason=formula, worker=formula))
    return tmp_path / "var"


@dataclass
class RecordedCall(CallResult):
    """A call with the record's fields from other parts of the product (junk, csat, worker), kept in `more`."""
    more: dict = field(default_factory=dict)

    def as_dict(self):
        return {**super().as_dict(), **self.more}


def call(call_id: str, minutes: int, outcome: str, task, number=None, reason=None, **more) -> CallResult:
    at = NOON + timedelta(minutes=minutes)
    escalation = Escalation(reason, call_id=call_id, channel="sip") if reason else None
    return RecordedCall(call_id, outcome, task, escalation, ["Hello."], [], 42.5, started_at=at,
                        ended_at=at + timedelta(seconds=42.5), channel="sip", caller_number=number,
                        tasks=[{"task": task, "completed": outcome == "self_served"}] if task else [], more=more)


def to_alice(queue: QueueStore, call_id: str, minutes: int) -> CallResult:
    at = NOON + timedelta(minutes=minutes)
    escalation = Escalation("payment_declined", task="bill_pay", call_id=call_id, channel="sip")
    entry = queue.enqueue(escalation, now=at + timedelta(seconds=40)).id
    queue.take(entry, "alice", now=at + timedelta(seconds=50))
    queue.wrap_up(entry, "alice", "follow_up", now=at + timedelta(minutes=5))
    return CallResult(call_id, "escalated", "bill_pay", escalation, ["Hello."], [], 40.0, started_at=at,
                      ended_at=at + timedelta(seconds=40), channel="sip", queue_entry=entry, queue_outcome="taken")


def exported(var, *flags: str) -> list:
    out = var.parent / "calls.csv"
    result = ivr_command("calls", "export", "--csv", out, *flags, env={"IVR_VAR": str(var), "IVR_DATABASE_URL": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"calls: {out} (12 calls)\n"
    with open(out, encoding="utf-8-sig", newline="") as opened:
        return list(csv.DictReader(opened))


def test_one_row_per_call_with_what_a_supervisor_sorts_by(var):
    rows = {row["call_id"]: row for row in exported(var)}
    assert list(next(iter(rows.values()))) == list(COLUMNS)
    assert rows["paid"] == {"call_id": "paid", "channel": "sip", "started_utc": "2026-11-03 12:00:00",
                            "seconds": "42.5", "outcome": "self_served", "task": "bill_pay", "escalation_reason": "",
                            "queue_outcome": "", "agent": "", "disposition": "", "worker": "", "junk": "",
                            "csat_score": "", "resolved": "no", "repeat_of": ""}  # paid again two minutes later
    assert (rows["paid-again"]["resolved"], rows["paid-again"]["repeat_of"]) == ("yes", "paid")
    alice = rows["to-alice"]
    assert (alice["escalation_reason"], alice["queue_outcome"], alice["agent"], alice["disposition"],
            alice["resolved"]) == ("payment_declined", "taken", "alice", "follow_up", "no")
    assert (rows["silent"]["junk"], rows["silent"]["resolved"]) == ("dead_air", "")
    assert (rows["asked"]["csat_score"], rows["asked"]["worker"]) == ("4", "worker-2")
    assert rows["skipped"]["csat_score"] == ""


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_written_as_text(var):
    hostile = exported(var)[-len(FORMULAS):]
    quoted = ["'" + formula for formula in FORMULAS]
    assert [row["escalation_reason"] for row in hostile] == quoted == [row["worker"] for row in hostile]
    assert (safe_cell("alice"), safe_cell(-1.5), safe_cell(None), safe_cell(True)) == ("alice", -1.5, "", "yes")


def test_since_and_standard_output(var):
    result = ivr_command("calls", "export", "--csv", "-", "--since", "2026-11-03T12:05Z",
                         env={"IVR_VAR": str(var), "IVR_DATABASE_URL": ""})
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["call_id"] for row in rows][:2] == ["asked", "skipped"] and len(rows) == 2 + len(FORMULAS)


def test_a_file_that_cannot_be_written_is_one_line(var):
    result = ivr_command("calls", "export", "--csv", var / "no-such-folder" / "calls.csv",
                         env={"IVR_VAR": str(var), "IVR_DATABASE_URL": ""})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"ivr: cannot write {var / 'no-such-folder' / 'calls.csv'}: No such file or directory\n"
