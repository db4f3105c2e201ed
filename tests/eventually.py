"""What a test waits for from a running install, with a deadline instead of a guessed sleep: a call's record
once it is stored, the newest record once it is a given caller's, the callers' records, a caller on hold.
The records are read as an operator reads them (`ivr calls ... --json`); the queue through its store."""
from __future__ import annotations

import json
import time
from typing import Callable

from ivr.queue import WAITING
from tests.conftest import ivr_command

RECORD_DEADLINE_S = 30.0  # a call's record is stored as the call ends: this long after, it is not coming


def call_record(env: dict, call_id: str) -> dict:
    """`ivr calls show CALL_ID --json`, once the call's record is there."""
    deadline = time.monotonic() + RECORD_DEADLINE_S
    while True:
        shown = ivr_command("calls", "show", call_id, "--json", env=env)
        if shown.returncode == 0:
            return json.loads(shown.stdout)
        assert time.monotonic() < deadline, f"no record of {call_id}: {shown.stderr[-500:]}"
        time.sleep(0.5)


def last_call(env: dict, caller: str) -> dict:
    """The newest call record (`ivr calls last --json`), once it is this caller's."""
    deadline = time.monotonic() + RECORD_DEADLINE_S
    while True:
        shown = ivr_command("calls", "last", "--json", env=env)
        record = json.loads(shown.stdout) if shown.returncode == 0 and shown.stdout.strip() else {}
        if record.get("caller_number") == caller:
            return record
        assert time.monotonic() < deadline, f"no call record from {caller}: {shown.stdout[-500:]} {shown.stderr[-500:]}"
        time.sleep(1)


def records_of(env: dict, *callers: str) -> dict:
    """The call records of these callers, by caller (`ivr calls list --json`), once every one is there."""
    deadline = time.monotonic() + RECORD_DEADLINE_S
    while True:
        listed = ivr_command("calls", "list", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        found = {record["caller_number"]: record for record in json.loads(listed.stdout)}
        if set(callers) <= set(found):
            return {caller: found[caller] for caller in callers}
        assert time.monotonic() < deadline, f"no records of {set(callers) - set(found)}: {sorted(found)}"
        time.sleep(0.5)


def waiting_caller(queue, said: Callable[[], str] = lambda: "", deadline_s: float = 90.0):
    """The first caller waiting on hold in `queue`, once there is one; `said`: what to show if none comes."""
    deadline = time.monotonic() + deadline_s
    while True:
        waiting = [entry for entry in queue.routable() if entry.state == WAITING]
        if waiting:
            return waiting[0]
        assert time.monotonic() < deadline, f"the caller never joined the queue: {said()[-3000:]}"
        time.sleep(0.3)


def once(read: Callable[[], object], done: Callable[[object], bool], deadline_s: float, what: str):
    """What `read()` gives once `done` holds for it, read every 0.3 s until the deadline; else the test fails
    saying `what` never happened, with the last reading."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {deadline_s:g} s: {value!r}"
        time.sleep(0.3)
