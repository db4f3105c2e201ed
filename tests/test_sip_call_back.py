"""The caller's side of the SIP line when their call asked them back from an agent (the survey after an agent's
call): each hand-over is its own, so a caller put through a second time is not "back" before that agent hangs up;
a call that ends while its caller is with their agent leaves nobody to take them back, so the line ends them with
the agent instead of keeping a leg nobody serves (dead air). The real SipCall on a real RTP session (loopback);
what the line does (SipLine.end) is to ask taken_back() when the agent's leg ends."""
import asyncio
import socket

import pytest

from ivr.transports.sip import sdp
from ivr.transports.sip.call import SipCall
from ivr.transports.sip.media import RtpSession

BACK_WITHIN_S = 5.0  # a deadline for what must happen, never a measure of speed


def sip_call(hung_up: list) -> SipCall:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    agreed = sdp.parse(sdp.offer("127.0.0.1", 40000, sdp.Origin()))
    media = RtpSession(sock, agreed, "127.0.0.1")

    async def answered(address: str) -> bool:
        return True

    return SipCall(media, hang_up=lambda: hung_up.append("BYE"), reach=answered)


async def still_waiting(back: "asyncio.Task") -> bool:
    await asyncio.sleep(0)  # let it run as far as it can without the agent hanging up
    return not back.done()


def test_a_caller_put_through_again_comes_back_only_when_that_agent_hangs_up():
    async def two_agents():
        call = sip_call([])
        assert await call.hand_over("sip:ana@127.0.0.1", come_back=True)
        assert call.taken_back()  # ana hung up first
        assert await asyncio.wait_for(call.back_from_agent(), BACK_WITHIN_S) is False  # hung up, not dropped
        assert await call.hand_over("sip:bo@127.0.0.1", come_back=True)  # "put me back", at the survey
        back = asyncio.ensure_future(call.back_from_agent())
        assert await still_waiting(back), "back from bo while the caller still talks to him"
        assert call.taken_back()  # bo hangs up first
        assert await asyncio.wait_for(back, BACK_WITHIN_S) is False
        call._media.close()

    asyncio.run(two_agents())


def test_a_call_that_ends_while_its_caller_is_with_the_agent_leaves_them_to_the_line():
    async def call_ends_bridged():
        hung_up: list = []
        call = sip_call(hung_up)
        assert await call.hand_over("sip:ana@127.0.0.1", come_back=True)
        await call.close()
        assert hung_up == []  # the caller stays with ana
        assert not call.taken_back()  # ana hangs up: the line ends the caller too, nobody is left to serve them
        call._media.close()

    asyncio.run(call_ends_bridged())


def test_a_caller_whose_agents_line_is_lost_comes_back_told_it_dropped():
    async def lost():
        call = sip_call([])
        assert await call.hand_over("sip:ana@127.0.0.1", come_back=True)
        call.agent_dropped()  # no audio from ana's phone for too long (RtpSession.lost)
        assert call.taken_back()
        assert await asyncio.wait_for(call.back_from_agent(), BACK_WITHIN_S) is True
        assert await call.hand_over("sip:bo@127.0.0.1", come_back=True)
        assert call.taken_back()  # bo hangs up, his line was fine
        assert await asyncio.wait_for(call.back_from_agent(), BACK_WITHIN_S) is False
        call._media.close()

    asyncio.run(lost())


@pytest.mark.parametrize("come_back", [False, True])
def test_a_caller_not_asked_back_or_gone_is_never_taken_back(come_back):
    async def not_back():
        call = sip_call([])
        assert await call.hand_over("sip:ana@127.0.0.1", come_back=come_back)
        call.hung_up()  # the caller hung up first (only matters for the one asked back)
        assert not call.taken_back()
        call._media.close()

    asyncio.run(not_back())
