"""The SIP line end to end over loopback UDP, against a peer the test scripts byte by byte and a
stand-in bot (tests/sip_peer.py): answering, audio both ways, keys, hanging up from either side,
refusals, re-INVITE, garbage, and handing a caller over to an agent's phone."""
import asyncio
import contextlib
import logging
import random

import pytest

from ivr.audio.pcm import rms_dbfs, ulaw_decode, ulaw_encode
from ivr.events import AudioChunk
from ivr.serve.switchboard import Switchboard
from ivr.transports.listeners import allowed_networks
from ivr.transports.sip import rtp
from ivr.transports.sip.sdp import parse as parse_sdp
from ivr.transports.sip.line import SipLine
from tests.sip_peer import OFFER, Dialog, RawPeer, ToneBot, garbage, noise, tone, valid_messages


@contextlib.asynccontextmanager
async def line(max_calls: int = 4, allow=("127.0.0.0/8",), host: str = "127.0.0.1", trusted_proxies=()):
    bot = ToneBot()
    switchboard = Switchboard(bot, max_calls)
    sip = SipLine(host, 0, switchboard, allowed_networks(list(allow)), trusted_proxies=trusted_proxies)
    sip.announced = await sip.start()
    peer = await RawPeer(("127.0.0.1", sip.port)).open()
    try:
        yield sip, bot, peer
    finally:
        peer.close()
        await sip.stop()
        await switchboard.close()


async def answered(peer, bot):
    """The peer calls, the line answers, the bot has the call: the peer's dialog."""
    dialog, _ = await peer.call()
    await until(lambda: bot.calls)
    return dialog


def run(test):
    asyncio.run(asyncio.wait_for(test(), 30))


async def until(condition, seconds: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


def test_a_call_is_answered_with_our_sdp_and_audio_and_keys_flow_both_ways():
    async def test():
        async with line() as (sip, bot, peer):
            dialog, responses = await peer.call()
            assert [r.status for r in responses] == [100, 180, 200]
            answer = parse_sdp(responses[-1].body)
            assert (answer.codec, answer.dtmf_payload_type) == ("PCMU", 101)
            assert "sip:ivr@127.0.0.1" in responses[-1].get("Contact")
            await until(lambda: bot.calls)
            call = bot.calls[0]
            assert (call.channel, call.caller_number) == ("sip", "5551234")
            heard = await peer.heard(1.0)  # the bot's tone, paced at 20 ms
            assert rms_dbfs(heard) > -20 and 0.5 < len(heard) / 16000 < 1.1
            caller = noise(0.4)
            peer.send_audio(caller, dialog.remote_rtp, order=[0, 2, 1, 3, 4, 4, *range(5, 20)])  # reordered, a duplicate
            for key in "48":
                for end in (0, 0x80, 0x80, 0x80):  # each press: a start and three end packets
                    peer.send_rtp(rtp.RtpPacket(101, 500, 9000 + ord(key), 77, bytes([int(key), end, 0, 160])),
                                  dialog.remote_rtp)
            await until(lambda: call.keys == "48")
            dialog.cseq += 1
            peer.send(peer.request("INFO", dialog, "Signal=#\r\nDuration=100\r\n", "application/dtmf-relay"))
            assert (await peer.receive()).status == 200
            sent = ulaw_decode(ulaw_encode(caller))
            await until(lambda: call.keys == "48#" and sent in bytes(call.heard))  # every frame in order, once
            peer.hang_up(dialog)
            assert (await peer.receive()).status == 200
            await asyncio.wait_for(call.ended.wait(), 2)
            assert call.hung_up and not sip._legs
    run(test)


def test_the_bot_hangs_up_with_bye():
    async def test():
        async with line() as (sip, bot, peer):
            dialog = await answered(peer, bot)
            bot.calls[0].finish.set()
            bye = await peer.receive(skip_provisional=True)
            assert bye.method == "BYE" and bye.call_id == dialog.call_id
            assert bye.get("To").endswith(f"tag={dialog.from_tag}")
            peer.respond(bye, 200, "OK")
            await asyncio.wait_for(bot.calls[0].ended.wait(), 2)
            assert await peer.nothing_for(0.6)  # the BYE was answered: it is not sent again
    run(test)


def test_options_unknown_methods_and_requests_outside_any_call():
    async def test():
        async with line() as (sip, bot, peer):
            stranger = peer.new_dialog()
            expected = {"OPTIONS": 200, "REGISTER": 405, "SUBSCRIBE": 405, "FROBNICATE": 501, "BYE": 481,
                        "INFO": 481, "CANCEL": 481}
            for method, status in expected.items():
                peer.send(peer.request(method, stranger))
                answer = await peer.receive()
                assert answer.status == status, method
                assert answer.cseq == (1, method)
            peer.send(peer.request("OPTIONS", stranger))
            assert "INVITE" in (await peer.receive()).get("Allow")
    run(test)


def test_peers_outside_the_allowed_networks_are_refused_and_a_full_line_is_busy():
    async def test():
        async with line(allow=("10.0.0.0/8",)) as (sip, bot, peer):
            _, responses = await peer.call()
            assert responses[-1].status == 403 and not bot.calls
        async with line(max_calls=1) as (sip, bot, peer):
            first, _ = await peer.call()
            await until(lambda: sip._switchboard.active == 1)
            _, responses = await peer.call()
            assert responses[-1].status == 486 and sip._switchboard.refused == 1
            peer.hang_up(first)
    run(test)


def test_offers_we_cannot_use_are_refused_and_the_line_keeps_no_call():
    async def test():
        async with line() as (sip, bot, peer):
            for offer, status in ((OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 nowhere"), 400),
                                  (OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 9"), 488),
                                  ("hello", 400)):
                _, responses = await peer.call(offer.format(port=peer.rtp_port))
                assert responses[-1].status == status
            no_sdp = peer.new_dialog()
            peer.send(peer.request("INVITE", no_sdp))
            assert (await peer.receive(skip_provisional=True)).status == 488
            assert not bot.calls and not sip._legs
    run(test)


def test_retransmitted_invites_get_the_same_answer_and_the_200_is_repeated_until_acked():
    async def test():
        async with line() as (sip, bot, peer):
            dialog = peer.new_dialog()
            invite = peer.request("INVITE", dialog, OFFER.format(port=peer.rtp_port), "application/sdp",
                                  branch="z9hG4bKsame")
            peer.send(invite)
            first = [await peer.receive() for _ in range(3)]
            peer.send(invite)
            again = await peer.receive()
            assert again.status == 200 and again.get("To") == first[-1].get("To")
            repeated = await peer.receive(timeout=1.5)  # no ACK yet: T1 later the 200 comes again
            assert repeated.status == 200
            dialog.to = again.get("To")
            peer.send(peer.request("ACK", dialog))
            peer.send(peer.request("CANCEL", dialog, branch="z9hG4bKsame"))
            assert (await peer.receive()).status == 200  # too late to cancel: no effect
            assert len(bot.calls) == 1 and sip._legs
    run(test)


def test_a_reinvite_moves_the_audio_and_hold_stops_ours():
    async def test():
        async with line() as (sip, bot, peer):
            dialog = await answered(peer, bot)
            other = await RawPeer(peer.line).open()
            try:
                dialog.cseq += 1
                moved = OFFER.format(port=other.rtp_port)
                peer.send(peer.request("INVITE", dialog, moved, "application/sdp"))
                answer = await peer.receive(skip_provisional=True)
                assert answer.status == 200 and parse_sdp(answer.body).port == dialog.remote_rtp[1]
                assert rms_dbfs(await other.heard(0.5)) > -20  # the rest of the tone goes to the new port
                dialog.cseq += 1
                peer.send(peer.request("INVITE", dialog, moved.replace("sendrecv", "sendonly"), "application/sdp"))
                answer = await peer.receive(skip_provisional=True)
                assert b"a=recvonly" in answer.body
                await other.heard(0.1)
                assert await other.heard(0.4) == b""
            finally:
                other.close()
    run(test)


def test_a_caller_who_never_acks_or_goes_silent_is_hung_up_on(monkeypatch):
    from ivr.transports.sip import line as sip_module, media

    monkeypatch.setattr(sip_module, "TRANSACTION_SECONDS", 1.0)
    monkeypatch.setattr(media, "RTP_TIMEOUT", 0.5)

    async def test():
        async with line() as (sip, bot, peer):
            async def hung_up_on(call_id):
                while (message := await peer.receive()).method != "BYE" or message.call_id != call_id:
                    pass
                peer.respond(message, 200, "OK")

            dialog = peer.new_dialog()
            peer.send(peer.request("INVITE", dialog, OFFER.format(port=peer.rtp_port), "application/sdp"))
            await hung_up_on(dialog.call_id)
            await until(lambda: bot.calls and bot.calls[0].hung_up)
            dialog, _ = await peer.call()  # acknowledged, then no RTP at all
            await hung_up_on(dialog.call_id)
            assert not sip._legs
    run(test)


def test_garbage_leaves_the_line_answering_with_bounded_state(caplog):
    async def test():
        async with line(max_calls=2) as (sip, bot, peer):
            dialog = await answered(peer, bot)
            rng = random.Random(7)
            for index, data in enumerate(garbage(rng, valid_messages(peer), 3000)):
                peer.send(data)
                peer.send_rtp(rng.randbytes(rng.randint(0, 300)) if index % 2 else rtp.RtpPacket(
                    0, rng.randrange(65536), 0, rng.randrange(2**32), rng.randbytes(160)), dialog.remote_rtp)
                if index % 100 == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(0.5)
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(sip._sent) <= 512 and len(sip._legs) <= sip._max_legs and len(sip._client) == 0
            with contextlib.suppress(asyncio.TimeoutError):
                while True:  # whatever the line answered to the garbage
                    await peer.receive(timeout=0.3)
            peer.send(peer.request("OPTIONS", peer.new_dialog()))  # still answering: 200, or 503 when the
            assert (await peer.receive()).status in (200, 503)  # garbage held a sound INVITE that filled it
            peer.hang_up(dialog)
            assert (await peer.receive(skip_provisional=True)).status == 200
    caplog.set_level(logging.WARNING)
    run(test)


@contextlib.asynccontextmanager
async def handed_over():
    """A call whose bot hands the caller to an agent's phone (a second raw peer): the line, the bot,
    caller and agent peers and the caller's dialog, the moment the bot starts ringing the agent."""
    async with line() as (sip, bot, peer):
        agent = await RawPeer(peer.line, user="agent").open()
        bot.agent = f"sip:agent1@127.0.0.1:{agent.port}"
        try:
            dialog = await answered(peer, bot)
            bot.calls[0].finish.set()
            yield sip, bot, peer, agent, dialog
        finally:
            agent.close()


async def agent_answers(agent: RawPeer, status: int = 200):
    """The agent's phone: rings, then answers (or declines) the line's INVITE; the INVITE and the ACK."""
    invite = await agent.receive(timeout=5)
    assert invite.method == "INVITE"
    agent.respond(invite, 180, "Ringing", to_tag="agt")
    body = OFFER.format(port=agent.rtp_port).replace("0 8 101", "8 101") if status == 200 else ""
    agent.respond(invite, status, "OK" if status == 200 else "Busy Here", to_tag="agt", body=body)
    ack = await agent.receive()
    assert ack.method == "ACK"
    return invite, ack


@pytest.mark.parametrize("who_hangs_up", ["caller", "agent"])
def test_a_caller_handed_to_an_agent_is_bridged_both_ways_until_one_hangs_up(who_hangs_up):
    async def test():
        async with handed_over() as (sip, bot, peer, agent, dialog):
            invite, ack = await agent_answers(agent)
            assert invite.uri == bot.agent and "5551234" in invite.get("From")  # the agent sees who calls
            await asyncio.wait_for(bot.calls[0].ended.wait(), 3)
            assert bot.calls[0].handed_over is True and sip._switchboard.active == 0
            agent_rtp = parse_sdp(invite.body)
            assert ack.get("To").endswith("tag=agt")
            await peer.heard(0.3)
            peer.send_audio(tone(1.0, hz=300), dialog.remote_rtp)
            agent.send_audio(tone(1.0, hz=1000), (agent_rtp.host, agent_rtp.port), payload_type=8)
            heard_by_agent = await agent.heard(1.5)
            heard_by_caller = await peer.heard(0.5)
            assert rms_dbfs(heard_by_agent) > -30 and rms_dbfs(heard_by_caller) > -30
            if who_hangs_up == "caller":
                peer.hang_up(dialog)
                replies = [await peer.receive(), await agent.receive()]
                assert replies[0].status == 200 and replies[1].method == "BYE"
                agent.respond(replies[1], 200, "OK")
            else:
                agent_dialog = Dialog(invite.call_id, "agt", to=invite.get("From"), cseq=1)
                agent.send(agent.request("BYE", agent_dialog, uri=invite.get("Contact").strip("<>")))
                replies = [await agent.receive(), await peer.receive()]
                assert replies[0].status == 200 and replies[1].method == "BYE"
                assert replies[1].call_id == dialog.call_id
                peer.respond(replies[1], 200, "OK")
            await until(lambda: not sip._legs)
    run(test)


def test_an_agent_who_declines_leaves_the_caller_with_the_bot():
    async def test():
        async with handed_over() as (sip, bot, peer, agent, dialog):
            invite, ack = await agent_answers(agent, status=486)
            assert ack.branch == invite.branch  # the ACK of a refusal is part of the INVITE's transaction
            await asyncio.wait_for(bot.calls[0].ended.wait(), 3)
            assert bot.calls[0].handed_over is False
            assert (await peer.receive(skip_provisional=True)).method == "BYE"  # the bot's call ended
    run(test)


def test_an_agent_who_does_not_answer_is_cancelled(monkeypatch):
    from ivr.transports.sip import handover as sip_handover

    monkeypatch.setattr(sip_handover, "RING_SECONDS", 1.0)

    async def test():
        async with handed_over() as (sip, bot, peer, agent, dialog):
            invite = await agent.receive(timeout=5)
            agent.respond(invite, 180, "Ringing", to_tag="agt")
            cancel = await agent.receive(timeout=3)
            assert (cancel.method, cancel.branch, cancel.cseq) == ("CANCEL", invite.branch, (invite.cseq[0], "CANCEL"))
            agent.respond(cancel, 200, "OK", to_tag="agt")
            agent.respond(invite, 487, "Request Terminated", to_tag="agt")
            ack = await agent.receive()
            assert ack.method == "ACK" and ack.branch == invite.branch and ack.get("To").endswith("tag=agt")
            await asyncio.wait_for(bot.calls[0].ended.wait(), 3)
            assert bot.calls[0].handed_over is False
    run(test)


def test_barge_in_drops_the_queued_audio_at_once():
    async def test():
        async with line() as (sip, bot, peer):
            dialog = await answered(peer, bot)
            transport = bot.calls[0].transport
            await transport.play(AudioChunk(tone(3.0), 8000))  # three more seconds queued behind the first tone
            assert rms_dbfs(await peer.heard(0.3)) > -20
            transport.clear()
            await peer.heard(0.06)  # what was already on its way
            assert rms_dbfs(await peer.heard(0.5)) == float("-inf")  # then silence: nothing left queued
            await asyncio.wait_for(transport.flush(), 0.1)
            peer.hang_up(dialog)
    run(test)


def test_listening_on_every_interface_tells_each_peer_the_address_it_reaches():
    async def test():
        async with line(host="0.0.0.0") as (sip, bot, peer):
            assert sip.announced.startswith("SIP line: sip:0.0.0.0:")
            dialog, responses = await peer.call()
            assert f"<sip:ivr@127.0.0.1:{sip.port}>" == responses[-1].get("Contact")
            assert parse_sdp(responses[-1].body).host == "127.0.0.1"
            peer.hang_up(dialog)  # at once, before its audio has even started
            assert (await peer.receive(skip_provisional=True)).status == 200
    run(test)
