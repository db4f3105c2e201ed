"""Scenario files -> caller audio -> calls through the real pipeline -> results."""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from ivr.accounts import seed_demo
from ivr.audio.pcm import PHONE_RATE, WIDEBAND_RATE, BadAudio, phone_channel, read_wav
from ivr.call_result import CallResult
from ivr.config import Settings
from ivr.errors import UserError
from ivr.events import AudioChunk, Dtmf
from ivr.tools.caller_voices import parse_voice
from ivr.transports.files import BargeIn, CallerFiles, CallerItem, StayOnLine

CHANNELS = {"wideband": WIDEBAND_RATE, "phone": PHONE_RATE}
TURN_KEYS = {"say", "audio", "dtmf", "hold", "expect", "barge_in_at"}
TURN_EXPECT_KEYS = {"intent", "bot_says", "stops_within_ms"}
# reason: why the call was escalated; queue: how the caller left the agents' queue (taken, callback,
# abandoned, waiting); summary: a regex on the one sentence the agent reads; junk: why the bot ended a call that
# was no caller's need; csat: the satisfaction survey's score, or that it was skipped or never asked
CALL_EXPECT_KEYS = {"outcome", "task", "reason", "queue", "summary", "junk", "csat"}
CALL_EXPECT_VALUES = {"junk": ("dead_air", "prank", "None"), "csat": ("1", "2", "3", "4", "5", "skipped", "not_asked")}
CALLER_KEYS = {"voice", "rate", "channel", "number"}


class ScenarioError(UserError, ValueError):
    """A scenario file we cannot run; the message names the file and the problem (the `ivr` command
    prints it as one line, like any UserError)."""


@dataclass
class CallerTurn:
    say: Optional[str] = None
    audio: Optional[Path] = None
    dtmf: Optional[str] = None
    hold: Optional[float] = None  # stay on the line, silent, this many seconds (waiting for a person)
    expect: dict[str, str] = field(default_factory=dict)
    barge_in_at: Optional[float] = None  # talk over the bot's prompt this many seconds into it


@dataclass
class Scenario:
    name: str
    path: Path
    voice: str
    rate: Optional[int]
    channel: str
    turns: list[CallerTurn]
    expect: dict[str, str]
    number: Optional[str] = None  # the caller's phone number, as a phone line would give it

    @property
    def answers(self) -> list[tuple[int, CallerTurn]]:
        """The turns that answer the bot (numbered as in the file): all but staying on hold."""
        return [(n, t) for n, t in enumerate(self.turns, 1) if t.hold is None]


def find_scenarios(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.y*ml") if p.suffix in (".yml", ".yaml")))
        elif path.exists():
            found.append(path)
        else:
            raise ScenarioError(f"{path}: no such file or folder")
    return found


def load_scenario(path: Path) -> Scenario:
    try:
        text = path.read_text()
        data, lines = yaml.safe_load(text), _key_lines(yaml.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ScenarioError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list) or not data["turns"]:
        raise ScenarioError(f"{path}: a scenario needs `name` and a non-empty list of `turns`")
    caller = data.get("caller") or {}
    _only(path, "caller", caller, CALLER_KEYS, lines, ("caller",))
    channel = caller.get("channel", "wideband")
    if channel not in CHANNELS:
        raise ScenarioError(f"{path}: caller channel {channel!r} is not one of {sorted(CHANNELS)}")
    _only(path, "expect", data.get("expect") or {}, CALL_EXPECT_KEYS, lines, ("expect",))
    _call_values(path, data.get("expect") or {}, lines)
    try:
        parse_voice(str(caller.get("voice", "espeak:en-us")))  # an unknown voice fails before any call
    except ValueError as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    return Scenario(
        name=str(data.get("name") or path.stem), path=path,
        voice=str(caller.get("voice", "espeak:en-us")), rate=caller.get("rate"), channel=channel,
        turns=[_turn(path, i, t, lines) for i, t in enumerate(data["turns"], 1)], expect=data.get("expect") or {},
        number=str(caller["number"]) if caller.get("number") else None)


def _turn(path: Path, number: int, raw: Any, lines: dict) -> CallerTurn:
    where = f"turn {number}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: {where} must be a mapping with say, audio or dtmf")
    _only(path, where, raw, TURN_KEYS, lines, ("turns", number - 1))
    given = [k for k in ("say", "audio", "dtmf", "hold") if k in raw]
    if len(given) != 1:
        raise ScenarioError(f"{path}: {where} needs exactly one of say, audio, dtmf, hold (has {given or 'none'})")
    hold = raw.get("hold")
    if hold is not None and (isinstance(hold, bool) or not isinstance(hold, (int, float)) or not 0 < hold <= 600):
        raise ScenarioError(f"{path}: {where} hold must be a number of seconds (up to 600) to stay on the line")
    if hold is not None and (raw.get("expect") or raw.get("barge_in_at") is not None):
        raise ScenarioError(f"{path}: {where} hold takes no expect or barge_in_at: the caller only waits")
    _only(path, f"{where} expect", raw.get("expect") or {}, TURN_EXPECT_KEYS, lines, ("turns", number - 1, "expect"))
    audio = (path.parent / raw["audio"]) if "audio" in raw else None
    if "dtmf" in raw and not re.fullmatch(r"[0-9*#A-D]+", str(raw["dtmf"])):
        raise ScenarioError(f"{path}: {where} dtmf {raw['dtmf']!r} may hold only 0-9, *, # and A-D")
    barge_in_at = raw.get("barge_in_at")
    if barge_in_at is not None and (isinstance(barge_in_at, bool) or not isinstance(barge_in_at, (int, float))
                                    or barge_in_at < 0):
        raise ScenarioError(f"{path}: {where} barge_in_at must be a number of seconds into the bot's prompt")
    if "stops_within_ms" in (raw.get("expect") or {}) and barge_in_at is None:
        raise ScenarioError(f"{path}: {where} expect.stops_within_ms needs barge_in_at")
    return CallerTurn(say=raw.get("say"), audio=audio, dtmf=str(raw["dtmf"]) if "dtmf" in raw else None,
                      hold=float(hold) if hold is not None else None,
                      expect={k: str(v) for k, v in (raw.get("expect") or {}).items()},
                      barge_in_at=float(barge_in_at) if barge_in_at is not None else None)


def _only(path: Path, where: str, mapping: Any, allowed: set[str], lines: Optional[dict] = None,
          at: tuple = ()) -> None:
    """Only `allowed` keys; an unknown one is named with its line (`lines`: where each key sits, `at`: this
    mapping's keys from the top), so the developer goes straight to the typo."""
    if not isinstance(mapping, dict):
        raise ScenarioError(f"{path}: {where} must be a mapping")
    unknown = sorted(set(map(str, mapping)) - allowed)
    if unknown:
        line = (lines or {}).get((*at, unknown[0]))
        raise ScenarioError(f"{path}{f':{line}' if line else ''}: {where}: unknown key(s) {unknown}; "
                            f"allowed: {sorted(allowed)}")


def _call_values(path: Path, expect: dict, lines: dict) -> None:
    """junk and csat name one of a few things: a misspelt one would only ever fail, so it is refused up front."""
    for key, allowed in CALL_EXPECT_VALUES.items():
        if key in expect and str(expect[key]) not in allowed:
            raise ScenarioError(f"{path}:{lines.get(('expect', key), 0)}: expect: {key} {expect[key]!r} is not one "
                                f"of {', '.join(allowed)}")


def _key_lines(node: Any, at: tuple = ()) -> dict[tuple, int]:
    """Where each key (and list item) of a YAML document sits: ("turns", 0, "expect") -> its line number."""
    lines: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        children = [(key.value, key, value) for key, value in node.value]
    elif isinstance(node, yaml.SequenceNode):
        children = [(index, item, item) for index, item in enumerate(node.value)]
    else:
        return lines
    for name, where, value in children:
        lines[(*at, name)] = where.start_mark.line + 1
        lines.update(_key_lines(value, (*at, name)))
    return lines


def caller_items(scenario: Scenario) -> list[CallerItem]:
    voice = parse_voice(scenario.voice)
    items: list[CallerItem] = []
    for turn in scenario.turns:
        if turn.dtmf is not None:
            items.append(CallerItem(Dtmf(turn.dtmf), turn.barge_in_at))
            continue
        if turn.hold is not None:
            items.append(CallerItem(StayOnLine(turn.hold)))
            continue
        audio = voice.speak(turn.say, scenario.rate) if turn.say is not None else _read(scenario, turn.audio)
        items.append(CallerItem(phone_channel(audio) if scenario.channel == "phone" else audio, turn.barge_in_at))
    return items


def _read(scenario: Scenario, path: Path) -> AudioChunk:
    try:
        return read_wav(path)
    except BadAudio as exc:
        raise ScenarioError(f"{scenario.path}: {exc}") from exc


def said(turn: CallerTurn) -> str:
    if turn.dtmf is not None:
        return f"dtmf:{turn.dtmf}"
    return turn.say if turn.say is not None else str(turn.audio)


async def run_scenario(bot, scenario: Scenario) -> dict[str, Any]:
    timing = bot.timing
    transport = CallerFiles(caller_items(scenario), CHANNELS[scenario.channel],
                            wait_limit=timing.no_input_ms / 1000 + 1.5)
    scripted = [said(t) for t in scenario.turns if t.dtmf is None and t.hold is None]
    channel = "files-phone" if scenario.channel == "phone" else "files"  # a caller file on an 8 kHz line
    result = await bot.call(transport, channel, scripted=scripted, caller_number=scenario.number).run()
    return judge(scenario, result, {b.item: b for b in transport.barge_ins})


def judge(scenario: Scenario, result: CallResult, barge_ins: dict[int, BargeIn]) -> dict[str, Any]:
    failures = [_barge_in_failure(n, t, barge_ins.get(n - 1)) for n, t in enumerate(scenario.turns, 1)]
    failures = [f for f in failures if f]
    for index, (number, turn) in enumerate(scenario.answers):
        got = result.turns[index] if index < len(result.turns) else None
        if got is None:
            if turn.expect:
                failures.append(f"turn {number}: the call ended before this turn ({result.outcome})")
            continue
        want_intent = turn.expect.get("intent")
        if want_intent and got.intent != want_intent:
            failures.append(f"turn {number}: intent {got.intent!r}, expected {want_intent!r} (heard {got.heard!r})")
        pattern = turn.expect.get("bot_says")
        if pattern and not re.search(pattern, " ".join(got.bot), re.IGNORECASE):
            failures.append(f"turn {number}: bot said {' '.join(got.bot)!r}, expected /{pattern}/ (heard {got.heard!r})")
    got_call = {"outcome": result.outcome, "task": result.task,
                "reason": result.escalation.reason if result.escalation else None, "queue": result.queue_outcome,
                "junk": result.junk, "csat": survey_text(result.csat)}
    for key, got in got_call.items():
        if key not in scenario.expect:
            continue
        want = scenario.expect[key]  # YAML's null (junk: ~) means None: expected as written, not skipped
        if str(got) != str(want):
            failures.append(f"call: {key} {got!r}, expected {str(want)!r}")
    summary = result.escalation.summary if result.escalation else ""
    if scenario.expect.get("summary") and not re.search(scenario.expect["summary"], summary, re.IGNORECASE):
        failures.append(f"call: summary {summary!r}, expected /{scenario.expect['summary']}/")
    return {
        "name": scenario.name, "file": str(scenario.path), "call_id": result.call_id, "passed": not failures,
        "outcome": result.outcome, "task": result.task, "reason": got_call["reason"], "failures": failures,
        "queue": result.queue_outcome, "queue_entry": result.queue_entry, "summary": summary or None,
        "frustration": result.escalation.frustration if result.escalation else None,
        "junk": result.junk, "csat": result.csat,
        "barge_ins": [{"turn": b.item + 1, "stopped_after_ms": None if b.stopped_after is None
                       else round(b.stopped_after * 1000)} for b in barge_ins.values()],
        "turns": [{"said": t.said, "heard": t.heard, "intent": t.intent, "confidence": t.confidence,
                   "frustration": t.frustration, "bot": " ".join(t.bot), "latency": {k: round(v, 4) for k, v in t.latency.items()}}
                  for t in result.turns],
    }


def survey_text(csat: Optional[dict[str, Any]]) -> str:
    """The survey as a scenario expects it: the score the caller gave, "skipped" when asked but not answered,
    "not_asked"."""
    if not csat or not csat.get("asked"):
        return "not_asked"
    return "skipped" if csat.get("score") is None else str(csat["score"])


def _barge_in_failure(number: int, turn: CallerTurn, barge_in: Optional[BargeIn]) -> Optional[str]:
    limit = turn.expect.get("stops_within_ms")
    if limit is None:
        return None
    if barge_in is None or barge_in.stopped_after is None:
        return f"turn {number}: the caller talked over the prompt and it was not stopped"
    if barge_in.stopped_after * 1000 > float(limit):
        return f"turn {number}: the prompt went on {barge_in.stopped_after * 1000:.0f} ms after the caller began (limit {limit} ms)"
    return None


async def run_scenarios(bot, paths: list[Path], settings: Settings) -> dict[str, Any]:
    """Every scenario in turn, the demo accounts reset before each one (in `settings`' database): scenarios
    are written against them ("$120.75 due"), and a payment in one must not change what the next one hears."""
    scenarios = [load_scenario(p) for p in find_scenarios(paths)]
    results = []
    for scenario in scenarios:
        await asyncio.get_running_loop().run_in_executor(None, seed_demo, settings)
        results.append(await run_scenario(bot, scenario))
    passed = sum(r["passed"] for r in results)
    return {"scenarios": results, "passed": passed, "failed": len(results) - passed}
