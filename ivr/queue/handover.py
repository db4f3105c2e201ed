"""A caller handed to a person: queued with their context, held (position, music, callback), and put
through to the agent who takes them, or back to their place in line when the agent's phone does not
answer. Whatever fails, the caller is told something true; never dead air after "connecting you".
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Optional

from ivr.dialog.settings import HoldSettings
from ivr.events import FREE, Escalation
from ivr.queue.desk import QueueDesk
from ivr.queue.hold import HoldLine, OnHold
from ivr.queue.model import TAKEN, WAITING, QueueError
from ivr.transports.base import GivesCallersBack, ReachesAgents

log = logging.getLogger(__name__)
UNAVAILABLE = "unavailable"  # the queue could not take the caller
AGENT_HUNG_UP, LINE_DROPPED = "agent_hung_up", "line_dropped"  # how a caller put through to come back came back


class Handover:
    def __init__(self, desk: Optional[QueueDesk], settings: HoldSettings, line: HoldLine, transport,
                 caller_number: Optional[str]):
        # a caller taken in the middle of an announcement hears "connecting" at once, not the rest of it
        line = line if line.hush or not hasattr(transport, "clear") else replace(line, hush=transport.clear)
        self.desk, self.settings, self.line, self.call_id = desk, settings, line, ""
        self.transport, self.caller_number = transport, caller_number
        self.hold: Optional[OnHold] = None  # while the caller is in line
        self.entry_id: Optional[int] = None
        self.outcome: Optional[str] = None  # waiting | taken | callback | abandoned | unavailable | ...
        self.come_back = False  # set by the call: a caller whose agent hangs up first comes back (the survey)
        self.comes_back = False  # put through so, on a line that gives callers back
        self.agent_name: Optional[str] = None  # who the caller was put through to

    async def join(self, escalation: Escalation) -> bool:
        """Queue the caller; False (and the caller told so) when the queue cannot take them."""
        self.call_id = escalation.call_id
        self.comes_back, self.agent_name = False, None  # a caller handed over again starts afresh
        try:
            if self.desk is None:
                raise QueueError("the agents' queue was unavailable when the bot started")
            entry = await self.desk.enqueue(escalation)
        except QueueError as error:  # promised a person, so never silence: say so truly, and end the call
            log.error("call %s: the queue cannot take the caller (%s)", self.call_id, error)
            self.outcome = UNAVAILABLE
            await self.line.say(self.settings.queue_unavailable, "queue_unavailable", FREE)
            return False
        self.entry_id, self.outcome = entry.id, WAITING
        self.hold = OnHold(self.line, entry.id, self.settings, self.caller_number)
        return True

    async def wait(self) -> None:
        """On hold until taken (and put through), a callback, or the queue fails; the caller is told."""
        try:
            while True:
                self.outcome = await self.hold.run()
                if self.outcome != TAKEN or await self._put_through():
                    return
                await self.desk.return_to_queue(self.entry_id)
                await self.line.say(self.settings.agent_unreachable, "hold_agent_unreachable", FREE)
                self.hold = OnHold(self.line, self.entry_id, self.settings, self.caller_number)
        except QueueError as error:  # the caller waiting for a person is told, not left to music forever
            log.error("call %s: the queue failed while the caller was on hold (%s)", self.call_id, error)
            await self.line.say(self.settings.queue_unavailable, "queue_unavailable", FREE)
        except Exception:  # noqa: BLE001 - a broken hold is told too: it ended calls silently, unlogged
            log.exception("call %s: the hold failed", self.call_id)
            await self.line.say(self.settings.queue_unavailable, "queue_unavailable", FREE)

    async def _put_through(self) -> bool:
        """The agent who took the caller has a phone (a SIP address) and this line can reach it: connect them.
        False when the agent's phone did not answer (the caller goes back to their place in line)."""
        entry = await self.desk.entry(self.entry_id)
        agent = await self.desk.agent(entry.agent)
        if not isinstance(self.transport, ReachesAgents) or agent is None or not agent.sip_address:
            return True  # the agent calls back or picks up on their side; nothing for this line to do
        back = self.come_back and isinstance(self.transport, GivesCallersBack)
        if await (self.transport.hand_over(agent.sip_address, come_back=True) if back
                  else self.transport.hand_over(agent.sip_address)):
            self.comes_back, self.agent_name = back, agent.name
            await self.desk.connected(self.entry_id)
            return True
        log.error("call %s: could not connect the caller to %s at %s", self.call_id, agent.name, agent.sip_address)
        return False

    async def back_from_agent(self) -> Optional[str]:
        """Once put through: how the caller came back to the call, only when put through to come back:
        AGENT_HUNG_UP (the agent hung up first) or LINE_DROPPED (the agent's line was lost); None at once
        otherwise (the line keeps caller and agent, the call is over)."""
        if not self.comes_back:
            return None
        return LINE_DROPPED if await self.transport.back_from_agent() else AGENT_HUNG_UP

    async def left(self) -> None:
        """The call is over; a caller still waiting hung up: their place is given up (abandoned)."""
        if self.hold is None or self.hold.outcome is not None:
            return
        try:
            self.outcome = (await self.desk.abandon(self.entry_id)).state
        except QueueError:
            log.exception("call %s: could not mark queue entry %s abandoned", self.call_id, self.entry_id)
