"""`ivr bench calls`: many callers over media streams against a real `ivr serve`; a benchmark, so
only the shape of its report is checked here, never its timings."""
import json
import numbers

from conftest import ivr_command


def test_the_calls_benchmark_reports_latency_underruns_pacing_and_cpu_per_step_as_json(tmp_path):
    env = {"IVR_VAR": str(tmp_path)}
    assert ivr_command("db", "seed", env=env).returncode == 0
    done = ivr_command("bench", "calls", "--max", "2", "--json", "--no-calibration", "tests/scenarios/goodbye_espeak.yml",
                       env=env, timeout=600)  # the calibration has its own test (tests/test_calibration.py)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)

    assert report["scenarios"] == ["caller says goodbye (espeak female voice, wideband)"]
    assert [step["callers"] for step in report["steps"]] == [1, 2]
    assert report["calibration"] is None  # skipped, and said so rather than left out
    for step in report["steps"]:
        assert step["calls"] == step["callers"]  # one scenario: one call a line
        assert step["completed"] + len(step["problems"]) == step["calls"]
        assert step["latency"]["n"] >= 1
        assert step["relative_to_calibration"] is None
        figures = [step["latency"][k] for k in ("p50", "p95", "max")] + [step["cpu_seconds_per_call"],
                   step["wall_seconds"]] + list(step["underruns"].values()) + list(step["callers_own_loop_stalls"].values())
        assert all(isinstance(f, numbers.Real) and f >= 0 for f in figures), step
        late = step["server_ticks_late"]  # whether a gap was the server's own loop being late
        assert late["ticks"] >= 1 and all(isinstance(late[k], numbers.Real) and late[k] >= 0
                                          for k in ("p50", "p99", "max", "over_20_ms")), late
        assert late["p50"] <= late["p99"] <= late["max"] and late["over_20_ms"] <= late["ticks"], late
        assert step["underruns"]["within_chunks_while_callers_stalled"] <= step["underruns"]["within_chunks"]
        decodes = step["decodes"]  # each spoken turn ends in a final decode or a speculation kept
        assert decodes.get("finals", 0) + decodes.get("speculations used", 0) >= step["latency"]["n"], decodes
        assert decodes.get("speculations started", 0) >= sum(decodes.get(f"speculations {k}", 0)
                                                              for k in ("used", "wasted", "cancelled")), decodes
    most = report["most_callers_within_target"]
    assert most is None or most in (1, 2)
