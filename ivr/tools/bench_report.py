"""What `ivr bench cluster` prints: the ramp's steps, the failover, and the figures as multiples of the
machine's calibration (printed first, before anything loads), so two machines compare."""
from __future__ import annotations

from typing import Any, Optional


def relative(step: dict[str, Any], calibration: Optional[dict]) -> Optional[dict[str, Optional[float]]]:
    from ivr.tools.calibration import relative as times

    if not calibration:
        return None
    return {"p50": times(step["latency"].get("p50"), calibration), "p95": times(step["latency"].get("p95"), calibration)}


def _ms(figures: dict, key: str) -> str:
    return f"{figures[key] * 1000:.0f}" if figures.get("n") else "-"


def print_report(report: dict[str, Any]) -> None:
    caller = report["caller"]
    print(f"cluster: ivr {report['cluster']} ({report['cores']} cores), callers from SIPp through Kamailio")
    print(f"caller: says \"{caller['said']}\" ({caller['voice']}, G.711 RTP from a pcap), keys {caller['keyed']} "
          f"(RFC 4733)")
    print("latency: end of the caller's speech -> the worker's first reply audio, as each worker records it per turn "
          "(includes the endpoint silence)")
    print(f"{'calls':>5}{'calls/s':>8}{'at once':>8}{'answered':>9}{'done':>5}{'failed':>7}{'p50 ms':>8}{'p95 ms':>8}"
          f"{'max ms':>8}{'keyed p95':>10}  by worker")
    warm = report["warm_up"]
    print(f"warm-up, not counted: {warm['calls']} calls, one a worker (a worker's first call is its slowest), "
          f"first audio max {_ms(warm['latency'], 'max')} ms")
    for step in report["steps"]:
        latency = step["latency"]
        workers = ", ".join(f"{name} {count}" for name, count in sorted(step["by_worker"].items()))
        print(f"{step['calls']:>5}{step['calls_per_second']:>8.1f}{step['at_once']:>8}{step['answered']:>9}"
              f"{step['completed']:>5}{step['failed']:>7}{_ms(latency, 'p50'):>8}{_ms(latency, 'p95'):>8}"
              f"{_ms(latency, 'max'):>8}{_ms(step['keypad_latency'], 'p95'):>10}  {workers}")
        for problem in step["problems"]:
            print(f"      SIPp: {problem}")
    held = report["most_calls_within_target"]
    print(f"most calls at once with every call completed and p95 under {report['target_p95']:.0f} s: {held or 'none'}")
    print(failover_line(report["failover"]))
    if report["calibration"]:
        print("relative to the calibration decode (these compare across machines):")
        for step in report["steps"]:
            ratios = step["relative_to_calibration"]
            shown = ", ".join(f"{key} = {ratios[key]:.2f} × calibration" for key in ("p50", "p95") if ratios[key] is not None)
            print(f"  {step['calls']:>3} calls: {shown or 'no spoken turn timed'}")


def failover_line(found: dict[str, Any]) -> str:
    """The failover step in three lines: the kill, the new calls, the dead worker's calls and queue entries."""
    if "skipped" in found:
        return f"failover: not measured ({found['skipped']})"
    new, queue = found["new_calls"], found["queue"]
    again = new["all_answered_at_once_after"]
    recovered = (f"every one answered at once again {again:.1f} s after the kill" if again is not None
                 else "not all answered at once again by the end of the step")
    states = ", ".join(f"{count} {state}" for state, count in sorted(queue["states"].items())) or "none"
    swept = (f"; the dead worker's left the queue {queue['swept_after']:.0f} s after the kill"
             if queue["swept_after"] is not None else "")
    return (f"failover: worker {found['worker']} of {found['workers']} killed (SIGKILL) mid load: {found['talking']} "
            f"callers talking, {found['on_hold']} on hold, a new call a second; {found['up_at_kill']} calls up\n"
            f"  new calls: {recovered}; {new['unanswered']} of {new['dialled']} unanswered, {new['answered_late']} "
            f"answered late, slowest answer {new['slowest_answer']:.1f} s\n"
            f"  the dead worker's calls: {found['cut_off']} cut off. Callers on hold: {queue['queued']} → {states}{swept}; "
            f"{queue['still_waiting']} still waiting")
