"""The agent's page and what its buttons do: state, take next, take, wrap up; the live feed; JSON views.

Handlers only translate between HTTP and the queue store (called on worker threads); what the agent sees
is built in ivr/console/view.py.
"""
from __future__ import annotations

import json
from typing import Optional

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session
from aiohttp_sse import sse_response

from ivr.console import view
from ivr.console.auth import AGENT, csrf_token, take_flash, wants_json
from ivr.console.feed import FeedClosed, QueueSnapshot, changes_since, event_json, take_snapshot
from ivr.console.keys import FEED, STORE
from ivr.console.offload import offload
from ivr.queue.model import (AGENT_STATES, DISPOSITIONS, AgentBusy, AlreadyTaken, BadAgent, KeptForCare, QueueError,
                             UnknownEntry)

PING_SECONDS = 15.0


def _load(store, name: str):
    return store.agent(name), store.holding(name), take_snapshot(store)


async def _agent_view(request: web.Request) -> dict:
    session = await get_session(request)
    try:  # the caller they hold comes from the database: signed in again, or on another screen, it is still there
        agent, held, snapshot = await offload(_load, request.app[STORE], request[AGENT])
    except BadAgent:  # the agent was removed while signed in
        session.invalidate()
        raise web.HTTPSeeOther("/login") from None
    at = view.now()
    rows = view.queue_rows(snapshot.entries, at, agent.skills, request.app[STORE].care, snapshot.agents)
    counts = view.agent_counts(snapshot.agents)
    holding = await offload(view.screen_pop, held, at, request.app[STORE].care) if held else None
    return {"agent": view.agent_view(agent), "holding": holding,
            "queue": rows, "agents": counts, "summary": view.queue_summary(rows, counts),
            "event_id": snapshot.event_id, "flash": await take_flash(request), "csrf": csrf_token(session),
            "states": [(state, view.STATE_NAMES[state]) for state in AGENT_STATES],
            "dispositions": [(code, code.replace("_", " ")) for code in DISPOSITIONS]}


async def agent_page(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("agent.html", request, await _agent_view(request))


async def agent_json(request: web.Request) -> web.Response:
    shown = await _agent_view(request)
    for private in ("csrf", "states", "dispositions"):
        shown.pop(private)
    return web.json_response(shown)


async def _answer(request: web.Request, message: str, status: int = 200) -> web.Response:
    """A browser goes back to its page with the message shown there; a script gets JSON."""
    session = await get_session(request)
    if wants_json(request):
        held = await offload(request.app[STORE].holding, request[AGENT])
        return web.json_response({"ok": status < 400, "message": message, "holding": held.id if held else None},
                                 status=status)
    session["flash"] = message
    raise web.HTTPSeeOther("/agent")


async def set_state(request: web.Request) -> web.Response:
    state = (await request.post()).get("state", "")
    if state not in AGENT_STATES:
        return await _answer(request, f"Unknown state {state!r}: choose one of {', '.join(AGENT_STATES)}.", 400)
    try:
        await offload(request.app[STORE].set_agent_state, request[AGENT], state)
    except BadAgent as error:
        return await _answer(request, str(error), 409)
    return await _answer(request, f"You are {view.STATE_NAMES[state].lower()}.")


async def _take(request: web.Request, entry_id: Optional[int]) -> web.Response:
    store, name = request.app[STORE], request[AGENT]
    try:
        if entry_id is None:
            entry = await offload(store.take_next, name)
        else:
            entry = await offload(store.take, entry_id, name)
    except AgentBusy:  # one caller at a time, kept by the database whatever screen asks
        return await _answer(request, "Wrap up the caller you hold before taking another.", 409)
    except AlreadyTaken:
        return await _answer(request, "Another agent took that caller first, or they hung up. "
                                      "The queue below is up to date: take the next one.", 409)
    except UnknownEntry:
        return await _answer(request, "That caller is no longer in the queue.", 404)
    except KeptForCare:
        return await _answer(request, "That caller is upset and waits a few seconds more for an agent trained in "
                                      "de-escalation. Take the next caller, or take them once the queue says so.", 409)
    except BadAgent as error:  # offline, or lacking a skill this caller needs
        return await _answer(request, f"You cannot take callers now: {error}.", 409)
    if entry is None:
        return await _answer(request, "Nobody is waiting whom you can take.")
    return await _answer(request, f"You have the caller: {entry.escalation.summary or view.reason_text(entry.escalation.reason)}")


async def take_next(request: web.Request) -> web.Response:
    return await _take(request, None)


async def take(request: web.Request) -> web.Response:
    return await _take(request, int(request.match_info["entry_id"]))


async def wrap_up(request: web.Request) -> web.Response:
    entry_id = int(request.match_info["entry_id"])
    disposition = (await request.post()).get("disposition", "")
    if disposition not in DISPOSITIONS:
        return await _answer(request, "Choose a disposition code to wrap up.", 400)
    try:
        await offload(request.app[STORE].wrap_up, entry_id, request[AGENT], disposition)
    except QueueError as error:
        return await _answer(request, str(error), 409)
    return await _answer(request, f"Wrapped up: {disposition.replace('_', ' ')}.")


async def live(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `change` for each queue event, `queue` for the table, `problem` if the queue is down."""
    store, feed = request.app[STORE], request.app[FEED]
    session = await get_session(request)
    csrf, name = csrf_token(session), request[AGENT]
    async with sse_response(request) as response:
        response.ping_interval = PING_SECONDS
        with feed.subscribe() as subscriber:
            after = request.headers.get("Last-Event-ID", "")
            sent = int(after) if after.isdigit() else None  # the browser reconnected: it gets what it missed
            if sent is not None:
                for event in await offload(changes_since, store, sent):
                    await response.send(event_json(event), id=str(event.id), event="change")
                    sent = event.id
            # Fresh, not the feed's last look: that may be older than the page this browser just loaded.
            shown = await offload(take_snapshot, store)
            await _send_queue(request, response, shown, name, csrf)
            while response.is_connected():
                try:
                    update = await subscriber.next(timeout=PING_SECONDS)
                except FeedClosed:
                    break
                if update is None:
                    continue
                try:
                    for event in update.events:
                        if sent is None or event.id > sent:
                            await response.send(event_json(event), id=str(event.id), event="change")
                            sent = event.id
                    if update.problem:
                        await response.send(update.problem, event="problem")
                    if update.snapshot and update.snapshot.event_id >= shown.event_id:  # never back in time
                        shown = update.snapshot
                        await _send_queue(request, response, shown, name, csrf)
                except ConnectionResetError:
                    break
    return response


async def _send_queue(request, response, snapshot: QueueSnapshot, name: str, csrf: str) -> None:
    me = next((agent for agent in snapshot.agents if agent.name == name), None)
    at = view.now()
    rows = view.queue_rows(snapshot.entries, at, me.skills if me else (), request.app[STORE].care, snapshot.agents)
    counts = view.agent_counts(snapshot.agents)
    html = aiohttp_jinja2.render_string("_queue.html", request, {"queue": rows, "csrf": csrf})
    await response.send(json.dumps({"summary": view.queue_summary(rows, counts), "html": html}),
                        id=str(snapshot.event_id), event="queue")
