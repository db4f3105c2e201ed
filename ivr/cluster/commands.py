"""The `ivr cluster` command (registered by ivr/cli.py): Kamailio in front of N `ivr serve` workers on this
machine, the local and test composition of the deployment in deploy/kamailio/kamailio.cfg."""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from pathlib import Path

DEFAULT_RTP = "10000-19999"


def register(commands, bench_commands) -> None:
    """Add this area's subcommand; it sets run=function(args, settings) -> exit status."""
    from ivr.transports.network_line import host_port

    cluster = commands.add_parser(
        "cluster", help="Kamailio in front of N `ivr serve` workers sharing one database and one console, until Ctrl-C")
    cluster.add_argument("--workers", type=int, default=2, metavar="N", help="how many workers (default 2)")
    cluster.add_argument("--sip", type=host_port, default=("127.0.0.1", 5060), metavar="HOST:PORT",
                         help="where Kamailio takes calls (UDP; default 127.0.0.1:5060)")
    cluster.add_argument("--host", default="127.0.0.1", help="the agents' console's address (default 127.0.0.1)")
    cluster.add_argument("--port", type=int, default=8080, help="the agents' console's port (default 8080)")
    cluster.add_argument("--max-calls", type=int, default=16, metavar="N",
                         help="calls at once per worker; a full worker's calls go to the others (default 16)")
    cluster.add_argument("--rtp-ports", default=DEFAULT_RTP, metavar="LOW-HIGH",
                         help=f"the calls' audio ports, shared out among the workers (default {DEFAULT_RTP})")
    cluster.add_argument("--trunk", action="append", metavar="CIDR",
                         help="a carrier's SBC or other trusted source of many calls: taken without a flood limit "
                              "(repeatable; default 127.0.0.1/32 when neither --trunk nor --allow is given)")
    cluster.add_argument("--allow", action="append", metavar="CIDR",
                         help="callers' networks whose calls are taken, each address flood-limited (repeatable)")
    cluster.add_argument("--kamailio-config", type=Path, metavar="FILE",
                         help="another Kamailio config with the same -A parameters (default "
                              "deploy/kamailio/kamailio.cfg)")
    cluster.add_argument("--kamailio", metavar="PROGRAM",
                         help="the kamailio program (default: the one on PATH or in /usr/sbin)")
    cluster.add_argument("--secure-cookies", action="store_true",
                         help="the console is behind a TLS proxy: its session cookie is sent over HTTPS only")
    cluster.set_defaults(run=_cluster)


def _cluster(args, settings) -> int:
    from ivr.cluster.run import Plan, run_cluster
    from ivr.transports.sip.ports import RtpPorts

    try:
        ports = RtpPorts.parse(args.rtp_ports)
        workers = _at_least("--workers", args.workers)
        if ports.calls < 2 * workers:
            raise ValueError(f"--rtp-ports {args.rtp_ports} is too small for {workers} workers (4 ports each at least)")
        trunks = args.trunk or ([] if args.allow else ["127.0.0.1/32"])  # this machine's own callers: tests, SIPp
        plan = Plan(workers=workers, host=args.sip[0], port=args.sip[1], console_host=args.host,
                    console_port=args.port, max_calls=_at_least("--max-calls", args.max_calls),
                    rtp_low=ports.low, rtp_high=ports.high, trunks=_networks("--trunk", trunks),
                    callers=_networks("--allow", args.allow or []), var_dir=settings.var_dir,
                    secure_cookies=args.secure_cookies)
    except ValueError as error:
        print(f"ivr cluster: {error}", file=sys.stderr)
        return 2
    if args.kamailio_config:
        plan.config = args.kamailio_config
    plan.program = args.kamailio
    if not plan.config.is_file():
        print(f"ivr cluster: no Kamailio config at {plan.config}", file=sys.stderr)
        return 2
    return asyncio.run(run_cluster(plan, say=_say))


def _say(line: str) -> None:
    """A line for the operator; with nobody reading any more (`ivr cluster | tee` ended) the cluster goes on."""
    try:
        print(line, flush=True)
    except (BrokenPipeError, ValueError):  # ValueError: stdout already closed after a broken pipe
        pass


def _at_least(flag: str, value: int, least: int = 1) -> int:
    if value < least:
        raise ValueError(f"{flag} must be {least} or more, not {value}")
    return value


def _networks(flag: str, texts: list[str]) -> list[str]:
    for text in texts:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{flag} {text!r} is not an address or network (e.g. 192.0.2.0/24)") from None
    return texts
