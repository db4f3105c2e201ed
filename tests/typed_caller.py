"""A typed caller for tests: lines into a real call (the `ivr chat` line), what the bot said back out.

The call, its understanding (number words, amounts, keyed #), the dialog and its actions are the
real ones; only the audio is absent, as in `ivr chat`.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

from ivr.call import Backstage
from ivr.call_result import CallResult
from ivr.events import Turn
from ivr.transports.typed import TypedLine


@dataclass
class TypedCall:
    result: CallResult
    turns: list[Turn] = field(default_factory=list)  # greeting first, then one per caller line

    @property
    def greeting(self) -> list[str]:
        return self.turns[0].bot

    def heard_after(self, line: int) -> str:
        """All the bot said in answer to caller line `line` (0-based), as one text."""
        return " ".join(self.turns[line + 1].bot)

    def last_question(self, before_line: int) -> str:
        """The last thing the bot said before caller line `before_line`."""
        return self.turns[before_line].bot[-1]


def typed_call(bot, loop: asyncio.AbstractEventLoop, lines: list[str], with_queue: bool = False,
               caller_number: Optional[str] = None,
               before_each: Optional[Callable[[int, str], str]] = None) -> TypedCall:
    """Play `lines` into a call, then hang up. Without `with_queue` an escalated caller is not held.
    `before_each(index, line)` runs as the caller is about to type each line (what happens meanwhile)."""
    pending = list(enumerate(lines))

    def read() -> Optional[str]:
        if not pending:
            return None
        index, line = pending.pop(0)
        return before_each(index, line) if before_each else line

    used = bot if with_queue else replace(bot, backstage=Backstage(frustration=bot.backstage.frustration))
    call = used.call(TypedLine(read), "chat", caller_number=caller_number)
    turns: list[Turn] = []
    call.on_turn = turns.append
    result = loop.run_until_complete(asyncio.wait_for(call.run(), 120))
    return TypedCall(result, turns)
