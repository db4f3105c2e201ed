"""Callers from SIPp, the standard SIP load generator: a scenario file of ours, run as a subprocess,
its statistics (CSV) and each call's own log read back.

A caller (`Caller`) dials, waits for the bot's greeting, plays pcaps of RTP (ivr/tools/rtp_pcap.py:
a spoken request, keys as RFC 4733 events) with pauses for the bot's replies, and hangs up. SIPp
cannot hear, so the pauses are fixed; what the bot made of the call is read from the workers' call
records, matched by the caller number each call gives (`<prefix>-<SIPp's call number>`).

Each call logs when it sent its INVITE, when it was answered (200 OK) and when its BYE was answered,
with gettimeofday, so calls can be told apart in time (the failover step of `ivr bench cluster`).
SIPp plays pcaps through a raw socket: it needs root or CAP_NET_RAW.
"""
from __future__ import annotations

import csv
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union
from xml.sax.saxutils import escape

from ivr.errors import UserError

ANSWER_TIMEOUT_MS = 8000  # an INVITE unanswered this long is a failed call
BYE_TIMEOUT_MS = 5000  # a call whose BYE is not answered this long was lost (its worker is gone)


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Play:
    pcap: Path
    seconds: float  # how long it plays: SIPp plays it in the background, the scenario waits this long


Step = Union[Pause, Play]


@dataclass(frozen=True)
class Caller:
    """What each SIPp call does after the answer, in order; `number_prefix` makes its caller numbers."""
    name: str
    steps: tuple[Step, ...]
    number_prefix: str = "sipp"


_INVITE = """
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{number}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20
"""
_IN_DIALOG = """
      {method} [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Contact: <sip:{number}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
"""


def _stamp(what: str) -> str:
    """An action logging the call number, `what` happened and the wall-clock time (seconds, microseconds)."""
    return (f'<action><gettimeofday assign_to="sec,usec"/>'
            f'<log message="[call_number] {what} [$sec] [$usec]"/></action>')


def scenario_xml(caller: Caller) -> str:
    """The SIPp scenario: INVITE offering PCMU and telephone-event, the answer (recorded route kept for
    a proxy in the path), ACK, the caller's steps, BYE."""
    number = f"{caller.number_prefix}-[call_number]"
    body = [f"<nop>{_stamp('invite')}</nop>",
            f'<send retrans="500"><![CDATA[{_INVITE.format(number=number)}]]></send>',
            *(f'<recv response="{code}" optional="true"/>' for code in (100, 180, 183)),
            f'<recv response="200" rrs="true" timeout="{ANSWER_TIMEOUT_MS}">{_stamp("answered")}</recv>',
            f"<send><![CDATA[{_IN_DIALOG.format(method='ACK', cseq=1, number=number)}]]></send>"]
    for step in caller.steps:
        if isinstance(step, Play):
            body.append(f'<nop><action><exec play_pcap_audio="{escape(str(step.pcap))}"/></action></nop>')
        body.append(f'<pause milliseconds="{round(step.seconds * 1000)}"/>')
    body += [f"<send retrans=\"500\"><![CDATA[{_IN_DIALOG.format(method='BYE', cseq=2, number=number)}]]></send>",
             f'<recv response="200" timeout="{BYE_TIMEOUT_MS}">{_stamp("ended")}</recv>']
    return ('<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
            f'<scenario name="{escape(caller.name)}">\n  ' + "\n  ".join(body) + "\n</scenario>\n")


@dataclass
class CallLog:
    """One SIPp call: when it dialled, was answered and was hung up (epoch seconds; None: it was not)."""
    number: str
    invited: Optional[float] = None
    answered: Optional[float] = None
    ended: Optional[float] = None


@dataclass
class SippRun:
    """What a SIPp run left: its last statistics row and each call's log, by caller number."""
    statistics: dict[str, str]
    calls: dict[str, CallLog] = field(default_factory=dict)
    errors: str = ""

    def counter(self, name: str) -> int:
        value = self.statistics.get(name, "0")
        return int(value) if value.isdigit() else 0

    @property
    def failed(self) -> int:
        return self.counter("FailedCall(C)")

    @property
    def successful(self) -> int:
        return self.counter("SuccessfulCall(C)")

    def problems(self) -> list[str]:
        """What went wrong, as SIPp's error log says it, each kind once with how often (call ids left out)."""
        counts: dict[str, int] = {}
        for line in self.errors.splitlines():
            if said := _ERROR.match(line):
                kind = _CALL_ID.sub("", said[1]).strip(" ,:")
                counts[kind] = counts.get(kind, 0) + 1
        return [f"{kind} ({count})" for kind, count in sorted(counts.items(), key=lambda item: -item[1])]


class Sipp:
    """One SIPp process placing `calls` calls to `target` (host:port) at `rate` a second, at most `limit`
    at once, its files in `folder`. `start()` and `wait()`, so a step can act while calls are up."""

    def __init__(self, caller: Caller, target: str, folder: Path, calls: int, rate: float, limit: int,
                 sip_port: int, media_port: int):
        binary = shutil.which("sipp")
        if binary is None:
            raise UserError("SIPp is not installed (Debian package sip-tester): run `make setup`")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.caller = folder, caller
        scenario = folder / "scenario.xml"
        scenario.write_text(scenario_xml(caller))
        self.command = [binary, target, "-sf", str(scenario), "-s", "ivr", "-i", "127.0.0.1", "-mi", "127.0.0.1",
                        "-p", str(sip_port), "-mp", str(media_port), "-m", str(calls), "-l", str(limit),
                        "-r", f"{rate:g}", "-rp", "1000", "-nostdin", "-max_non_invite_retrans", "3",
                        # A provisional answer may come after the 200 OK (a proxy's parallel UDP workers
                        # reorder them): a phone carries on, and so does SIPp without "abortunexp" (with
                        # optional="global" instead, SIPp leaves such a call stuck before its first pause).
                        # A call cut off still fails: its BYE gets no 200.
                        "-default_behaviors", "all,-abortunexp",
                        "-trace_stat", "-stf", str(folder / "statistics.csv"), "-fd", "1",
                        "-trace_logs", "-log_file", str(folder / "calls.log"),
                        "-trace_err", "-error_file", str(folder / "errors.log")]
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> "Sipp":
        self._screen = open(self.folder / "screen.txt", "wb")  # SIPp's own screen, kept for a failed run
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=self._screen,
                                        stderr=subprocess.STDOUT, cwd=self.folder)
        return self

    def wait(self, timeout: float) -> SippRun:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(10)
        finally:
            self._screen.close()
        statistics = _last_row(self.folder / "statistics.csv")
        if not statistics:
            screen = (self.folder / "screen.txt").read_text(errors="replace")
            raise UserError(f"SIPp did not run ({' '.join(self.command)}): {screen[-800:].strip()}")
        return SippRun(statistics, _call_logs(self.folder / "calls.log", self.caller.number_prefix),
                       _text(self.folder / "errors.log"))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def _last_row(path: Path) -> dict[str, str]:
    """The last statistics row SIPp dumped (it writes one at exit), by counter name."""
    if not path.exists():
        return {}
    rows = list(csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


_ERROR = re.compile(r"^\S+\t\S+\t[\d.]+: (.+)$")  # date, time, epoch: message
_CALL_ID = re.compile(r"(for call:|Call-I[dD]:)\s*\S+")
_LOGGED = re.compile(r"^(\d+) (invite|answered|ended) ([\d.]+) ([\d.]+)\s*$")


def _call_logs(path: Path, prefix: str) -> dict[str, CallLog]:
    calls: dict[str, CallLog] = {}
    for line in _text(path).splitlines():
        if match := _LOGGED.match(line):
            number = f"{prefix}-{match[1]}"
            log = calls.setdefault(number, CallLog(number))
            setattr(log, {"invite": "invited"}.get(match[2], match[2]), float(match[3]) + float(match[4]) / 1e6)
    return calls


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
