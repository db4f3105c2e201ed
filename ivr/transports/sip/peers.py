"""Who may speak on the SIP line, decided from a datagram's source address before it is parsed.

A new call comes only from the allowed networks (`--allow`) or a trusted proxy
(`--sip-trusted-proxy`). Inside a call, only that call's peer (the address its INVITE came from, or
the agent's phone we rang) or a trusted proxy may hang it up, move its audio or key into it: a
stranger who learned the Call-ID and tags gets 403. A trusted proxy (Kamailio, an SBC) is also the
one peer whose SDP may send the audio to another host (its media relay); anyone else's audio goes
only to the host its signalling comes from (ivr/transports/sip/media.py).

Refusals are logged boundedly: the first few of each kind, then one line per thousand.
"""
from __future__ import annotations

import argparse
import ipaddress
import logging

from ivr.transports.listeners import Networks, is_allowed

log = logging.getLogger(__name__)

LOGGED_FIRST = 3  # refusals of one kind logged one by one before only every 1,000th is


def trusted_proxy(text: str):
    """`--sip-trusted-proxy` value: an address or network; argparse says what is wrong with a bad one."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address or network: {text!r}") from None


class Refusals:
    """One kind of refused datagram: counted, and logged boundedly so a flood cannot fill the disk."""

    def __init__(self, what: str):
        self.what, self.count = what, 0

    def __call__(self, host: str, detail: str = "") -> None:
        self.count += 1
        if self.count <= LOGGED_FIRST or self.count % 1000 == 0:  # a warning: someone is probing, or misconfigured
            log.warning("SIP: %s from %s%s (%d so far)", self.what, host, f": {detail}" if detail else "", self.count)


class Peers:
    def __init__(self, allowed: Networks, trusted_proxies: Networks = ()):
        self._allowed, self._proxies = allowed, tuple(trusted_proxies)
        self.outsiders = Refusals("refused a datagram from outside the allowed networks")
        self.strangers = Refusals("refused an in-call request from someone not in the call")
        self.malformed = Refusals("a malformed SIP message")

    def may_call(self, host: str) -> bool:
        return is_allowed(host, self._allowed) or self.is_trusted(host)

    def is_trusted(self, host: str) -> bool:
        """A proxy whose word about other media hosts is taken."""
        return bool(self._proxies) and is_allowed(host, self._proxies)

    def in_call(self, call_peer: str, host: str) -> bool:
        """Whether `host` may speak in the call whose peer is `call_peer`."""
        return host == call_peer or self.is_trusted(host)
