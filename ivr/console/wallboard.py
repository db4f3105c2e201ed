"""The supervisors' wallboard: today's figures on a wall screen, pushed live like the agents' queue.

Only a supervisor (an agent added with `--role supervisor`) may open it; an agent gets 403. The figures are
the report's (ivr.reports.kpis) over today's queue entries and call records, so the wall and `ivr report` never
disagree; what is waiting now comes from the live queue. A supervisor's browser gets server-sent events:
`wallboard` (the board, rendered for it) whenever the queue feed sees a change, and every few seconds while
callers wait (the longest wait moves on).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable, Dict, List, Optional

import aiohttp_jinja2
from aiohttp import web
from aiohttp_sse import sse_response

from ivr.console import view
from ivr.console.auth import AGENT
from ivr.console.feed import FeedClosed, QueueSnapshot, take_snapshot
from ivr.console.keys import CALLS, FEED, STORE
from ivr.console.offload import offload
from ivr.queue.model import WAITING
from ivr.reports.history import queue_row
from ivr.reports.kpis import SERVICE_LEVEL_SECONDS, kpis

PING_SECONDS = 15.0
FOR_SUPERVISORS = ("The wallboard is for supervisors. A supervisor can give you the role: "
                   "ivr agents add NAME --skills ... --role supervisor")

CallsSince = Callable[[datetime], List[Dict[str, Any]]]


def start_of_today(at: datetime) -> datetime:
    """Midnight where the console runs: a call centre's day is its local day."""
    local = at.astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def figures(store, calls_since: Optional[CallsSince], snapshot: QueueSnapshot, at: datetime) -> dict:
    """Blocking. The board's figures at `at`: the queue now (from `snapshot`) and today's KPIs as the report
    computes them. Without call records (`calls_since` None) the call figures are not known (None)."""
    since = start_of_today(at)
    entries = [queue_row(entry) for entry in store.entries(since)]
    calls = calls_since(since) if calls_since else []
    report = kpis(calls, entries)
    waiting = [entry for entry in snapshot.entries if entry.state == WAITING]
    longest = max((view.seconds_between(entry.enqueued_at, at) for entry in waiting), default=0.0)
    junk, csat = report.get("junk_calls") or {}, report.get("csat") or {}
    known = calls_since is not None
    return {
        "at": at.astimezone().strftime("%H:%M:%S"),
        "waiting": len(waiting),
        "callbacks": len(snapshot.entries) - len(waiting),
        "longest_wait_s": round(longest, 1),
        "longest_wait": view.duration(longest),
        "service_level": report["service_level"],
        "service_level_seconds": SERVICE_LEVEL_SECONDS,
        "abandonment": report["abandonment_rate"],
        "answered": report["answered"],
        "agents": view.agent_counts(snapshot.agents),
        "calls": report["calls"] if known else None,
        "containment": report["containment_rate"] if known else None,
        "junk_calls": junk.get("calls", 0) if known else None,
        "csat": csat.get("average") if known else None,
        "csat_answered": csat.get("answered", 0),
    }


def shown(board: dict) -> dict:
    """The figures as the wall says them: percentages, one decimal for CSAT, a dash for what is not known."""
    def percent(share: Optional[float]) -> str:
        return "—" if share is None else f"{share * 100:.0f} %"
    return {
        **board,
        "service_level_text": percent(board["service_level"]),
        "abandonment_text": percent(board["abandonment"]),
        "containment_text": percent(board["containment"]),
        "junk_text": "—" if board["junk_calls"] is None else str(board["junk_calls"]),
        "csat_text": "—" if board["csat"] is None else f"{board['csat']:.1f}",
        "agents_shown": [(view.STATE_NAMES.get(state, state), count) for state, count in board["agents"].items()],
    }


async def _supervisor(request: web.Request) -> None:
    agent = await offload(request.app[STORE].agent, request[AGENT])
    if not agent.supervisor:
        raise web.HTTPForbidden(text=FOR_SUPERVISORS)


async def _board(request: web.Request, snapshot: Optional[QueueSnapshot] = None) -> dict:
    store = request.app[STORE]

    def look() -> dict:
        return figures(store, request.app[CALLS], snapshot or take_snapshot(store), view.now())
    return shown(await offload(look))


async def page(request: web.Request) -> web.Response:
    await _supervisor(request)
    return aiohttp_jinja2.render_template("wallboard.html", request, {"board": await _board(request), "flash": None})


async def board_json(request: web.Request) -> web.Response:
    await _supervisor(request)
    board = await _board(request)
    return web.json_response({key: value for key, value in board.items() if key != "agents_shown"})


async def live(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `wallboard` with the board's HTML and figures, at once and after every queue change."""
    await _supervisor(request)
    async with sse_response(request) as response:
        response.ping_interval = PING_SECONDS
        with request.app[FEED].subscribe() as subscriber:
            await _send(request, response, await _board(request))
            while response.is_connected():
                try:
                    update = await subscriber.next(timeout=PING_SECONDS)
                except FeedClosed:
                    break
                if update is None or update.snapshot is None:
                    continue
                try:
                    await _send(request, response, await _board(request, update.snapshot))
                except ConnectionResetError:
                    break
    return response


async def _send(request: web.Request, response, board: dict) -> None:
    html = aiohttp_jinja2.render_string("_wallboard.html", request, {"board": board})
    figures_only = {key: value for key, value in board.items() if key != "agents_shown"}
    await response.send(json.dumps({"html": html, "figures": figures_only}), event="wallboard")

