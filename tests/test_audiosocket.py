"""Asterisk AudioSocket against a real server process: a caller who talks over the greeting, keys an
account number and hangs up; the call limit; random bytes and impossible lengths."""
import asyncio
import random
import uuid

from conftest import voiced_seconds
from stream_asterisk import AsteriskCaller, frame
from stream_server import BARGE_IN_LIMIT, caller_says, record, server  # noqa: F401 - server is a fixture


def test_an_asterisk_caller_talks_over_the_greeting_keys_an_account_number_and_hangs_up(server):
    speech = caller_says("I want to check my balance")

    async def call():
        caller = AsteriskCaller()
        await caller.connect(*server.audiosocket_address)
        while not caller.audio_times():
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.0)
        spoke, ended = await caller.say(speech)
        answered = await caller.bot_quiet(after=ended)
        keyed = await caller.keys("48151623")
        while not caller.audio_times(keyed):
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.0)
        await caller.hang_up()
        return caller, spoke, ended, answered

    caller, spoke, ended, answered = asyncio.run(call())
    audio = [(t, p) for t, kind, p in caller.received if kind == 0x10]
    greeting = [t for t, _ in audio if t < ended]
    assert greeting[-1] - spoke < BARGE_IN_LIMIT, f"the greeting went on {greeting[-1] - spoke:.3f} s over the caller"
    assert all(len(p) == 320 for _, p in audio)  # 20 ms of 16-bit 8 kHz a message
    assert 0.9 < greeting[50] - greeting[0] < 1.2  # paced in real time
    assert voiced_seconds(caller.heard(ended), 8000) > 1.5  # the question for the account number
    assert not [kind for _, kind, _ in caller.received if kind not in (0x10, -1)]

    call = record(server, str(caller.uuid))
    assert call["channel"] == "audiosocket" and call["caller_number"] is None
    assert call["turns"][0]["intent"] == "check_balance"
    assert call["turns"][1]["kind"] == "dtmf" and "4 8 1 5 1 6 2 3" in " ".join(call["turns"][1]["bot"])


def test_a_connection_beyond_the_call_limit_is_hung_up(server):
    async def two_callers():
        first, second = AsteriskCaller(), AsteriskCaller()
        await first.connect(*server.audiosocket_address)
        while not first.audio_times():
            await asyncio.sleep(0.02)
        await second.connect(*server.audiosocket_address)
        for _ in range(100):
            if any(kind == -1 for _, kind, _ in second.received):
                break
            await asyncio.sleep(0.05)
        await first.hang_up()
        await second.hang_up()
        return first, second

    first, second = asyncio.run(two_callers())
    assert [kind for _, kind, _ in second.received] == [0x00, -1]  # a hang-up, then the connection closed
    assert record(server, str(first.uuid))["channel"] == "audiosocket"


JUNK = [  # what an AudioSocket peer should never send: each connection repeats one kind
    lambda rng: bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000))),  # noise
    lambda rng: bytes([rng.choice([0x02, 0x04, 0x11, 0x7F, 0xFE])]) + (8).to_bytes(2, "big") + b"?" * 8,  # unknown kinds
    lambda rng: frame(0x10, b"\x01\x02\x03"),  # an odd number of bytes for 16-bit audio
    lambda rng: frame(0x03, rng.choice([b"", b"12", b"x", b"\xff"])),  # not one key
    lambda rng: frame(0x01, b"short"),  # a UUID of 5 bytes
    lambda rng: bytes([0x10]) + (65535).to_bytes(2, "big") + b"\0" * 100,  # a length no message has
    lambda rng: frame(0x10, bytes(320)),  # audio before the UUID
]


async def _send_junk(host: str, port: int, connections: int, seed: int) -> int:
    """Junk over `connections` connections, each until the server closes it or 100 pieces are sent;
    how many the server closed."""
    rng, closed = random.Random(seed), 0
    for connection in range(connections):
        junk = JUNK[connection % len(JUNK)]
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for _ in range(100):
                writer.write(junk(rng))
                await writer.drain()
                await asyncio.sleep(0)
            await asyncio.wait_for(reader.read(), 7.0)  # to the end: the server closed the connection
            closed += 1
        except ConnectionError:
            closed += 1
        except asyncio.TimeoutError:
            pass
        finally:
            writer.close()
    return closed


def test_random_bytes_and_impossible_lengths_neither_crash_nor_bloat_the_server(server):
    host, port = server.audiosocket_address
    asyncio.run(_send_junk(host, port, 30, seed=1))  # warm up: first-time allocations
    before = server.rss_kib()
    closed = asyncio.run(_send_junk(host, port, 200, seed=2))
    after = server.rss_kib()

    assert server.process.poll() is None
    assert closed == 200  # every connection was ended by the server, none left hanging
    assert after - before < 20_000, f"RSS grew {after - before} KiB over 200 connections of junk"
    log = server.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert "claims 65535 bytes" in log
    assert log.count("cut off after 50 bad messages") >= 100  # the well-framed kinds of junk

    async def real_call():
        caller = AsteriskCaller(uuid.uuid4())
        await caller.connect(host, port)
        await asyncio.sleep(3.0)
        await caller.hang_up()
        return caller

    caller = asyncio.run(real_call())
    assert voiced_seconds(caller.heard(), 8000) > 1.5
    assert record(server, str(caller.uuid))["channel"] == "audiosocket"


def test_a_peer_outside_the_allowed_networks_is_hung_up_before_any_call():
    from ivr.transports.listeners import allowed_networks
    from ivr.serve.switchboard import Switchboard
    from ivr.transports.audiosocket import AudioSocketListener

    async def knock():
        listener = AudioSocketListener(Switchboard(bot=None, max_calls=1), "127.0.0.1", 0,
                                       allowed_networks(["192.0.2.0/24"]))
        host, port = (await listener.start()).rsplit("//", 1)[1].rsplit(":", 1)
        try:  # reset at accept: maybe before the connect call returns, at the latest at the first read
            reader, writer = await asyncio.open_connection(host, int(port))
            heard = await asyncio.wait_for(reader.read(), 5)  # before even the UUID
            writer.close()
        except ConnectionResetError:
            heard = b""
        finally:
            await listener.stop()
        return heard

    assert asyncio.run(knock()) == b""  # closed without a word, and no call (the switchboard has no bot)
