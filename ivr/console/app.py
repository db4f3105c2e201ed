"""The console's web application: routes, sessions, templates and the guards every request passes."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Mapping, Optional

import aiohttp_jinja2
import aiohttp_session
import jinja2
from aiohttp import web

from ivr.console import auth, handlers, metrics, wallboard
from ivr.console.feed import QueueFeed
from ivr.console.keys import BOARD, FEED, METRICS, SESSIONS, STORE
from ivr.queue.sessions import SessionStore
from ivr.queue.model import QueueUnavailable

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
# Nothing inline, nothing from elsewhere: even a transcript that slipped past escaping could not run script.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def make_console(store, var_dir: Path, *, call_counts: Optional[Callable[[], Mapping[str, int]]] = None,
                 poll_interval: float = 0.5, sessions: Optional[SessionStore] = None,
                 secure_cookies: bool = False, calls_since: Optional[wallboard.CallsSince] = None) -> web.Application:
    """The console over `store` (ivr.queue's QueueStore). `call_counts` (the call records' counts()) adds
    containment to /metrics; `calls_since` (the call records' outcomes(since)) gives the wallboard today's call
    figures (containment, junk calls, CSAT), which it shows as not known without them. Cookies are keyed from
    the install secret in `var_dir`; sessions are kept in `sessions` (by default beside the queue, in its
    database). `secure_cookies`: behind a TLS proxy."""
    app = web.Application(middlewares=[security_headers, unavailable])
    aiohttp_session.setup(app, auth.session_storage(var_dir, secure=secure_cookies))
    app[SESSIONS] = sessions or SessionStore(store.url())
    app.on_cleanup.append(lambda app: _close(app[SESSIONS]) if sessions is None else _nothing())
    app.middlewares.extend([auth.csrf_guard, auth.login_required])
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                         undefined=jinja2.StrictUndefined)
    app[STORE], app[BOARD] = store, wallboard.Board(store, calls_since)
    app[FEED] = feed = QueueFeed(store, interval=poll_interval)
    app[METRICS] = metrics.registry(store, call_counts)
    app.on_startup.append(feed.start)
    app.on_shutdown.append(feed.stop)  # before the server waits for open requests: live feeds end first
    app.add_routes([
        web.get("/", home),
        web.get("/login", auth.login_page),
        web.post("/login", auth.login),
        web.post("/logout", auth.logout),
        web.get("/agent", handlers.agent_page),
        web.get("/agent.json", handlers.agent_json),
        web.post("/agent/state", handlers.set_state),
        web.post("/queue/take-next", handlers.take_next),
        web.post(r"/queue/{entry_id:\d+}/take", handlers.take),
        web.post(r"/calls/{entry_id:\d+}/wrap-up", handlers.wrap_up),
        web.get("/events", handlers.live),
        web.get("/wallboard", wallboard.page),
        web.get("/wallboard.json", wallboard.board_json),
        web.get("/wallboard/events", wallboard.live),
        web.get("/metrics", metrics.metrics),
        web.static("/static", HERE / "static"),
    ])
    return app


async def _close(store) -> None:
    store.close()


async def _nothing() -> None:
    return None


async def home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/agent")


@web.middleware
async def security_headers(request: web.Request, handler):
    try:
        response = await handler(request)
    except web.HTTPException as refusal:  # redirects and refusals get the headers too
        _secure(request, refusal)
        raise
    _secure(request, response)
    return response


def _secure(request: web.Request, response: web.StreamResponse) -> None:
    if response.prepared:  # a live feed has sent its headers already
        return
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")  # pages carry callers' details


@web.middleware
async def unavailable(request: web.Request, handler):
    """The queue's database is down: say so plainly instead of a stack trace; the agent can retry."""
    try:
        return await handler(request)
    except QueueUnavailable as error:
        log.warning("%s %s: %s", request.method, request.path, error)
        raise web.HTTPServiceUnavailable(text=f"The queue is unavailable right now ({error}). "
                                              "Try again in a moment.") from None
