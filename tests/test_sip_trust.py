"""The SIP line's trust boundaries over loopback UDP: a call's audio goes only to the host its
signalling comes from, only the call's peer may end or move it, and odd headers are refused without a
traceback. 127.0.0.2 is another host to the line: a stranger (or a trusted proxy's media relay)."""
import argparse
import asyncio
import logging

from ivr.audio.pcm import rms_dbfs
from ivr.serve import lines
from ivr.serve.switchboard import Switchboard
from ivr.transports.listeners import allowed_networks
from ivr.transports.sip.sdp import parse as parse_sdp
from tests.sip_peer import OFFER, Dialog, RawPeer, ToneBot
from tests.test_sip_line import answered, line, run, until

STRANGER = "127.0.0.2"


def offer_to(peer: RawPeer, host: str) -> str:
    """An offer whose SDP sends the call's audio to `peer`'s RTP port, said to be on `host`."""
    return OFFER.format(port=peer.rtp_port).replace("IN IP4 127.0.0.1", f"IN IP4 {host}")


def sip_logs(caplog) -> list:
    return [r for r in caplog.records if r.name.startswith("ivr.transports")]


def test_an_sdp_naming_another_host_gets_none_of_the_calls_audio():
    async def test():
        async with line() as (sip, bot, peer):
            victim = await RawPeer(peer.line, host=STRANGER).open()
            try:
                dialog, responses = await peer.call(offer_to(victim, STRANGER))
                assert responses[-1].status == 200  # taken, like a phone behind NAT naming its private address
                await until(lambda: bot.calls)
                sent_to_victim = await victim.rtp_bytes(1.0)
                assert sent_to_victim == 0, f"{sent_to_victim} bytes of the call's audio went to {STRANGER}"
                # The caller's first packet, from the host its INVITE came from, says where the audio goes:
                # the greeting waited for it, so the caller hears all of it.
                peer.send_audio(bytes(320), dialog.remote_rtp)
                greeting = await peer.heard(1.0)
                assert rms_dbfs(greeting[:8000]) > -20 and len(greeting) >= 0.8 * 16000
                dialog.cseq += 1  # a re-INVITE naming the stranger does not move it either
                peer.send(peer.request("INVITE", dialog, offer_to(victim, STRANGER), "application/sdp"))
                assert (await peer.receive(skip_provisional=True)).status == 200
                assert await victim.rtp_bytes(0.5) == 0
                assert len(await peer.heard(0.3)) > 0  # the caller still gets the call's audio (silence)
                peer.hang_up(dialog)
            finally:
                victim.close()
    run(test)


def test_a_trusted_proxy_may_send_the_audio_to_its_media_relay():
    async def test():
        parser = argparse.ArgumentParser()
        lines.add_arguments(parser)  # as `ivr serve --sip ... --sip-trusted-proxy 127.0.0.1` reads it
        args = parser.parse_args(["--sip", "127.0.0.1:0", "--sip-trusted-proxy", "127.0.0.1"])
        bot = ToneBot()
        switchboard = Switchboard(bot, 2)
        [sip] = lines.listeners(args, switchboard, allowed_networks(["127.0.0.1/32"]))
        await sip.start()
        proxy = await RawPeer(("127.0.0.1", sip.port)).open()
        relay = await RawPeer(proxy.line, host=STRANGER).open()
        try:
            dialog, responses = await proxy.call(offer_to(relay, STRANGER))
            assert responses[-1].status == 200
            assert rms_dbfs(await relay.heard(1.0)) > -20  # the greeting, at the address the proxy named
            relay.send_audio(bytes(320), dialog.remote_rtp)  # and the relay's packets are the caller's
            await until(lambda: bot.calls and bot.calls[0].heard)
            proxy.hang_up(dialog)
            assert (await proxy.receive(skip_provisional=True)).status == 200
        finally:
            proxy.close()
            relay.close()
            await sip.stop()
            await switchboard.close()
    run(test)


def test_only_the_calls_peer_can_hang_it_up_move_its_audio_or_key_into_it(caplog):
    async def test():
        async with line() as (sip, bot, peer):
            dialog = await answered(peer, bot)
            stranger = await RawPeer(peer.line, host=STRANGER).open()
            try:
                for method, body, kind in (("BYE", "", ""), ("INVITE", offer_to(stranger, STRANGER), "application/sdp"),
                                           ("INFO", "Signal=5\r\n", "application/dtmf-relay")):
                    dialog.cseq += 1  # the right Call-ID, tags and CSeq: all a stranger could have sniffed
                    stranger.send(stranger.request(method, dialog, body, kind))
                    answer = await stranger.receive(skip_provisional=True)
                    assert answer.status == 403, method
                stranger.send(stranger.request("ACK", dialog))
                assert await stranger.rtp_bytes(0.5) == 0 and bot.calls[0].keys == ""
                assert not bot.calls[0].hung_up and len(sip._legs) == 1
                before = len(sip_logs(caplog))
                for _ in range(300):  # one at a time: a burst would overflow the line's socket buffer
                    dialog.cseq += 1
                    stranger.send(stranger.request("BYE", dialog))
                    assert (await stranger.receive()).status == 403
                assert len(sip_logs(caplog)) - before <= 3  # a flood is logged boundedly
                dialog.cseq += 1
                peer.send(peer.request("INFO", dialog, "Signal=5\r\n", "application/dtmf-relay"))
                assert (await peer.receive()).status == 200
                await until(lambda: bot.calls[0].keys == "5")
                peer.hang_up(dialog)
                assert (await peer.receive(skip_provisional=True)).status == 200
                await until(lambda: bot.calls[0].hung_up)
            finally:
                stranger.close()
    caplog.set_level(logging.INFO)
    run(test)


ODD_HEADERS = {  # what each odd message gets: 400 when it is a request still answerable, else nothing
    "Content-Length: \u00b2": 400, "Content-Length: -5": 400, "Content-Length: " + "9" * 5000: 400,
    "Content-Length: 99999999999": 400, "Content-Length: 0x10": 400, "Broken header line": 400,
    "CSeq: INVITE": None, "CSeq: \u0663 INVITE": None, "CSeq: " + "9" * 5000 + " INVITE": None,
    "From: \"\xff\" <sip:a@b>;tag=1": None,
}


def odd_request(peer: RawPeer, header: str) -> bytes:
    """An OPTIONS with one header replaced by (or, for a new one, added as) `header`; non-UTF-8 where asked."""
    request = peer.request("OPTIONS", peer.new_dialog())
    name = header.split(":")[0]
    lines_ = [header if line.split(":")[0] == name else line for line in request.split("\r\n")]
    if header not in lines_:
        lines_.insert(1, header)
    return "\r\n".join(lines_).encode("latin-1" if "\xff" in header else "utf-8")


def test_odd_headers_are_refused_without_a_traceback_and_the_line_still_answers_a_call(caplog):
    async def test():
        async with line() as (sip, bot, peer):
            for header, status in ODD_HEADERS.items():
                peer.send(odd_request(peer, header))
                if status is None:
                    assert await peer.nothing_for(0.2), header[:30]
                else:
                    answer = await peer.receive()
                    assert answer.status == status, header[:30]
            assert sip.broken == 0 and not [r for r in caplog.records if r.levelno >= logging.ERROR]
            before = len(sip_logs(caplog))
            for _ in range(100):
                for header in ODD_HEADERS:
                    peer.send(odd_request(peer, header))
                await asyncio.sleep(0)
            await asyncio.sleep(0.3)
            assert len(sip_logs(caplog)) - before <= 3  # a thousand bad messages: a bounded few lines
            caller = await RawPeer(peer.line).open()  # a phone of its own: the flood's 400s are not its answers
            try:
                dialog, responses = await caller.call()
                assert responses[-1].status == 200 and parse_sdp(responses[-1].body).codec == "PCMU"
                assert rms_dbfs(await caller.heard(1.0)) > -20
                caller.hang_up(dialog)
            finally:
                caller.close()
    caplog.set_level(logging.INFO)
    run(test)


def test_datagrams_from_outside_the_allowed_networks_are_refused_on_their_address(caplog):
    async def test():
        async with line(allow=("127.0.0.1/32",)) as (sip, bot, peer):
            outsider = await RawPeer(peer.line, host=STRANGER).open()
            try:
                _, responses = await outsider.call()
                assert responses[-1].status == 403 and not bot.calls
                before = len(sip_logs(caplog))
                for _ in range(500):
                    outsider.send(b"\xff" * 200)  # not SIP at all: refused on the address, counted once
                await asyncio.sleep(0.3)
                assert sip.dropped == 0 and len(sip_logs(caplog)) - before <= 3
                assert (await peer.call())[1][-1].status == 200
            finally:
                outsider.close()
    caplog.set_level(logging.INFO)
    run(test)


def test_an_agent_outside_the_allowed_networks_can_end_its_bridged_call_but_not_place_one():
    async def test():
        async with line(allow=("127.0.0.1/32",)) as (sip, bot, peer):
            agent = await RawPeer(peer.line, user="agent", host=STRANGER).open()
            bot.agent = f"sip:agent1@{STRANGER}:{agent.port}"  # an agent's phone on another network
            try:
                dialog = await answered(peer, bot)
                bot.calls[0].finish.set()
                invite = await agent.receive(timeout=5)
                agent.respond(invite, 200, "OK", to_tag="agt", body=offer_to(agent, STRANGER))
                assert (await agent.receive()).method == "ACK"
                await until(lambda: bot.calls[0].handed_over)
                _, responses = await agent.call()  # its phone may not call the bot, though
                assert responses[-1].status == 403 and len(bot.calls) == 1
                agent_dialog = Dialog(invite.call_id, "agt", to=invite.get("From"), cseq=1)
                agent.send(agent.request("BYE", agent_dialog, uri=invite.get("Contact").strip("<>")))
                assert (await agent.receive(skip_provisional=True)).status == 200
                bye = await peer.receive(skip_provisional=True)
                assert bye.method == "BYE" and bye.call_id == dialog.call_id  # the caller's leg ends with it
                peer.respond(bye, 200, "OK")
                await until(lambda: not sip._legs)
            finally:
                agent.close()
    run(test)


def test_an_agents_answer_counts_only_from_the_agents_phone():
    async def test():
        async with line() as (sip, bot, peer):
            agent = await RawPeer(peer.line, user="agent").open()
            stranger = await RawPeer(peer.line, host=STRANGER).open()
            bot.agent = f"sip:agent1@127.0.0.1:{agent.port}"
            try:
                dialog = await answered(peer, bot)
                bot.calls[0].finish.set()
                invite = await agent.receive(timeout=5)
                # A stranger who learned the INVITE (its branch, Call-ID and tags) answers first, with its own SDP.
                stranger.respond(invite, 200, "OK", to_tag="fake", body=offer_to(stranger, STRANGER))
                agent.respond(invite, 180, "Ringing", to_tag="agt")
                await peer.heard(0.3)
                agent.respond(invite, 200, "OK", to_tag="agt", body=OFFER.format(port=agent.rtp_port))
                ack = await agent.receive()
                assert ack.method == "ACK" and ack.get("To").endswith("tag=agt")
                await until(lambda: bot.calls[0].handed_over)
                peer.send_audio(bytes(320) * 25, dialog.remote_rtp)  # the caller speaks: bridged to the agent only
                assert len(await agent.heard(1.0)) > 0 and await stranger.rtp_bytes(0.5) == 0
            finally:
                agent.close()
                stranger.close()
    run(test)
