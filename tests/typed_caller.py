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


class TerminalChat:
    """A person at `ivr chat` in its own process: answers each prompt as it appears, as they would."""

    def __init__(self, *options: str, env: Optional[dict] = None):
        import os
        import queue
        import subprocess
        import sys
        import threading
        from pathlib import Path

        from conftest import ROOT

        self.process = subprocess.Popen([str(Path(sys.executable).parent / "ivr"), "chat", *options],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, cwd=ROOT, env=dict(os.environ, **(env or {})))
        self._lines: "queue.Queue[str]" = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=lambda: [self._lines.put(line) for line in self.process.stdout], daemon=True).start()

    def until(self, words: str, timeout: float = 90) -> None:
        """Reads what the bot says until it says `words` (loading the bot included, well under `timeout`)."""
        import queue

        while not self.seen or words not in self.seen[-1]:
            try:
                self.seen.append(self._lines.get(timeout=timeout))
            except queue.Empty:
                ended = self.process.poll() is not None
                why = f"\n(ivr chat ended {self.process.returncode}: {self.process.stderr.read()[-2000:]})" if ended else ""
                raise AssertionError(f"never said {words!r}:\n{''.join(self.seen)}{why}") from None

    def say(self, line: str) -> None:
        self.process.stdin.write(f"{line}\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
