"""`ivr bench calls`: many callers at once over WebSocket media streams, against a real `ivr serve`.

Callers are simulated the way Twilio carries them: 20 ms of mu-law every 20 ms (silence when they
say nothing), one `dtmf` message per key, marks echoed as the bot's audio arrives, `stop` to hang
up. Each runs a short scenario from the scenario files (spoken with the scenario's caller voice,
through the phone channel). The ramp doubles the callers at once, 1, 2, 4, ... up to --max, and
at each step every scenario is called at least once (a line calls again
when there are more scenarios than callers), and the step reports:
- per spoken turn, end of the caller's voice -> first bot audio frame received (p50/p95), which
  includes the endpoint silence;
- audio underruns: gaps over 40 ms between the bot's 20 ms frames while a reply plays, split into
  gaps inside one chunk of audio (pacing) and gaps between chunks (speech not ready in time);
- CPU seconds per call of the server (its process and its children, from /proc).
The server runs in its own process so the callers' work is not counted as the server's; how late
the callers' own event loop woke is reported too, as it would show up as the server's gaps.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional

from ivr.audio.pcm import PHONE_RATE, phone_channel, rms_dbfs, ulaw_decode, ulaw_encode
from ivr.bench import percentiles
from ivr.config import Settings
from ivr.errors import UserError
from ivr.events import SAMPLE_WIDTH, AudioChunk, Dtmf

FRAME_SECONDS = 0.02
FRAME_BYTES = int(PHONE_RATE * FRAME_SECONDS) * SAMPLE_WIDTH
VOICE_DBFS = -40.0  # a frame this loud is the caller's voice (synthesizers pad with near silence)
UNDERRUN_SECONDS = 0.04
KEY_GAP_SECONDS = 0.1  # between one key and the next, as a person keys them
STAGGER_SECONDS = 0.25  # between one caller's arrival and the next at each step
TURN_TIMEOUT = 30.0  # a bot that has not answered or finished by then has failed this caller
MAX_TURNS = 4  # the short scenarios: at most this many answers
SERVER_START_SECONDS = 180.0
TARGET_P95 = 1.0


class Talker:
    """The caller's side of a phone line: 20 ms of audio every 20 ms, silence between utterances,
    as a phone network sends it. `send` writes one frame of 16-bit 8 kHz audio; it ends the talking
    by raising ConnectionError when the line is gone."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]]):
        self._send = send
        self._speech = bytearray()
        self._sent = 0  # bytes of caller audio sent so far
        self._milestones: list[tuple[int, asyncio.Future]] = []  # (once this many bytes are sent, when)

    async def say(self, audio: AudioChunk) -> tuple[float, float]:
        """Speak (8 kHz audio) in real time; returns when its first and last voiced frames were sent (loop clock)."""
        if audio.rate != PHONE_RATE:
            raise ValueError(f"a phone line carries {PHONE_RATE} Hz audio, not {audio.rate}")
        loop, at = asyncio.get_running_loop(), self._sent + len(self._speech)
        began, ended = voice_span(audio.pcm)
        self._milestones += [(at + began + 1, loop.create_future()), (at + ended, loop.create_future())]
        self._speech += audio.pcm
        return await self._milestones[-2][1], await self._milestones[-1][1]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while True:
                frame = bytes(self._speech[:FRAME_BYTES]).ljust(FRAME_BYTES, b"\0")
                del self._speech[:FRAME_BYTES]
                await self._send(frame)
                self._sent += FRAME_BYTES
                while self._milestones and self._sent >= self._milestones[0][0]:
                    self._milestones.pop(0)[1].set_result(loop.time())
                due = max(due + FRAME_SECONDS, loop.time() - 0.2)
                await asyncio.sleep(max(0.0, due - loop.time()))
        except ConnectionError as error:
            for _, pending in self._milestones:
                pending.set_exception(ConnectionError(f"the line is gone: {error}"))
            self._milestones.clear()


class StreamCaller:
    """One caller on a media stream in Twilio's message format; everything the bot sends is kept
    with its arrival time (loop clock): `events` holds ("media", payload) / ("mark", name) / ("clear", None)."""

    def __init__(self, call_sid: Optional[str] = None, caller_number: Optional[str] = None):
        self.call_sid = call_sid or "CA" + uuid.uuid4().hex
        self.stream_sid = "MZ" + self.call_sid[2:]
        self.caller_number = caller_number
        self.events: list[tuple[float, str, Any]] = []
        self.prompts_done = 0  # `prompt-N` marks seen: the bot finished speaking and listens
        self.closed: Optional[tuple[int, str]] = None  # the server's close code and reason
        self.talker = Talker(self._send_frame)
        self._sequence = self._chunk = 0
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._ws = None

    async def connect(self, session, url: str) -> None:
        self._ws = await session.ws_connect(url, autoclose=True, max_msg_size=1 << 20)
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        parameters = {"from": self.caller_number} if self.caller_number else {}
        await self.send({"event": "start", "streamSid": self.stream_sid, "start": {
            "streamSid": self.stream_sid, "accountSid": "AC" + "0" * 32, "callSid": self.call_sid,
            "tracks": ["inbound"], "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        self._tasks = [asyncio.create_task(self.talker.run()), asyncio.create_task(self._listen())]

    async def send(self, message: dict) -> None:
        self._sequence += 1
        await self._ws.send_str(json.dumps({**message, "sequenceNumber": str(self._sequence)}))

    async def say(self, audio: AudioChunk) -> tuple[float, float]:
        return await self.talker.say(audio)

    async def keys(self, digits: str) -> float:
        for n, key in enumerate(digits):
            if n:
                await asyncio.sleep(KEY_GAP_SECONDS)
            await self.send({"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": key}})
        return asyncio.get_running_loop().time()

    async def bot_finished(self, after: int, timeout: float = TURN_TIMEOUT) -> float:
        """Wait for the bot to finish a reply (more than `after` prompts done); when it did."""
        await self.until(lambda: self.prompts_done > after, timeout)
        return [t for t, kind, name in self.events if kind == "mark" and name.startswith("prompt-")][after]

    async def first_audio_after(self, moment: float, timeout: float = TURN_TIMEOUT) -> float:
        """When the first of the bot's audio frames after `moment` arrived."""
        def first() -> Optional[float]:
            found = None
            for t, kind, _ in reversed(self.events):
                if t <= moment:
                    break
                found = t if kind == "media" else found
            return found
        await self.until(lambda: first() is not None, timeout)
        return first()

    async def until(self, condition: Callable[[], bool], timeout: float) -> None:
        async def wait():
            while not condition():
                if self.closed:
                    raise ConnectionError(f"the server closed the stream: {self.closed[0]} {self.closed[1]}")
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(wait(), timeout)

    def heard(self, since: float = 0.0) -> bytes:
        """The bot's audio received since `since`, as 16-bit 8 kHz PCM."""
        return b"".join(ulaw_decode(base64.b64decode(p)) for t, kind, p in self.events if kind == "media" and t >= since)

    async def hang_up(self) -> None:
        if self._ws is not None and not self._ws.closed:
            try:
                await self.send({"event": "stop", "streamSid": self.stream_sid,
                                 "stop": {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid}})
                await self._ws.close()
            except ConnectionError:
                pass
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send_frame(self, pcm: bytes) -> None:
        self._chunk += 1
        await self.send({"event": "media", "streamSid": self.stream_sid, "media": {
            "track": "inbound", "chunk": str(self._chunk), "timestamp": str(self._chunk * 20),
            "payload": base64.b64encode(ulaw_encode(pcm)).decode("ascii")}})

    async def _listen(self) -> None:
        from aiohttp import WSMsgType

        loop = asyncio.get_running_loop()
        try:
            while True:
                message = await self._ws.receive()
                if message.type != WSMsgType.TEXT:
                    self.closed = (self._ws.close_code or 0, str(message.extra or ""))
                    return
                data, now = json.loads(message.data), loop.time()
                event = data.get("event")
                if event == "media":
                    self.events.append((now, "media", data["media"]["payload"]))
                elif event == "mark":
                    name = data["mark"]["name"]
                    self.events.append((now, "mark", name))
                    self.prompts_done += name.startswith("prompt-")
                    await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
                elif event == "clear":
                    self.events.append((now, "clear", None))
                self._changed.set()
        finally:
            self.closed = self.closed or (self._ws.close_code or 0, "")
            self._changed.set()


def voice_span(pcm: bytes) -> tuple[int, int]:
    """Where the voice in 16-bit audio begins and ends (bytes), by 20 ms frames."""
    frames = [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
    voiced = [n for n, frame in enumerate(frames) if rms_dbfs(frame) > VOICE_DBFS] or [0, len(frames) - 1]
    return voiced[0] * FRAME_BYTES, min(len(pcm), (voiced[-1] + 1) * FRAME_BYTES)


def gaps(events: list[tuple[float, str, Any]], start: float, end: float) -> dict[str, Any]:
    """Underruns in the bot's audio between `start` and `end`: gaps between frames over 40 ms."""
    within = between = frames = 0
    worst, last, marked = 0.0, None, False
    for moment, kind, name in events:
        if not start <= moment <= end:
            continue
        if kind == "mark":
            marked = True
        elif kind == "media":
            frames += 1
            gap = moment - last if last is not None else 0.0
            if gap > UNDERRUN_SECONDS:
                between, within = between + marked, within + (not marked)
                worst = max(worst, gap)
            last, marked = moment, False
    return {"within_chunks": within, "between_chunks": between, "frames": frames, "worst_gap": worst}


@dataclass(frozen=True)
class Script:
    name: str
    items: list  # AudioChunk at 8 kHz, or Dtmf


def scripts(paths: list[Path]) -> list[Script]:
    """The short scenarios (spoken and keyed answers only, no hold or barge-in), rendered to phone audio."""
    from ivr.simulate import ScenarioError, caller_items, find_scenarios, load_scenario

    found = []
    for scenario in (load_scenario(p) for p in find_scenarios(paths)):
        turns = scenario.turns
        if len(turns) > MAX_TURNS or any(t.hold is not None or t.barge_in_at is not None or t.audio for t in turns):
            continue
        items = [i.say if isinstance(i.say, Dtmf) else phone_channel(i.say) for i in caller_items(scenario)]
        found.append(Script(scenario.name, items))
    if not found:
        raise ScenarioError(f"no short scenario (at most {MAX_TURNS} spoken or keyed turns) in {', '.join(map(str, paths))}")
    return found


async def run_caller(session, url: str, script: Script, delay: float) -> dict[str, Any]:
    """One caller through one scenario; its turns' figures, or what went wrong."""
    await asyncio.sleep(delay)
    caller = StreamCaller()
    turns, problem, windows = [], None, []
    try:
        await caller.connect(session, url)
        began = asyncio.get_running_loop().time()
        windows.append((began, await caller.bot_finished(0)))
        for item in script.items:
            done = caller.prompts_done
            if isinstance(item, Dtmf):
                ended, kind = await caller.keys(item.digits), "keypad"
            else:
                (_, ended), kind = await caller.say(item), "speech"
            first = await caller.first_audio_after(ended)
            windows.append((first, await caller.bot_finished(done)))
            turns.append({"kind": kind, "latency": first - ended})
    except asyncio.TimeoutError:
        problem = f"{script.name}: the bot did not answer within {TURN_TIMEOUT:.0f} s (turn {len(turns) + 1})"
    except (ConnectionError, OSError) as error:
        problem = f"{script.name}: {error}"
    finally:
        await caller.hang_up()
    underruns = [gaps(caller.events, start, end) for start, end in windows]
    return {"turns": turns, "problem": problem, "underruns": underruns}


class Server:
    """`ivr serve` with phone lines, in its own process: what it announces (`urls`, by scheme: ws, tcp),
    its log (stderr, in a file: a pipe nobody reads would fill and stall it), its CPU time from /proc."""

    def __init__(self, lines: list[str], env: Optional[dict[str, str]] = None):
        self.command = [str(Path(sys.executable).parent / "ivr"), "serve", "--port", "0", *lines]
        self.env = env
        self.urls: dict[str, str] = {}
        self.process: Optional[subprocess.Popen] = None
        self._log = tempfile.NamedTemporaryFile("w", prefix="ivr-serve-", suffix=".log", delete=False)

    def start(self, schemes: tuple[str, ...] = ("ws",)) -> None:
        """Start it and wait until it announces an address for each of `schemes`."""
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=self._log, env=self.env)
        said, deadline = "", time.monotonic() + SERVER_START_SECONDS
        while set(schemes) - set(self.urls) and time.monotonic() < deadline and self.process.poll() is None:
            if select.select([self.process.stdout], [], [], 1.0)[0]:
                said += os.read(self.process.stdout.fileno(), 4096).decode()
                self.urls = {scheme: f"{scheme}://{rest}" for scheme, rest in re.findall(r"\b(\w+)://(\S+)\n", said)}
        if set(schemes) - set(self.urls):
            self.stop()
            raise UserError(f"`ivr {' '.join(self.command[1:])}` did not start: {self.log_text()[-2000:]}")

    def log_text(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.process.stdout.close()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def cpu_seconds(self) -> float:
        """User and system time of the server and every process under it (the action server)."""
        return sum(_cpu_of(pid) for pid in _tree(self.process.pid))


def _tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found.extend(frontier)
    return found


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def ramp(most: int) -> list[int]:
    steps, n = [], 1
    while n < most:
        steps.append(n)
        n *= 2
    return steps + [most]


async def _line(session, url: str, scripts_: list[Script], delay: float) -> list[dict[str, Any]]:
    """One caller's line: its scenarios one call after another."""
    runs = []
    for n, script in enumerate(scripts_):
        runs.append(await run_caller(session, url, script, delay if n == 0 else 0.5))
    return runs


async def _loop_stalls(stalls: list[float]) -> None:
    """How late this process's own event loop wakes (its lateness shows up as the server's gaps)."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + 0.01
        await asyncio.sleep(0.01)
        if loop.time() - asked > UNDERRUN_SECONDS / 2:
            stalls.append(loop.time() - asked)


async def _step(server: Server, found: list[Script], callers: int) -> dict[str, Any]:
    """`callers` at once; each line calls again until every scenario has been called at least once."""
    import aiohttp

    rounds = -(-len(found) // callers)
    lines = [[found[(k + r * callers) % len(found)] for r in range(rounds)] for k in range(callers)]
    stalls: list[float] = []
    watch = asyncio.create_task(_loop_stalls(stalls))
    cpu, began = server.cpu_seconds(), time.monotonic()
    async with aiohttp.ClientSession() as session:
        runs = [r for line in await asyncio.gather(*(_line(session, server.urls["ws"], line, k * STAGGER_SECONDS)
                                                     for k, line in enumerate(lines))) for r in line]
    await asyncio.sleep(1.0)  # the server finishes the calls' records
    cpu = server.cpu_seconds() - cpu
    watch.cancel()
    spoken = [t["latency"] for r in runs for t in r["turns"] if t["kind"] == "speech"]
    keyed = [t["latency"] for r in runs for t in r["turns"] if t["kind"] == "keypad"]
    windows = [w for r in runs for w in r["underruns"]]
    return {
        "callers": callers, "calls": len(runs), "completed": sum(r["problem"] is None for r in runs),
        "problems": [r["problem"] for r in runs if r["problem"]],
        "wall_seconds": round(time.monotonic() - began, 1),
        "latency": percentiles(spoken), "keypad_latency": percentiles(keyed),
        "underruns": {"within_chunks": sum(w["within_chunks"] for w in windows),
                      "between_chunks": sum(w["between_chunks"] for w in windows),
                      "bot_audio_seconds": round(sum(w["frames"] for w in windows) * FRAME_SECONDS, 1),
                      "worst_gap": max((w["worst_gap"] for w in windows), default=0.0)},
        "cpu_seconds_per_call": round(cpu / len(runs), 2),
        "callers_own_loop_stalls": {"count": len(stalls), "worst": max(stalls, default=0.0)},
    }


async def _bench(server: Server, found: list[Script], most: int) -> dict[str, Any]:
    steps = [await _step(server, found, n) for n in ramp(most)]
    good = [s["callers"] for s in steps if s["completed"] == s["calls"] and s["latency"].get("n")
            and s["latency"]["p95"] < TARGET_P95]
    held = 0
    for step in steps:  # the largest N such that it and every smaller step kept p95 under the target
        if step["callers"] not in good:
            break
        held = step["callers"]
    return {"scenarios": [s.name for s in found], "server": " ".join(server.command[1:]), "cores": os.cpu_count(),
            "target_p95": TARGET_P95, "steps": steps, "most_callers_within_target": held or None}


def bench_calls(settings: Settings, paths: list[Path], most: int, as_json: bool) -> int:
    found = scripts(paths)  # the callers' voices are rendered before the server loads
    server = Server(["--media-stream", "127.0.0.1:0", "--max-calls", str(most)])
    server.start()
    try:
        report = asyncio.run(_bench(server, found, most))
    finally:
        server.stop()
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


def _print(report: dict[str, Any]) -> None:
    print(f"server: ivr {report['server']} ({report['cores']} cores)")
    print(f"scenarios: {'; '.join(report['scenarios'])}")
    print("latency: end of the caller's voice -> first bot audio frame (includes the endpoint silence)")
    print("gaps: over 40 ms between the bot's 20 ms frames while it speaks, inside a chunk / between chunks")
    print(f"{'callers':>7}{'calls':>6}{'done':>5}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'keyed p95':>10}"
          f"{'gaps':>10}{'worst ms':>9}{'of audio s':>11}{'CPU s/call':>11}{'own stalls':>11}")

    def ms(figures: dict, key: str) -> str:
        return f"{figures[key] * 1000:.0f}" if figures.get("n") else "-"

    for step in report["steps"]:
        latency, gaps_, stalls = step["latency"], step["underruns"], step["callers_own_loop_stalls"]
        print(f"{step['callers']:>7}{step['calls']:>6}{step['completed']:>5}{ms(latency, 'p50'):>8}"
              f"{ms(latency, 'p95'):>8}{ms(latency, 'max'):>8}{ms(step['keypad_latency'], 'p95'):>10}"
              f"{gaps_['within_chunks']:>5} /{gaps_['between_chunks']:>3}{gaps_['worst_gap'] * 1000:>9.0f}"
              f"{gaps_['bot_audio_seconds']:>11.0f}{step['cpu_seconds_per_call']:>11.2f}{stalls['count']:>11}")
        for problem in step["problems"][:3]:
            print(f"        {problem}")
    held = report["most_callers_within_target"]
    print(f"most callers at once with p95 under {report['target_p95']:.0f} s: {held if held else 'none'}")
