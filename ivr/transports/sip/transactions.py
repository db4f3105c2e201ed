"""SIP transactions over UDP (RFC 3261 §17), the little a phone line needs of them.

Server side: the responses we sent, kept a while so a retransmitted request gets the same answer
again (bounded in number and age). Client side: a request we send is retransmitted (T1 doubling)
until a response comes, and its final response is handed to whoever waits for it.
"""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional

from ivr.transports.sip.message import SipMessage

T1, T2 = 0.5, 4.0
TRANSACTION_SECONDS = 64 * T1  # how long a transaction may live (Timer B/F)
MAX_REMEMBERED = 512

Address = tuple  # (host, port)


class SentResponses:
    """The last response sent per (branch, method, peer), for answering retransmissions."""

    def __init__(self, limit: int = MAX_REMEMBERED, seconds: float = TRANSACTION_SECONDS):
        self._sent: OrderedDict[tuple, tuple[float, bytes]] = OrderedDict()
        self._limit, self._seconds = limit, seconds

    def remember(self, key: tuple, data: bytes, now: float) -> None:
        self._sent[key] = (now + self._seconds, data)
        self._sent.move_to_end(key)
        while len(self._sent) > self._limit:
            self._sent.popitem(last=False)

    def recall(self, key: tuple, now: float) -> Optional[bytes]:
        kept = self._sent.get(key)
        if kept is None or kept[0] < now:
            self._sent.pop(key, None)
            return None
        return kept[1]

    def __contains__(self, key: tuple) -> bool:
        return key in self._sent

    def __len__(self) -> int:
        return len(self._sent)


@dataclass
class _Pending:
    final: asyncio.Future
    to: Address  # only responses from its host count
    provisional: bool = False  # a 1xx came: an INVITE is ringing and is not sent again


class ClientTransactions:
    """Requests we sent, by the branch of their Via and their method (a CANCEL shares its INVITE's
    branch), until their final response (or time) is up."""

    def __init__(self, send: Callable[[bytes, Address], None]):
        self._send = send
        self._pending: dict[tuple[str, str], _Pending] = {}

    async def request(self, request: SipMessage, to: Address, timeout: float = TRANSACTION_SECONDS
                      ) -> Optional[SipMessage]:
        """Send until answered; the final response, or None when none came within `timeout`."""
        loop = asyncio.get_running_loop()
        key, invite, data = (request.branch, request.method), request.method == "INVITE", bytes(request)
        pending = self._pending[key] = _Pending(loop.create_future(), to)
        deadline, interval = loop.time() + timeout, T1
        try:
            while True:
                if not (invite and pending.provisional):
                    self._send(data, to)
                left = deadline - loop.time()
                if left <= 0:
                    return None
                try:
                    return await asyncio.wait_for(asyncio.shield(pending.final), min(interval, left))
                except asyncio.TimeoutError:
                    interval = interval * 2 if invite else min(interval * 2, T2)
        finally:
            self._pending.pop(key, None)

    def received(self, response: SipMessage, source: Address) -> bool:
        """A response for one of ours from where we sent it (True), or for nothing we wait on (False)."""
        pending = self._pending.get((response.branch, response.cseq[1]))
        if pending is None or pending.to[0] != source[0]:
            return False
        if response.status < 200:
            pending.provisional = True
        elif not pending.final.done():
            pending.final.set_result(response)
        return True

    def __len__(self) -> int:
        return len(self._pending)
