"""The SIP line of `ivr serve --sip HOST:PORT`: callers ring in over SIP/UDP, audio is G.711 over RTP.

An INVITE the line can take (an allowed peer, room on the switchboard, an offer with PCMU or
PCMA) is answered at once (100, 180, 200 with our SDP) and its caller handed to the switchboard
as a SipCall. Keys come as RFC 4733 events or SIP INFO. Either side hangs up with BYE. When the
queue gives the caller to an agent with a SIP address, the line rings the agent's phone itself and
bridges the audio of the two legs until one of them hangs up (ivr/transports/sip/handover.py).

Who may speak is decided from a datagram's source address before it is read (peers.py): new
calls from the allowed networks or a trusted proxy, requests inside a call only from its peer. A
malformed request is answered 400 when it can be, else dropped, with bounded logging.

Written here rather than taken from a library: the asyncio SIP/RTP libraries on PyPI (aiosipua,
aiortp) need Python 3.11 and this product runs on 3.10 (Rasa 3.6); pyVoIP runs a thread per call
and aiosip has not been maintained since 2017.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Optional

from ivr.transports.sip import sdp
from ivr.transports.sip.addresses import LocalHosts
from ivr.transports.sip.call import SipCall
from ivr.transports.sip.dialog import ALLOW, USER_AGENT, Leg, note_received, route_set, transaction, warning
from ivr.transports.sip.dtmf import info_key
from ivr.transports.sip.handover import HandOver
from ivr.transports.sip.media import RtpSession
from ivr.transports.sip.message import (BadMessage, SipMessage, address_uri, host_port, new_tag, parse, parse_uri,
                                        response, tag, without_tag)
from ivr.transports.sip.peers import Peers
from ivr.transports.sip.ports import RtpPorts
from ivr.transports.sip.transactions import T1, T2, TRANSACTION_SECONDS, ClientTransactions, SentResponses

log = logging.getLogger(__name__)

ACCEPT = "application/sdp, application/dtmf-relay, application/dtmf"
NOT_HERE = {"REGISTER", "SUBSCRIBE", "NOTIFY", "MESSAGE", "REFER", "PRACK", "UPDATE", "PUBLISH"}  # 405, not 501
BROKEN_LOGGED = 3  # tracebacks logged in full before only every 1,000th is
Address = tuple  # (host, port)


class SipLine(asyncio.DatagramProtocol):
    """A Listener for `ivr serve` (start/stop) and the UDP protocol of the SIP line; the hand-over's
    Signalling (host, port, local_host, add_leg, request, contact, send, end)."""

    def __init__(self, host: str, port: int, switchboard, allowed, max_legs: Optional[int] = None,
                 trusted_proxies=(), rtp_ports: RtpPorts = RtpPorts()):
        self._host, self._port, self._rtp_ports = host, port, rtp_ports
        self._switchboard, self._peers = switchboard, Peers(allowed, trusted_proxies)
        self._max_legs = max_legs or 2 * switchboard.max_calls + 8  # bridged agent legs count too
        self._transport: Optional[asyncio.DatagramTransport] = None
        self._legs: dict[tuple[str, str], Leg] = {}
        self._no_legs = asyncio.Event()  # draining waits for it: a caller bridged to an agent is a call too
        self._no_legs.set()
        self._sent = SentResponses()
        self._client = ClientTransactions(self.send)
        self._agents = HandOver(self, self._client, self._peers)  # the agent's side: ringing and bridging
        self._tasks: set[asyncio.Task] = set()
        self._addresses = LocalHosts(host)
        self.dropped = 0  # datagrams that were not SIP
        self.broken = 0  # datagrams whose handling failed (a bug of ours, logged boundedly)

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    def rtp_socket(self):
        return self._rtp_ports.bind(self._host)

    def add_leg(self, leg: Leg) -> None:
        self._legs[leg.key] = leg
        self._no_legs.clear()

    @property
    def busy(self) -> bool:
        """Any call on this line, the bot's or one it has put through to an agent and bridges."""
        return bool(self._legs)

    async def idle(self) -> None:
        """Returns once no call is left on this line (at once when there is none)."""
        await self._no_legs.wait()

    async def start(self) -> str:
        from ivr.transports.listeners import ListenError

        loop = asyncio.get_running_loop()
        try:
            self._transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self._host, self._port))
        except OSError as error:
            hint = " (another ivr serve? choose another port)" if "in use" in str(error.strerror) else ""
            raise ListenError(f"cannot listen for SIP on {host_port(self._host, self._port)}: "
                              f"{error.strerror or error}{hint}") from None
        self._port = self._transport.get_extra_info("sockname")[1]
        return f"SIP line: sip:{host_port(self._host, self._port)} (UDP)"

    async def stop(self) -> None:
        for leg in list(self._legs.values()):
            self.end(leg, tell_peer=True)
        if self._tasks:
            _, unfinished = await asyncio.wait(set(self._tasks), timeout=2 * T1)
            for task in unfinished:
                task.cancel()
        if self._transport:
            self._transport.close()

    # -- in: one datagram ------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            self._received(data, addr)
        except Exception:  # noqa: BLE001 - one bad datagram must never take the line down
            self.broken += 1  # a flood of them must not fill the disk: the first few, then one in 1,000
            if self.broken <= BROKEN_LOGGED or self.broken % 1000 == 0:
                log.exception("SIP: a datagram from %s broke its handler; dropped (%d so far)", addr[0], self.broken)

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP: %s", exc)

    def _received(self, data: bytes, addr: Address) -> None:
        if not data.strip():
            return  # a keep-alive (CRLF)
        if not (self._peers.may_call(addr[0]) or any(leg.peer[0] == addr[0] for leg in self._legs.values())):
            self._refuse(data, addr)  # decided from the address alone, before any work on the bytes
            return
        try:
            message = parse(data)
        except BadMessage as error:
            self.dropped += 1
            self._peers.malformed(addr[0], str(error))
            if error.request is not None and error.request.method != "ACK":
                self._reply(error.request, addr, 400, "Bad Request", headers=warning(str(error)), remember=False)
            return
        if not message.is_request:
            self._response(message, addr)
            return
        note_received(message, addr)
        if message.method != "ACK":
            again = self._sent.recall(transaction(message, addr), self._now())
            if again is not None:  # a retransmission: the same answer again
                self.send(again, addr)
                return
        handle = {"INVITE": self._invite, "ACK": self._ack, "BYE": self._bye, "CANCEL": self._cancel,
                  "OPTIONS": self._options, "INFO": self._info}.get(message.method)
        if handle:
            handle(message, addr)
        elif message.method in NOT_HERE:
            self._reply(message, addr, 405, "Method Not Allowed", headers=[("Allow", ALLOW)])
        else:
            self._reply(message, addr, 501, "Not Implemented", headers=[("Allow", ALLOW)])

    def _refuse(self, data: bytes, addr: Address) -> None:
        """A datagram from outside the allowed networks: a request is told 403 (read only to answer it)."""
        self._peers.outsiders(addr[0])
        if data.startswith(b"SIP/2.0"):
            return  # a response: nothing to answer
        try:
            message = parse(data)
        except BadMessage:
            return
        if message.method != "ACK":
            self._reply(message, addr, 403, "Forbidden", remember=False)

    def _in_call(self, request: SipMessage, addr: Address) -> Optional[Leg]:
        """The call an in-dialog request is for, if its sender is that call's peer (or a trusted proxy);
        else None, and 481 (no such call) or 403 (a stranger to it) is answered."""
        leg = self._legs.get((request.call_id, tag(request.get("To") or "")))
        if leg is None:
            if request.method != "ACK":
                self._reply(request, addr, 481, "Call/Transaction Does Not Exist")
            return None
        if not self._peers.in_call(leg.peer[0], addr[0]):
            self._peers.strangers(addr[0], request.method)
            if request.method != "ACK":  # not remembered: a stranger's requests must not crowd out the calls'
                self._reply(request, addr, 403, "Forbidden", headers=warning("not a party to this call"),
                            remember=False)
            return None
        return leg

    # -- requests --------------------------------------------------------------------------------

    def _invite(self, request: SipMessage, addr: Address) -> None:
        if tag(request.get("To") or ""):
            leg = self._in_call(request, addr)
            if leg is not None:
                self._reinvite(leg, request, addr)
            return
        if not self._peers.may_call(addr[0]):  # an agent's phone outside --allow may end its call, not place one
            self._peers.outsiders(addr[0])
            self._reply(request, addr, 403, "Forbidden", remember=False)
            return
        try:
            caller = parse_uri(address_uri(request.get("From")))
            target = address_uri(request.get("Contact") or request.get("From"))
            parse_uri(target)
        except BadMessage as error:
            self._reply(request, addr, 400, "Bad From or Contact", headers=warning(str(error)))
            return
        if not request.body or (request.get("Content-Type") or "").split(";")[0].strip().lower() != "application/sdp":
            self._reply(request, addr, 488, "Not Acceptable Here", headers=warning("an SDP offer is needed"))
            return
        if len(self._legs) >= self._max_legs or self._switchboard.draining:  # a proxy tries another worker
            self._reply(request, addr, 503, "Service Unavailable", headers=[("Retry-After", "30")])
            return
        if not self._switchboard.has_room():
            self._reply(request, addr, 486, "Busy Here")
            return
        self._answer(request, addr, caller.user, target)

    def _answer(self, request: SipMessage, addr: Address, caller_number: str, target: str) -> None:
        local = self.local_host(addr[0])
        try:
            sock = self.rtp_socket()
        except OSError as error:
            log.error("SIP: no port for the audio of a call from %s: %s", addr[0], error)
            self._reply(request, addr, 503, "Service Unavailable")
            return
        origin = sdp.Origin()
        try:
            media, answer = sdp.answer(request.body, local, sock.getsockname()[1], origin)
        except (sdp.BadSdp, sdp.NoCommonCodec) as error:
            sock.close()
            status = (400, "Bad SDP") if isinstance(error, sdp.BadSdp) else (488, "Not Acceptable Here")
            self._reply(request, addr, *status, headers=warning(str(error)))
            return
        media_session = RtpSession(sock, media, addr[0], trust_sdp=self._peers.is_trusted(addr[0]))
        leg = Leg(request.call_id, new_tag(), tag(request.get("From")), without_tag(request.get("To")),
                  without_tag(request.get("From")), target, addr, answer, origin, media_session,
                  cseq=secrets.randbelow(2**16), route=route_set(request))
        self.add_leg(leg)
        self._reply(request, addr, 100, "Trying", remember=False)
        self._reply(request, addr, 180, "Ringing", to_tag=leg.local_tag, remember=False)
        leg.answer = self._reply(request, addr, 200, "OK", to_tag=leg.local_tag, body=answer,
                                 headers=[("Contact", self.contact(local)), ("Allow", ALLOW),
                                          ("Content-Type", "application/sdp")])
        self._spawn(self._until_acknowledged(leg))
        self._spawn(leg.media.start())
        leg.call = SipCall(leg.media, hang_up=lambda: self.end(leg, tell_peer=True),
                           reach=lambda address: self._agents.reach(leg, address))
        leg.media.lost = lambda: self.end(leg, tell_peer=True)
        try:
            self._switchboard.answer(leg.call, "sip", caller_number=caller_number or None,
                                     call_id=f"sip-{leg.local_tag}")
        except Exception:  # noqa: BLE001 - the bot could not take the call: hang up rather than leave it silent
            log.exception("SIP: the switchboard could not take the call from %s", caller_number)
            self.end(leg, tell_peer=True)

    async def _until_acknowledged(self, leg: Leg) -> None:
        """Our 200 OK again (T1 doubling) until the ACK; a caller who never sends it is hung up on."""
        loop = asyncio.get_running_loop()
        deadline, interval = loop.time() + TRANSACTION_SECONDS, T1
        while not (leg.confirmed or leg.ended):
            if loop.time() >= deadline:
                log.info("SIP: no ACK for call %s from %s; hanging up", leg.call_id, leg.peer[0])
                self.end(leg, tell_peer=True)
                return
            await asyncio.sleep(interval)
            if not (leg.confirmed or leg.ended):
                self.send(leg.answer, leg.peer)
            interval = min(interval * 2, T2)

    def _reinvite(self, leg: Leg, request: SipMessage, addr: Address) -> None:
        """A new offer in the dialog (hold, a new address or codec): answer it; the call goes on."""
        if request.body:
            try:
                media, leg.sdp = sdp.answer(request.body, self.local_host(addr[0]), leg.media.port, leg.origin)
            except (sdp.BadSdp, sdp.NoCommonCodec) as error:
                self._reply(request, addr, 488, "Not Acceptable Here", headers=warning(str(error)))
                return
            leg.media.update(media)
        self._reply(request, addr, 200, "OK", body=leg.sdp, headers=[
            ("Contact", self.contact(self.local_host(addr[0]))), ("Allow", ALLOW),
            ("Content-Type", "application/sdp")])

    def _ack(self, request: SipMessage, addr: Address) -> None:
        leg = self._in_call(request, addr)
        if leg is not None:
            leg.confirmed = True

    def _bye(self, request: SipMessage, addr: Address) -> None:
        leg = self._in_call(request, addr)
        if leg is None:
            return
        self._reply(request, addr, 200, "OK")
        self.end(leg, tell_peer=False)

    def _cancel(self, request: SipMessage, addr: Address) -> None:
        # Calls are answered as they arrive, so a CANCEL always comes after our 200 OK: it has no effect
        # (RFC 3261 §9.2) and the caller hangs up with BYE.
        answered = (request.branch or f"{request.call_id} {request.cseq[0]}", "INVITE", addr) in self._sent
        if answered:
            self._reply(request, addr, 200, "OK")
        else:
            self._reply(request, addr, 481, "Call/Transaction Does Not Exist")

    def _options(self, request: SipMessage, addr: Address) -> None:
        """A proxy's health probe (Kamailio's dispatcher): 200 while a call would be taken, else 503."""
        if self._switchboard.takes_calls():
            self._reply(request, addr, 200, "OK", headers=[("Allow", ALLOW), ("Accept", ACCEPT)])
        else:
            self._reply(request, addr, 503, "Service Unavailable", headers=[("Retry-After", "30"), ("Allow", ALLOW)])

    def _info(self, request: SipMessage, addr: Address) -> None:
        leg = self._in_call(request, addr)
        if leg is None:
            return
        kind = request.get("Content-Type") or ""
        key = info_key(kind, request.body)
        if key is None and request.body and kind.split(";")[0].strip().lower() not in ACCEPT:
            self._reply(request, addr, 415, "Unsupported Media Type", headers=[("Accept", ACCEPT)])
            return
        self._reply(request, addr, 200, "OK")
        if key and leg.call:
            leg.call.keyed_by_info(key)

    # -- responses to our requests -----------------------------------------------------------------

    def _response(self, message: SipMessage, addr: Address) -> None:
        if self._client.received(message, addr):
            return
        leg = self._legs.get((message.call_id, tag(message.get("From") or "")))
        if (leg is not None and leg.ack and addr[0] == leg.peer[0] and message.cseq[1] == "INVITE"
                and 200 <= message.status < 300):
            self.send(leg.ack, leg.peer)  # our ACK was lost: the agent's phone sends its 200 OK again

    # -- ending a leg --------------------------------------------------------------------------------

    def end(self, leg: Leg, tell_peer: bool) -> None:
        """This leg is over (BYE sent when `tell_peer`); a leg bridged to it is hung up too, unless it is a
        caller whose call asked them back when their agent hangs up first (SipCall.taken_back)."""
        if leg.ended:
            return
        leg.ended = True
        self._legs.pop(leg.key, None)
        if not self._legs:
            self._no_legs.set()
        if leg.media:
            leg.media.close()
        if tell_peer and leg.remote_tag:
            self._spawn(self._client.request(self.request(leg, "BYE"), leg.peer))
        if leg.call:
            leg.call.hung_up()
        other, leg.other = leg.other, None
        if other is not None:
            other.other = None
            if not (other.call and other.call.taken_back()):  # a caller their call asked back stays on (survey)
                self.end(other, tell_peer=True)

    # -- out ------------------------------------------------------------------------------------------

    def request(self, leg: Leg, method: str, **parts) -> SipMessage:
        """A request of ours in the leg's dialog, from our address as its peer reaches it."""
        return leg.request(method, host_port(self.local_host(leg.peer[0]), self._port), **parts)

    def _reply(self, request: SipMessage, addr: Address, status: int, reason: str, to_tag: str = "",
               headers=None, body: bytes = b"", remember: bool = True) -> bytes:
        if status > 100 and not to_tag and not tag(request.get("To") or ""):
            to_tag = new_tag()  # every response but 100 carries a To tag (RFC 3261 §8.2.6.2)
        data = bytes(response(request, status, reason, to_tag, [*(headers or []), ("Server", USER_AGENT)], body))
        if remember:
            self._sent.remember(transaction(request, addr), data, self._now())
        self.send(data, addr)
        return data

    def send(self, data: bytes, addr: Address) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, addr)

    def contact(self, local: str) -> str:
        return f"<sip:ivr@{host_port(local, self._port)}>"

    def local_host(self, peer_host: str) -> str:
        """Our address as the peer reaches it (for Via, Contact and SDP)."""
        return self._addresses.toward(peer_host)

    def _spawn(self, work) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception():
            log.error("SIP: background work failed", exc_info=task.exception())

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()
