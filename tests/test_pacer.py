"""The phone lines' one pacer (ivr/transports/pacer.py), on a clock the test moves: frames per tick,
what clear() drops, catching up after a hiccup and not bursting after a stall. The pacer is the
real one; only its clock and the peer it sends to are stand-ins."""
import asyncio
import heapq
import itertools

from ivr.transports.pacer import FALLEN_BEHIND, MAX_QUEUED_SECONDS, TICKS, Pacer

RATE = 8000
FRAME = 320  # 20 ms of 16-bit audio at 8 kHz
TICK = 0.02


class VirtualClock:
    """Time moves only when the test says; sleepers wake in order once it has passed their time."""

    def __init__(self):
        self.now = 1000.0
        self._sleepers: list = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), wake))
        await wake

    async def advance(self, seconds: float) -> None:
        """Jump `seconds` at once (a stall, if long), waking whoever was due, then let the loop settle."""
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now + 1e-9:
            heapq.heappop(self._sleepers)[2].set_result(None)
        await settle()


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


class Peer:
    """Where the frames go: each with the virtual time it was sent."""

    def __init__(self, clock: VirtualClock):
        self.clock, self.frames, self.marks = clock, [], []

    async def send(self, frame: bytes) -> None:
        self.frames.append((self.clock.now, frame))

    async def played(self) -> None:
        self.marks.append((self.clock.now, len(self.frames)))

    def since(self, start: int) -> list[bytes]:
        return [frame for _, frame in self.frames[start:]]


def audio(seconds: float, byte: int = 7) -> bytes:
    return bytes([byte]) * int(RATE * seconds) * 2


def run(test):
    async def main():
        clock = VirtualClock()
        peer = Peer(clock)
        await test(clock, peer)
    asyncio.run(main())


def test_one_frame_per_tick_with_a_mark_after_each_chunk_and_idle_once_sent():
    async def test(clock, peer):
        pacer = Pacer(RATE, peer.send, peer.played, clock=clock)
        pacer.queue(audio(0.1, 1))
        pacer.queue(audio(0.05, 2))  # 2.5 frames: the chunks run on, the last frame is padded
        await settle()
        assert len(peer.frames) == 1 and not pacer.idle  # the first frame leaves at once
        for tick in range(2, 9):
            await clock.advance(TICK)
            assert len(peer.frames) == min(tick, 8), tick
        assert all(len(frame) == FRAME for frame in peer.since(0))
        assert peer.frames[5][1] == bytes([2]) * FRAME and peer.frames[7][1] == bytes([2]) * 160 + bytes(160)
        assert [count for _, count in peer.marks] == [5, 8]  # after the frame carrying each chunk's last byte
        assert [round(at - 1000, 2) for at, _ in peer.frames] == [0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.14]
        await asyncio.wait_for(pacer.drained(), 0.1)
        await clock.advance(1.0)
        assert len(peer.frames) == 8  # nothing queued, nothing sent
        await pacer.stop()
    run(test)


def test_clear_drops_everything_queued_at_once_and_marks_idle():
    async def test(clock, peer):
        pacer = Pacer(RATE, peer.send, peer.played, clock=clock)
        pacer.queue(audio(1.0))
        pacer.queue(audio(1.0))
        await settle()
        for _ in range(4):
            await clock.advance(TICK)
        assert len(peer.frames) == 5
        pacer.clear()
        assert pacer.idle and pacer.queued_bytes == 0
        await asyncio.wait_for(pacer.drained(), 0.1)
        for _ in range(10):
            await clock.advance(TICK)
        assert len(peer.frames) == 5 and peer.marks == []  # the cleared chunks never finished playing
        pacer.queue(audio(0.04, 3))  # after a clear, new audio starts at once
        await settle()
        assert peer.since(5) == [bytes([3]) * FRAME]
        await pacer.stop()
    run(test)


def test_a_hiccup_is_caught_up_and_a_stall_starts_the_clock_again_without_a_burst():
    async def test(clock, peer):
        pacer = Pacer(RATE, peer.send, clock=clock)
        pacer.queue(audio(10.0))
        await settle()
        assert len(peer.frames) == 1
        await clock.advance(0.1)  # five ticks late, under FALLEN_BEHIND: the owed frames go now
        assert len(peer.frames) == 6
        await clock.advance(TICK)
        assert len(peer.frames) == 7
        await clock.advance(FALLEN_BEHIND + 0.5)  # a stall: one frame now, not the 35 owed
        assert len(peer.frames) == 8
        for expected in (9, 10, 11):
            await clock.advance(TICK)
            assert len(peer.frames) == expected
        await pacer.stop()
    run(test)


def test_how_late_each_tick_came_is_counted_for_the_benchmark():
    """`ivr bench calls` reads this from the server's log: a tick over 20 ms late is a gap the caller hears."""
    async def test(clock, peer):
        pacer = Pacer(RATE, peer.send, clock=clock)
        pacer.queue(audio(10.0))
        await settle()
        before = TICKS.snapshot()
        await clock.advance(TICK)
        await clock.advance(0.1)  # a hiccup: the first owed frame 80 ms late, the others caught up
        await clock.advance(FALLEN_BEHIND + 0.5)  # a stall: counted too, though the clock starts again
        counted = {ms: n - before.get(ms, 0) for ms, n in TICKS.snapshot().items() if n > before.get(ms, 0)}
        assert counted == {"0": 2, "20": 1, "40": 1, "60": 1, "80": 1, "680": 1}
        await pacer.stop()
    run(test)


def test_a_steady_pacer_sends_silence_every_tick_and_holds_its_audio_until_ready():
    async def test(clock, peer):
        ready = False
        pacer = Pacer(RATE, peer.send, steady=True, ready=lambda: ready, clock=clock)
        pacer.queue(audio(0.04, 5))
        pacer.start()
        await settle()
        for _ in range(2):
            await clock.advance(TICK)
        assert peer.since(0) == [bytes(FRAME)] * 3 and not pacer.idle  # silence; the audio waits
        ready = True
        for _ in range(4):
            await clock.advance(TICK)
        assert peer.since(3) == [bytes([5]) * FRAME] * 2 + [bytes(FRAME)] * 2
        assert pacer.idle
        await pacer.stop()
    run(test)


def test_queued_audio_is_bounded_and_a_relay_keeps_only_its_latency():
    async def test(clock, peer):
        pacer = Pacer(RATE, peer.send, steady=True, clock=clock)  # not started: nothing leaves
        pacer.queue(audio(MAX_QUEUED_SECONDS - 1))
        pacer.queue(audio(2.0))  # over the bound: the newest is dropped
        assert pacer.queued_bytes == len(audio(MAX_QUEUED_SECONDS - 1))
        pacer.clear()
        for byte in range(1, 21):  # a bridge: one frame in per tick, nobody taking them out
            pacer.relay(bytes([byte]) * FRAME, latency=0.1)
        assert pacer.queued_bytes == 5 * FRAME
        pacer.start()
        await settle()
        assert peer.since(0) == [bytes([16]) * FRAME]  # the oldest were dropped, the newest five kept
        await pacer.stop()
    run(test)


def test_a_peer_that_has_gone_stops_the_pacer():
    async def test(clock, peer):
        async def gone(frame):
            raise ConnectionResetError("the peer hung up")

        pacer = Pacer(RATE, gone, clock=clock)
        pacer.queue(audio(1.0))
        await settle()
        assert pacer.stopped and pacer.idle
        pacer.queue(audio(1.0))
        assert pacer.queued_bytes == 0
    run(test)
