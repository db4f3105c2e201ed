"""The queue's schema, declared once: the tables the store's SQL is written against, from which a new
database is made, and the upgrades that bring an older one to them (ivr.storage.Schema)."""
from __future__ import annotations

from sqlalchemy import (TIMESTAMP, BigInteger, Boolean, CheckConstraint, Column, ForeignKey, Index, Integer,
                        MetaData, String, Table, Text)
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateColumn, CreateIndex

from ivr.queue.model import ABANDONED, AGENT, AGENT_STATES, CALLBACK, LOST, TAKEN, WAITING, WRAPPED_UP
from ivr.storage import AddColumn, Double, Schema, primary_key, surrogate_key


def _one_of(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


ENTRY_STATES = (WAITING, CALLBACK, TAKEN, WRAPPED_UP, ABANDONED, LOST)

metadata = MetaData()
agents = Table(
    "queue_agents", metadata,
    primary_key("name", String(64)), Column("password_hash", String(200), nullable=False),
    Column("skills", String(200), nullable=False),
    Column("state", String(16), CheckConstraint(_one_of("state", AGENT_STATES)), nullable=False),
    Column("state_since", TIMESTAMP, nullable=False), Column("sip_address", String(200)),
    # Version 3: what the person may see. A supervisor also opens the wallboard; everyone added before was an agent.
    # No CHECK: SQLite keeps one added by ALTER TABLE in a form its own reader misparses; the store checks ROLES.
    Column("role", String(16), nullable=False, server_default=AGENT))
# The caller's Escalation, one column per field; slots and transcript as JSON.
ESCALATION_COLUMNS = (
    Column("reason", String(200), nullable=False), Column("summary", Text, nullable=False),
    Column("task", String(200)), Column("slots", Text, nullable=False), Column("transcript", Text, nullable=False),
    Column("frustration", Double, nullable=False), Column("caller_number", String(200)),
    Column("language", String(200), nullable=False), Column("account", String(200)),
    Column("authenticated", Boolean, nullable=False), Column("call_id", String(200), nullable=False),
    Column("channel", String(200), nullable=False))
entries = Table(
    "queue_entries", metadata,
    surrogate_key(), Column("state", String(16), CheckConstraint(_one_of("state", ENTRY_STATES)), nullable=False),
    Column("priority", Integer, nullable=False), Column("need_language", String(200), nullable=False),
    Column("need_topic", String(16)), *ESCALATION_COLUMNS,
    Column("enqueued_at", TIMESTAMP, nullable=False), Column("enqueued_epoch", Double, nullable=False),
    Column("callback_number", String(64)), Column("agent", String(64), ForeignKey("queue_agents.name")),
    Column("taken_at", TIMESTAMP), Column("connected_at", TIMESTAMP), Column("ended_at", TIMESTAMP),
    Column("disposition", String(32)),
    # Version 2: a queued caller belongs to a live call. The process holding the call renews its lease
    # (held_by, lease_until); a caller whose lease ran out is `lost` (or a callback, when their number is
    # known; lost_at marks it). And an agent holds one caller at a time, kept by the database itself.
    Column("held_by", String(200)), Column("lease_until", Double), Column("lost_at", TIMESTAMP),
    Index("queue_entries_by_state", "state", "enqueued_epoch"), Index("queue_entries_by_time", "enqueued_at"))
by_holder = Index("queue_entries_by_holder", entries.c.held_by)
one_caller_per_agent = Index("queue_one_caller_per_agent", entries.c.agent, unique=True,
                             sqlite_where=entries.c.state == TAKEN, postgresql_where=entries.c.state == TAKEN)
events = Table(
    "queue_events", metadata,
    surrogate_key(), Column("kind", String(32), nullable=False), Column("at", TIMESTAMP, nullable=False),
    Column("entry_id", BigInteger, ForeignKey("queue_entries.id")), Column("agent", String(64)),
    Column("detail", String(200), nullable=False))

_LEASES_AND_ONE_CALLER = [
    CreateIndex(by_holder),
    # An agent who held two callers before this version keeps the newest; the others are owed follow-up.
    """UPDATE queue_entries SET state = 'wrapped_up', disposition = 'follow_up', ended_at = taken_at
        WHERE state = 'taken' AND id NOT IN (SELECT MAX(id) FROM queue_entries WHERE state = 'taken' GROUP BY agent)""",
    CreateIndex(one_caller_per_agent),
]
# Version 2's CHECK, as it set it; the table's (from ENTRY_STATES) is the same until an upgrade changes it.
_V2_STATE_CHECK = "state IN ('waiting', 'callback', 'taken', 'wrapped_up', 'abandoned', 'lost')"
_V2_COLUMNS = ("held_by", "lease_until", "lost_at")


def _rebuild_entries_on_sqlite(conn: Connection) -> None:
    """Version 2 on SQLite, which changes a CHECK only by rebuilding the table (ivr.storage runs this with
    foreign keys off). The new table is queue_entries as SQLite kept its CREATE TABLE, with version 2's
    CHECK and columns: not the whole of `entries`, which may have grown columns a later upgrade adds (that
    upgrade would then find them there already)."""
    def stored(kind: str) -> list:
        return [sql for (sql,) in conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE tbl_name = "
                                                       "'queue_entries' AND type = ? AND sql IS NOT NULL", (kind,))]
    (table,), indexes = stored("table"), stored("index")
    v1_check = "state IN ('waiting', 'callback', 'taken', 'wrapped_up', 'abandoned')"
    if not table.startswith("CREATE TABLE queue_entries (") or v1_check not in table:
        raise ValueError(f"queue_entries is not the version 1 table this upgrade rebuilds: {table}")
    rebuilt = table.replace("CREATE TABLE queue_entries (", "CREATE TABLE queue_entries_v2 (", 1).replace(
        v1_check, _V2_STATE_CHECK, 1).rstrip()[:-1]  # the closing parenthesis: the new columns go before it
    added = ", ".join(str(CreateColumn(entries.c[name]).compile(dialect=conn.dialect)) for name in _V2_COLUMNS)
    kept = ", ".join(column for (_, column, *_) in conn.exec_driver_sql("PRAGMA table_info(queue_entries)"))
    conn.exec_driver_sql(f"{rebuilt},\n        {added})")
    conn.exec_driver_sql(f"INSERT INTO queue_entries_v2 ({kept}) SELECT {kept} FROM queue_entries")
    conn.exec_driver_sql("DROP TABLE queue_entries")
    conn.exec_driver_sql("ALTER TABLE queue_entries_v2 RENAME TO queue_entries")
    for index in indexes:  # dropped with the old table: made again, as they were, on the new one
        conn.exec_driver_sql(index)


SCHEMA = Schema(metadata, upgrades=[
    {
        "sqlite": [_rebuild_entries_on_sqlite, *_LEASES_AND_ONE_CALLER],
        # PostgreSQL named the version 1 CHECK itself (table_column_check); version 2 keeps that name.
        "postgresql": ["ALTER TABLE queue_entries DROP CONSTRAINT queue_entries_state_check",
                       f"ALTER TABLE queue_entries ADD CONSTRAINT queue_entries_state_check CHECK ({_V2_STATE_CHECK})",
                       *(AddColumn(entries.c[name]) for name in _V2_COLUMNS), *_LEASES_AND_ONE_CALLER],
    },
    [AddColumn(agents.c.role)],
])
