"""Who is signed in to the console, and who keeps failing to: agents' sessions beside the agents, SQL here.

Sessions live in the database, not only in the cookie: a cookie copied before sign-out is worth nothing
after it, and a password change or `ivr agents add` ends every session of that agent. The cookie carries a
random token; the database keeps only its hash (a leaked database signs nobody in).

Sign-in failures are counted per agent name and per address in a window; past the limit the name or
address is locked out for a while, even with the right password. Kept in the database so that a restart
or a second console process does not reset the count.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import TIMESTAMP, Column, Index, Integer, MetaData, String, Table, and_, select

from ivr.queue.model import QueueUnavailable
from ivr.storage import LOCK_WAIT_S, Database, DatabaseStore, Schema, now as utc_now, primary_key, to_db, from_db

# The schema, declared once (ivr.storage): a new database is made from these tables; version 1 is them.
_metadata = MetaData()
_sessions = Table("console_sessions", _metadata, primary_key("token_hash", String(64)),
                  Column("agent", String(64), nullable=False), Column("started_at", TIMESTAMP, nullable=False),
                  Column("expires_at", TIMESTAMP, nullable=False), Index("console_sessions_by_agent", "agent"))
_failures = Table("console_sign_in_failures", _metadata, primary_key("who", String(300)),
                  Column("failures", Integer, nullable=False), Column("window_start", TIMESTAMP, nullable=False),
                  Column("locked_until", TIMESTAMP))
SCHEMA = Schema(_metadata)
_MIGRATION_LOCK = 2718281830


@dataclass(frozen=True)
class Limits:
    """How many failed sign-ins a name or an address may have in `window` before `lockout`."""
    per_agent: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)
    shift: timedelta = timedelta(hours=12)  # a session lasts one shift at most


class SessionStore(DatabaseStore):
    def __init__(self, url: str, limits: Limits = Limits(), wait_s: float = LOCK_WAIT_S):
        self._db = Database(url, what="console sessions", schema=SCHEMA,
                            version_table="console_schema_version", migration_lock=_MIGRATION_LOCK,
                            unavailable=QueueUnavailable, wait_s=wait_s)
        self.limits = limits

    # --- sessions ------------------------------------------------------------------------------------------

    def start(self, agent: str, now: Optional[datetime] = None) -> str:
        """A new session for `agent`; returns the token for their cookie."""
        moment, token = now or utc_now(), secrets.token_urlsafe(32)
        with self._db.transaction(write=True) as conn:
            conn.execute(_sessions.insert().values(token_hash=_hash(token), agent=agent, started_at=to_db(moment),
                                                   expires_at=to_db(moment + self.limits.shift)))
        return token

    def agent_of(self, token: str, now: Optional[datetime] = None) -> Optional[str]:
        """Whose session this is, while it lasts and was not ended."""
        if not isinstance(token, str) or not token:
            return None
        with self._db.transaction() as conn:
            row = conn.execute(select(_sessions.c.agent, _sessions.c.expires_at)
                               .where(_sessions.c.token_hash == _hash(token))).first()
        if row is None or from_db(row.expires_at) <= (now or utc_now()):
            return None
        return row.agent

    def end(self, token: str) -> None:
        with self._db.transaction(write=True) as conn:
            conn.execute(_sessions.delete().where(_sessions.c.token_hash == _hash(str(token))))

    def end_all(self, agent: str, now: Optional[datetime] = None) -> int:
        """Every session of `agent` (a new password, changed skills, removed): signed out everywhere.
        Expired sessions of anyone go too."""
        with self._db.transaction(write=True) as conn:
            ended = conn.execute(_sessions.delete().where(_sessions.c.agent == agent)).rowcount
            conn.execute(_sessions.delete().where(_sessions.c.expires_at <= to_db(now or utc_now())))
        return ended

    # --- failed sign-ins -----------------------------------------------------------------------------------

    def locked_for(self, agent: str, address: str, now: Optional[datetime] = None) -> Optional[timedelta]:
        """How much longer this name or address is locked out (None: it may try)."""
        moment = now or utc_now()
        with self._db.transaction() as conn:
            until = conn.execute(select(_failures.c.locked_until).where(and_(
                _failures.c.who.in_(_keys(agent, address)), _failures.c.locked_until > to_db(moment)))).scalars().all()
        return max(from_db(when) for when in until) - moment if until else None

    def failed(self, agent: str, address: str, now: Optional[datetime] = None) -> dict[str, int]:
        """Counts a failed sign-in against the name and the address; locks whichever passes its limit.
        Returns the failures in the window per key (for the audit line)."""
        moment, counts = now or utc_now(), {}
        limits = dict(zip(_keys(agent, address), (self.limits.per_agent, self.limits.per_address)))
        with self._db.transaction(write=True) as conn:
            for who, limit in limits.items():
                row = conn.execute(select(_failures).where(_failures.c.who == who).with_for_update()).first()
                fresh = row is None or from_db(row.window_start) + self.limits.window <= moment
                failures = 1 if fresh else row.failures + 1
                values = dict(failures=failures, window_start=to_db(moment) if fresh else row.window_start,
                              locked_until=to_db(moment + self.limits.lockout) if failures >= limit else None)
                if row is None:
                    conn.execute(_failures.insert().values(who=who, **values))
                else:
                    conn.execute(_failures.update().where(_failures.c.who == who).values(**values))
                counts[who] = failures
        return counts

    def succeeded(self, agent: str) -> None:
        """The right password, not locked: the name's count starts again (the address's runs out by itself)."""
        with self._db.transaction(write=True) as conn:
            conn.execute(_failures.delete().where(_failures.c.who == _keys(agent, "")[0]))


def _keys(agent: str, address: str) -> tuple[str, str]:
    return f"agent:{str(agent)[:64]}", f"address:{address}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
