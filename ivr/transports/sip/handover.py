"""Handing a caller over to an agent's phone: the SIP line rings the agent's address itself (INVITE,
CANCEL when nobody answers in RING_SECONDS) and, once answered, bridges the audio of the two legs
until one of them hangs up. The bot has left the call by then; the line keeps the bridge.

A part of the SIP line (line.py), kept apart because calls placed are their own story:
it uses the line's legs, transactions and sending.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from typing import Optional

from ivr.transports.sip import sdp
from ivr.transports.sip.dialog import ALLOW, Leg, in_transaction
from ivr.transports.sip.media import RtpSession, bind_socket
from ivr.transports.sip.message import (BadMessage, SipMessage, address_uri, host_port, new_tag, parse_uri, tag,
                                        without_tag)
from ivr.transports.sip.transactions import T1

log = logging.getLogger(__name__)

RING_SECONDS = 30.0  # an agent's phone rings this long before the line gives up
BRIDGE_LATENCY = 0.2  # at most this much audio waits between the two legs of a bridge


class HandOver:
    """The SIP line's calls to agents' phones (mixed into SipLine, whose legs and sending it uses)."""

    async def _reach(self, caller: Leg, address: str) -> bool:
        """Ring the agent at `address`; once they answer, bridge them to the caller. False if they did not."""
        try:
            uri = parse_uri(address)
            peer = (await _resolve(uri.host), uri.port or 5060)
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
            await self._client.request(in_transaction(invite, "CANCEL"), agent.peer)
        final = await ringing
        if final is None:
            log.info("SIP: agent at %s did not answer", agent.target)
            return None
        if final.status >= 300:  # declined, busy or cancelled: acknowledged within the INVITE's transaction
            self._send(bytes(in_transaction(invite, "ACK", to=final.get("To"))), agent.peer)
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
