"""The SIP line of `ivr serve --sip HOST:PORT`: callers ring in over SIP/UDP, audio is G.711 over RTP.

An INVITE the line can take (an allowed peer, room on the switchboard, an offer with PCMU or
PCMA) is answered at once (100, 180, 200 with our SDP) and its caller handed to the switchboard
as a SipCall. Keys come as RFC 4733 events or SIP INFO. Either side hangs up with BYE. When the
queue gives the caller to an agent with a SIP address, the line rings the agent's phone itself and
bridges the audio of the two legs until one of them hangs up.

Written here rather than taken from a library: the asyncio SIP/RTP libraries on PyPI (aiosipua,
aiortp) need Python 3.11 and this product runs on 3.10 (Rasa 3.6); pyVoIP runs a thread per call
and aiosip has not been maintained since 2017.
"""
from __future__ import annotations

import asyncio
import logging
import re
import secrets
import socket
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

from ivr.transports import network_line, sdp
from ivr.transports.dtmf import info_key
from ivr.transports.media import RtpSession, bind_socket
from ivr.transports.sip_call import SipCall
from ivr.transports.sip_peers import Peers, trusted_proxy
from ivr.transports.sip_message import (BadMessage, SipMessage, address_uri, host_port, new_branch,
                                        new_tag, parse, parse_uri, response, tag, without_tag)
from ivr.transports.sip_transactions import T1, T2, TRANSACTION_SECONDS, ClientTransactions, SentResponses

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"
ACCEPT = "application/sdp, application/dtmf-relay, application/dtmf"
NOT_HERE = {"REGISTER", "SUBSCRIBE", "NOTIFY", "MESSAGE", "REFER", "PRACK", "UPDATE", "PUBLISH"}  # 405, not 501
RING_SECONDS = 30.0  # an agent's phone rings this long before the line gives up
BRIDGE_LATENCY = 0.2  # at most this much audio waits between the two legs of a bridge
USER_AGENT = "ivr"
BROKEN_LOGGED = 3  # tracebacks logged in full before only every 1,000th is
Address = tuple  # (host, port)


def add_arguments(group) -> None:
    """Add this line's flag to `ivr serve`."""
    group.add_argument("--sip", metavar="HOST:PORT", type=network_line.host_port,
                       help="answer SIP calls on this UDP address, e.g. 0.0.0.0:5060 (G.711 mu-law or A-law; "
                            "keypad by RFC 4733 or SIP INFO)")
    group.add_argument("--sip-trusted-proxy", action="append", metavar="ADDRESS", type=trusted_proxy, default=[],
                       help="a SIP proxy or SBC (address or network, repeatable) whose calls are taken and whose "
                            "SDP may send a call's audio to another host (its media relay); anyone else's audio "
                            "goes only to the host the call's signalling comes from")


def wanted(args) -> bool:
    return bool(getattr(args, "sip", None))


def listeners(args, switchboard, allowed) -> list:
    if not wanted(args):
        return []
    host, port = args.sip if isinstance(args.sip, tuple) else network_line.host_port(args.sip)
    return [SipLine(host, port, switchboard, allowed, trusted_proxies=getattr(args, "sip_trusted_proxy", None) or ())]


@dataclass(eq=False)
class Leg:
    """One side of a call in SIP terms: a dialog and its audio."""
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our party in this dialog, without tag (From of our requests)
    remote_uri: str  # theirs (To of our requests)
    target: str  # the Request-URI of our requests in the dialog (their Contact)
    peer: Address  # where their signalling comes from and ours goes
    sdp: bytes  # our side of the session description
    origin: sdp.Origin  # its o= line
    media: Optional[RtpSession] = None
    cseq: int = 1
    call: Optional[SipCall] = None  # the bot's view of a caller
    other: Optional["Leg"] = None  # the leg bridged to this one
    confirmed: bool = False  # ACK received (or sent)
    ended: bool = False
    answer: bytes = b""  # our 200 OK, sent again until the ACK comes
    ack: bytes = b""  # our ACK, sent again if their 200 OK comes again

    @property
    def key(self) -> tuple[str, str]:
        return self.call_id, self.local_tag


class SipLine(asyncio.DatagramProtocol):
    """A Listener for `ivr serve` (start/stop) and the UDP protocol of the SIP line."""

    def __init__(self, host: str, port: int, switchboard, allowed, max_legs: Optional[int] = None,
                 trusted_proxies=()):
        self._host, self._port = host, port
        self._switchboard, self._peers = switchboard, Peers(allowed, trusted_proxies)
        self._max_legs = max_legs or 2 * switchboard.max_calls + 8  # bridged agent legs count too
        self._transport: Optional[asyncio.DatagramTransport] = None
        self._legs: dict[tuple[str, str], Leg] = {}
        self._sent = SentResponses()
        self._client = ClientTransactions(self._send)
        self._tasks: set[asyncio.Task] = set()
        self._local_hosts: OrderedDict[str, str] = OrderedDict()
        self.dropped = 0  # datagrams that were not SIP
        self.broken = 0  # datagrams whose handling failed (a bug of ours, logged boundedly)

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> str:
        from ivr.console.serve import ListenError

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
            self._end(leg, tell_peer=True)
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
                self._reply(error.request, addr, 400, "Bad Request", headers=_warning(str(error)), remember=False)
            return
        if not message.is_request:
            self._response(message, addr)
            return
        _note_received(message, addr)
        if message.method != "ACK":
            again = self._sent.recall(_transaction(message, addr), self._now())
            if again is not None:  # a retransmission: the same answer again
                self._send(again, addr)
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
                self._reply(request, addr, 403, "Forbidden", headers=_warning("not a party to this call"),
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
            self._reply(request, addr, 400, "Bad From or Contact", headers=_warning(str(error)))
            return
        if not request.body or (request.get("Content-Type") or "").split(";")[0].strip().lower() != "application/sdp":
            self._reply(request, addr, 488, "Not Acceptable Here", headers=_warning("an SDP offer is needed"))
            return
        if len(self._legs) >= self._max_legs:
            self._reply(request, addr, 503, "Service Unavailable", headers=[("Retry-After", "30")])
            return
        if not self._switchboard.has_room():
            self._reply(request, addr, 486, "Busy Here")
            return
        self._answer(request, addr, caller.user, target)

    def _answer(self, request: SipMessage, addr: Address, caller_number: str, target: str) -> None:
        local = self._local_host(addr[0])
        try:
            sock = bind_socket(self._host)
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
            self._reply(request, addr, *status, headers=_warning(str(error)))
            return
        media_session = RtpSession(sock, media, addr[0], trust_sdp=self._peers.is_trusted(addr[0]))
        leg = Leg(request.call_id, new_tag(), tag(request.get("From")), without_tag(request.get("To")),
                  without_tag(request.get("From")), target, addr, answer, origin, media_session,
                  cseq=secrets.randbelow(2**16))
        self._legs[leg.key] = leg
        self._reply(request, addr, 100, "Trying", remember=False)
        self._reply(request, addr, 180, "Ringing", to_tag=leg.local_tag, remember=False)
        leg.answer = self._reply(request, addr, 200, "OK", to_tag=leg.local_tag, body=answer,
                                 headers=[("Contact", self._contact(local)), ("Allow", ALLOW),
                                          ("Content-Type", "application/sdp")])
        self._spawn(self._until_acknowledged(leg))
        self._spawn(leg.media.start())
        leg.call = SipCall(leg.media, hang_up=lambda: self._end(leg, tell_peer=True),
                           reach=lambda address: self._reach(leg, address))
        leg.media.lost = lambda: self._end(leg, tell_peer=True)
        try:
            self._switchboard.answer(leg.call, "sip", caller_number=caller_number or None,
                                     call_id=f"sip-{leg.local_tag}")
        except Exception:  # noqa: BLE001 - the bot could not take the call: hang up rather than leave it silent
            log.exception("SIP: the switchboard could not take the call from %s", caller_number)
            self._end(leg, tell_peer=True)

    async def _until_acknowledged(self, leg: Leg) -> None:
        """Our 200 OK again (T1 doubling) until the ACK; a caller who never sends it is hung up on."""
        loop = asyncio.get_running_loop()
        deadline, interval = loop.time() + TRANSACTION_SECONDS, T1
        while not (leg.confirmed or leg.ended):
            if loop.time() >= deadline:
                log.info("SIP: no ACK for call %s from %s; hanging up", leg.call_id, leg.peer[0])
                self._end(leg, tell_peer=True)
                return
            await asyncio.sleep(interval)
            if not (leg.confirmed or leg.ended):
                self._send(leg.answer, leg.peer)
            interval = min(interval * 2, T2)

    def _reinvite(self, leg: Leg, request: SipMessage, addr: Address) -> None:
        """A new offer in the dialog (hold, a new address or codec): answer it; the call goes on."""
        if request.body:
            try:
                media, leg.sdp = sdp.answer(request.body, self._local_host(addr[0]), leg.media.port, leg.origin)
            except (sdp.BadSdp, sdp.NoCommonCodec) as error:
                self._reply(request, addr, 488, "Not Acceptable Here", headers=_warning(str(error)))
                return
            leg.media.update(media)
        self._reply(request, addr, 200, "OK", body=leg.sdp, headers=[
            ("Contact", self._contact(self._local_host(addr[0]))), ("Allow", ALLOW),
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
        self._end(leg, tell_peer=False)

    def _cancel(self, request: SipMessage, addr: Address) -> None:
        # Calls are answered as they arrive, so a CANCEL always comes after our 200 OK: it has no effect
        # (RFC 3261 §9.2) and the caller hangs up with BYE.
        answered = (request.branch or f"{request.call_id} {request.cseq[0]}", "INVITE", addr) in self._sent
        if answered:
            self._reply(request, addr, 200, "OK")
        else:
            self._reply(request, addr, 481, "Call/Transaction Does Not Exist")

    def _options(self, request: SipMessage, addr: Address) -> None:
        self._reply(request, addr, 200, "OK", headers=[("Allow", ALLOW), ("Accept", ACCEPT)])

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
        if leg is not None and self._peers.in_call(leg.peer[0], addr[0]) and leg.ack and message.cseq[1] == "INVITE" and 200 <= message.status < 300:
            self._send(leg.ack, leg.peer)  # our ACK was lost: the agent's phone sends its 200 OK again

    # -- ending a leg --------------------------------------------------------------------------------

    def _end(self, leg: Leg, tell_peer: bool) -> None:
        """This leg is over (BYE sent when `tell_peer`); a leg bridged to it is hung up too."""
        if leg.ended:
            return
        leg.ended = True
        self._legs.pop(leg.key, None)
        if leg.media:
            leg.media.close()
        if tell_peer and leg.remote_tag:
            self._spawn(self._client.request(self._request(leg, "BYE"), leg.peer))
        if leg.call:
            leg.call.hung_up()
        other, leg.other = leg.other, None
        if other is not None:
            other.other = None
            self._end(other, tell_peer=True)

    # -- handing a caller to an agent's phone -----------------------------------------------------------

    async def _reach(self, caller: Leg, address: str) -> bool:
        """Ring the agent at `address`; once they answer, bridge them to the caller. False if they did not."""
        try:
            uri = parse_uri(address)
            peer = (await self._resolve(uri.host), uri.port or 5060)
            sock = bind_socket(self._host)
        except (BadMessage, OSError) as error:
            log.error("SIP: cannot ring agent at %s: %s", address, error)
            return False
        local = self._local_host(peer[0])
        number = parse_uri(address_uri(caller.remote_uri)).user or "ivr"
        origin = sdp.Origin()
        agent = Leg(f"{secrets.token_hex(12)}@ivr", new_tag(), "", f"<sip:{number}@{host_port(local, self._port)}>",
                    f"<{address}>", address, peer, sdp.offer(local, sock.getsockname()[1], origin), origin, cseq=0)
        self._legs[agent.key] = agent
        try:
            answer = await self._ring(caller, agent, self._request(agent, "INVITE", body=agent.sdp, headers=[
                ("Contact", self._contact(local)), ("Allow", ALLOW), ("Content-Type", "application/sdp")]))
            media = sdp.parse(answer.body) if answer is not None and not caller.ended else None
        except (sdp.BadSdp, sdp.NoCommonCodec) as error:
            log.error("SIP: agent at %s answered with SDP we cannot use (%s)", address, error)
            media = None
        except BaseException:
            sock.close()
            self._end(agent, tell_peer=True)
            raise
        if media is None:
            sock.close()
            self._end(agent, tell_peer=True)
            return False
        agent.media = RtpSession(sock, media, peer[0], trust_sdp=self._peers.is_trusted(peer[0]))
        agent.media.lost = lambda: self._end(agent, tell_peer=True)
        await agent.media.start()
        self._bridge(caller, agent)
        log.info("SIP: caller %s put through to %s", number, address)
        return True

    async def _ring(self, caller: Leg, agent: Leg, invite: SipMessage) -> Optional[SipMessage]:
        """The agent's 200 OK (acknowledged), or None: they declined, or did not answer in RING_SECONDS."""
        loop = asyncio.get_running_loop()
        ringing = asyncio.ensure_future(self._client.request(invite, agent.peer, timeout=RING_SECONDS + 8 * T1))
        deadline = loop.time() + RING_SECONDS
        while not ringing.done() and loop.time() < deadline and not caller.ended:
            await asyncio.wait({ringing}, timeout=T1)
        if not ringing.done():
            await self._client.request(_in_transaction(invite, "CANCEL"), agent.peer)
        final = await ringing
        if final is None:
            log.info("SIP: agent at %s did not answer", agent.target)
            return None
        if final.status >= 300:  # declined, busy or cancelled: acknowledged within the INVITE's transaction
            self._send(bytes(_in_transaction(invite, "ACK", to=final.get("To"))), agent.peer)
            log.info("SIP: agent at %s answered %s %s", agent.target, final.status, final.reason)
            return None
        agent.remote_tag = tag(final.get("To") or "")
        agent.remote_uri = without_tag(final.get("To") or agent.remote_uri)
        try:
            agent.target = address_uri(final.get("Contact") or agent.target)
        except BadMessage:
            pass
        agent.ack = bytes(self._request(agent, "ACK", cseq=agent.cseq))
        agent.confirmed = True
        self._send(agent.ack, agent.peer)
        return final

    def _bridge(self, caller: Leg, agent: Leg) -> None:
        caller.other, agent.other = agent, caller
        caller.media.clear()
        caller.media.heard = lambda pcm: agent.media.relay(pcm, BRIDGE_LATENCY)
        agent.media.heard = lambda pcm: caller.media.relay(pcm, BRIDGE_LATENCY)
        caller.media.keyed = agent.media.keyed = lambda key: None

    # -- out ------------------------------------------------------------------------------------------

    def _request(self, leg: Leg, method: str, body: bytes = b"", headers=(), cseq: Optional[int] = None
                 ) -> SipMessage:
        """A request of ours in the leg's dialog (a new CSeq unless given: an ACK takes its INVITE's)."""
        if cseq is None:
            leg.cseq += 1
        local = self._local_host(leg.peer[0])
        to = f"{leg.remote_uri};tag={leg.remote_tag}" if leg.remote_tag else leg.remote_uri
        return SipMessage(method=method, uri=leg.target, body=body, headers=[
            ("Via", f"SIP/2.0/UDP {host_port(local, self._port)};branch={new_branch()};rport"),
            ("Max-Forwards", "70"), ("From", f"{leg.local_uri};tag={leg.local_tag}"), ("To", to),
            ("Call-ID", leg.call_id), ("CSeq", f"{cseq or leg.cseq} {method}"), ("User-Agent", USER_AGENT),
            *headers])

    def _reply(self, request: SipMessage, addr: Address, status: int, reason: str, to_tag: str = "",
               headers=None, body: bytes = b"", remember: bool = True) -> bytes:
        if status > 100 and not to_tag and not tag(request.get("To") or ""):
            to_tag = new_tag()  # every response but 100 carries a To tag (RFC 3261 §8.2.6.2)
        data = bytes(response(request, status, reason, to_tag, [*(headers or []), ("Server", USER_AGENT)], body))
        if remember:
            self._sent.remember(_transaction(request, addr), data, self._now())
        self._send(data, addr)
        return data

    def _send(self, data: bytes, addr: Address) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, addr)

    def _contact(self, local: str) -> str:
        return f"<sip:ivr@{host_port(local, self._port)}>"

    def _local_host(self, peer_host: str) -> str:
        """Our address as the peer reaches it (for Via, Contact and SDP) when we listen on every interface."""
        if self._host not in ("0.0.0.0", "::", ""):
            return self._host
        if peer_host not in self._local_hosts:
            family = socket.AF_INET6 if ":" in peer_host else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                try:
                    probe.connect((peer_host, 9))  # no packet is sent: this only asks for the route
                    self._local_hosts[peer_host] = probe.getsockname()[0]
                except OSError:
                    return "127.0.0.1" if family == socket.AF_INET else "::1"
            while len(self._local_hosts) > 256:
                self._local_hosts.popitem(last=False)
        return self._local_hosts[peer_host]

    async def _resolve(self, host: str) -> str:
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
            return host
        except OSError:
            found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
            return found[0][4][0]

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


def _transaction(request: SipMessage, addr: Address) -> tuple:
    return request.branch or f"{request.call_id} {request.cseq[0]}", request.method, addr


def _note_received(request: SipMessage, addr: Address) -> None:
    """Mark the top Via with where the request really came from (RFC 3261 §18.2.1, RFC 3581)."""
    for index, (name, value) in enumerate(request.headers):
        if name == "Via":
            top, comma, rest = value.partition(",")
            if ";received=" not in top:
                top += f";received={addr[0]}"
            top = re.sub(r";\s*rport(?=;|$)", f";rport={addr[1]}", top)
            request.headers[index] = (name, top + comma + rest)
            return


def _in_transaction(invite: SipMessage, method: str, to: Optional[str] = None) -> SipMessage:
    """A CANCEL, or the ACK of a failed INVITE: the INVITE's own Via (branch) and CSeq number."""
    headers = []
    for name, value in invite.headers:
        if name == "CSeq":
            value = f"{invite.cseq[0]} {method}"
        elif name == "To" and to:
            value = to
        elif name not in ("Via", "Max-Forwards", "From", "To", "Call-ID"):
            continue
        headers.append((name, value))
    return SipMessage(method=method, uri=invite.uri, headers=headers)


def _warning(text: str) -> list[tuple[str, str]]:
    return [("Warning", "399 ivr \"%s\"" % re.sub(r'[\r\n"]', " ", text[:120]))]
