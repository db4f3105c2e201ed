"""Handing a caller over to an agent's phone: the SIP line rings the agent's address itself (INVITE,
CANCEL when nobody answers in RING_SECONDS) and, once answered, bridges the audio of the two legs
until one of them hangs up. The bot has left the call by then; the line keeps the bridge. A caller whose
call asked them back (the survey after an agent's call) is unbridged instead when the agent hangs up
first: the line gives them back to their SipCall (`SipCall.taken_back`), whose call speaks to them again.

The agent's side of the SIP line, apart from the caller's (line.py): the line owns one HandOver
and gives it what placing a call needs, named in `Signalling` (our addresses, a new leg in the
line's table, requests in a leg's dialog, sending, ending a leg), its client transactions and who
is trusted; the hand-over reaches nothing else of the line.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from typing import Optional, Protocol

from ivr.transports.sip import sdp
from ivr.transports.sip.dialog import ALLOW, Leg, in_transaction
from ivr.transports.sip.media import RtpSession
from ivr.transports.sip.message import (BadMessage, SipMessage, address_uri, host_port, new_tag, parse_uri, tag,
                                        without_tag)
from ivr.transports.sip.peers import Peers
from ivr.transports.sip.transactions import T1, ClientTransactions

log = logging.getLogger(__name__)

RING_SECONDS = 30.0  # an agent's phone rings this long before the line gives up
BRIDGE_LATENCY = 0.2  # at most this much audio waits between the two legs of a bridge


class Signalling(Protocol):
    """What the hand-over needs of the SIP line (SipLine is one)."""
    host: str  # where the line listens
    port: int

    def rtp_socket(self) -> socket.socket: ...  # the agent leg's audio, bound like a caller's (--rtp-ports)

    def local_host(self, peer_host: str) -> str: ...

    def add_leg(self, leg: Leg) -> None: ...

    def request(self, leg: Leg, method: str, **parts) -> SipMessage: ...

    def contact(self, local: str) -> str: ...

    def send(self, data: bytes, addr: tuple) -> None: ...

    def end(self, leg: Leg, tell_peer: bool) -> None: ...


class HandOver:
    """The SIP line's calls to agents' phones."""

    def __init__(self, line: Signalling, client: ClientTransactions, peers: Peers):
        self._line, self._client, self._peers = line, client, peers

    async def reach(self, caller: Leg, address: str) -> bool:
        """Ring the agent at `address`; once they answer, bridge them to the caller. False if they did not."""
        try:
            uri = parse_uri(address)
            peer = (await _resolve(uri.host), uri.port or 5060)
            sock = self._line.rtp_socket()
        except (BadMessage, OSError) as error:
            log.error("SIP: cannot ring agent at %s: %s", address, error)
            return False
        line = self._line
        local = line.local_host(peer[0])
        number = parse_uri(address_uri(caller.remote_uri)).user or "ivr"
        origin = sdp.Origin()
        agent = Leg(f"{secrets.token_hex(12)}@ivr", new_tag(), "", f"<sip:{number}@{host_port(local, line.port)}>",
                    f"<{address}>", address, peer, sdp.offer(local, sock.getsockname()[1], origin), origin, cseq=0)
        line.add_leg(agent)
        try:
            answer = await self._ring(caller, agent, line.request(agent, "INVITE", body=agent.sdp, headers=[
                ("Contact", line.contact(local)), ("Allow", ALLOW), ("Content-Type", "application/sdp")]))
            media = sdp.parse(answer.body) if answer is not None and not caller.ended else None
        except (sdp.BadSdp, sdp.NoCommonCodec) as error:
            log.error("SIP: agent at %s answered with SDP we cannot use (%s)", address, error)
            media = None
        except BaseException:
            sock.close()
            line.end(agent, tell_peer=True)
            raise
        if media is None:
            sock.close()
            line.end(agent, tell_peer=True)
            return False
        agent.media = RtpSession(sock, media, peer[0], trust_sdp=self._peers.is_trusted(peer[0]))
        agent.media.lost = lambda: self._lost(caller, agent)
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
            await self._client.request(in_transaction(invite, "CANCEL"), agent.peer)
        final = await ringing
        if final is None:
            log.info("SIP: agent at %s did not answer", agent.target)
            return None
        if final.status >= 300:  # declined, busy or cancelled: acknowledged within the INVITE's transaction
            self._line.send(bytes(in_transaction(invite, "ACK", to=final.get("To"))), agent.peer)
            log.info("SIP: agent at %s answered %s %s", agent.target, final.status, final.reason)
            return None
        agent.remote_tag = tag(final.get("To") or "")
        agent.remote_uri = without_tag(final.get("To") or agent.remote_uri)
        try:
            agent.target = address_uri(final.get("Contact") or agent.target)
        except BadMessage:
            pass
        agent.ack = bytes(self._line.request(agent, "ACK", cseq=agent.cseq))
        agent.confirmed = True
        self._line.send(agent.ack, agent.peer)
        return final

    def _lost(self, caller: Leg, agent: Leg) -> None:
        """The agent's phone went silent on the network: a caller given back hears that the line dropped (not
        a question about a call that was cut off), then the agent's leg ends like a hang-up."""
        if caller.call is not None:
            caller.call.agent_dropped()
        self._line.end(agent, tell_peer=True)

    @staticmethod
    def _bridge(caller: Leg, agent: Leg) -> None:
        caller.other, agent.other = agent, caller
        caller.media.pacer.clear()
        caller.media.heard = lambda pcm: agent.media.pacer.relay(pcm, BRIDGE_LATENCY)
        agent.media.heard = lambda pcm: caller.media.pacer.relay(pcm, BRIDGE_LATENCY)
        caller.media.keyed = agent.media.keyed = lambda key: None


async def _resolve(host: str) -> str:
    """The agent's host as an address (the leg's peer: who may speak in its dialog and send its audio)."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return host
    except OSError:
        found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        return found[0][4][0]
