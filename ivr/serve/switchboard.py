"""Where phone lines hand their callers to the bot: many calls at once in one process.

Listeners (SIP, WebSocket media streams, AudioSocket) turn each incoming call into a Transport
and give it here. The models are loaded once (the Bot); each call gets its own Call and
recognizer. A limit on concurrent calls is kept (a listener asks `has_room()` first, and
refuses the caller its own way: 486 Busy Here, a closed socket). One call's failure is logged
and never touches another.

Draining (a rolling restart, or a worker taken out of a cluster): no new calls are taken, the calls
already here go on to their end, and `emptied()` says when the last one has. Each call's record names
this `worker`, so a supervisor can tell which process answered whom.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Optional

from ivr.transports.base import Transport
from ivr.transports.pacer import TICKS

log = logging.getLogger(__name__)
DECODES = "decodes so far:"
PACING = "pacer ticks late so far (ms: ticks):"


def counted(counts: dict[str, int]) -> str:
    """Counts for the log, grouped by thousands ("12,345"): a run of four digits or more is masked as a
    possible caller secret (ivr/logs.py); `ivr bench calls` reads them back."""
    return json.dumps({_grouped(what): f"{n:,}" for what, n in sorted(counts.items())})


def _grouped(what: str) -> str:
    return f"{int(what):,}" if what.isdigit() else what  # the pacers' late ticks are counted by ms


class Switchboard:
    def __init__(self, bot, max_calls: int = 16, worker: str = ""):
        if max_calls < 1:
            raise ValueError(f"the maximum of concurrent calls must be 1 or more, not {max_calls}")
        self.bot, self.max_calls, self.worker = bot, max_calls, worker
        self.draining = False
        # each call's task and line (a line bridged to an agent is not the bot's now)
        self._calls: dict[str, tuple[asyncio.Task, Transport]] = {}
        self._empty = asyncio.Event()
        self._empty.set()
        self.answered = 0
        self.refused = 0
        self.failed = 0

    @property
    def active(self) -> int:
        """Calls the bot is serving. A caller put through to an agent's phone to come back for the survey keeps
        their call (and the drain waits for them), but while they talk to the agent the bot is idle for them,
        so a new caller is taken; given back, they count again (above max_calls until their call ends:
        the limit turns away new callers, never a caller coming back)."""
        return sum(not getattr(line, "bridged", False) for _, line in self._calls.values())

    @property
    def in_progress(self) -> int:
        """Every call not yet ended, a caller with an agent who will come back included (what a drain waits for)."""
        return len(self._calls)

    def has_room(self) -> bool:
        """Whether a caller ringing now is taken (a refusal is counted)."""
        if self.takes_calls():
            return True
        self.refused += 1
        return False

    def takes_calls(self) -> bool:
        """Whether a call would be taken now: what a proxy's health probe asks (nothing is counted)."""
        return not self.draining and self.active < self.max_calls

    def drain(self) -> None:
        """Take no new calls from now on; the current ones go on to their end."""
        self.draining = True

    async def emptied(self) -> None:
        """Returns once no call is left (at once when there is none)."""
        await self._empty.wait()

    def answer(self, transport: Transport, channel: str, caller_number: Optional[str] = None,
               call_id: Optional[str] = None) -> asyncio.Task:
        """Start the bot on this caller's line; the task ends with the call (its CallResult, or None)."""
        call = self.bot.call(transport, channel, caller_number=caller_number)
        if call_id:
            call.call_id = call_id
        call.worker = self.worker
        self.answered += 1
        task = asyncio.create_task(self._run(call), name=f"call-{call.call_id}")
        self._calls[call.call_id] = task, transport
        self._empty.clear()
        task.add_done_callback(lambda _: self._ended(call.call_id))
        return task

    def _ended(self, call_id: str) -> None:
        self._calls.pop(call_id, None)
        pool = getattr(getattr(self.bot, "recognizer", None), "pool", None)
        if pool is not None:  # where decoding time went, for `ivr -v serve` and `ivr bench calls`
            log.info("%s %s", DECODES, counted(pool.snapshot()))
        log.info("%s %s", PACING, counted(TICKS.snapshot()))  # whether the bot's own loop was late
        if not self._calls:
            self._empty.set()

    async def _run(self, call):
        try:
            return await call.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one caller's broken call must not end anyone else's
            self.failed += 1
            log.exception("call %s on %s failed", call.call_id, call.channel)
            try:
                await call.transport.close()
            except Exception:  # noqa: BLE001
                log.exception("call %s: closing its line failed too", call.call_id)
            return None

    async def close(self) -> None:
        """Hang up every call still running (the process is stopping)."""
        tasks = [task for task, _ in self._calls.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
