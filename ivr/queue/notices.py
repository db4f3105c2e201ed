"""A caller on hold is taken: the call holding them learns at once, whichever process or console took them.

On PostgreSQL the store NOTIFYs CHANNEL with the entry id in the very transaction that takes the caller (the
notice leaves at commit, never for a take that rolled back). One listener connection per process, in a thread
blocked on its socket so the event loop never waits, wakes the calls holding that entry. SQLite has no notices:
one task per process reads the queue's new events every POLL_S while any call is on hold.

A notice can be lost (the listener's connection dropped and is reconnecting): once it is back it wakes every
holder to look again, and each holder looks anyway every SAFETY_S. The LISTEN/NOTIFY SQL lives here, the
queue's other SQL in ivr/queue/store.py.
"""
from __future__ import annotations

import asyncio
import logging
import select
import socket
import threading
import weakref
from contextlib import contextmanager
from typing import Iterable, Iterator, Optional

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from ivr.queue.model import QueueError

log = logging.getLogger(__name__)
CHANNEL = "ivr_queue_entries"
POLL_S = 0.2  # SQLite: how often a process with callers on hold reads the queue's new events
SAFETY_S = 5.0  # how often a holding call looks at its caller anyway, in case a notice was lost
UNHEARD_S = 1.0  # how often it looks when its process hears no notices at all (a store opened without them)
KEEPALIVE_S = 5.0  # PostgreSQL: a silent listener asks its connection whether it is still there this often
RECONNECT_S = (0.5, 10.0)  # PostgreSQL: the first and the longest pause before the listener reconnects
NOTIFIED = ("taken",)  # the queue's changes the store notifies of (notify_change): the same on SQLite
_PAGE = 500


def notify_change(conn: Connection, entry_id: int) -> None:
    """In the transaction that changes a caller's entry: tell the process holding them (PostgreSQL; SQLite's
    pollers read the event row the same transaction writes)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, :entry)"), {"channel": CHANNEL, "entry": str(entry_id)})


class Watch:
    """One holding call's ear on its caller's entry: says when it is time to look at the entry again."""

    def __init__(self, entry_id: int, safety_s: float):
        self.entry_id, self.safety_s = entry_id, safety_s
        self._noticed = asyncio.Event()
        self._look_at = float("-inf")  # the first look is due at once

    def notice(self) -> None:
        self._noticed.set()

    def due(self) -> bool:
        return self._noticed.is_set() or asyncio.get_running_loop().time() >= self._look_at

    def looking(self) -> None:
        """The holder reads the entry now: notices until now are answered by what it reads."""
        self._noticed.clear()
        self._look_at = asyncio.get_running_loop().time() + self.safety_s

    async def until_due(self, step: asyncio.Future) -> bool:
        """Until the step (an announcement, a second of music) ends, a notice comes, or a look is due. True:
        look at the entry now."""
        if self.due():
            return True
        noticed = asyncio.ensure_future(self._noticed.wait())
        try:
            done, _ = await asyncio.wait({step, noticed}, return_when=asyncio.FIRST_COMPLETED,
                                         timeout=self._look_at - asyncio.get_running_loop().time())
        finally:
            noticed.cancel()
        return not done or self.due()  # nothing done: the look's time came (a clock's rounding never delays it)


class QueueNotices:
    """This process's notices of changed queue entries, for the calls it holds. One per process and store."""

    def __init__(self, store):
        self.store = store  # ivr.queue.store.QueueStore
        self._watches: dict[int, set[Watch]] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._source = None

    async def start(self) -> "QueueNotices":
        self._loop = asyncio.get_running_loop()
        postgres = self.store.url().startswith("postgresql")
        self._source = _Listener(self) if postgres else _Poller(self)
        await self._source.start()
        _running[self.store] = self
        return self

    async def stop(self) -> None:
        _running.pop(self.store, None)
        if self._source:
            await self._source.stop()

    @contextmanager
    def watch(self, entry_id: int) -> Iterator[Watch]:
        watch = Watch(entry_id, SAFETY_S)
        self._watches.setdefault(entry_id, set()).add(watch)
        try:
            yield watch
        finally:
            self._watches[entry_id].discard(watch)
            if not self._watches[entry_id]:
                del self._watches[entry_id]

    @property
    def watching(self) -> bool:
        return bool(self._watches)

    def wake(self, entry_ids: Iterable[Optional[int]]) -> None:
        """On the loop: the holders of these entries look again."""
        for entry_id in entry_ids:
            for watch in self._watches.get(entry_id, ()):
                watch.notice()

    def wake_all(self) -> None:
        self.wake(list(self._watches))

    def wake_from_thread(self, entry_ids: Optional[list[int]] = None) -> None:
        """From the listener's thread: these entries' holders (None: every holder) look again."""
        try:
            if entry_ids is None:
                self._loop.call_soon_threadsafe(self.wake_all)
            else:
                self._loop.call_soon_threadsafe(self.wake, entry_ids)
        except RuntimeError:  # the loop has closed: nobody is holding anyone
            pass


_running: "weakref.WeakKeyDictionary[object, QueueNotices]" = weakref.WeakKeyDictionary()


@contextmanager
def watch(store, entry_id: int) -> Iterator[Watch]:
    """A watch on a caller's entry: woken by this process's notices when they run, else a look every UNHEARD_S."""
    notices = _running.get(store)
    if notices is None:
        yield Watch(entry_id, UNHEARD_S)
        return
    with notices.watch(entry_id) as watching:
        yield watching


class _Poller:
    """SQLite: the queue's event rows since the last read, every POLL_S while a call holds a caller."""

    def __init__(self, notices: QueueNotices):
        self.notices, self._task, self._after, self._failing = notices, None, 0, False

    async def start(self) -> None:
        self._after = await self._off_loop(self.notices.store.last_event_id)
        self._task = asyncio.create_task(self._poll(), name="queue-notices")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _off_loop(self, work):
        return await asyncio.get_running_loop().run_in_executor(None, work)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            if not self.notices.watching:
                continue  # the place read up to stays: nothing since is missed when a hold begins
            try:
                await self._read()
                self._failing = False
            except QueueError as error:  # holders look every SAFETY_S meanwhile; said once per outage
                if not self._failing:
                    log.error("queue notices: could not read the queue's changes (%s)", error)
                self._failing = True

    async def _read(self) -> None:
        while True:
            changes = await self._off_loop(lambda: self.notices.store.events_after(self._after, _PAGE))
            if changes:
                self._after = changes[-1].id
                self.notices.wake(change.entry_id for change in changes if change.kind in NOTIFIED)
            if len(changes) < _PAGE:
                return


class _Listener:
    """PostgreSQL: one LISTEN connection in a thread of its own; reconnects when the connection drops."""

    def __init__(self, notices: QueueNotices):
        self.notices = notices
        self._engine = create_engine(notices.store.url(), future=True, poolclass=NullPool,
                                     connect_args={"connect_timeout": 5, "application_name": "ivr-notices"})
        self._stopping = threading.Event()
        self._bell, self._bell_rings = socket.socketpair()  # rung to stop the thread out of its select()
        self._thread = threading.Thread(target=self._run, name="queue-notices", daemon=True)
        self._listening = threading.Event()  # set once the first LISTEN has been made
        self._pause, self._failing = RECONNECT_S[0], False

    async def start(self) -> None:
        self._thread.start()
        # a first connection is waited for briefly, so a take right after start is heard; a database that is
        # down does not stop the calls: the listener keeps trying and the holders look every SAFETY_S meanwhile
        await asyncio.get_running_loop().run_in_executor(None, self._listening.wait, KEEPALIVE_S)

    async def stop(self) -> None:
        self._stopping.set()
        self._bell.send(b"x")
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, KEEPALIVE_S + 5)
        self._bell.close()
        self._bell_rings.close()
        self._engine.dispose()

    def _run(self) -> None:
        while not self._stopping.is_set():
            connection = None
            try:
                connection = self._engine.raw_connection()
                self._listen(connection.dbapi_connection)
            except Exception as error:  # noqa: BLE001 - any driver error (a dropped connection) reconnects
                self._lost(error)
                if connection is not None:
                    _close(connection, dead=True)
            else:
                _close(connection)
            self._stopping.wait(self._pause)
            self._pause = min(self._pause * 2, RECONNECT_S[1])

    def _listen(self, driver) -> None:
        driver.autocommit = True
        cursor = driver.cursor()
        cursor.execute(f"LISTEN {CHANNEL}")
        if self._listening.is_set():  # back after losing the connection: takes meanwhile went unheard
            log.warning("queue notices: listening again")
            self.notices.wake_from_thread(None)
        self._listening.set()
        self._pause, self._failing = RECONNECT_S[0], False
        while not self._stopping.is_set():
            ready, _, _ = select.select([driver, self._bell_rings], [], [], KEEPALIVE_S)
            if not ready:
                cursor.execute("SELECT 1")  # a connection that died quietly says so here
                continue
            if self._bell_rings in ready:
                return
            driver.poll()
            changed = [int(notice.payload) for notice in driver.notifies if notice.payload.isdigit()]
            driver.notifies.clear()
            if changed:
                self.notices.wake_from_thread(changed)

    def _lost(self, error: Exception) -> None:
        """Said once per outage; meanwhile each holder looks at its caller every SAFETY_S."""
        if not self._failing and not self._stopping.is_set():
            said = str(error).strip().splitlines()
            log.error("queue notices: the listener lost its database (%s); reconnecting", said[0] if said else error)
        self._failing = True


def _close(connection, dead: bool = False) -> None:
    """`dead`: the connection failed; it is dropped, not rolled back (which would fail again, and be logged)."""
    try:
        connection.invalidate() if dead else connection.close()
    except Exception:  # noqa: BLE001 - a connection already dead cannot be closed cleanly, and need not be
        pass
