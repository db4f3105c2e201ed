"""Where phone lines hand their callers to the bot: many calls at once in one process.

Listeners (SIP, WebSocket media streams, AudioSocket) turn each incoming call into a Transport
and give it here. The models are loaded once (the Bot); each call gets its own Call and
recognizer. A limit on concurrent calls is kept (a listener asks `has_room()` first, and
refuses the caller its own way: 486 Busy Here, a closed socket). One call's failure is logged
and never touches another.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Optional

from ivr.transports.base import Transport

log = logging.getLogger(__name__)


class Switchboard:
    def __init__(self, bot, max_calls: int = 16):
        if max_calls < 1:
            raise ValueError(f"the maximum of concurrent calls must be 1 or more, not {max_calls}")
        self.bot, self.max_calls = bot, max_calls
        self._calls: dict[str, asyncio.Task] = {}
        self.answered = 0
        self.refused = 0
        self.failed = 0

    @property
    def active(self) -> int:
        return len(self._calls)

    def has_room(self) -> bool:
        if self.active < self.max_calls:
            return True
        self.refused += 1
        return False

    def answer(self, transport: Transport, channel: str, caller_number: Optional[str] = None,
               call_id: Optional[str] = None) -> asyncio.Task:
        """Start the bot on this caller's line; the task ends with the call (its CallResult, or None)."""
        call = self.bot.call(transport, channel, caller_number=caller_number)
        if call_id:
            call.call_id = call_id
        self.answered += 1
        task = asyncio.create_task(self._run(call), name=f"call-{call.call_id}")
        self._calls[call.call_id] = task
        task.add_done_callback(lambda _: self._calls.pop(call.call_id, None))
        return task

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
        tasks = list(self._calls.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
