"""The queue's schema, declared once: its migrations (what the database holds) and the tables the store's
SQL is written against. Never edit an applied migration: add one."""
from __future__ import annotations

from typing import List, Mapping, Sequence, Union

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Integer, MetaData, String, Table, Text

_V1_ENTRY_COLUMNS = (
    "id, state, priority, need_language, need_topic, reason, summary, task, slots, transcript, frustration, "
    "caller_number, language, account, authenticated, call_id, channel, enqueued_at, enqueued_epoch, "
    "callback_number, agent, taken_at, connected_at, ended_at, disposition")
_STATES_V2 = "'waiting', 'callback', 'taken', 'wrapped_up', 'abandoned', 'lost'"
# Version 2: a queued caller belongs to a live call. The process holding the call renews its lease
# (held_by, lease_until); a caller whose lease ran out is `lost` (or a callback, when their number is
# known; lost_at marks it). And an agent holds one caller at a time, kept by the database itself.
_LEASES_AND_ONE_CALLER = [
    "CREATE INDEX queue_entries_by_holder ON queue_entries (held_by)",
    # An agent who held two callers before this version keeps the newest; the others are owed follow-up.
    """UPDATE queue_entries SET state = 'wrapped_up', disposition = 'follow_up', ended_at = taken_at
        WHERE state = 'taken' AND id NOT IN (SELECT MAX(id) FROM queue_entries WHERE state = 'taken' GROUP BY agent)""",
    "CREATE UNIQUE INDEX queue_one_caller_per_agent ON queue_entries (agent) WHERE state = 'taken'",
]
_V1: List[str] = [
    """CREATE TABLE queue_agents (
        name VARCHAR(64) PRIMARY KEY,
        password_hash VARCHAR(200) NOT NULL,
        skills VARCHAR(200) NOT NULL,
        state VARCHAR(16) NOT NULL CHECK (state IN ('available', 'busy', 'wrap_up', 'offline')),
        state_since TIMESTAMP NOT NULL,
        sip_address VARCHAR(200))""",
    """CREATE TABLE queue_entries (
        id {id},
        state VARCHAR(16) NOT NULL
            CHECK (state IN ('waiting', 'callback', 'taken', 'wrapped_up', 'abandoned')),
        priority INTEGER NOT NULL,
        need_language VARCHAR(200) NOT NULL,
        need_topic VARCHAR(16),
        reason VARCHAR(200) NOT NULL,
        summary TEXT NOT NULL,
        task VARCHAR(200),
        slots TEXT NOT NULL,
        transcript TEXT NOT NULL,
        frustration DOUBLE PRECISION NOT NULL,
        caller_number VARCHAR(200),
        language VARCHAR(200) NOT NULL,
        account VARCHAR(200),
        authenticated BOOLEAN NOT NULL,
        call_id VARCHAR(200) NOT NULL,
        channel VARCHAR(200) NOT NULL,
        enqueued_at TIMESTAMP NOT NULL,
        enqueued_epoch DOUBLE PRECISION NOT NULL,
        callback_number VARCHAR(64),
        agent VARCHAR(64) REFERENCES queue_agents (name),
        taken_at TIMESTAMP,
        connected_at TIMESTAMP,
        ended_at TIMESTAMP,
        disposition VARCHAR(32))""",
    "CREATE INDEX queue_entries_by_state ON queue_entries (state, enqueued_epoch)",
    "CREATE INDEX queue_entries_by_time ON queue_entries (enqueued_at)",
    """CREATE TABLE queue_events (
        id {id},
        kind VARCHAR(32) NOT NULL,
        at TIMESTAMP NOT NULL,
        entry_id BIGINT REFERENCES queue_entries (id),
        agent VARCHAR(64),
        detail VARCHAR(200) NOT NULL)""",
]
_V2_SQLITE_ENTRIES = _V1[1].replace("CREATE TABLE queue_entries (", "CREATE TABLE queue_entries_v2 (").replace(
    "'waiting', 'callback', 'taken', 'wrapped_up', 'abandoned'", _STATES_V2).replace(
    "disposition VARCHAR(32))", "disposition VARCHAR(32),\n            held_by VARCHAR(200),\n"
    "            lease_until DOUBLE PRECISION,\n            lost_at TIMESTAMP)")
MIGRATIONS: List[Union[Sequence[str], Mapping[str, Sequence[str]]]] = [
    _V1,
    {   # SQLite changes a CHECK only by rebuilding the table (ivr.storage runs this with foreign keys off)
        "sqlite": [_V2_SQLITE_ENTRIES,
                   f"INSERT INTO queue_entries_v2 ({_V1_ENTRY_COLUMNS}) SELECT {_V1_ENTRY_COLUMNS} FROM queue_entries",
                   "DROP TABLE queue_entries",
                   "ALTER TABLE queue_entries_v2 RENAME TO queue_entries",
                   _V1[2], _V1[3], *_LEASES_AND_ONE_CALLER],
        "postgresql": ["ALTER TABLE queue_entries DROP CONSTRAINT queue_entries_state_check",
                       f"ALTER TABLE queue_entries ADD CONSTRAINT queue_entries_state_check CHECK (state IN ({_STATES_V2}))",
                       "ALTER TABLE queue_entries ADD COLUMN held_by VARCHAR(200)",
                       "ALTER TABLE queue_entries ADD COLUMN lease_until DOUBLE PRECISION",
                       "ALTER TABLE queue_entries ADD COLUMN lost_at TIMESTAMP",
                       *_LEASES_AND_ONE_CALLER],
    },
]

metadata = MetaData()
agents = Table(
    "queue_agents", metadata,
    Column("name", String, primary_key=True), Column("password_hash", String), Column("skills", String),
    Column("state", String), Column("state_since", DateTime), Column("sip_address", String))
# The caller's Escalation, one column per field; slots and transcript as JSON.
ESCALATION_COLUMNS = (
    Column("reason", String), Column("summary", Text), Column("task", String), Column("slots", Text),
    Column("transcript", Text), Column("frustration", Float), Column("caller_number", String),
    Column("language", String), Column("account", String), Column("authenticated", Boolean),
    Column("call_id", String), Column("channel", String))
entries = Table(
    "queue_entries", metadata,
    Column("id", BigInteger, primary_key=True), Column("state", String), Column("priority", Integer),
    Column("need_language", String), Column("need_topic", String), *ESCALATION_COLUMNS,
    Column("enqueued_at", DateTime), Column("enqueued_epoch", Float), Column("callback_number", String),
    Column("agent", String), Column("taken_at", DateTime), Column("connected_at", DateTime),
    Column("ended_at", DateTime), Column("disposition", String), Column("held_by", String),
    Column("lease_until", Float), Column("lost_at", DateTime))
events = Table(
    "queue_events", metadata,
    Column("id", BigInteger, primary_key=True), Column("kind", String), Column("at", DateTime),
    Column("entry_id", BigInteger), Column("agent", String), Column("detail", String))
