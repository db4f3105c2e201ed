"""Who is signed in, and that every form really comes from the console.

Sessions live in an encrypted cookie whose key is derived from the install secret, so every `ivr serve`
on this install reads the same sessions. Each session has its own CSRF token; every POST must carry it.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Optional

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import Session, get_session, new_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from ivr.accounts import install_secret
from ivr.console.keys import STORE
from ivr.console.offload import offload
from ivr.queue.model import OFFLINE, BadAgent

AGENT, CSRF, FLASH = "agent", "csrf", "flash"
CSRF_FIELD = "csrf"
SHIFT_SECONDS = 12 * 3600
OPEN_PATHS = ("/login", "/static/", "/metrics")
LOGIN_FAILED = "Wrong name or password."
CSRF_REFUSED = ("Refused: this form did not carry the console's security token (CSRF). "
                "Reload the console page and try again.")


def session_storage(var_dir) -> EncryptedCookieStorage:
    key = hmac.new(install_secret(var_dir), b"ivr console session cookie", hashlib.sha256).digest()
    return EncryptedCookieStorage(key, cookie_name="ivr_console", max_age=SHIFT_SECONDS, httponly=True,
                                  samesite="Lax")


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
    name = (await get_session(request)).get(AGENT)
    if not name:
        if request.method == "GET" and not wants_json(request) and request.path != "/events":
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
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    try:
        agent = await offload(request.app[STORE].check_agent, name, password)
    except BadAgent:
        return await login_page(request, LOGIN_FAILED, status=401)
    session = await new_session(request)  # a fresh session (and token) on every sign-in: no fixation
    session[AGENT] = agent.name
    csrf_token(session)
    if agent.state == OFFLINE:
        session[FLASH] = "Welcome. You are offline: set yourself available to take callers."
    raise web.HTTPSeeOther("/agent")


async def logout(request: web.Request) -> web.Response:
    await offload(request.app[STORE].set_agent_state, request[AGENT], OFFLINE)  # nobody routes to an empty seat
    session = await get_session(request)
    session.invalidate()
    session = await new_session(request)
    session[FLASH] = "Signed out; you are offline."
    raise web.HTTPSeeOther("/login")
