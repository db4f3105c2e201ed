"""Callers on hold belong to a live call. The process holding calls renews its callers' leases; when a process
dies (kill -9, power cut), its callers' leases run out and any process sweeps them out of the waiting line:
lost, or called back in their old place when their number is known. No agent takes a dead call and no live
caller is told there are phantoms ahead of them.

A restarted process does not wait for the leases of its own dead predecessor on this host: a holder names
its host and process id, and one whose process is gone is swept at once.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from typing import Iterable, Optional

from ivr.queue.model import QueueError
from ivr.queue.store import LEASE_S, QueueStore

log = logging.getLogger(__name__)
RENEW_S = LEASE_S / 3  # two renewals may fail (a busy database) before a live caller's lease runs out


def this_process() -> str:
    """host/pid/nonce: the nonce tells this process from an earlier one that had the same pid."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"


def dead_here(holders: Iterable[str], me: Optional[str] = None) -> list[str]:
    """The holders on this host whose process is gone (or is this process under an earlier nonce)."""
    host = socket.gethostname()
    dead = []
    for holder in holders:
        parts = holder.split("/")
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit() or holder == me:
            continue
        pid = int(parts[1])
        if pid == os.getpid() or not _running(pid):
            dead.append(holder)
    return dead


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class LeaseKeeper:
    """One per process that queues live callers: sweeps what its dead predecessors left, then every RENEW_S
    keeps its own callers' leases and sweeps callers whose calls are gone anywhere (a lease run out) or whose
    process on this host is gone (at once)."""

    def __init__(self, queue: QueueStore):
        self.queue = queue
        self._task: Optional[asyncio.Task] = None
        self._failures = 0

    async def start(self) -> "LeaseKeeper":
        loop = asyncio.get_running_loop()
        try:
            await self._sweep(await loop.run_in_executor(None, self._dead_siblings))
        except QueueError as error:
            log.error("queue: could not look for callers a crash left on hold (%s); their leases will run out", error)
        self._task = asyncio.create_task(self._keep(), name="queue-leases")
        return self

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _keep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                await loop.run_in_executor(None, self.queue.renew_leases)
                # a sibling on this host that died (a cluster's worker killed) is seen now, not when its lease
                # runs out 30-40 s later: its callers should not wait that long behind phantoms
                await self._sweep(await loop.run_in_executor(None, self._dead_siblings))
                self._failures = 0
            except QueueError as error:  # said once per outage, not every 10 s
                self._failures += 1
                if self._failures == 1:
                    log.error("queue: could not renew the leases of callers on hold (%s)", error)

    def _dead_siblings(self) -> list[str]:
        return dead_here(self.queue.holders_waiting(), self.queue.holder)

    async def _sweep(self, dead: Iterable[str] = ()) -> None:
        swept = await asyncio.get_running_loop().run_in_executor(None, self.queue.sweep_lost, list(dead))
        for entry in swept:
            log.warning("queue entry %s: its call was gone (%s); %s", entry.id, entry.escalation.channel,
                        f"a callback to {entry.callback_number} is owed" if entry.callback_number else "lost")
