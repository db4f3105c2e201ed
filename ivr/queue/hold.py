"""A queued caller waiting for a person: where they are in line, hold music, and a callback.

Position and estimated wait are announced on entry and every `announce_every_s`, hold music
plays in between, and the caller may say "callback" (or press 1) at any time: the number is taken
from the line when known, else keyed in, and the caller keeps their place. The hold ends when an
agent takes the caller, on a callback, or when the caller hangs up (the call marks that).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional

import phonenumbers

from ivr.dialog.settings import HoldSettings
from ivr.events import Expectation
from ivr.queue.desk import QueueDesk
from ivr.queue.model import CALLBACK, ROUTABLE, TAKEN, Position, QueueError

log = logging.getLogger(__name__)

MUSIC_STEP_S = 1.0  # how often the hold checks for an agent and for what the caller said
NUMBER_WAIT_S = 20.0  # how long a caller has to key in a callback number


@dataclass(frozen=True)
class HoldLine:
    """What the hold needs from the call it runs in (the call knows the stages, the hold does not)."""
    say: Callable[[str, str, Expectation], Awaitable[None]]  # (text, prompt name, what the answer is)
    play_music: Callable[[float, Expectation], Awaitable[None]]  # seconds of hold music, in real time; the offer
    desk: QueueDesk  # the queue, typed and off the event loop


def minutes_phrase(seconds: float) -> str:
    if seconds < 60:
        return "less than a minute"
    minutes = round(seconds / 60)
    return "one minute" if minutes == 1 else f"{minutes} minutes"


def callback_number(keyed: str) -> Optional[str]:
    """A number we can call back, as E.164 (+12175550123), or None."""
    try:
        parsed = phonenumbers.parse(keyed if keyed.startswith("+") else keyed, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def spoken_number(number: str) -> str:
    digits = number[2:] if number.startswith("+1") else number.lstrip("+")
    return ", ".join(" ".join(group) for group in (digits[:3], digits[3:6], digits[6:])) if len(digits) == 10 \
        else " ".join(digits)


class OnHold:
    def __init__(self, line: HoldLine, entry_id: int, settings: HoldSettings, caller_number: Optional[str]):
        self.line, self.entry_id, self._settings = line, entry_id, settings
        self._caller_number = caller_number
        self._answers: asyncio.Queue[str] = asyncio.Queue()
        self._awaiting_number = False
        self.outcome: Optional[str] = None  # taken | callback | the entry's state when it left the queue

    @property
    def offer(self) -> Expectation:
        """What the caller may answer while on hold: the callback words, or one key."""
        return Expectation("free", 1, self._settings.callback_words)

    def hear(self, answer: str) -> bool:
        """What the caller said or keyed while on hold. False: nothing the hold acts on (on a loudspeaker,
        say, the hold music's own echo taken for words), so not worth keeping as a caller turn."""
        if not (self._awaiting_number or self._wants_callback(answer)):
            return False
        self._answers.put_nowait(answer)
        return True

    async def run(self) -> str:
        loop = asyncio.get_running_loop()
        await self._announce()
        next_announcement = loop.time() + self._settings.announce_every_s
        while True:
            state = (await self.line.desk.entry(self.entry_id)).state
            if state == TAKEN:
                await self.line.say(self._settings.connecting, "hold_connecting", Expectation())
                return self._end(TAKEN)
            if state not in ROUTABLE:
                return self._end(state)
            if loop.time() >= next_announcement:
                await self._announce()
                next_announcement = loop.time() + self._settings.announce_every_s
            answer = await self._music_until_answer(MUSIC_STEP_S)
            if answer is not None:
                if await self._callback():
                    return self._end(CALLBACK)
                next_announcement = loop.time()

    async def _music_until_answer(self, seconds: float) -> Optional[str]:
        """Hold music for `seconds`, cut short by whatever the caller says or keys."""
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

    async def _callback(self) -> bool:
        number = self._caller_number and callback_number(self._caller_number)
        if not number:
            self._awaiting_number = True
            try:
                await self.line.say(self._settings.ask_number, "hold_ask_number", Expectation("digits"))
                keyed = await asyncio.wait_for(self._answers.get(), NUMBER_WAIT_S)
            except asyncio.TimeoutError:
                keyed = ""
            finally:
                self._awaiting_number = False
            number = callback_number("".join(c for c in keyed if c.isdigit() or c == "+"))
        if not number:
            await self.line.say(self._settings.bad_number, "hold_bad_number", self.offer)
            return False
        await self.line.desk.request_callback(self.entry_id, number)
        await self.line.say(self._settings.callback_confirmed.format(number=spoken_number(number)),
                             "hold_callback_confirmed", Expectation())
        return True
