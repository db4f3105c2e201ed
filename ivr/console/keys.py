"""What the console application holds for its handlers."""
from __future__ import annotations

from aiohttp import web

STORE = web.AppKey("queue store", object)  # ivr.queue QueueStore: every read and write goes through it
FEED = web.AppKey("queue feed", object)  # ivr.console.feed.QueueFeed
METRICS = web.AppKey("metrics registry", object)  # prometheus_client CollectorRegistry
SESSIONS = web.AppKey("console sessions", object)  # ivr.queue.sessions SessionStore: who is signed in
CALLS = web.AppKey("calls since", object)  # the call records' calls(since), for the wallboard; None: not known
