"""A queued caller waiting for a person: where they are in line, hold music, and a callback.

Position and estimated wait are announced on entry and every `announce_every_s`, hold music
plays in between, and the caller may say "callback" (or press 1) at any time: the number is taken
from the line when known, else keyed in (keys typed ahead of the question count: callers never key twice),
and the caller keeps their place. The hold ends when an agent takes the caller, on a callback, or when the
caller hangs up (the call marks that).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Awaitable, Callable, Optional

from ivr.dialog.settings import HoldSettings
from ivr.events import Expectation
from ivr.phones import callback_number
from ivr.queue.desk import QueueDesk
from ivr.queue.model import CALLBACK, ROUTABLE, TAKEN, AlreadyTaken, Position, QueueError
from ivr.queue.notices import Watch

log = logging.getLogger(__name__)

MUSIC_STEP_S = 1.0  # hold music is played a second at a time, between looks at what the caller said
STOP_CHECK_S = 0.02  # how soon a cancelled step is cancelled again if it carried on
NUMBER_WAIT_S = 20.0  # how long a caller has to key in a callback number (or its next key)


@dataclass(frozen=True)
class HoldLine:
    """What the hold needs from the call it runs in (the call knows the stages, the hold does not)."""
    say: Callable[[str, str, Expectation], Awaitable[None]]  # (text, prompt name, what the answer is)
    play_music: Callable[[float, Expectation], Awaitable[None]]  # seconds of hold music, in real time; the offer
    desk: QueueDesk  # the queue, typed and off the event loop
    hush: Optional[Callable[[], None]] = None  # drops what is queued to play: the caller was taken meanwhile


def minutes_phrase(seconds: float) -> str:
    if seconds < 60:
        return "less than a minute"
    minutes = round(seconds / 60)
    return "one minute" if minutes == 1 else f"{minutes} minutes"


def spoken_number(number: str) -> str:
    digits = number[2:] if number.startswith("+1") else number.lstrip("+")
    return ", ".join(" ".join(group) for group in (digits[:3], digits[3:6], digits[6:])) if len(digits) == 10 \
        else " ".join(digits)


async def _stopped(task: asyncio.Future) -> None:
    """Cancelled until it has stopped: on Python 3.10 asyncio.wait_for swallows a cancel that comes as what it
    waits for finishes (the line's flush, ended by the hush), and the music would play its second out."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_CHECK_S)
    if not task.cancelled():
        task.exception()  # retrieved: a step that failed as it was stopped has nothing more to say


def _keys(answer: str) -> Optional[str]:
    """The digits of a keyed (or spoken and read as digits) answer; None for words."""
    if not answer or any(not (c.isdigit() or c in "+ -") for c in answer):
        return None
    return "".join(c for c in answer if c.isdigit() or c == "+") or None


class KeyedNumber:
    """A callback number as the caller keys it, from the callback key on. Until the number is asked for, the
    hold's offer takes one key as a whole answer, so keys typed ahead come one by one (their pound key is
    dropped); once asked, the caller's entry comes whole when they press pound."""

    def __init__(self) -> None:
        self.digits = ""
        self._ended = False  # the caller has given what they have: an entry ended by pound, or words
        self._heard = asyncio.Event()

    def hear(self, answer: str, asked: bool) -> bool:
        keys = _keys(answer)
        if keys is None and not asked:
            return False  # words before the question: the hold music's echo, or "callback" said again
        self.digits += keys or ""
        self._ended = self._ended or keys is None or len(keys) > 1
        self._heard.set()
        return True

    @property
    def complete(self) -> bool:
        """Ended by the caller, or already a number we can call (typed ahead: no pound key comes)."""
        return self._ended or callback_number(self.digits) is not None

    async def until_complete(self) -> None:
        """Raises asyncio.TimeoutError when the caller keys nothing more for NUMBER_WAIT_S."""
        while not self.complete:
            self._heard.clear()
            await asyncio.wait_for(self._heard.wait(), NUMBER_WAIT_S)


class OnHold:
    def __init__(self, line: HoldLine, entry_id: int, settings: HoldSettings, caller_number: Optional[str]):
        self.line, self.entry_id, self._settings = line, entry_id, settings
        self._caller_number = caller_number
        self._answers: asyncio.Queue[str] = asyncio.Queue()
        self._awaiting_number = False  # the number was asked for
        self._number: Optional[KeyedNumber] = None  # from the callback key until the number is taken
        self.outcome: Optional[str] = None  # taken | callback | the entry's state when it left the queue
        self._watch: Optional[Watch] = None  # while on hold: when to look at the entry again

    @property
    def offer(self) -> Expectation:
        """What the caller may answer while on hold: the callback words, or one key."""
        return Expectation("free", 1, self._settings.callback_words)

    def hear(self, answer: str) -> bool:
        """What the caller said or keyed while on hold. False: nothing the hold acts on (on a loudspeaker,
        say, the hold music's own echo taken for words), so not worth keeping as a caller turn."""
        if self._number is not None:  # keys after the callback key are the number's: callers never repeat them
            return self._number.hear(answer, asked=self._awaiting_number)
        if not self._wants_callback(answer):
            return False
        self._number = KeyedNumber()
        self._answers.put_nowait(answer)
        return True

    async def run(self) -> str:
        loop = asyncio.get_running_loop()
        with self.line.desk.watch(self.entry_id) as self._watch:
            next_announcement = loop.time()
            while True:
                # a callback asked for (over the last announcement, say) is taken before announcing again
                announcing = loop.time() >= next_announcement and self._answers.empty()
                step = self._announce() if announcing else self._music_until_answer(MUSIC_STEP_S)
                left, answer = await self._unless_left_line(step)
                if left is not None:
                    return self._end(await self._left(left))
                if announcing:
                    next_announcement = loop.time() + self._settings.announce_every_s
                if answer is not None:
                    outcome = await self._callback()
                    if outcome is not None:
                        return self._end(outcome)
                    next_announcement = loop.time()

    async def _left(self, state: str) -> str:
        if state == TAKEN:
            await self.line.say(self._settings.connecting, "hold_connecting", Expectation())
        return state

    async def _unless_left_line(self, step: Awaitable[Optional[str]]) -> tuple[Optional[str], Optional[str]]:
        """The step (an announcement, a second of music), cut short when the caller leaves the line: an agent
        took them (told by the queue's notices, so also in the middle of an announcement), or the queue let
        them go. Returns the state they left in (None: still waiting) and the step's answer."""
        task = asyncio.ensure_future(step)
        try:
            while True:
                if await self._watch.until_due(task):
                    self._watch.looking()
                    state = await self._state()
                    if state not in ROUTABLE:
                        if self.line.hush:  # the rest of the announcement or music is not played
                            self.line.hush()
                        return state, None
                if task.done():
                    return None, task.result()
        finally:  # also when the call hangs up meanwhile
            await _stopped(task)

    async def _state(self) -> str:
        entry = await self.line.desk.entry(self.entry_id)
        if entry.state == TAKEN and entry.taken_at is not None:  # the figure operators watch: how late the hold learnt
            log.info("queue entry %s: taken by %s; the holding call learnt it %.0f ms after the take", entry.id,
                     entry.agent, (datetime.now(timezone.utc) - entry.taken_at).total_seconds() * 1000)
        return entry.state

    async def _music_until_answer(self, seconds: float) -> Optional[str]:
        """Hold music for `seconds`, cut short by whatever the caller says or keys."""
        if not self._answers.empty():  # said over the announcement: no music queued before the answer
            return self._answers.get_nowait()
        music = asyncio.ensure_future(self.line.play_music(seconds, self.offer))
        answer = asyncio.ensure_future(self._answers.get())
        try:
            await asyncio.wait({music, answer}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when the call hangs up meanwhile
            for task in (music, answer):
                task.cancel()
            await asyncio.gather(music, answer, return_exceptions=True)
        return answer.result() if not answer.cancelled() else None

    def _end(self, outcome: str) -> str:
        self.outcome = outcome
        return outcome

    async def _announce(self) -> None:
        try:
            position: Position = await self.line.desk.position(self.entry_id)
        except QueueError:
            log.exception("queue entry %s: no position to announce", self.entry_id)
            position = Position(0, 0.0)
        text = self._settings.announcement.format(position=position.place,
                                                  minutes=minutes_phrase(position.estimated_wait_s))
        await self.line.say(f"{text} {self._settings.callback_offer}", "hold_announcement", self.offer)

    def _wants_callback(self, answer: str) -> bool:
        answer = answer.lower().strip()
        return answer == self._settings.callback_key or any(word in answer for word in self._settings.callback_words)

    async def _callback(self) -> Optional[str]:
        """CALLBACK when booked; None when no number was given (the caller keeps waiting). An agent may take
        the caller while they key their number: they are put through (TAKEN), never told the queue failed."""
        left, number = await self._number_to_call()
        if left is not None:
            return await self._left(left)
        if not number:
            await self.line.say(self._settings.bad_number, "hold_bad_number", self.offer)
            return None
        try:
            await self.line.desk.request_callback(self.entry_id, number)
        except AlreadyTaken:  # taken (or gone) between the last look and the booking
            return await self._left(await self._state())
        await self.line.say(self._settings.callback_confirmed.format(number=spoken_number(number)),
                            "hold_callback_confirmed", Expectation())
        return CALLBACK

    async def _number_to_call(self) -> tuple[Optional[str], Optional[str]]:
        """(None, the number or None when none we can call); (the state, None) when the caller left the line
        (an agent took them) as they keyed it. Keys after this are no number's until the callback key again."""
        try:
            number = self._caller_number and callback_number(self._caller_number)
            if number:
                return None, number
            left, keyed = await self._unless_left_line(self._keyed_number())
            return left, callback_number(keyed) if left is None and keyed else None
        finally:
            self._number = None

    async def _keyed_number(self) -> str:
        """What the caller keyed; the question is not asked when the keys typed ahead already make a number,
        and a key cuts it short like any prompt."""
        number = self._number or KeyedNumber()
        if number.complete:
            return number.digits
        self._awaiting_number = True
        try:
            await self.line.say(self._settings.ask_number, "hold_ask_number", Expectation("digits"))
            await number.until_complete()
        except asyncio.TimeoutError:
            pass  # what was keyed, if anything, is judged as it is
        finally:
            self._awaiting_number = False
        return number.digits
