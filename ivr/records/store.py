"""Call records: every call on any channel, one row per call and one per turn. All of their SQL lives here.

SQLite (the embedded default, `var/calls.db`) or PostgreSQL, chosen by the URL. A record reads back as the
same dict `CallResult.as_dict()` gives, so `ivr calls show --json` and `ivr call --json` agree. Results are
masked by the call before they get here; free text still goes through the one card-number mask on the way
in, so a number said where no prompt expected one never reaches the database either.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from sqlalchemy import (TIMESTAMP, BigInteger, Column, ForeignKey, Index, Integer, MetaData, String, Table, Text, exc,
                        func, select)
from sqlalchemy.engine import Connection

from ivr.masking import mask_card_numbers
from ivr import storage
from ivr.call_result import OUTCOMES
from ivr.storage import Database, DatabaseStore, Double, Schema, from_db, now, surrogate_key, to_db

if TYPE_CHECKING:
    from ivr.call_result import CallResult


# The schema, declared once (ivr.storage): a new database is made from these tables; version 1 is them.
_metadata = MetaData()
_calls = Table(
    "call_records", _metadata,
    surrogate_key(), Column("call_id", String(64), nullable=False, unique=True),
    Column("channel", String(32), nullable=False), Column("caller_number", String(64)),
    Column("started_at", TIMESTAMP, nullable=False), Column("ended_at", TIMESTAMP, nullable=False),
    Column("seconds", Double, nullable=False), Column("outcome", String(20), nullable=False),
    Column("task", String(64)), Column("escalation_reason", String(64)), Column("escalation", Text),
    Column("greeting", Text, nullable=False), Column("queue_entry", BigInteger), Column("queue_outcome", String(20)),
    Column("more", Text, nullable=False),
    Index("call_records_by_start", "started_at"))
_turns = Table(
    "call_turns", _metadata,
    Column("call_id", String(64), ForeignKey("call_records.call_id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True), Column("kind", String(16), nullable=False),
    Column("prompt", String(200), nullable=False), Column("intent", String(200)), Column("turn", Text, nullable=False))
SCHEMA = Schema(_metadata)
SCHEMA_VERSION = SCHEMA.version
_MIGRATION_LOCK = 1414213562  # PostgreSQL advisory lock held while migrating (each store has its own)
# Columns of a call record; anything else CallResult.as_dict() grows is kept as JSON in `more`.
_COLUMNS = ("call_id", "channel", "caller_number", "started_at", "ended_at", "seconds", "outcome", "task",
            "escalation", "greeting", "queue_entry", "queue_outcome", "turns")
# Not free text: a long international number must not be taken for a card.
_NOT_MASKED = {"call_id", "caller_number"}


class RecordsError(Exception):
    """Something about the call records a person can act on; the message says what."""


class RecordsUnavailable(RecordsError):
    """The call records database cannot be reached."""


class UnknownCall(RecordsError):
    def __init__(self, call_id: str):
        super().__init__(f"no call {call_id!r} in the call records (`ivr calls list` shows them)")
        self.call_id = call_id


def database_url(settings, env: Mapping[str, str] = os.environ) -> str:
    """IVR_DATABASE_URL when set (the accounts database; the records have their own tables), else var/calls.db."""
    return storage.database_url(settings, "calls.db", env)


class CallRecords(DatabaseStore):
    """Every call, stored at its end. Safe to share between threads and processes."""

    def __init__(self, url: str):
        self._db = Database(url, what="call records", schema=SCHEMA,
                            version_table="call_records_schema_version", migration_lock=_MIGRATION_LOCK,
                            unavailable=RecordsUnavailable)

    # --- writing -------------------------------------------------------------------------------------------

    def save(self, result: "CallResult") -> None:
        """Store the call; saving the same call id again replaces its record (e.g. once its queue outcome is known).

        A result without times is stamped now: it ended when saved and started `seconds` before.
        """
        if result.outcome not in OUTCOMES:
            raise ValueError(f"a call's outcome is one of {', '.join(OUTCOMES)}, not {result.outcome!r}")
        if not result.call_id:
            raise ValueError("a call record needs the call id")
        ended_at = result.ended_at or now()
        started_at = result.started_at or ended_at - timedelta(seconds=result.seconds)
        record = _masked(result.as_dict())
        escalation = record["escalation"]
        row = dict(
            call_id=result.call_id, channel=record["channel"] or "", caller_number=record["caller_number"],
            started_at=to_db(started_at), ended_at=to_db(ended_at), seconds=record["seconds"],
            outcome=record["outcome"], task=record["task"],
            escalation_reason=escalation["reason"] if escalation else None,
            escalation=json.dumps(escalation) if escalation else None, greeting=json.dumps(record["greeting"]),
            queue_entry=record["queue_entry"], queue_outcome=record["queue_outcome"],
            more=json.dumps({key: value for key, value in record.items() if key not in _COLUMNS}))
        turns = [dict(call_id=result.call_id, number=number, kind=turn["kind"], prompt=turn["prompt"],
                      intent=turn["intent"], turn=json.dumps(turn))
                 for number, turn in enumerate(record["turns"], start=1)]
        try:
            self._write(row, turns)
        except exc.IntegrityError:
            self._write(row, turns)  # the same call saved at the same moment elsewhere: now it is there to replace

    def _write(self, row: Dict[str, Any], turns: List[Dict[str, Any]]) -> None:
        call_id = row["call_id"]
        with self._db.transaction(write=True) as conn:
            exists = conn.execute(select(_calls.c.id).where(_calls.c.call_id == call_id).with_for_update()).first()
            if exists:
                conn.execute(_turns.delete().where(_turns.c.call_id == call_id))
                conn.execute(_calls.update().where(_calls.c.call_id == call_id).values(**row))
            else:
                conn.execute(_calls.insert().values(**row))
            if turns:
                conn.execute(_turns.insert(), turns)

    # --- reading -------------------------------------------------------------------------------------------

    def last(self) -> Optional[Dict[str, Any]]:
        """The most recently started call, or None when there are none."""
        with self._db.transaction() as conn:
            row = conn.execute(select(_calls).order_by(_calls.c.started_at.desc(), _calls.c.id.desc())
                               .limit(1)).first()
            return _record(row, _turns_of(conn, _turns.c.call_id == row.call_id)) if row else None

    def get(self, call_id: str) -> Dict[str, Any]:
        with self._db.transaction() as conn:
            row = conn.execute(select(_calls).where(_calls.c.call_id == call_id)).first()
            if row is None:
                raise UnknownCall(call_id)
            return _record(row, _turns_of(conn, _turns.c.call_id == call_id))

    def calls(self, since: Optional[datetime] = None) -> List[Dict[str, Any]]:
        """Calls started at or after `since` (all when None), oldest first, each with its turns."""
        query = select(_calls).order_by(_calls.c.started_at, _calls.c.id)
        of_calls = None
        if since is not None:
            query = query.where(_calls.c.started_at >= to_db(since))
            of_calls = _turns.c.call_id.in_(select(_calls.c.call_id).where(_calls.c.started_at >= to_db(since)))
        with self._db.transaction() as conn:
            rows = conn.execute(query).all()
            turns = _turns_of(conn, of_calls)
        return [_record(row, turns) for row in rows]

    def outcomes(self, since: datetime) -> List[Dict[str, Any]]:
        """Calls started at or after `since`, oldest first, with only what live figures read (call_id, started_at,
        outcome, task, junk, csat): no turns, so a wallboard may read a busy day every few seconds."""
        query = (select(_calls.c.call_id, _calls.c.started_at, _calls.c.outcome, _calls.c.task, _calls.c.more)
                 .where(_calls.c.started_at >= to_db(since)).order_by(_calls.c.started_at, _calls.c.id))
        with self._db.transaction() as conn:
            rows = conn.execute(query).all()
        return [_outcome(row) for row in rows]

    def counts(self, since: Optional[datetime] = None) -> Dict[str, int]:
        """How calls ended: calls, self_served, escalated, abandoned, ended, and contained (never handed to a
        person: every outcome but escalated)."""
        query = select(_calls.c.outcome, func.count()).group_by(_calls.c.outcome)
        if since is not None:
            query = query.where(_calls.c.started_at >= to_db(since))
        with self._db.transaction() as conn:
            by_outcome = dict(conn.execute(query).all())
        counts = {outcome: by_outcome.get(outcome, 0) for outcome in OUTCOMES}
        counts["calls"] = sum(by_outcome.values())
        counts["contained"] = counts["calls"] - counts["escalated"]
        return counts


def _turns_of(conn: Connection, which) -> Dict[str, List[Dict[str, Any]]]:
    """Turns by call id, in order: those matching the `which` condition, or every call's when None."""
    query = select(_turns).order_by(_turns.c.call_id, _turns.c.number)
    if which is not None:
        query = query.where(which)
    found: Dict[str, List[Dict[str, Any]]] = {}
    for row in conn.execute(query):
        found.setdefault(row.call_id, []).append(json.loads(row.turn))
    return found


def _record(row, turns: Dict[str, List[Dict[str, Any]]]) -> Dict[str, Any]:
    """The stored call as `CallResult.as_dict()` has it."""
    return {
        "call_id": row.call_id, "channel": row.channel, "caller_number": row.caller_number,
        "started_at": from_db(row.started_at).isoformat(), "ended_at": from_db(row.ended_at).isoformat(),
        "outcome": row.outcome, "task": row.task,
        "escalation": json.loads(row.escalation) if row.escalation else None,
        "queue_entry": row.queue_entry, "queue_outcome": row.queue_outcome,
        "greeting": json.loads(row.greeting), "seconds": round(row.seconds, 3),
        "turns": turns.get(row.call_id, []),
        **json.loads(row.more),
    }


def _outcome(row) -> Dict[str, Any]:
    more = json.loads(row.more)
    return {"call_id": row.call_id, "started_at": from_db(row.started_at).isoformat(), "outcome": row.outcome,
            "task": row.task, "junk": more.get("junk"), "csat": more.get("csat")}


def _masked(value):
    """`value` with every string in it through the card-number mask (lists, tuples and dicts walked)."""
    if isinstance(value, str):
        return mask_card_numbers(value)
    if isinstance(value, dict):
        return {key: item if key in _NOT_MASKED else _masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(item) for item in value]
    return value
