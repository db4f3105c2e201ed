"""One side of a call in SIP terms (RFC 3261 §12): a dialog's parties, tags, CSeq and target, the
requests we send in it, and the transaction a request belongs to. No sockets: the line
(ivr/transports/sip/line.py) sends what is made here."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ivr.transports.sip import sdp
from ivr.transports.sip.call import SipCall
from ivr.transports.sip.media import RtpSession
from ivr.transports.sip.message import SipMessage, new_branch

USER_AGENT = "ivr"
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"  # the methods the line takes
Address = tuple  # (host, port)


@dataclass(eq=False)
class Leg:
    """One side of a call in SIP terms: a dialog and its audio."""
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our party in this dialog, without tag (From of our requests)
    remote_uri: str  # theirs (To of our requests)
    target: str  # the Request-URI of our requests in the dialog (their Contact)
    peer: Address  # where their signalling comes from and ours goes; only they may speak in this dialog
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
    route: tuple[str, ...] = ()  # the proxies our requests in the dialog pass through (Kamailio's Record-Route)

    @property
    def key(self) -> tuple[str, str]:
        return self.call_id, self.local_tag

    def request(self, method: str, via: str, body: bytes = b"", headers=(), cseq: Optional[int] = None
                ) -> SipMessage:
        """A request of ours in this dialog, `via` our host:port as the peer reaches it (a new CSeq unless
        given: an ACK takes its INVITE's)."""
        if cseq is None:
            self.cseq += 1
        to = f"{self.remote_uri};tag={self.remote_tag}" if self.remote_tag else self.remote_uri
        return SipMessage(method=method, uri=self.target, body=body, headers=[
            ("Via", f"SIP/2.0/UDP {via};branch={new_branch()};rport"),
            ("Max-Forwards", "70"), *(("Route", hop) for hop in self.route),
            ("From", f"{self.local_uri};tag={self.local_tag}"), ("To", to),
            ("Call-ID", self.call_id), ("CSeq", f"{cseq or self.cseq} {method}"), ("User-Agent", USER_AGENT),
            *headers])


def route_set(request: SipMessage) -> tuple[str, ...]:
    """The route set of the dialog an INVITE opens, for its answerer (RFC 3261 §12.1.1): its Record-Route
    hops in order. A proxy that record-routes (Kamailio) then sees our BYE and the caller's alike."""
    return tuple(hop.strip() for value in request.all("Record-Route")
                 for hop in re.split(r"(?<=>)\s*,", value) if hop.strip())


def transaction(request: SipMessage, addr: Address) -> tuple:
    """Which server transaction a request belongs to: its branch, method and sender."""
    return request.branch or f"{request.call_id} {request.cseq[0]}", request.method, addr


def note_received(request: SipMessage, addr: Address) -> None:
    """Mark the top Via with where the request really came from (RFC 3261 §18.2.1, RFC 3581)."""
    for index, (name, value) in enumerate(request.headers):
        if name == "Via":
            top, comma, rest = value.partition(",")
            if ";received=" not in top:
                top += f";received={addr[0]}"
            top = re.sub(r";\s*rport(?=;|$)", f";rport={addr[1]}", top)
            request.headers[index] = (name, top + comma + rest)
            return


def in_transaction(invite: SipMessage, method: str, to: Optional[str] = None) -> SipMessage:
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


def warning(text: str) -> list[tuple[str, str]]:
    """A Warning header saying why a request was refused, in one safe line."""
    return [("Warning", "399 ivr \"%s\"" % re.sub(r'[\r\n"]', " ", text[:120]))]
