"""`ivr bench calls`: many callers at once over WebSocket media streams, against a real `ivr serve`.

Each caller (ivr/tools/stream_caller.py: Twilio's message format, 20 ms of mu-law every 20 ms)
runs a short scenario from the scenario files (spoken with the scenario's caller voice,
through the phone channel). The ramp doubles the callers at once, 1, 2, 4, ... up to --max, and
at each step every scenario is called at least once (a line calls again
when there are more scenarios than callers), and the step reports:
- per spoken turn, end of the caller's voice -> first bot audio frame received (p50/p95), which
  includes the endpoint silence;
- audio underruns: gaps over 40 ms between the bot's 20 ms frames while a reply plays, split into
  gaps inside one chunk of audio (pacing) and gaps between chunks (speech not ready in time);
- CPU seconds per call of the server (its process and its children, from /proc);
- the recognizer's decodes: finals, and speculations (decodes at a pause) started, used, wasted
  (more speech came), cancelled before they ran, and skipped because the decoders were behind.
The server runs in its own process so the callers' work is not counted as the server's. Where a gap
comes from is told apart: how late the server's pacers ticked (from its log: p50, p99, max, and the
ticks over 20 ms late, each of which the caller hears as a gap), and how late the callers' own event
loop woke; a gap while the callers' loop was stalled is the measuring side's, counted apart.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ivr.audio.pcm import FRAME_SECONDS, phone_channel
from ivr.config import Settings
from ivr.errors import UserError
from ivr.events import Dtmf
from ivr.serve.switchboard import DECODES, PACING
from ivr.tools.bench import percentiles
from ivr.tools.stream_caller import TURN_TIMEOUT, StreamCaller

UNDERRUN_SECONDS = 0.04
LATE_TICK_MS = round((UNDERRUN_SECONDS - FRAME_SECONDS) * 1000)  # a tick this late leaves an underrun
STAGGER_SECONDS = 0.25  # between one caller's arrival and the next at each step
MAX_TURNS = 4  # the short scenarios: at most this many answers
SERVER_START_SECONDS = 180.0
TARGET_P95 = 1.0


def gaps(events: list[tuple[float, str, Any]], start: float, end: float,
         stalls: tuple[tuple[float, float], ...] = ()) -> dict[str, Any]:
    """Underruns in the bot's audio between `start` and `end`: gaps between frames over 40 ms.
    `stalls`: (woke, how late) of the callers' own loop; a gap inside a chunk that overlaps one may be
    the callers' own lateness, not the bot's."""
    within = between = frames = ours = 0
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
                ours += not marked and any(woke > last and woke - late < moment for woke, late in stalls)
                worst = max(worst, gap)
            last, marked = moment, False
    return {"within_chunks": within, "between_chunks": between, "frames": frames, "worst_gap": worst,
            "within_chunks_while_callers_stalled": ours}


@dataclass(frozen=True)
class Script:
    name: str
    items: list  # AudioChunk at 8 kHz, or Dtmf


def scripts(paths: list[Path]) -> list[Script]:
    """The short scenarios (spoken and keyed answers only, no hold or barge-in), rendered to phone audio."""
    from ivr.tools.simulate import ScenarioError, caller_items, find_scenarios, load_scenario

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


async def run_caller(session, url: str, script: Script, delay: float, stalls: list) -> dict[str, Any]:
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
    underruns = [gaps(caller.events, start, end, tuple(stalls)) for start, end in windows]
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

    def decodes(self) -> dict[str, int]:
        """The recognizer's decode counts so far, from the last call's end in its log (`ivr -v serve`)."""
        return self._logged(DECODES)

    def ticks_late(self) -> dict[str, int]:
        """How late its pacers ticked so far, ticks per whole ms, from the last call's end in its log."""
        return self._logged(PACING)

    def _logged(self, label: str) -> dict[str, int]:
        said = [line for line in self.log_text().splitlines() if label in line]
        counts = json.loads(said[-1].split(label, 1)[1]) if said else {}
        return {what.replace(",", ""): int(str(n).replace(",", "")) for what, n in counts.items()}  # as "12,345"

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


async def _line(session, url: str, scripts_: list[Script], delay: float, stalls: list) -> list[dict[str, Any]]:
    """One caller's line: its scenarios one call after another."""
    runs = []
    for n, script in enumerate(scripts_):
        runs.append(await run_caller(session, url, script, delay if n == 0 else 0.5, stalls))
    return runs


async def _loop_stalls(stalls: list[tuple[float, float]]) -> None:
    """When and how late this process's own event loop woke (its lateness shows up as the server's gaps)."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + 0.01
        await asyncio.sleep(0.01)
        if loop.time() - asked > UNDERRUN_SECONDS / 2:
            stalls.append((loop.time(), loop.time() - asked))


def lateness(before: dict[str, int], after: dict[str, int]) -> dict[str, Any]:
    """The server's pacer ticks between two readings: how late (p50, p99, max, in s) and how many came
    over 20 ms late (a frame the caller hears over 40 ms after the one before)."""
    ticks = sorted((int(ms), n - before.get(ms, 0)) for ms, n in after.items() if n > before.get(ms, 0))
    total = sum(n for _, n in ticks)

    def percentile(share: float) -> float:
        seen = 0
        for ms, n in ticks:
            seen += n
            if seen >= share * total:
                return ms / 1000
        return 0.0

    return {"ticks": total, "p50": percentile(0.5), "p99": percentile(0.99), "max": ticks[-1][0] / 1000 if ticks else 0.0,
            "over_20_ms": sum(n for ms, n in ticks if ms > LATE_TICK_MS)}


async def _step(server: Server, found: list[Script], callers: int) -> dict[str, Any]:
    """`callers` at once; each line calls again until every scenario has been called at least once."""
    import aiohttp

    rounds = -(-len(found) // callers)
    lines = [[found[(k + r * callers) % len(found)] for r in range(rounds)] for k in range(callers)]
    stalls: list[tuple[float, float]] = []
    watch = asyncio.create_task(_loop_stalls(stalls))
    cpu, began, decodes, late = server.cpu_seconds(), time.monotonic(), server.decodes(), server.ticks_late()
    async with aiohttp.ClientSession() as session:
        runs = [r for line in await asyncio.gather(*(_line(session, server.urls["ws"], line, k * STAGGER_SECONDS, stalls)
                                                     for k, line in enumerate(lines))) for r in line]
    await asyncio.sleep(1.0)  # the server finishes the calls' records
    cpu = server.cpu_seconds() - cpu
    decodes = {k: n - decodes.get(k, 0) for k, n in server.decodes().items()}
    late = lateness(late, server.ticks_late())
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
                      "within_chunks_while_callers_stalled": sum(w["within_chunks_while_callers_stalled"]
                                                                 for w in windows),
                      "bot_audio_seconds": round(sum(w["frames"] for w in windows) * FRAME_SECONDS, 1),
                      "worst_gap": max((w["worst_gap"] for w in windows), default=0.0)},
        "cpu_seconds_per_call": round(cpu / len(runs), 2),
        "callers_own_loop_stalls": {"count": len(stalls), "worst": max((s for _, s in stalls), default=0.0)},
        "server_ticks_late": late,
        "decodes": decodes,
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


def bench_calls(settings: Settings, paths: list[Path], most: int, as_json: bool,
                calibration: Optional[dict] = None) -> int:
    """`calibration`: the machine's figure (ivr/tools/calibration.py), measured before the server
    starts; each step's latency and CPU per call are also given as multiples of it."""
    found = scripts(paths)  # the callers' voices are rendered before the server loads
    server = Server(["--media-stream", "127.0.0.1:0", "--max-calls", str(most)])
    server.command.insert(1, "-v")  # its decode counts are logged at INFO
    server.start()
    try:
        report = {"calibration": calibration, **asyncio.run(_bench(server, found, most))}
    finally:
        server.stop()
    for step in report["steps"]:
        step["relative_to_calibration"] = _relative(step, calibration)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


def _decodes_line(counts: dict[str, int]) -> str:
    said = ", ".join(f"{counts.get(f'speculations {k}', 0)} {k}" for k in ("used", "wasted", "cancelled", "skipped"))
    return f"{counts.get('finals', 0)} finals; {counts.get('speculations started', 0)} speculations started ({said})"


def _pacing_line(step: dict[str, Any]) -> str:
    late, gaps_ = step["server_ticks_late"], step["underruns"]
    return (f"the server's ticks late p50 {late['p50'] * 1000:.0f} ms, p99 {late['p99'] * 1000:.0f} ms, "
            f"max {late['max'] * 1000:.0f} ms, {late['over_20_ms']} over 20 ms of {late['ticks']}; "
            f"{gaps_['within_chunks_while_callers_stalled']} of the gaps inside chunks while the callers' own loop stalled")


def _relative(step: dict[str, Any], calibration: Optional[dict]) -> Optional[dict[str, Optional[float]]]:
    from ivr.tools.calibration import relative

    if not calibration:
        return None
    return {"p50": relative(step["latency"].get("p50"), calibration),
            "p95": relative(step["latency"].get("p95"), calibration),
            "cpu_per_call": relative(step["cpu_seconds_per_call"], calibration)}


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
        print(f"{'':>7}decodes: {_decodes_line(step['decodes'])}")
        print(f"{'':>7}pacing: {_pacing_line(step)}")
        for problem in step["problems"][:3]:
            print(f"        {problem}")
    held = report["most_callers_within_target"]
    print(f"most callers at once with p95 under {report['target_p95']:.0f} s: {held if held else 'none'}")
    if report["calibration"]:
        print("relative to the calibration decode (these compare across machines):")
        for step in report["steps"]:
            ratios = step["relative_to_calibration"]
            shown = ", ".join(f"{label} = {ratios[key]:.2f} × calibration" for key, label in
                              (("p50", "p50"), ("p95", "p95"), ("cpu_per_call", "CPU per call")) if ratios[key] is not None)
            print(f"  {step['callers']:>3} callers: {shown}")
