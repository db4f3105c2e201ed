"""Who is signed in, and that every form really comes from the console.

The cookie is encrypted with a key derived from the install secret and carries a session token; the session
itself is in the database (ivr/console/sessions.py), so signing out, a new password or `ivr agents add`
ends it everywhere, whatever copies of the cookie exist. Failed sign-ins are counted per name and per
address, locked out past a limit, and each is an audit line in the log. Each session has its own CSRF
token; every POST must carry it.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Optional

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import Session, get_session, new_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from ivr.accounts import install_secret
from ivr.console.keys import SESSIONS, STORE
from ivr.console.offload import offload
from ivr.queue.model import OFFLINE, BadAgent

log = logging.getLogger("ivr.console.audit")
AGENT, CSRF, FLASH, TOKEN = "agent", "csrf", "flash", "token"
CSRF_FIELD = "csrf"
SHIFT_SECONDS = 12 * 3600
OPEN_PATHS = ("/login", "/static/", "/metrics")
LIVE_FEEDS = ("/events", "/wallboard/events")  # a script's EventSource: told 401, not sent to the sign-in page
LOGIN_FAILED = "Wrong name or password."
LOCKED_OUT = ("Too many failed sign-ins for this name or from this address. Try again in {minutes} minute(s), "
              "or ask a supervisor to reset your password (ivr agents add).")
CSRF_REFUSED = ("Refused: this form did not carry the console's security token (CSRF). "
                "Reload the console page and try again.")


def session_storage(var_dir, secure: bool = False) -> EncryptedCookieStorage:
    """`secure`: the cookie goes over HTTPS only (the console behind a TLS proxy: `ivr serve --secure-cookies`)."""
    key = hmac.new(install_secret(var_dir), b"ivr console session cookie", hashlib.sha256).digest()
    return EncryptedCookieStorage(key, cookie_name="ivr_console", max_age=SHIFT_SECONDS, httponly=True,
                                  samesite="Strict", secure=secure or None)


def csrf_token(session: Session) -> str:
    if CSRF not in session:
        session[CSRF] = secrets.token_urlsafe(32)
    return session[CSRF]


@web.middleware
async def csrf_guard(request: web.Request, handler):
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        session = await get_session(request)
        expected = session.get(CSRF, "")
        sent = request.headers.get("X-CSRF-Token") or (await request.post()).get(CSRF_FIELD, "")
        if not expected or not isinstance(sent, str) or not hmac.compare_digest(expected.encode(), sent.encode()):
            raise web.HTTPForbidden(text=CSRF_REFUSED)
    return await handler(request)


@web.middleware
async def login_required(request: web.Request, handler):
    if request.path.startswith(OPEN_PATHS):
        return await handler(request)
    session = await get_session(request)
    name = await offload(request.app[SESSIONS].agent_of, session.get(TOKEN, "")) if session.get(TOKEN) else None
    if not name:
        if session.get(AGENT):  # signed out elsewhere, a new password, or the shift is over
            session.invalidate()
        if request.method == "GET" and not wants_json(request) and request.path not in LIVE_FEEDS:
            raise web.HTTPSeeOther("/login")
        raise web.HTTPUnauthorized(text="Sign in to the console first (/login).")
    request[AGENT] = name
    return await handler(request)


def wants_json(request: web.Request) -> bool:
    return request.path.endswith(".json") or "application/json" in request.headers.get("Accept", "")


async def flash(request: web.Request, message: str) -> None:
    (await get_session(request))[FLASH] = message


async def take_flash(request: web.Request) -> Optional[str]:
    return (await get_session(request)).pop(FLASH, None)


async def login_page(request: web.Request, error: Optional[str] = None, status: int = 200) -> web.Response:
    session = await get_session(request)
    if session.get(AGENT) and error is None:
        raise web.HTTPSeeOther("/agent")
    response = aiohttp_jinja2.render_template("login.html", request,
                                              {"csrf": csrf_token(session), "error": error,
                                               "flash": session.pop(FLASH, None)}, status=status)
    return response


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    name, password = str(form.get("name", "")).strip()[:64], str(form.get("password", ""))
    sessions, address = request.app[SESSIONS], request.remote or "unknown"
    locked = await offload(sessions.locked_for, name, address)
    if locked is not None:
        log.warning("console sign-in refused (locked out): name %r from %s", name, address)
        minutes = max(1, round(locked.total_seconds() / 60))
        return await login_page(request, LOCKED_OUT.format(minutes=minutes), status=429)
    try:
        agent = await offload(request.app[STORE].check_agent, name, password)
    except BadAgent:
        counts = await offload(sessions.failed, name, address)
        log.warning("console sign-in failed: name %r from %s (%s in %d min)", name, address,
                    ", ".join(f"{n} for {who}" for who, n in counts.items()),
                    sessions.limits.window.total_seconds() // 60)
        return await login_page(request, LOGIN_FAILED, status=401)
    await offload(sessions.succeeded, agent.name)
    token = await offload(sessions.start, agent.name)
    log.info("console sign-in: %s from %s", agent.name, address)
    session = await new_session(request)  # a fresh session (and token) on every sign-in: no fixation
    session[AGENT], session[TOKEN] = agent.name, token
    csrf_token(session)
    if agent.state == OFFLINE:
        session[FLASH] = "Welcome. You are offline: set yourself available to take callers."
    raise web.HTTPSeeOther("/agent")


async def logout(request: web.Request) -> web.Response:
    await offload(request.app[STORE].set_agent_state, request[AGENT], OFFLINE)  # nobody routes to an empty seat
    session = await get_session(request)
    await offload(request.app[SESSIONS].end, session.get(TOKEN, ""))  # a copy of the cookie is worth nothing now
    log.info("console sign-out: %s", request[AGENT])
    session.invalidate()
    session = await new_session(request)
    session[FLASH] = "Signed out; you are offline."
    raise web.HTTPSeeOther("/login")
