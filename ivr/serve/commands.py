"""The `ivr serve` command (registered by ivr/cli.py): the agents' console and the phone lines in one process.

The console (ivr/console/) is a web app built here and mounted on a guarded web listener; the phone lines
(ivr/transports/) hand their calls to one switchboard over one loaded bot. Imports inside the functions keep
the other commands from loading the console, the queue store or the models.
"""
from __future__ import annotations

import asyncio
import logging
import sys

log = logging.getLogger(__name__)


def register(commands, bench_commands) -> None:
    """Add this area's subcommands; each sets run=function(args, settings) -> exit status."""
    from ivr.serve import lines

    serve = commands.add_parser("serve", help="the agents' web console and the phone lines, until Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 picks a free one)")
    serve.add_argument("--secure-cookies", action="store_true",
                       help="the console is behind a TLS proxy: its session cookie is sent over HTTPS only")
    serve.add_argument("--worker", metavar="NAME",
                       help="this process's name in every call record it leaves, to tell workers behind one proxy "
                            "apart (default HOST:SIP-PORT, e.g. ivr-2:5071). SIGUSR1 drains the worker: no new "
                            "calls, the current ones finish, then it stops")
    lines.add_arguments(serve)
    serve.set_defaults(run=_serve)


def _serve(args, settings) -> int:
    from ivr.serve import lines
    from ivr.console.app import make_console
    from ivr.queue import open_queue
    from ivr.transports.listeners import ListenError, allowed_networks
    from ivr.transports.web import WebListener
    from ivr.serve.run import remember_drain_requests

    drain_asked = remember_drain_requests()  # before the slow part: a SIGUSR1 now must not kill the worker
    try:
        allowed = allowed_networks(args.allow)
        door = lines.console_guard(args)  # --console-allow, --max-per-address, --header-timeout
        lines.check(args)  # e.g. --rtp-ports
    except ValueError as error:
        print(f"ivr serve: {error}", file=sys.stderr)
        return 2
    if args.max_calls < 1:
        print(f"ivr serve: --max-calls must be 1 or more, not {args.max_calls}", file=sys.stderr)
        return 2
    if args.worker is not None and not args.worker.strip():
        print("ivr serve: --worker needs a name, e.g. ivr-2:5071", file=sys.stderr)
        return 2
    store = open_queue(settings)  # a database that cannot be reached is said before anything listens
    records = _call_records(settings)
    try:
        console = make_console(store, settings.var_dir, call_counts=records.counts if records else None,
                               calls_since=records.outcomes if records else None, secure_cookies=args.secure_cookies)
        asyncio.run(_serve_all(args, settings, WebListener(console, args.host, args.port, guard=door), allowed,
                               drain_asked))
    except ListenError as error:
        print(f"ivr serve: {error}", file=sys.stderr)
        return 2
    finally:
        if records:
            records.close()
        store.close()
    print("ivr serve: stopped", file=sys.stderr)
    return 0


async def _serve_all(args, settings, console, allowed, drain_asked) -> None:
    """The console, and with any phone line the bot itself (loaded once, shared by every call)."""
    from ivr.serve import lines
    from ivr.serve.run import serve

    if not lines.wanted(args):
        await serve([console], announce=_announce, drain_asked=drain_asked)
        return
    from ivr.bot import Bot
    from ivr.serve.switchboard import Switchboard

    print("ivr serve: loading the bot", flush=True)
    bot = await Bot.load(settings)
    switchboard = Switchboard(bot, args.max_calls, worker=args.worker or _worker_name(args))
    phone_lines = lines.listeners(args, switchboard, allowed)
    try:
        await serve([console, *phone_lines], announce=_announce, drain=lambda: _drain(switchboard, phone_lines),
                    drain_asked=drain_asked)
    finally:
        await switchboard.close()
        await bot.close()


def _worker_name(args) -> str:
    """HOST:SIP-PORT, unique among the workers one proxy sends calls to; the process id when no port is fixed."""
    import os
    import socket

    port = args.sip[1] if isinstance(getattr(args, "sip", None), tuple) else 0
    return f"{socket.gethostname()}:{port or os.getpid()}"


async def _drain(switchboard, phone_lines) -> None:
    """SIGUSR1: no new calls (SIP answers 503, so a proxy sends callers elsewhere); stops once the last call ends.
    A caller put through to an agent is still a call: the bot has left it, but the line bridges it until one
    side hangs up, and stopping would cut them off."""
    switchboard.drain()
    print(f"ivr serve: draining {switchboard.worker}: no new calls, {switchboard.in_progress} to finish", flush=True)
    await switchboard.emptied()
    bridging = [line for line in phone_lines if getattr(line, "busy", False)]
    if bridging:
        print(f"ivr serve: draining {switchboard.worker}: callers still talking to an agent", flush=True)
    await asyncio.gather(*(line.idle() for line in bridging))
    print(f"ivr serve: drained {switchboard.worker}: no calls left, stopping", flush=True)


def _announce(line: str) -> None:
    print(line, flush=True)
    print("Ctrl-C stops.", file=sys.stderr, flush=True)


def _call_records(settings):
    """The call records, for containment on /metrics; the console still runs without them."""
    from ivr.records import RecordsError, open_records

    try:
        return open_records(settings)
    except RecordsError as error:
        print(f"ivr serve: no containment figures on /metrics: {error}", file=sys.stderr)
        return None
