"""The SIP line's trust boundaries in `ivr serve` itself, with the real bot (Rasa, Whisper, pyttsx3):
where a call's audio goes when its SDP names another host, what a stranger's BYE gets, and what an
operator finds in the serve log after a flood of odd messages."""
import asyncio
import socket

import pytest

from tests.conftest import voiced_seconds
from tests.sip_peer import RawPeer
from tests.sip_server import Served
from tests.test_sip_trust import ODD_HEADERS, STRANGER, odd_request, offer_to

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(trained_model, tmp_path_factory):
    var = tmp_path_factory.mktemp("sip-served")
    # A trusted proxy on another address: the flag is taken, and calls from 127.0.0.1 are still not trusted.
    line = Served(free_port(), var, max_calls=2, log=var / "serve.log", flags=("--sip-trusted-proxy", "127.0.0.5"))
    yield line
    line.stop()


async def answered_options(peer: RawPeer) -> None:
    """An OPTIONS answered: everything the peer sent before it has been handled (one socket, in order).
    Asked again if the answer does not come: a flood may have overflowed the line's socket buffer."""
    for _ in range(5):
        options = peer.new_dialog()
        peer.send(peer.request("OPTIONS", options))
        try:
            for _ in range(2000):  # the answers to what came before, then this one
                if (await peer.receive(timeout=2)).call_id == options.call_id:
                    return
        except asyncio.TimeoutError:
            continue
    raise AssertionError("no answer to OPTIONS")


def sip_lines(served: Served) -> list[str]:
    return [line for line in served.log_path.read_text(errors="replace").splitlines()
            if "SIP" in line or "Traceback" in line]


def test_strangers_get_no_audio_and_no_say_and_odd_messages_leave_a_few_log_lines(served):
    async def test():
        peer = await RawPeer(served.address, user="5550100").open()
        stranger = await RawPeer(served.address, host=STRANGER).open()
        flooder = await RawPeer(served.address, user="odd-peer").open()
        try:
            dialog, responses = await peer.call(offer_to(stranger, STRANGER))
            assert responses[-1].status == 200
            sent_to_stranger = await stranger.rtp_bytes(2.0)
            assert sent_to_stranger == 0, f"{sent_to_stranger} bytes of the greeting went to {STRANGER}"
            peer.send_audio(bytes(320), dialog.remote_rtp)  # the caller's first packet: now the bot knows where
            assert voiced_seconds(await peer.heard(4.0), 8000) > 0.5  # the greeting, to the caller

            dialog.cseq += 1
            stranger.send(stranger.request("BYE", dialog))
            assert (await stranger.receive()).status == 403
            assert len(await peer.heard(0.5)) > 0  # the call goes on

            before = sip_lines(served)
            for _ in range(30):
                for header in ODD_HEADERS:
                    flooder.send(odd_request(flooder, header))
                await asyncio.sleep(0)
            await answered_options(flooder)
            added = sip_lines(served)[len(before):]
            assert not [line for line in added if "Traceback" in line]
            assert len(added) <= 4, added  # 300 odd messages: the first few said, the rest counted

            peer.hang_up(dialog)
            assert (await peer.receive(skip_provisional=True)).status == 200
            again, responses = await flooder.call()  # and the line still takes a call, greeting and all
            assert responses[-1].status == 200
            assert voiced_seconds(await flooder.heard(4.0), 8000) > 0.5
            flooder.hang_up(again)
        finally:
            peer.close()
            stranger.close()
            flooder.close()
    asyncio.run(asyncio.wait_for(test(), 90))
