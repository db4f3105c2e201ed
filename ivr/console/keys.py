"""What the console application holds for its handlers."""
from __future__ import annotations

from aiohttp import web

STORE = web.AppKey("queue store", object)  # ivr.queue QueueStore: every read and write goes through it
FEED = web.AppKey("queue feed", object)  # ivr.console.feed.QueueFeed
METRICS = web.AppKey("metrics registry", object)  # prometheus_client CollectorRegistry
SESSIONS = web.AppKey("console sessions", object)  # ivr.queue.sessions SessionStore: who is signed in
BOARD = web.AppKey("wallboard", object)  # ivr.console.wallboard.Board: one board shared by every open wallboard
