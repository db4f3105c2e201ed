"""SIP messages on the wire (RFC 3261 §7, §20, §25): parse a datagram, format one, read addresses.

Only what a phone line needs: request and status lines, headers (compact forms, folded lines),
a body bounded by Content-Length, name-addr and SIP URIs. Anything else is `BadMessage`.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Optional

MAX_HEADERS = 80
COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding", "o": "event",
           "r": "refer-to"}
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_REQUEST = re.compile(r"([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP/2\.0")
_STATUS = re.compile(r"SIP/2\.0 ([1-6]\d\d) ?(.*)")
MAGIC_COOKIE = "z9hG4bK"


MAX_DIGITS = 10  # a Content-Length or CSeq number longer than this is not one (and int() of 5,000 digits raises)


class BadMessage(ValueError):
    """Not a SIP message we can read. `request` is set when it is a request we can still answer (400):
    its Via, From, To, Call-ID and CSeq are sound, only something else in it is not."""

    def __init__(self, reason: str, request: Optional["SipMessage"] = None):
        super().__init__(reason)
        self.request = request


def number(text: str) -> Optional[int]:
    """A header's unsigned number, or None: ASCII digits only ("²" and "٣" are digits to Python), and
    few enough that reading them costs nothing."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS else None


@dataclass
class SipMessage:
    method: Optional[str] = None  # a request: INVITE, ACK, BYE ...
    uri: str = ""
    status: Optional[int] = None  # a response: 200, 486 ...
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)  # in order, names as sent (compact expanded)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), None)

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        digits, _, method = (self.get("CSeq") or "").strip().partition(" ")
        value = number(digits)
        if value is None:
            raise ValueError(f"bad CSeq {self.get('CSeq')!r}")
        return value, method.strip().upper()

    @property
    def branch(self) -> str:
        via = self.get("Via") or ""
        return params(via.split(",")[0]).get("branch", "")

    def __bytes__(self) -> bytes:
        start = f"{self.method} {self.uri} SIP/2.0" if self.is_request else f"SIP/2.0 {self.status} {self.reason}"
        lines = [start] + [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def parse(data: bytes) -> SipMessage:
    """One datagram as a SIP message; BadMessage says what is wrong with it."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise BadMessage("headers are not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    message = _start_line(lines[0])
    problem = ""  # the first thing wrong that still leaves the request answerable
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and message.headers:  # folded onto the header before
            name, value = message.headers[-1]
            message.headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _TOKEN.fullmatch(name):
            problem = problem or f"not a header line: {line[:40]!r}"
            continue
        message.headers.append((_canonical(name), value.strip()))
        if len(message.headers) > MAX_HEADERS:
            raise BadMessage("too many headers")
    for required in ("Via", "Call-ID", "CSeq", "From", "To"):
        if message.get(required) is None:
            raise BadMessage(f"no {required} header")
    try:
        cseq, method = message.cseq
    except ValueError:
        raise BadMessage(f"bad CSeq {message.get('CSeq')[:40]!r}") from None
    if cseq >= 2**31 or (message.is_request and method != message.method):
        raise BadMessage(f"bad CSeq {message.get('CSeq')[:40]!r}")
    length = message.get("Content-Length")
    if length is not None:
        size = number(length)
        if size is None or size > len(body):
            problem = problem or f"Content-Length {length[:20]!r} does not fit the {len(body)} bytes of body"
        else:
            body = body[:size]
    if problem:  # the headers a response copies are sound: a request can be told what was wrong (400)
        raise BadMessage(problem, message if message.is_request else None)
    message.body = body
    return message


def _start_line(line: str) -> SipMessage:
    if match := _REQUEST.fullmatch(line.strip()):
        return SipMessage(method=match[1].upper(), uri=match[2])
    if match := _STATUS.fullmatch(line.strip()):
        return SipMessage(status=int(match[1]), reason=match[2])
    raise BadMessage(f"not a SIP request or status line: {line[:40]!r}")


_NAMES = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate"}


def _canonical(name: str) -> str:
    lower = COMPACT.get(name.lower(), name.lower())
    return _NAMES.get(lower, "-".join(part.capitalize() for part in lower.split("-")))


def params(value: str) -> dict[str, str]:
    """The ;name=value parameters of a header value (after any <uri>), names lower-cased."""
    if ">" in value:
        value = value.rsplit(">", 1)[1]
    result = {}
    for part in value.split(";")[1:]:
        name, _, val = part.partition("=")
        result[name.strip().lower()] = val.strip().strip('"')
    return result


@dataclass(frozen=True)
class Uri:
    scheme: str
    user: str
    host: str
    port: Optional[int]

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port or 5060


def parse_uri(text: str) -> Uri:
    """sip:user@host:port;params — BadMessage for anything else (tel: and friends included)."""
    match = re.fullmatch(r"(sips?):(?:([^@;?]*)@)?(\[[0-9A-Fa-f:.]+\]|[^:;?\[\]]+)(?::(\d{1,5}))?([;?].*)?",
                         text.strip())
    if not match:
        raise BadMessage(f"not a SIP URI: {text[:60]!r}")
    user = match[2].split(":")[0] if match[2] else ""
    port = int(match[4]) if match[4] else None
    if port is not None and not 0 < port < 65536:
        raise BadMessage(f"bad port in {text[:60]!r}")
    return Uri(match[1].lower(), user, match[3].strip("[]"), port)


def address_uri(value: str) -> str:
    """The URI of a name-addr or addr-spec header value (From, To, Contact, Route)."""
    if "<" in value:
        inside = value.split("<", 1)[1]
        if ">" not in inside:
            raise BadMessage(f"unclosed <> in {value[:60]!r}")
        return inside.split(">", 1)[0].strip()
    return value.split(";", 1)[0].strip()


def tag(value: str) -> str:
    return params(value).get("tag", "")


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


def response(request: SipMessage, status: int, reason: str, to_tag: str = "",
             headers: Optional[list[tuple[str, str]]] = None, body: bytes = b"") -> SipMessage:
    """A response to `request` (RFC 3261 §8.2.6): its Via, From, Call-ID and CSeq, its To with our tag."""
    to = request.get("To") or ""
    if to_tag and not tag(to):
        to = f"{to};tag={to_tag}"
    copied = [(k, v) for k, v in request.headers if k in ("Via", "Record-Route")]
    return SipMessage(status=status, reason=reason, body=body, headers=[
        *copied, ("From", request.get("From") or ""), ("To", to), ("Call-ID", request.call_id),
        ("CSeq", request.get("CSeq") or ""), *(headers or [])])


def without_tag(value: str) -> str:
    """A From or To value without its tag, to build the same party's header in a new request."""
    return re.sub(r";\s*tag=[^;>]*", "", value)


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
