"""The `ivr` commands of this area (registered by ivr/cli.py): `ivr serve`."""
from __future__ import annotations

import asyncio
import logging
import sys

log = logging.getLogger(__name__)


def register(commands, bench_commands) -> None:
    """Add this area's subcommands; each sets run=function(args, settings) -> exit status."""
    serve = commands.add_parser("serve", help="the agents' web console, until Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 picks a free one)")
    serve.set_defaults(run=_serve)


def _serve(args, settings) -> int:
    from ivr.console.app import make_console
    from ivr.console.serve import ListenError, WebListener, serve
    from ivr.queue import open_queue

    store = open_queue(settings)  # a database that cannot be reached is said before anything listens
    records = _call_records(settings)
    try:
        console = make_console(store, settings.var_dir, call_counts=records.counts if records else None)
        asyncio.run(serve([WebListener(console, args.host, args.port)], announce=_announce))
    except ListenError as error:
        print(f"ivr serve: {error}", file=sys.stderr)
        return 2
    finally:
        if records:
            records.close()
        store.close()
    print("ivr serve: stopped", file=sys.stderr)
    return 0


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
