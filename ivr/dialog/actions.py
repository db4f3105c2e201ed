"""The dialog's actions, run in the bot's own process: Rasa's action endpoint answered by rasa_sdk's
executor directly, so no port is open for anyone to post a forged payment to.

Each action runs on a worker thread with its own event loop (they read and write the accounts
store, which blocks), with the accounts, card tokens and seal of this bot's settings.
"""
from __future__ import annotations

import asyncio
import contextvars
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from rasa.utils.endpoints import ClientResponseError, EndpointConfig

ACTION_THREADS = 4  # actions are short; a few at once keep one slow database call from holding the others


class InProcessActions(EndpointConfig):
    """What RemoteAction posts to: here, a call into rasa_sdk's executor instead of HTTP."""

    def __init__(self, settings, package: str = "ivr.actions"):
        super().__init__(url=f"in-process:{package}")
        from rasa_sdk.executor import ActionExecutor

        from ivr.actions.stores import Backing

        self._executor = ActionExecutor()
        self._executor.register_package(package)
        self._backing = Backing(settings)
        self._pool = ThreadPoolExecutor(ACTION_THREADS, thread_name_prefix="actions")

    async def request(self, method: str = "post", subpath: Optional[str] = None,
                      content_type: Optional[str] = "application/json", compress: bool = False, **kwargs: Any) -> Any:
        call = json.loads(json.dumps(kwargs.get("json") or {}))  # what the HTTP round trip did: a copy, plain JSON
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, call)

    def _run(self, call: dict) -> Optional[dict]:
        from rasa_sdk.interfaces import ActionExecutionRejection

        from ivr.actions.stores import serving

        context = contextvars.copy_context()
        context.run(serving, self._backing)
        try:
            return context.run(asyncio.run, self._executor.run(call))
        except ActionExecutionRejection as rejected:  # a form's validation refusing: Rasa expects it as a 400
            raise ClientResponseError(400, "Bad Request", json.dumps(
                {"action_name": rejected.action_name, "error": rejected.message})) from None

    def warm(self) -> None:
        """Load now, on an action thread, what the actions would load on their first use: the ZIP database
        (~0.3 s of CPU; any ZIP loads all of it), else the first caller to give a ZIP code waits for it."""
        from ivr.accounts.zips import place_for_zip

        self._pool.submit(place_for_zip, "62704")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
