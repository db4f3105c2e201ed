"""The supervisors' wallboard: today's figures on a wall screen, pushed live like the agents' queue.

Only a supervisor (an agent added with `--role supervisor`) may open it; an agent gets 403. The figures are
the report's (ivr.reports.kpis) over today's queue entries and call records, so the wall and `ivr report` never
disagree; what is waiting now comes from the live queue. A supervisor's browser gets server-sent events:
`wallboard` (the board, rendered for it) whenever the queue feed sees a change, and every few seconds while
callers wait (the longest wait moves on).

One board is shared by every open wallboard (`Board`): computed once per queue feed update, not once per
browser, and today's calls (the costly read) are read at most once per CALLS_FRESH_S, only the few fields the
figures use (CallRecords.outcomes), on the same worker threads live calls use.
"""
from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any, Callable, Dict, List, Optional

import aiohttp_jinja2
from aiohttp import web
from aiohttp_sse import sse_response

from ivr.console import view
from ivr.console.auth import AGENT
from ivr.console.feed import FeedClosed, QueueSnapshot, take_snapshot
from ivr.console.keys import BOARD, FEED, STORE
from ivr.console.offload import offload
from ivr.queue.model import WAITING
from ivr.reports.history import queue_row
from ivr.reports.kpis import SERVICE_LEVEL_SECONDS, live_figures

PING_SECONDS = 15.0
CALLS_FRESH_S = 5.0  # today's calls on the wall are at most this old; read no more often however many walls
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
    return _figures(store, calls_since(start_of_today(at)) if calls_since else None, snapshot, at)


def _figures(store, calls: Optional[List[Dict[str, Any]]], snapshot: QueueSnapshot, at: datetime) -> dict:
    report = live_figures(calls or [], [queue_row(entry) for entry in store.entries(start_of_today(at))])
    known = calls is not None
    waiting = [entry for entry in snapshot.entries if entry.state == WAITING]
    longest = max((view.seconds_between(entry.enqueued_at, at) for entry in waiting), default=0.0)
    junk, csat = report.get("junk_calls") or {}, report.get("csat") or {}
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


class Board:
    """The wallboard every supervisor's browser shows: built once per queue snapshot (the feed hands every
    subscriber the same one), with today's calls read at most once per CALLS_FRESH_S."""

    def __init__(self, store, calls_since: Optional[CallsSince]):
        self._store, self._calls_since = store, calls_since
        self._lock = asyncio.Lock()  # many browsers, one computation
        self._calls: Optional[List[Dict[str, Any]]] = None
        self._calls_read_at = float("-inf")
        self._snapshot: Optional[QueueSnapshot] = None
        self._shown: Optional[dict] = None

    async def of(self, snapshot: Optional[QueueSnapshot] = None) -> dict:
        """The board for `snapshot` (None: the last one shown, else a fresh look at the queue)."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            calls_stale = loop.time() - self._calls_read_at >= CALLS_FRESH_S
            snapshot = snapshot or self._snapshot or await offload(take_snapshot, self._store)
            if snapshot is self._snapshot and not calls_stale:
                return self._shown
            at = view.now()
            if calls_stale and self._calls_since is not None:
                self._calls = await offload(self._calls_since, start_of_today(at))
                self._calls_read_at = loop.time()
            self._shown = shown(await offload(_figures, self._store, self._calls, snapshot, at))
            self._snapshot = snapshot
            return self._shown


async def page(request: web.Request) -> web.Response:
    await _supervisor(request)
    board = await request.app[BOARD].of(await offload(take_snapshot, request.app[STORE]))
    return aiohttp_jinja2.render_template("wallboard.html", request, {"board": board, "flash": None})


async def board_json(request: web.Request) -> web.Response:
    await _supervisor(request)
    board = await request.app[BOARD].of(await offload(take_snapshot, request.app[STORE]))
    return web.json_response({key: value for key, value in board.items() if key != "agents_shown"})


async def live(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `wallboard` with the board's HTML and figures, at once and after every queue change."""
    await _supervisor(request)
    async with sse_response(request) as response:
        response.ping_interval = PING_SECONDS
        with request.app[FEED].subscribe() as subscriber:
            board = request.app[BOARD]
            sent = await board.of(await offload(take_snapshot, request.app[STORE]))
            await _send(request, response, sent)
            while response.is_connected():
                try:
                    update = await subscriber.next(timeout=CALLS_FRESH_S)
                except FeedClosed:
                    break
                if update is not None and update.snapshot is None:
                    continue  # the queue cannot be read just now: the wall keeps its last figures
                latest = await board.of(update.snapshot if update else None)  # quiet: today's calls move on
                if latest is sent:
                    continue
                try:
                    await _send(request, response, latest)
                except ConnectionResetError:
                    break
                sent = latest
    return response


async def _send(request: web.Request, response, board: dict) -> None:
    html = aiohttp_jinja2.render_string("_wallboard.html", request, {"board": board})
    figures_only = {key: value for key, value in board.items() if key != "agents_shown"}
    await response.send(json.dumps({"html": html, "figures": figures_only}), event="wallboard")

