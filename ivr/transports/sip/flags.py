"""The SIP line's flags of `ivr serve` and the listener they ask for (the line module protocol of
ivr/serve/lines.py: add_arguments, check, wanted, listeners)."""
from __future__ import annotations

from ivr.transports import network_line
from ivr.transports.sip.line import SipLine
from ivr.transports.sip.peers import trusted_proxy
from ivr.transports.sip.ports import RtpPorts


def add_arguments(group) -> None:
    """Add this line's flags to `ivr serve`."""
    group.add_argument("--sip", metavar="HOST:PORT", type=network_line.host_port,
                       help="answer SIP calls on this UDP address, e.g. 0.0.0.0:5060 (G.711 mu-law or A-law; "
                            "keypad by RFC 4733 or SIP INFO)")
    group.add_argument("--sip-trusted-proxy", action="append", metavar="ADDRESS", type=trusted_proxy, default=[],
                       help="a SIP proxy or SBC (address or network, repeatable) whose calls are taken and whose "
                            "SDP may send a call's audio to another host (its media relay); anyone else's audio "
                            "goes only to the host the call's signalling comes from")
    group.add_argument("--rtp-ports", metavar="LOW-HIGH",
                       help="the UDP ports the calls' audio is bound to, e.g. 20000-20999 (even ones, one per call "
                            "and one more per call put through to an agent; default: any free port)")


def check(args) -> None:
    """A wrong flag value, said before the bot loads (ValueError, one line)."""
    RtpPorts.parse(getattr(args, "rtp_ports", None))


def wanted(args) -> bool:
    return bool(getattr(args, "sip", None))


def listeners(args, switchboard, allowed) -> list:
    if not wanted(args):
        return []
    host, port = args.sip if isinstance(args.sip, tuple) else network_line.host_port(args.sip)
    proxies = getattr(args, "sip_trusted_proxy", None) or ()
    return [SipLine(host, port, switchboard, allowed, trusted_proxies=proxies,
                    rtp_ports=RtpPorts.parse(getattr(args, "rtp_ports", None)))]
