"""The edge of deploy/kamailio/kamailio.cfg with a real Kamailio and no worker loaded: who may call at all
(the allow list), a flood from one caller's address cut off (pike) while a trunk's many calls are not, and
a caller told 480 (not 503) when no worker can take a call."""
import asyncio

import pytest

from tests import kamailio
from tests.sip_peer import RawPeer

pytestmark = pytest.mark.slow

TRUNK, CALLER, STRANGER = "127.0.0.1", "127.0.0.2", "127.0.0.3"
BURST = 120  # OPTIONS sent at once; the config's flood limit is 40 requests from one address in 2 s


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    kamailio.require()
    from ivr.cluster.kamailio import Worker

    never_up = Worker("worker-1", "127.0.0.1", 9, "10000-10999")  # the discard port: its probes never answer
    running = kamailio.Proxy(tmp_path_factory.mktemp("edge"), trunks=[f"{TRUNK}/32"], callers=[f"{CALLER}/32"],
                             workers=[never_up])
    asyncio.run(_until_answering(running))
    yield running
    running.stop()


async def _until_answering(proxy) -> None:
    peer = await RawPeer(("127.0.0.1", proxy.port), host=TRUNK).open()
    try:
        for _ in range(100):
            peer.send(_options(peer, proxy))
            try:
                await peer.receive(timeout=0.2)
                return
            except asyncio.TimeoutError:
                assert proxy.process.poll() is None, f"Kamailio stopped: {proxy.log()[-2000:]}"
        raise AssertionError(f"Kamailio never answered: {proxy.log()[-2000:]}")
    finally:
        peer.close()


def _options(peer: RawPeer, proxy) -> str:
    return peer.request("OPTIONS", peer.new_dialog(), uri=f"sip:127.0.0.1:{proxy.port}")


async def _answered(proxy, host: str, count: int) -> list[int]:
    """Statuses of the answers to `count` OPTIONS sent at once from `host`."""
    peer = await RawPeer(("127.0.0.1", proxy.port), host=host).open()
    try:
        for _ in range(count):
            peer.send(_options(peer, proxy))
        statuses = []
        while True:
            try:
                statuses.append((await peer.receive(timeout=1.0)).status)
            except asyncio.TimeoutError:
                return statuses
    finally:
        peer.close()


def test_a_stranger_is_refused_and_a_caller_flooding_is_cut_off_but_a_trunk_is_not(proxy):
    assert asyncio.run(_answered(proxy, STRANGER, 1)) == [403]
    flood = asyncio.run(_answered(proxy, CALLER, BURST))
    assert 0 < len(flood) < BURST and set(flood) == {200}, len(flood)
    assert f"flood from {CALLER}" in proxy.log()
    assert asyncio.run(_answered(proxy, TRUNK, BURST)) == [200] * BURST


def test_a_caller_is_told_480_not_503_when_no_worker_can_take_the_call(proxy):
    async def call() -> list:
        peer = await RawPeer(("127.0.0.1", proxy.port), host=TRUNK, user="5550199").open()
        try:
            _, responses = await peer.call()
            return responses
        finally:
            peer.close()

    told = asyncio.run(call())[-1]
    assert told.status == 480, told  # a 503 would tell the caller's SBC that the proxy itself is down
    assert told.get("Retry-After") is None, told
