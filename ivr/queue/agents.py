"""The agents' side of the queue store: who they are, their skills and password, their state. Their SQL lives here.

`AgentDesk` is part of QueueStore (ivr/queue/store.py): the same database, the same transactions, and every
change writes its event row there (`_record`), so the live feed sees agents come and go like callers. The
helpers below take the open connection, for the store's own operations that move an agent (taking a caller
makes them busy, a wrap-up frees them).
"""
from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Iterable, List, Optional, Union

from sqlalchemy import and_, exc, not_, or_, select
from sqlalchemy.engine import Connection

from ivr.accounts.pins import hash_pin as hash_password, pin_matches as password_matches
from ivr.queue.model import AGENT, AGENT_STATES, OFFLINE, ROLES, TAKEN, Agent, AgentBusy, BadAgent, QueueUnavailable
from ivr.queue import routing
from ivr.queue.routing import AGENT_SKILLS, DEESCALATION, CareRules, gives_care
from ivr.queue.schema import agents, entries
from ivr.storage import from_db, now as utc_now, to_db

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LANGUAGE = re.compile(r"[a-z]{2,3}")

Skills = Union[str, Iterable[str]]


class AgentDesk:
    """The agents' operations of QueueStore, which gives them `_transaction`, `_record` and `_db`."""

    def add_agent(self, name: str, password: str, skills: Skills, sip_address: Optional[str] = None,
                  role: Optional[str] = None) -> Agent:
        """A new agent (offline until they set themselves available), or new password and skills (and SIP address
        and role, when given) for an existing one. `role`: agent (the default for someone new) or supervisor."""
        name, skill_text = _agent_name(name), ",".join(agent_skills(skills))
        if role is not None and role not in ROLES:
            raise BadAgent(f"a role is one of {', '.join(ROLES)}, not {role!r}")
        if not isinstance(password, str) or not password:
            raise BadAgent(f"agent {name} needs a password that is not empty")
        if sip_address is not None and not re.fullmatch(r"sips?:\S+", sip_address):
            raise BadAgent(f"a SIP address looks like sip:alice@127.0.0.1:5070, not {sip_address!r}")
        password_hash, moment = hash_password(password), utc_now()
        for attempt in range(2):
            try:
                with self._transaction(write=True) as conn:
                    exists = conn.execute(select(agents.c.name).where(agents.c.name == name)
                                          .with_for_update()).first()
                    values = dict(password_hash=password_hash, skills=skill_text)
                    if sip_address is not None:
                        values["sip_address"] = sip_address
                    if exists:
                        conn.execute(agents.update().where(agents.c.name == name)
                                     .values(**values, **({"role": role} if role else {})))
                    else:
                        conn.execute(agents.insert().values(name=name, state=OFFLINE, state_since=to_db(moment),
                                                             role=role or AGENT, **values))
                    self._record(conn, "agent_added", moment, agent=name, detail=skill_text)
                    return agent_of(agent_row(conn, name))
            except exc.IntegrityError:  # the same name added at the same moment elsewhere: update it instead
                if attempt:
                    raise QueueUnavailable(f"could not add agent {name} in {self._db.where}") from None
        raise AssertionError("unreachable")

    def check_agent(self, name: str, password: str) -> Agent:
        """The agent, when the password is theirs; BadAgent (the same message) for a wrong name or password."""
        with self._transaction() as conn:
            row = conn.execute(select(agents).where(agents.c.name == str(name))).first()
        stored = row.password_hash if row is not None else _no_agent_hash()
        if not password_matches(str(password), stored) or row is None:
            raise BadAgent("unknown agent or wrong password")
        return agent_of(row)

    def agent(self, name: str) -> Agent:
        with self._transaction() as conn:
            return agent_of(agent_row(conn, name))

    def agents(self) -> List[Agent]:
        with self._transaction() as conn:
            return [agent_of(row) for row in conn.execute(select(agents).order_by(agents.c.name)).all()]

    def set_agent_state(self, name: str, state: str, now: Optional[datetime] = None) -> Agent:
        if state not in AGENT_STATES:
            raise BadAgent(f"an agent's state is one of {', '.join(AGENT_STATES)}, not {state!r}")
        moment = now or utc_now()
        with self._transaction(write=True) as conn:
            agent_row(conn, name, lock=True)
            put_state(conn, name, state, moment)
            self._record(conn, "agent_state", moment, agent=name, detail=state)
            return agent_of(agent_row(conn, name))


def agent_skills(given: Skills) -> tuple[str, ...]:
    """"billing,en" or ["en", "billing"] -> ("billing", "en"): at least one language code, and topics."""
    words = given.split(",") if isinstance(given, str) else list(given)
    found = sorted({word.strip().lower() for word in words if isinstance(word, str) and word.strip()})
    wrong = [word for word in found if word not in AGENT_SKILLS and not _LANGUAGE.fullmatch(word)]
    if wrong or not any(_LANGUAGE.fullmatch(word) for word in found):
        raise BadAgent(f"skills are one or more language codes (en, es, …) plus any of {', '.join(AGENT_SKILLS)}, "
                       f"separated by commas, e.g. billing,en; not {given!r}")
    return tuple(found)


def put_state(conn: Connection, name: str, state: str, moment: datetime) -> None:
    """The agent is now `state` (no event row: the operation that moved them writes its own)."""
    conn.execute(agents.update().where(agents.c.name == name).values(state=state, state_since=to_db(moment)))


def staff(conn: Connection) -> list:
    """Every agent's state and skills (comma-separated), for wait estimates."""
    return conn.execute(select(agents.c.state, agents.c.skills)).all()


def carers(conn: Connection) -> list[tuple[str, ...]]:
    """The skills of each de-escalation agent on duty (not offline)."""
    return [tuple(row.skills.split(",")) for row in staff(conn)
            if row.state != OFFLINE and gives_care(row.skills.split(","))]


def care_on_duty(conn: Connection, needs: Iterable[Optional[str]]) -> bool:
    """Some de-escalation agent on duty could take a caller who needs `needs` (ivr.queue.routing.care_on_duty)."""
    return routing.care_on_duty(needs, [(row.state, row.skills.split(",")) for row in staff(conn)])


def not_kept_for_care(conn: Connection, has: Iterable[str], moment: datetime, care: CareRules) -> list:
    """The condition on queue entries leaving out the upset callers still kept for a de-escalation agent who could
    take them, for an agent with skills `has` (nothing to leave out for a de-escalation agent)."""
    if gives_care(has):
        return []
    covered = [and_(entries.c.need_language.in_(skills),
                    or_(entries.c.need_topic.is_(None), entries.c.need_topic.in_(skills))) for skills in carers(conn)]
    if not covered:
        return []
    waited_enough = entries.c.enqueued_epoch <= moment.timestamp() - care.deescalation_wait_s
    return [or_(entries.c.frustration < care.upset_at, waited_enough, not_(or_(*covered)))]


def agent_row(conn: Connection, name: str, lock: bool = False):
    query = select(agents).where(agents.c.name == name)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise BadAgent(f"no agent named {name!r}: add one with  ivr agents add NAME --skills en")
    return row


def agent_free(conn: Connection, name: str):
    """An agent on duty holding nobody: one caller at a time, whatever screen or browser asks (the database's
    unique index queue_one_caller_per_agent keeps it even against a race)."""
    row = _agent_on_duty(conn, name)
    holding = conn.execute(select(entries.c.id).where(and_(entries.c.agent == name, entries.c.state == TAKEN))).scalar()
    if holding is not None:
        raise AgentBusy(f"agent {name} is already with caller {holding}: wrap them up before taking another")
    return row


def agent_of(row) -> Agent:
    return Agent(name=row.name, skills=tuple(row.skills.split(",")), state=row.state,
                 state_since=from_db(row.state_since), sip_address=row.sip_address, role=row.role)


def _agent_on_duty(conn: Connection, name: str):
    row = agent_row(conn, name, lock=True)
    if row.state == OFFLINE:
        raise BadAgent(f"agent {name} is offline: set them available before taking callers")
    return row


def _agent_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadAgent(f"an agent's name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
                       f"or digit; not {name!r}")
    return name


@functools.lru_cache(maxsize=1)
def _no_agent_hash() -> str:
    """A hash to check against for unknown names, so a wrong name takes as long as a wrong password."""
    return hash_password("no such agent")
