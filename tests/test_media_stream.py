"""WebSocket media streams in Twilio's format, against a real server process: a caller who talks over
the greeting, keys an account number and hangs up; the call limit; peers outside --allow; and a few
thousand messages of garbage the server must shrug off."""
import asyncio
import base64
import json
import random

import aiohttp
import pytest

from conftest import ivr_command, voiced_seconds
from ivr.tools.stream_caller import StreamCaller
from stream_server import BARGE_IN_LIMIT, caller_says, record, server  # noqa: F401 - server is a fixture


def test_a_caller_talks_over_the_greeting_keys_an_account_number_and_hangs_up(server):
    speech = caller_says("I want to check my balance")

    async def call():
        caller = StreamCaller(caller_number="+15551234567")
        async with aiohttp.ClientSession() as session:
            await caller.connect(session, server.media_stream_url)
            greeting = await caller.first_audio_after(0)
            await asyncio.sleep(1.0)
            spoke, ended = await caller.say(speech)
            answer = await caller.first_audio_after(ended)
            await caller.bot_finished(caller.prompts_done)
            asked = caller.heard(answer)
            keyed = await caller.keys("48151623")
            replies = caller.prompts_done
            read_back = await caller.first_audio_after(keyed)
            await caller.keys("#")  # out of habit, while the bot reads the number back
            await caller.bot_finished(replies)  # the read-back and the PIN question, played to their end
            await caller.hang_up()
        return caller, greeting, spoke, answer, asked, read_back

    caller, greeting, spoke, answer, asked, read_back = asyncio.run(call())
    # The pound key after a complete number is not an answer: the read-back plays on, nothing is cleared.
    assert not [t for t, kind, _ in caller.events if kind == "clear" and t > read_back]
    assert voiced_seconds(caller.heard(read_back), 8000) > 3.5  # "... account 4 8 1 5 1 6 2 3. Now ... PIN"
    media = [t for t, kind, _ in caller.events if kind == "media"]
    clear = next(t for t, kind, _ in caller.events if kind == "clear")
    assert clear - spoke < BARGE_IN_LIMIT, f"clear came {clear - spoke:.3f} s after the caller began"
    greeting_frames = [t for t in media if t < answer]
    assert greeting_frames[-1] - spoke < BARGE_IN_LIMIT, "the greeting went on over the caller"
    # real-time pacing: a second of the greeting took about a second to arrive, 20 ms a message
    assert 0.9 < greeting_frames[50] - greeting_frames[0] < 1.2
    assert all(len(base64.b64decode(p)) == 160 for _, kind, p in caller.events if kind == "media")
    assert voiced_seconds(asked, 8000) > 1.5  # "please say or key in your account number"
    assert any(name.startswith("audio-") for _, kind, name in caller.events if kind == "mark")

    shown = ivr_command("calls", "show", caller.call_sid, "--json", env={"IVR_VAR": str(server.var_dir)})
    assert shown.returncode == 0, shown.stderr
    call = json.loads(shown.stdout)
    assert (call["channel"], call["caller_number"]) == ("websocket", "+15551234567")
    assert call["turns"][0]["intent"] == "check_balance"
    assert call["turns"][1]["kind"] == "dtmf" and call["turns"][1]["heard"] == "48151623"
    assert "4 8 1 5 1 6 2 3" in " ".join(call["turns"][1]["bot"])
    assert call["ended_at"]


def test_a_stream_beyond_the_call_limit_is_closed_with_a_reason(server):
    async def two_callers():
        first, second = StreamCaller(), StreamCaller()
        async with aiohttp.ClientSession() as session:
            await first.connect(session, server.media_stream_url)
            await first.first_audio_after(0)
            await second.connect(session, server.media_stream_url)
            await second.until(lambda: second.closed is not None, 10)
            await first.hang_up()
            await second.hang_up()
        return first, second

    first, second = asyncio.run(two_callers())
    code, reason = second.closed
    assert code == 1013 and "busy" in reason
    assert not [e for e in second.events if e[1] == "media"]
    assert record(server, first.call_sid)["channel"] == "websocket"


def test_a_peer_outside_the_allowed_networks_is_refused_before_any_call():
    from ivr.transports.listeners import allowed_networks
    from ivr.serve.switchboard import Switchboard
    from ivr.transports.media_stream import MediaStreamListener

    async def knock():
        listener = MediaStreamListener(Switchboard(bot=None, max_calls=1), "127.0.0.1", 0,
                                       allowed_networks(["192.0.2.0/24"]))
        url = (await listener.start()).split(": ", 1)[1]
        try:
            async with aiohttp.ClientSession() as session:
                with pytest.raises(aiohttp.ClientConnectionError) as refused:  # aborted at accept: no answer at all
                    await session.ws_connect(url)
        finally:
            await listener.stop()
        return refused.value

    assert not isinstance(asyncio.run(knock()), aiohttp.ClientResponseError)


def _garbage(rng: random.Random, started: bool) -> object:
    """One message a media stream peer should never send (str for text frames, bytes for binary)."""
    sid = "MZ" + "%032x" % rng.getrandbits(128)
    choices = [
        lambda: "{" * rng.randint(1, 5) + "event",  # not JSON
        lambda: "[" * 60_000,  # nesting deep enough to break a recursive parser
        lambda: json.dumps(rng.choice([[], 1, "media", None, 3.5, True])),  # JSON, not an object
        lambda: json.dumps({"event": rng.choice(["hello", "", "MEDIA", "start ", "x" * 500])}),
        lambda: json.dumps({"event": rng.choice([5, None, [], {"a": 1}])}),
        lambda: json.dumps({"event": "media", "media": {"payload": "!!!not base64!!!"}}),
        lambda: json.dumps({"event": "media", "media": {"payload": "A" * 50_000}}),  # huge
        lambda: json.dumps({"event": "media", "media": {"payload": rng.choice([5, None, [], {}])}}),
        lambda: json.dumps({"event": "media", "media": "payload"}),
        lambda: json.dumps({"event": "dtmf", "dtmf": {"digit": rng.choice(["12", "x", 5, None, ""])}}),
        lambda: json.dumps({"event": "mark", "mark": {"name": rng.choice([None, 5, []])}}),
        lambda: json.dumps({"event": "start", "start": rng.choice(["x", [], None, {"streamSid": 5},
                                                                     {"streamSid": sid, "callSid": "../../etc"}])}),
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 400))),  # binary frame
    ]
    if not started:
        choices.append(lambda: json.dumps({"event": "media", "media": {"payload": base64.b64encode(b"\xff" * 160).decode()}}))
    return rng.choice(choices)()


async def _send_garbage(url: str, messages: int, seed: int) -> dict:
    """`messages` bad messages over as many connections as the server cuts; every tenth connection
    sends one message over the size limit instead, every twentieth a real start before its nonsense."""
    rng, sent, closes = random.Random(seed), 0, {}
    async with aiohttp.ClientSession() as session:
        for connection in range(10_000):  # bounded: ends once `messages` are sent
            if sent >= messages:
                break
            ws = await session.ws_connect(url, max_msg_size=0)
            drain = asyncio.create_task(_drain(ws))
            started = connection % 20 == 0  # a real call that then receives nonsense
            if started:
                await ws.send_str(json.dumps({"event": "start", "start": {
                    "streamSid": f"MZgarbage{connection}", "callSid": f"CAgarbage{seed}x{connection}"}}))
            try:
                oversized = connection % 10 == 5
                if oversized:
                    await ws.send_str("x" * 70_000)  # over the message size limit
                    sent += 1
                for _ in range(0 if oversized else rng.randint(60, 120)):
                    if drain.done():
                        break
                    message = _garbage(rng, started)
                    await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_str(message))
                    sent += 1
            except ConnectionError:
                pass
            try:  # the server closes; should it not, we do
                code = await asyncio.wait_for(asyncio.shield(drain), 2.0)
            except asyncio.TimeoutError:
                await ws.close()
                code = "left open"
                drain.cancel()
            closes[code] = closes.get(code, 0) + 1
    return closes


async def _drain(ws) -> int:
    """Read until the socket closes; the close code the server sent (not the one a broken pipe leaves)."""
    while True:
        message = await ws.receive()
        if message.type == aiohttp.WSMsgType.CLOSE:
            return message.data
        if message.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return ws.close_code


async def _flood(url: str) -> int:
    """A real start, then ten seconds of audio at once: faster than any phone talks."""
    async with aiohttp.ClientSession() as session:
        for attempt in range(20):  # the last call of the garbage may still be ending: the line is busy until then
            ws = await session.ws_connect(url)
            drain = asyncio.create_task(_drain(ws))
            await ws.send_str(json.dumps({"event": "start", "start": {"streamSid": "MZflood", "callSid": f"CAflood{attempt}"}}))
            frame = json.dumps({"event": "media", "media": {"payload": base64.b64encode(b"\xff" * 160).decode()}})
            try:
                for _ in range(500):
                    if drain.done():
                        break
                    await ws.send_str(frame)
            except ConnectionError:
                pass
            code = await drain
            # 1013: busy. 1006: the busy refusal's close handshake lost to our own burst (a loaded machine).
            if code not in (1013, 1006):
                return code
            await asyncio.sleep(0.5)
        return code


def test_thousands_of_bad_messages_neither_crash_nor_bloat_the_server_and_calls_still_work(server):
    asyncio.run(_send_garbage(server.media_stream_url, 300, seed=1))  # warm up: first-time allocations
    before = server.rss_kib()
    closes = asyncio.run(_send_garbage(server.media_stream_url, 3000, seed=2))
    flood = asyncio.run(_flood(server.media_stream_url))
    after = server.rss_kib()

    assert server.process.poll() is None
    assert "left open" not in closes, closes
    assert closes.get(1009, 0) >= 3, closes  # the messages over the size limit
    log = server.log_text()
    assert log.count("(bad message 50 of 50 allowed)") >= 20, closes  # cut off after their budget
    assert "audio faster than real time (bad message 50 of 50 allowed)" in log, flood
    assert after - before < 20_000, f"RSS grew {after - before} KiB over 3000 bad messages"
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]

    async def real_call():
        caller = StreamCaller()
        async with aiohttp.ClientSession() as session:
            for _ in range(20):  # the last garbage call may still be ending: the line is busy until then
                caller = StreamCaller()
                await caller.connect(session, server.media_stream_url)
                try:
                    await caller.first_audio_after(0, timeout=10)
                    break
                except ConnectionError:
                    await caller.hang_up()
                    await asyncio.sleep(0.5)
            await asyncio.sleep(2.5)
            await caller.hang_up()
        return caller

    caller = asyncio.run(real_call())
    assert voiced_seconds(caller.heard(), 8000) > 1.5
    assert record(server, caller.call_sid)["channel"] == "websocket"


def test_caller_audio_faster_than_real_time_is_refused():
    from ivr.transports.network_line import AHEAD_SECONDS, Inbox

    async def flood():
        inbox = Inbox(8000)
        return [inbox.audio(bytes(320)) for _ in range(100)]

    taken = asyncio.run(flood())
    assert taken.count(True) == pytest.approx(AHEAD_SECONDS / 0.02, abs=1) and not any(taken[60:])


@pytest.mark.parametrize("text, address", [("127.0.0.1:8090", ("127.0.0.1", 8090)), ("[::1]:0", ("::1", 0)),
                                           ("0.0.0.0:9092", ("0.0.0.0", 9092))])
def test_line_addresses(text, address):
    from ivr.transports.network_line import host_port
    assert host_port(text) == address


@pytest.mark.parametrize("text", ["8090", "localhost", ":8090", "host:99999", "host:port"])
def test_bad_line_addresses_say_what_is_expected(text):
    import argparse

    from ivr.transports.network_line import host_port
    with pytest.raises(argparse.ArgumentTypeError, match="HOST:PORT"):
        host_port(text)
