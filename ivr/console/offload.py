"""The queue store blocks (SQLAlchemy): its calls run on worker threads so pages and live feeds keep flowing."""
from __future__ import annotations

import asyncio
import functools
from typing import Callable, TypeVar

T = TypeVar("T")


async def offload(blocking: Callable[..., T], *args, **kwargs) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(blocking, *args, **kwargs))
