"""The failover step of `ivr bench cluster`: one worker killed (SIGKILL, as a crash or the OOM killer
does it) mid load: callers on hold in the queue, the ramp's balance callers (as many as the machine
held within the target) talking to the bot, and new short calls arriving one a second through Kamailio.

It reports what a caller and an operator would notice:
- new calls: how long after the kill until every new call was answered at once again (its 200 OK
  within PROMPT_S of the INVITE; Kamailio's dispatcher takes a dead worker out after its probes or
  fails a call over to the next one), how many were not answered at all and the slowest answer;
- the calls the dead worker held: they are cut off (SIPp's BYE gets no answer);
- their queue entries: none left waiting. The dead worker can no longer renew its callers' leases
  (ivr/queue/leases.py); a living worker's sweep makes them lost, or a callback owed when the caller's
  number is known, once the lease runs out. The time from the kill until none of them waits is given.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Any, Optional

from ivr.tools.bench_cluster import GREETING_S, Bench, balance_caller
from ivr.tools.sipp import CallLog, Caller, Pause

HOLD_S = 30.0  # the callers on hold stay this long after the load has all arrived (no agent is on duty)
NEW_CALLS, NEW_RATE = 15, 1.0  # the new calls arriving around the kill: one a second
NEW_CALL_S = 2.0  # each is answered, hears the start of the greeting and hangs up
KILL_AFTER_S = 5.0  # into the new calls; by then every call of the load has been up for 2 s
PROMPT_S = 1.0  # a call answered within this of its INVITE was answered at once
QUEUED_WAIT_S = 90.0


def failover(bench: Bench, load: int) -> dict[str, Any]:
    """Callers on hold, `load` balance callers and new calls; one worker SIGKILLed; what each noticed."""
    from ivr.queue import queue_url
    from ivr.queue.store import QueueStore

    queue = QueueStore(queue_url(bench.settings, bench.cluster.env))
    workers = bench.cluster.workers()
    if len(workers) < 2:
        return {"skipped": f"{len(workers)} worker: nobody to fail over to"}
    on_hold = max(len(workers), min(load, 2 * len(workers)))
    arriving = load / min(load, bench.rate)  # seconds until every call of the load has been placed
    holders, queued = _put_on_hold(bench, queue, on_hold, arriving + HOLD_S)
    talking = bench.sipp(balance_caller(bench.sounds, f"b{bench.run_id}load"), load, min(load, bench.rate)).start()
    time.sleep(max(0.0, arriving + 2 - KILL_AFTER_S))
    new = bench.sipp(Caller("new call", (Pause(NEW_CALL_S),), f"b{bench.run_id}new"), NEW_CALLS, NEW_RATE).start()
    time.sleep(KILL_AFTER_S)  # the whole load is up (each call lasts 25 s), the worker to be killed holds half
    name = _worker_name(workers[0])
    os.kill(workers[0], signal.SIGKILL)
    killed_at = time.time()
    runs = [new.wait(timeout=NEW_CALLS / NEW_RATE + 60), talking.wait(timeout=arriving + 120),
            holders.wait(timeout=GREETING_S + arriving + HOLD_S + 120)]
    every_call = [call for run in runs for call in run.calls.values()]
    return {"worker": name, "pid": workers[0], "workers": len(workers), "talking": load, "on_hold": on_hold,
            "new_calls": _new_calls(runs[0].calls.values(), killed_at),
            "up_at_kill": sum(_up_at(c, killed_at) for c in every_call),
            "cut_off": sum(_up_at(c, killed_at) and c.ended is None for c in every_call),
            "failed": sum(run.failed for run in runs),
            "queue": _queue_outcome(_after_the_sweep(queue, bench, killed_at), killed_at, queued)}


def _put_on_hold(bench: Bench, queue, callers: int, seconds: float):
    """`callers` ask for a person and wait on hold `seconds` (no agent is on duty); their SIPp, and
    whether all of them were in the queue within QUEUED_WAIT_S."""
    hold = Caller("on hold", (Pause(GREETING_S), bench.sounds.agent, Pause(seconds)), f"b{bench.run_id}hold")
    holders = bench.sipp(hold, callers, rate=min(callers, bench.rate)).start()
    return holders, _until(lambda: len(_waiting(queue, bench)) >= callers, QUEUED_WAIT_S)


def _after_the_sweep(queue, bench: Bench, killed_at: float) -> list:
    """The callers on hold once none waits any more, or once a lease has had time to run out and be swept."""
    from ivr.queue.leases import RENEW_S
    from ivr.queue.store import LEASE_S

    _until(lambda: not _waiting(queue, bench), killed_at + LEASE_S + 3 * RENEW_S + 30 - time.time())
    return [e for e in queue.entries(bench.began) if _on_hold_here(e, bench)]


def _until(check, seconds: float) -> bool:
    """Poll `check` every half second until it holds or `seconds` have passed."""
    deadline = time.monotonic() + max(0.0, seconds)
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _on_hold_here(entry, bench: Bench) -> bool:
    """A queue entry of this run's callers on hold (by the caller number SIPp gave)."""
    return (entry.escalation.caller_number or "").startswith(f"b{bench.run_id}hold-")


def _waiting(queue, bench: Bench) -> list:
    from ivr.queue.model import WAITING

    return [e for e in queue.entries(bench.began) if _on_hold_here(e, bench) and e.state == WAITING]


def _worker_name(pid: int) -> str:
    """What the worker is called in the call records (its --worker), else its process id."""
    from ivr.tools.bench_cluster import _cmdline

    words = [w.decode(errors="replace") for w in _cmdline(pid).split(b"\0")]
    return words[words.index("--worker") + 1] if "--worker" in words[:-1] else f"pid {pid}"


def _up_at(call: CallLog, moment: float) -> bool:
    return call.answered is not None and call.answered <= moment and (call.ended is None or call.ended > moment)


def _new_calls(calls, killed_at: float) -> dict[str, Any]:
    """The calls dialled after the kill: when every one was answered at once again, and the others."""
    after = sorted((c for c in calls if c.invited is not None and c.invited >= killed_at), key=lambda c: c.invited)
    prompt = [c.answered is not None and c.answered - c.invited <= PROMPT_S for c in after]
    late = [k for k, ok in enumerate(prompt) if not ok]
    recovered: Optional[float] = 0.0
    if late:
        rest = late[-1] + 1
        recovered = round(after[rest].invited - killed_at, 2) if rest < len(after) else None
    answers = [c.answered - c.invited for c in after if c.answered is not None]
    return {"dialled": len(after), "unanswered": sum(c.answered is None for c in after),
            "answered_late": sum(c.answered is not None and not ok for c, ok in zip(after, prompt)),
            "all_answered_at_once_after": recovered, "slowest_answer": round(max(answers, default=0.0), 2)}


def _queue_outcome(entries, killed_at: float, queued: bool) -> dict[str, Any]:
    """How the callers on hold left the queue: abandoned (hung up on a living worker), lost or a
    callback (their worker died), or still waiting (which must not happen)."""
    states: dict[str, int] = {}
    for entry in entries:
        states[entry.state] = states.get(entry.state, 0) + 1
    swept = [e.lost_at.timestamp() - killed_at for e in entries if e.lost_at is not None]
    return {"queued": len(entries), "all_queued_before_the_kill": queued, "states": states,
            "still_waiting": states.get("waiting", 0),
            "swept_after": round(max(swept), 1) if swept else None}
