"""Our address as each peer reaches it, for Via, Contact and SDP. A line listening on every interface
(0.0.0.0 or ::) has no one address to give; the route to the peer says which of ours it sees."""
from __future__ import annotations

import socket
from collections import OrderedDict

EVERY_INTERFACE = ("0.0.0.0", "::", "")
REMEMBERED = 256  # peers whose route is kept; more are asked again (a route lookup sends no packet)


class LocalHosts:
    def __init__(self, host: str):
        self._host = host
        self._known: OrderedDict[str, str] = OrderedDict()

    def toward(self, peer_host: str) -> str:
        if self._host not in EVERY_INTERFACE:
            return self._host
        if peer_host not in self._known:
            family = socket.AF_INET6 if ":" in peer_host else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                try:
                    probe.connect((peer_host, 9))  # no packet is sent: this only asks for the route
                    self._known[peer_host] = probe.getsockname()[0]
                except OSError:
                    return "127.0.0.1" if family == socket.AF_INET else "::1"
            while len(self._known) > REMEMBERED:
                self._known.popitem(last=False)
        return self._known[peer_host]
