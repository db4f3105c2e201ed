"""The escalation queue store: queued callers and the history of every change, with their SQL; the agents'
operations and SQL are in ivr/queue/agents.py (`AgentDesk`, part of QueueStore).

SQLite (the embedded default, `var/queue.db`) or PostgreSQL, chosen by the URL (see ivr/storage.py). Every
operation is one transaction and writes its event row in it, so the live feed and the state never disagree and a
restart loses nothing.

Two agents never get the same caller: on PostgreSQL the next caller is chosen and locked in one statement
(`FOR UPDATE SKIP LOCKED`: an agent skips callers another agent is taking and gets the next one); on SQLite
writers take the database lock up front (BEGIN IMMEDIATE) and so take turns.

Routing order is priority plus ageing, one level per AGEING_SECONDS waited, then first come, first served.
Every caller ages at the same rate, so the order never changes while callers wait: a normal caller is served
before a high one who arrived more than AGEING_SECONDS after them.
"""
from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from typing import Iterable, List, Optional, Sequence

from sqlalchemy import Float, and_, func, literal, or_, select
from sqlalchemy.engine import Connection

from ivr.events import Escalation, TranscriptLine
from ivr.phones import callback_number
from ivr.queue.agents import AgentDesk, agent_free, agent_row, care_on_duty, not_kept_for_care, put_state, staff
from ivr.queue.model import (ABANDONED, AVAILABLE, BUSY, CALLBACK, DISPOSITIONS, LOST, OFFLINE, ROUTABLE, TAKEN,
                             WAITING, WRAPPED_UP, AlreadyTaken, BadAgent, Position, QueueEntry, QueueError, QueueEvent,
                             KeptForCare, QueueUnavailable, UnknownEntry)
from ivr.queue.notices import notify_change
from ivr.queue.routing import AGEING_SECONDS, TOPICS, CareRules, gives_care, priority, skills
from ivr.queue.schema import SCHEMA, entries, events
from ivr.storage import LOCK_WAIT_S, Database, DatabaseStore, from_db, now as utc_now, to_db

_MIGRATION_LOCK = 2718281828  # PostgreSQL advisory lock held while migrating (the accounts store has its own)
_EVENTS_LOCK = 2718281829  # held from writing an event to commit, so event ids are in commit order
LEASE_S = 30.0  # a caller on hold whose call's process has not said "alive" for this long is gone
_RECENT_HANDLED = 20  # wrap-ups whose handle times estimate the wait
DEFAULT_HANDLE_SECONDS = 180.0  # the estimate before any agent has wrapped up a caller


class QueueStore(AgentDesk, DatabaseStore):
    """Queued callers, agents and the queue's history in one database. Safe to share between threads and processes.

    Methods that depend on the time take an optional `now` (timezone-aware), for reports and tests.
    """

    def __init__(self, url: str, wait_s: float = LOCK_WAIT_S, holder: Optional[str] = None,
                 care: CareRules = CareRules()):
        """`holder`: this process, when it queues live callers (ivr.queue.leases): their entries carry a lease it
        renews, so a crash cannot leave them waiting in line for good. `care`: how upset callers are routed."""
        self._db = Database(url, what="queue", schema=SCHEMA, version_table="queue_schema_version",
                            migration_lock=_MIGRATION_LOCK, unavailable=QueueUnavailable, wait_s=wait_s)
        self._transaction = self._db.transaction
        self.holder, self.care = holder, care

    # --- callers -------------------------------------------------------------------------------------------

    def enqueue(self, escalation: Escalation, now: Optional[datetime] = None) -> QueueEntry:
        """Queue the caller with everything the bot knew; priority and skills come from ivr.queue.routing."""
        moment = now or utc_now()
        needed = skills(escalation)
        language, topic = needed[0], (needed[1] if len(needed) > 1 else None)
        if len(needed) > 2 or (topic is not None and topic not in TOPICS):
            raise QueueError(f"a caller needs a language and at most one of {', '.join(TOPICS)}, not {needed}")
        values = dict(state=WAITING, priority=priority(escalation, self.care), need_language=language, need_topic=topic,
                      enqueued_at=to_db(moment), enqueued_epoch=moment.timestamp(), **_escalation_values(escalation))
        if self.holder:
            values.update(held_by=self.holder, lease_until=moment.timestamp() + LEASE_S)
        with self._transaction(write=True) as conn:
            entry_id = conn.execute(entries.insert().values(**values)).inserted_primary_key[0]
            self._record(conn, "enqueued", moment, entry_id=entry_id, detail=escalation.reason)
            return _entry(_entry_row(conn, entry_id))

    def entry(self, entry_id: int) -> QueueEntry:
        with self._transaction() as conn:
            return _entry(_entry_row(conn, entry_id))

    def routable(self, now: Optional[datetime] = None) -> List[QueueEntry]:
        """Callers waiting for an agent (on hold or for a callback), the one to serve first first."""
        with self._transaction() as conn:
            rows = conn.execute(select(entries).where(entries.c.state.in_(ROUTABLE))
                                .order_by(*_routing_order(now))).all()
        return [_entry(row) for row in rows]

    def entries(self, since: Optional[datetime] = None) -> List[QueueEntry]:
        """Every caller ever queued (since `since`), in every state, oldest first."""
        query = select(entries).order_by(entries.c.enqueued_epoch, entries.c.id)
        if since is not None:
            query = query.where(entries.c.enqueued_at >= to_db(since))
        with self._transaction() as conn:
            return [_entry(row) for row in conn.execute(query).all()]

    def position(self, entry_id: int, now: Optional[datetime] = None) -> Position:
        """How many callers who need the same language are served before this one, and about how long that takes:
        recent handle times shared among the agents on duty who speak it. Nobody ahead and an agent free: 0 s.
        A caller no longer waiting is at Position(0, 0.0)."""
        with self._transaction() as conn:
            me = _entry_row(conn, entry_id)
            if me.state not in ROUTABLE:
                return Position(ahead=0, estimated_wait_s=0.0)
            order = conn.execute(select(entries.c.id).where(and_(
                entries.c.state.in_(ROUTABLE), entries.c.need_language == me.need_language))
                .order_by(*_routing_order(now))).scalars().all()
            handled = conn.execute(select(entries.c.taken_at, entries.c.ended_at)
                                   .where(entries.c.state == WRAPPED_UP)
                                   .order_by(entries.c.ended_at.desc(), entries.c.id.desc())
                                   .limit(_RECENT_HANDLED)).all()
            team = staff(conn)
        ahead = order.index(me.id)
        speakers = [agent.state for agent in team if me.need_language in agent.skills.split(",")]
        on_duty = sum(state != OFFLINE for state in speakers)
        free = sum(state == AVAILABLE for state in speakers)
        handle = (sum((row.ended_at - row.taken_at).total_seconds() for row in handled) / len(handled)
                  if handled else DEFAULT_HANDLE_SECONDS)
        return Position(ahead=ahead, estimated_wait_s=max(0, ahead + 1 - free) * handle / max(on_duty, 1))

    def request_callback(self, entry_id: int, number: str, now: Optional[datetime] = None) -> QueueEntry:
        """The caller leaves the line to be called back on `number` (kept as E.164, ivr.phones: the hold's own rule);
        they keep their place in the queue."""
        given, number = number, callback_number(number if isinstance(number, str) else "")
        if number is None:
            raise QueueError(f"a callback number is a phone number we can call, e.g. +1 312 555 0100; not {given!r}")
        moment = now or utc_now()
        with self._transaction(write=True) as conn:
            row = _entry_row(conn, entry_id, lock=True)
            if row.state not in ROUTABLE:
                raise AlreadyTaken(f"caller {entry_id} is {row.state.replace('_', ' ')}: too late for a callback")
            conn.execute(entries.update().where(entries.c.id == entry_id)
                         .values(state=CALLBACK, callback_number=number))
            self._record(conn, "callback", moment, entry_id=entry_id, detail=number)
            return _entry(_entry_row(conn, entry_id))

    def abandon(self, entry_id: int, now: Optional[datetime] = None) -> QueueEntry:
        """The caller on hold hung up. A caller already taken, or waiting for a callback (they hang up on purpose),
        is left as they are and returned."""
        moment = now or utc_now()
        with self._transaction(write=True) as conn:
            row = _entry_row(conn, entry_id, lock=True)
            if row.state != WAITING:
                return _entry(row)
            conn.execute(entries.update().where(entries.c.id == entry_id)
                         .values(state=ABANDONED, ended_at=to_db(moment)))
            self._record(conn, "abandoned", moment, entry_id=entry_id)
            return _entry(_entry_row(conn, entry_id))

    # --- leases: callers on hold belong to a live call -------------------------------------------------------

    def renew_leases(self, now: Optional[datetime] = None) -> int:
        """This process is alive: its callers on hold or being put through stay in line for another LEASE_S.
        No event row: a heartbeat is not a change anyone reads."""
        if not self.holder:
            return 0
        moment = now or utc_now()
        with self._transaction(write=True) as conn:
            return conn.execute(entries.update().where(and_(
                entries.c.held_by == self.holder, entries.c.state.in_((WAITING, TAKEN))))
                .values(lease_until=moment.timestamp() + LEASE_S)).rowcount

    def holders_waiting(self) -> List[str]:
        """The processes holding callers on hold now (ivr.queue.leases finds the dead ones on this host)."""
        with self._transaction() as conn:
            return list(conn.execute(select(entries.c.held_by).distinct().where(and_(
                entries.c.state == WAITING, entries.c.held_by.is_not(None)))).scalars())

    def sweep_lost(self, dead_holders: Iterable[str] = (), now: Optional[datetime] = None) -> List[QueueEntry]:
        """Callers on hold whose call is gone (its process died: the lease ran out, or it is known dead) leave the
        waiting line: a caller whose number is known is called back in their old place, the others are lost."""
        moment = now or utc_now()
        expired = or_(entries.c.lease_until < moment.timestamp(), entries.c.held_by.in_(list(dead_holders)))
        with self._transaction(write=True) as conn:
            gone = conn.execute(select(entries.c.id, entries.c.caller_number).where(and_(
                entries.c.state == WAITING, entries.c.held_by.is_not(None), expired))).all()
            for entry_id, number in gone:
                callback = callback_number(number) if number else None  # "anonymous", an extension: none
                changes = (dict(state=CALLBACK, callback_number=callback) if callback
                           else dict(state=LOST, ended_at=to_db(moment)))
                conn.execute(entries.update().where(entries.c.id == entry_id)
                             .values(lost_at=to_db(moment), **changes))
            if gone:
                self._record(conn, "lost", moment, detail=f"{len(gone)} caller(s) whose call was gone")
            return [_entry(_entry_row(conn, entry_id)) for entry_id, _ in gone]

    # --- agents (their own operations: ivr/queue/agents.py) ----------------------------------------------

    def holding(self, agent_name: str) -> Optional[QueueEntry]:
        """The caller this agent has taken and not yet wrapped up, whichever screen took them."""
        with self._transaction() as conn:
            row = conn.execute(select(entries).where(and_(entries.c.agent == agent_name,
                                                          entries.c.state == TAKEN))).first()
        return _entry(row) if row is not None else None

    def take_next(self, agent_name: str, now: Optional[datetime] = None) -> Optional[QueueEntry]:
        """The agent takes the first caller in routing order whose skills they have (None when there is nobody),
        past the upset callers still kept for a de-escalation agent (ivr.queue.routing)."""
        moment = now or utc_now()
        with self._transaction(write=True) as conn:
            agent = agent_free(conn, agent_name)
            has = agent.skills.split(",")
            query = (select(entries.c.id)
                     .where(and_(entries.c.state.in_(ROUTABLE), entries.c.need_language.in_(has),
                                 or_(entries.c.need_topic.is_(None), entries.c.need_topic.in_(has)),
                                 *not_kept_for_care(conn, has, moment, self.care)))
                     .order_by(*_routing_order(moment)).limit(1))
            if not self._db.sqlite:
                query = query.with_for_update(skip_locked=True)
            entry_id = conn.execute(query).scalar()
            if entry_id is None:
                return None
            return self._take(conn, entry_id, agent_name, moment)

    def take(self, entry_id: int, agent_name: str, now: Optional[datetime] = None) -> QueueEntry:
        """The agent takes this caller. AlreadyTaken when someone else did first or the caller hung up;
        BadAgent when the agent lacks a skill the caller needs."""
        moment = now or utc_now()
        with self._transaction(write=True) as conn:
            agent = agent_free(conn, agent_name)
            row = _entry_row(conn, entry_id, lock=True)
            if row.state not in ROUTABLE:
                by = f" by {row.agent}" if row.agent else ""
                raise AlreadyTaken(f"caller {entry_id} was already {row.state.replace('_', ' ')}{by}")
            missing = [skill for skill in (row.need_language, row.need_topic)
                       if skill and skill not in agent.skills.split(",")]
            if missing:
                raise BadAgent(f"agent {agent_name} lacks {', '.join(missing)}, which caller {entry_id} needs")
            if not gives_care(agent.skills.split(",")) and self.care.kept_for_care(
                    row.frustration, moment.timestamp() - row.enqueued_epoch,
                    care_on_duty(conn, (row.need_language, row.need_topic))):
                raise KeptForCare(f"caller {entry_id} is upset and is kept for a de-escalation agent for up to "
                                  f"{self.care.deescalation_wait_s:g} s after joining the queue")
            return self._take(conn, entry_id, agent_name, moment)

    def connected(self, entry_id: int, now: Optional[datetime] = None) -> QueueEntry:
        """The live caller was put through to their agent (the first time counts)."""
        moment = now or utc_now()
        with self._transaction(write=True) as conn:
            row = _entry_row(conn, entry_id, lock=True)
            if row.state != TAKEN:
                raise QueueError(f"caller {entry_id} is {row.state.replace('_', ' ')}, not with an agent")
            if row.connected_at is None:
                conn.execute(entries.update().where(entries.c.id == entry_id).values(connected_at=to_db(moment)))
                self._record(conn, "connected", moment, entry_id=entry_id, agent=row.agent)
            return _entry(_entry_row(conn, entry_id))

    def return_to_queue(self, entry_id: int, now: Optional[datetime] = None) -> QueueEntry:
        """The agent's phone did not answer: the caller waits again in their old place (enqueued_at kept), and
        the agent, who is not at their phone, goes offline."""
        moment = now or utc_now()
        with self._transaction(write=True) as conn:
            row = _entry_row(conn, entry_id, lock=True)
            if row.state != TAKEN or row.connected_at is not None:
                raise QueueError(f"caller {entry_id} is {row.state.replace('_', ' ')}, not waiting to be put through")
            conn.execute(entries.update().where(entries.c.id == entry_id)
                         .values(state=WAITING, agent=None, taken_at=None))
            put_state(conn, row.agent, OFFLINE, moment)
            self._record(conn, "returned", moment, entry_id=entry_id, agent=row.agent,
                         detail="the agent's phone did not answer")
            return _entry(_entry_row(conn, entry_id))

    def wrap_up(self, entry_id: int, agent_name: str, disposition: str,
                now: Optional[datetime] = None) -> QueueEntry:
        """The agent is done with their caller: the disposition is recorded and the agent is available again
        (one caller at a time). Wrapping up the same caller twice returns it unchanged."""
        if disposition not in DISPOSITIONS:
            raise QueueError(f"a disposition is one of {', '.join(DISPOSITIONS)}, not {disposition!r}")
        moment = now or utc_now()
        with self._transaction(write=True) as conn:
            agent_row(conn, agent_name, lock=True)
            row = _entry_row(conn, entry_id, lock=True)
            if row.agent != agent_name:
                holder = f"{row.agent}'s" if row.agent else row.state.replace("_", " ")
                raise QueueError(f"caller {entry_id} is {holder}, not {agent_name}'s to wrap up")
            if row.state == WRAPPED_UP:
                return _entry(row)
            conn.execute(entries.update().where(entries.c.id == entry_id)
                         .values(state=WRAPPED_UP, ended_at=to_db(moment), disposition=disposition))
            put_state(conn, agent_name, AVAILABLE, moment)
            self._record(conn, "wrapped_up", moment, entry_id=entry_id, agent=agent_name, detail=disposition)
            return _entry(_entry_row(conn, entry_id))

    # --- live feed and history -----------------------------------------------------------------------------

    def last_event_id(self) -> int:
        with self._transaction() as conn:
            return conn.execute(select(func.max(events.c.id))).scalar() or 0

    def events_after(self, event_id: int, limit: int = 500) -> List[QueueEvent]:
        """Changes after `event_id`, oldest first. Ids follow commit order, so a reader that asks again with the
        last id it saw misses nothing."""
        with self._transaction() as conn:
            rows = conn.execute(select(events).where(events.c.id > event_id)
                                .order_by(events.c.id).limit(limit)).all()
        return [QueueEvent(id=row.id, kind=row.kind, at=from_db(row.at), entry_id=row.entry_id, agent=row.agent,
                           detail=row.detail) for row in rows]

    def metrics(self, now: Optional[datetime] = None) -> dict:
        """The manager's figures: callers on hold and waiting for callbacks, the longest current hold, totals,
        every answered caller's wait in seconds (oldest first) and escalations by reason."""
        moment = to_db(now or utc_now())
        with self._transaction() as conn:
            by_state = dict(conn.execute(select(entries.c.state, func.count())
                                         .group_by(entries.c.state)).all())
            oldest = conn.execute(select(func.min(entries.c.enqueued_at))
                                  .where(entries.c.state == WAITING)).scalar()
            answered = conn.execute(select(entries.c.enqueued_at, entries.c.taken_at)
                                    .where(entries.c.taken_at.is_not(None))
                                    .order_by(entries.c.enqueued_epoch, entries.c.id)).all()
            reasons = dict(conn.execute(select(entries.c.reason, func.count())
                                        .group_by(entries.c.reason)).all())
        return {
            "waiting": by_state.get(WAITING, 0),
            "callbacks_pending": by_state.get(CALLBACK, 0),
            "longest_wait_s": max(0.0, (moment - oldest).total_seconds()) if oldest else 0.0,
            "taken_total": len(answered),
            "abandoned_total": by_state.get(ABANDONED, 0),
            "wait_seconds": [(row.taken_at - row.enqueued_at).total_seconds() for row in answered],
            "escalations_by_reason": reasons,
        }

    # --- inside --------------------------------------------------------------------------------------------

    def _take(self, conn: Connection, entry_id: int, agent_name: str, moment: datetime) -> QueueEntry:
        conn.execute(entries.update().where(entries.c.id == entry_id)
                     .values(state=TAKEN, agent=agent_name, taken_at=to_db(moment)))
        put_state(conn, agent_name, BUSY, moment)
        notify_change(conn, entry_id)  # the process holding the caller hears it at commit, whichever console took them
        self._record(conn, "taken", moment, entry_id=entry_id, agent=agent_name)
        return _entry(_entry_row(conn, entry_id))

    def _record(self, conn: Connection, kind: str, moment: datetime, entry_id: Optional[int] = None,
                agent: Optional[str] = None, detail: str = "") -> None:
        """The change's event row: the last statement of every writing transaction."""
        if not self._db.sqlite:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_EVENTS_LOCK})")
        conn.execute(events.insert().values(kind=kind, at=to_db(moment), entry_id=entry_id, agent=agent,
                                             detail=detail[:200]))


def _routing_order(now: Optional[datetime]) -> Sequence:
    """Priority plus ageing, highest first; then first come, first served."""
    epoch = (now or utc_now()).timestamp()
    score = entries.c.priority + (literal(epoch, Float) - entries.c.enqueued_epoch) / AGEING_SECONDS
    return score.desc(), entries.c.enqueued_epoch, entries.c.id


def _entry_row(conn: Connection, entry_id: int, lock: bool = False):
    query = select(entries).where(entries.c.id == entry_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise UnknownEntry(f"no caller {entry_id} in the queue")
    return row


def _escalation_values(escalation: Escalation) -> dict:
    values = {field.name: getattr(escalation, field.name) for field in fields(Escalation)}
    try:
        values["slots"] = json.dumps(dict(escalation.slots), ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise QueueError(f"a caller's slots must be plain values to store: {error}") from error
    values["transcript"] = json.dumps([[line.speaker, line.text] for line in escalation.transcript],
                                      ensure_ascii=False)
    values["frustration"] = float(escalation.frustration)
    values["authenticated"] = bool(escalation.authenticated)
    return values


def _entry(row) -> QueueEntry:
    values = {field.name: getattr(row, field.name) for field in fields(Escalation)}
    values["slots"] = json.loads(row.slots)
    values["transcript"] = tuple(TranscriptLine(speaker, text) for speaker, text in json.loads(row.transcript))
    values["authenticated"] = bool(row.authenticated)
    return QueueEntry(
        id=row.id, escalation=Escalation(**values), priority=row.priority,
        skills=tuple(skill for skill in (row.need_language, row.need_topic) if skill), state=row.state,
        enqueued_at=from_db(row.enqueued_at), callback_number=row.callback_number, agent=row.agent,
        taken_at=from_db(row.taken_at), ended_at=from_db(row.ended_at), disposition=row.disposition,
        connected_at=from_db(row.connected_at), lost_at=from_db(row.lost_at))
