"""The live queue: one watcher per process fans queue changes out to every connected browser.

The watcher reads the store's last event id every half second (on a worker thread), so callers queued by
any process sharing the database (another `ivr serve`, `ivr simulate`, a call) show up too. Browsers get
server-sent events: `change` (one per queue event, JSON) and `queue` (the queue table, rendered for them).
A slow browser never holds the others up: it keeps only the newest table and the events it has not read.
"""
from __future__ import annotations

import asyncio
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

from ivr.console.offload import offload
from ivr.queue.model import Agent, QueueEntry, QueueError, QueueEvent

log = logging.getLogger(__name__)

MAX_UNREAD_EVENTS = 2000  # a browser this far behind is dropped; it reconnects and replays from the store


@dataclass(frozen=True)
class QueueSnapshot:
    """The routable callers in routing order and the agents, as of queue event `event_id`."""
    event_id: int
    entries: tuple[QueueEntry, ...]
    agents: tuple[Agent, ...]


def take_snapshot(store) -> QueueSnapshot:
    """Blocking. The event id is read first, so a change made meanwhile is seen again at the next look."""
    event_id = store.last_event_id()
    return QueueSnapshot(event_id, tuple(store.routable()), tuple(store.agents()))


@dataclass(frozen=True)
class Update:
    snapshot: Optional[QueueSnapshot]
    events: tuple[QueueEvent, ...] = ()
    problem: Optional[str] = None  # the queue's database cannot be read; the feed keeps trying


class FeedClosed(Exception):
    pass


class Subscriber:
    """One browser's mailbox: the newest snapshot and the events it has not read yet."""

    def __init__(self):
        self._ready = asyncio.Event()
        self._snapshot: Optional[QueueSnapshot] = None
        self._events: list[QueueEvent] = []
        self._problem: Optional[str] = None
        self._closed = False

    def push(self, update: Update) -> None:
        self._snapshot = update.snapshot or self._snapshot
        self._events.extend(update.events)
        self._problem = update.problem
        if len(self._events) > MAX_UNREAD_EVENTS:
            self._closed = True
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def next(self, timeout: float) -> Optional[Update]:
        """The changes since the last call, or None after `timeout` seconds of quiet."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            return None
        if self._closed:
            raise FeedClosed()
        self._ready.clear()
        update = Update(self._snapshot, tuple(self._events), self._problem)
        self._snapshot, self._events = None, []
        return update


def changes_since(store, after: int) -> list[QueueEvent]:
    """Blocking. Every queue event after `after`, however many."""
    events: list[QueueEvent] = []
    while True:
        batch = store.events_after(after)
        if not batch:
            return events
        events.extend(batch)
        after = batch[-1].id


class QueueFeed:
    def __init__(self, store, interval: float = 0.5, refresh: float = 5.0):
        self._store, self._interval, self._refresh = store, interval, refresh
        self._subscribers: set[Subscriber] = set()
        self._task: Optional[asyncio.Task] = None
        self._latest: Optional[QueueSnapshot] = None

    async def start(self, app=None) -> None:
        self._task = asyncio.create_task(self._watch(), name="queue feed")

    async def stop(self, app=None) -> None:
        for subscriber in list(self._subscribers):
            subscriber.close()
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    @contextmanager
    def subscribe(self) -> Iterator[Subscriber]:
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        seen: Optional[int] = None  # the last queue event sent out
        pushed_at, problem = loop.time(), None
        while True:
            try:
                update = await self._look(seen)
                if update is not None:
                    seen = update.events[-1].id if update.events else update.snapshot.event_id
                elif problem or (self._latest and self._latest.entries and loop.time() - pushed_at >= self._refresh):
                    update = Update(self._latest)  # nothing new, but the waited times move on
                if update is not None:
                    self._publish(update)
                    pushed_at, problem = loop.time(), None
            except QueueError as error:
                if str(error) != problem:
                    log.warning("queue feed: %s", error)
                    self._publish(Update(None, problem=str(error)))
                problem = str(error)
            except Exception:  # noqa: BLE001 - the feed outlives any one bad look at the queue
                log.exception("queue feed: unexpected error; retrying")
            await asyncio.sleep(self._interval)

    async def _look(self, seen: Optional[int]) -> Optional[Update]:
        """What changed since event `seen`, or None. The snapshot may already show changes whose events
        come after those returned: they go out at the next look."""
        if seen is not None and await offload(self._store.last_event_id) == seen:
            return None
        events = await offload(changes_since, self._store, seen) if seen is not None else []
        self._latest = await offload(take_snapshot, self._store)
        return Update(self._latest, tuple(events))

    def _publish(self, update: Update) -> None:
        for subscriber in list(self._subscribers):
            subscriber.push(update)


def event_json(event: QueueEvent) -> str:
    return json.dumps({"id": event.id, "kind": event.kind, "at": event.at.isoformat(), "entry_id": event.entry_id,
                       "agent": event.agent, "detail": event.detail})
