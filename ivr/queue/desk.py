"""The queue as a call sees it: typed, awaitable, off the event loop. The store is blocking (SQL); a call
must never block its audio, so every operation runs on a worker thread and is awaited."""
from __future__ import annotations

import asyncio
from functools import partial
from contextlib import AbstractContextManager
from typing import Callable, Optional, TypeVar

from ivr.events import Escalation
from ivr.queue import notices
from ivr.queue.model import Agent, Position, QueueEntry

_T = TypeVar("_T")


class QueueDesk:
    def __init__(self, store):
        self.store = store  # ivr.queue.store.QueueStore

    async def _off_loop(self, work: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(None, work)

    async def enqueue(self, escalation: Escalation) -> QueueEntry:
        return await self._off_loop(partial(self.store.enqueue, escalation))

    async def entry(self, entry_id: int) -> QueueEntry:
        return await self._off_loop(partial(self.store.entry, entry_id))

    async def position(self, entry_id: int) -> Position:
        return await self._off_loop(partial(self.store.position, entry_id))

    async def request_callback(self, entry_id: int, number: str) -> QueueEntry:
        return await self._off_loop(partial(self.store.request_callback, entry_id, number))

    async def abandon(self, entry_id: int) -> QueueEntry:
        return await self._off_loop(partial(self.store.abandon, entry_id))

    async def connected(self, entry_id: int) -> QueueEntry:
        return await self._off_loop(partial(self.store.connected, entry_id))

    async def return_to_queue(self, entry_id: int) -> QueueEntry:
        return await self._off_loop(partial(self.store.return_to_queue, entry_id))

    async def agent(self, name: Optional[str]) -> Optional[Agent]:
        return await self._off_loop(partial(self.store.agent, name)) if name else None

    def watch(self, entry_id: int) -> AbstractContextManager[notices.Watch]:
        """While a call holds this caller: woken when the entry changes (taken from any console), at once
        when this process hears the queue's notices (ivr.queue.notices)."""
        return notices.watch(self.store, entry_id)
