"""The SIP line giving a caller back to their call after an agent (the survey after an agent's call), end to end
over loopback UDP: raw SIP peers for the caller and the agent's phone (tests/sip_peer.py), the real SipLine and
Switchboard, and a stand-in call that hands its caller over to come back. What each side notices: the caller's
leg stays up only while a call is there to take them back, and an agent's phone lost on the network is told
apart from an agent hanging up."""
import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Optional

from ivr.events import AudioChunk
from ivr.serve.switchboard import Switchboard
from ivr.transports.listeners import allowed_networks
from ivr.transports.sip import media as sip_media
from ivr.transports.sip.line import SipLine
from ivr.transports.sip.sdp import parse as parse_sdp
from tests.sip_peer import OFFER, Dialog, RawPeer, tone

DEADLINE_S = 10.0  # waits for what must happen, never a measure of speed


@dataclass
class ComeBackCall:
    """Hands its caller to the agent asking them back; then either waits for them (and says a tone to them) or
    ends at once, leaving them with the agent (`leaves`)."""
    transport: object
    channel: str
    caller_number: Optional[str]
    agent: str = ""
    leaves: bool = False
    call_id: str = ""
    worker: Optional[str] = None
    line_dropped: Optional[bool] = None  # once back: True when the agent's line was lost, False when they hung up
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self):
        try:
            assert await self.transport.hand_over(self.agent, come_back=True)
            if not self.leaves:
                self.line_dropped = await self.transport.back_from_agent()
                await self.transport.play(AudioChunk(tone(0.4), 8000))
                await self.transport.flush()
        finally:
            await self.transport.close()
            self.ended.set()


class ComeBackBot:
    def __init__(self, agent: str, leaves: bool):
        self.agent, self.leaves, self.calls = agent, leaves, []

    def call(self, transport, channel, caller_number=None):
        self.calls.append(ComeBackCall(transport, channel, caller_number, agent=self.agent, leaves=self.leaves))
        return self.calls[-1]


async def until(condition) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the deadline"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def put_through(leaves: bool, max_calls: int = 4):
    """The caller calls, the stand-in call puts them through to the agent's phone, which answers: the line (its
    switchboard as `sip.switchboard_in_test`), the call, both peers, the caller's dialog and the agent's INVITE."""
    agent = await RawPeer(("127.0.0.1", 0), user="agent").open()
    bot = ComeBackBot(f"sip:agent1@127.0.0.1:{agent.port}", leaves)
    switchboard = Switchboard(bot, max_calls)
    sip = SipLine("127.0.0.1", 0, switchboard, allowed_networks(["127.0.0.0/8"]))
    await sip.start()
    sip.switchboard_in_test = switchboard
    caller = await RawPeer(("127.0.0.1", sip.port)).open()
    agent.line = caller.line
    try:
        dialog, _ = await caller.call()
        invite = await agent.receive(timeout=DEADLINE_S)
        agent.respond(invite, 200, "OK", to_tag="agt", body=OFFER.format(port=agent.rtp_port))
        assert (await agent.receive()).method == "ACK"
        await until(lambda: bot.calls)
        yield sip, bot.calls[0], caller, agent, dialog, invite
    finally:
        caller.close()
        agent.close()
        await sip.stop()
        await switchboard.close()


def agent_hangs_up(agent: RawPeer, invite) -> None:
    """The agent's phone sends BYE in the dialog the line's INVITE opened."""
    agent.send(agent.request("BYE", Dialog(invite.call_id, "agt", to=invite.get("From"), cseq=1),
                             uri=invite.get("Contact").strip("<>")))


async def keep_talking(peer: RawPeer, to: tuple) -> None:
    """A phone whose audio keeps coming (its leg is never lost)."""
    sequence = 1
    while True:
        peer.send_audio(bytes(320 * 5), to, first_sequence=sequence)
        sequence += 5
        await asyncio.sleep(0.1)


def test_a_call_that_ends_while_its_caller_is_with_the_agent_leaves_the_line_to_end_them_with_the_agent():
    async def test():
        async with put_through(leaves=True) as (sip, call, caller, agent, dialog, invite):
            await asyncio.wait_for(call.ended.wait(), DEADLINE_S)
            assert await caller.nothing_for(0.5)  # still with the agent: no BYE when the call left
            agent_hangs_up(agent, invite)
            assert (await agent.receive()).status == 200
            bye = await caller.receive(timeout=DEADLINE_S)  # nobody is left to take them back: hung up too
            assert bye.method == "BYE" and bye.call_id == dialog.call_id
            caller.respond(bye, 200, "OK")
            await until(lambda: not sip._legs)

    asyncio.run(asyncio.wait_for(test(), 30))


def test_an_agents_phone_lost_on_the_network_gives_the_caller_back_told_apart_from_a_hang_up(monkeypatch):
    monkeypatch.setattr(sip_media, "RTP_TIMEOUT", 1.0)  # a phone silent this long is lost

    async def test():
        async with put_through(leaves=False) as (sip, call, caller, agent, dialog, invite):
            talking = asyncio.ensure_future(keep_talking(caller, dialog.remote_rtp))
            try:
                agent_bye = await agent.receive(timeout=DEADLINE_S)  # the agent's phone sent nothing: lost
                assert agent_bye.method == "BYE"
                await until(lambda: call.line_dropped is not None)
                assert call.line_dropped is True and dialog.call_id in [leg.call_id for leg in sip._legs.values()]
                await asyncio.wait_for(call.ended.wait(), DEADLINE_S)
                assert (await caller.receive(timeout=DEADLINE_S, skip_provisional=True)).method == "BYE"
            finally:
                talking.cancel()

    asyncio.run(asyncio.wait_for(test(), 30))


def test_an_agent_who_hangs_up_first_gives_the_caller_back_to_their_call():
    async def test():
        async with put_through(leaves=False) as (sip, call, caller, agent, dialog, invite):
            talking = asyncio.ensure_future(keep_talking(caller, dialog.remote_rtp))
            try:
                agent_hangs_up(agent, invite)
                assert (await agent.receive()).status == 200
                await until(lambda: call.line_dropped is not None)
                assert call.line_dropped is False
                assert dialog.call_id in [leg.call_id for leg in sip._legs.values()]  # still on, with their call
                await asyncio.wait_for(call.ended.wait(), DEADLINE_S)
                assert (await caller.receive(timeout=DEADLINE_S, skip_provisional=True)).method == "BYE"
            finally:
                talking.cancel()

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_caller_with_the_agent_leaves_the_bot_free_for_the_next_caller_and_counts_again_once_back():
    """One bot place (max_calls 1): taken by a caller who is now talking to an agent and will come back for the
    survey, it is free for a new caller meanwhile; the drain still waits for them."""
    async def test():
        async with put_through(leaves=False, max_calls=1) as (sip, call, caller, agent, dialog, invite):
            switchboard = sip.switchboard_in_test
            talking = asyncio.ensure_future(keep_talking(caller, dialog.remote_rtp))
            try:
                await until(lambda: call.transport.bridged)
                assert switchboard.takes_calls() and switchboard.in_progress == 1
                agent_hangs_up(agent, invite)
                await until(lambda: call.line_dropped is not None)  # given back: the bot's again
                assert not switchboard.takes_calls() and switchboard.active == 1
            finally:
                talking.cancel()

    asyncio.run(asyncio.wait_for(test(), 30))
