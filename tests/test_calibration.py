"""The machine calibration `ivr bench …` prints first: it runs through the real Whisper tiny.en on the
clip that ships with the project. A figure of this machine, so never compared with a number here."""
import json

from conftest import ivr_command
from ivr.tools.calibration import CLIP, line, measure, relative


def test_the_calibration_decodes_the_shipped_clip_and_names_the_machine():
    calibration = measure()
    assert calibration["decode_ms"] > 0 and calibration["runs"] == 5
    assert 2.5 < calibration["clip_seconds"] < 3.5 and CLIP.stat().st_size < 200_000
    assert "balance" in calibration["heard"].lower()  # the real model heard the real clip
    assert calibration["cpu"] and calibration["cores"] >= 1 and calibration["python"].startswith("3.")
    assert line(calibration).startswith("calibration: whisper tiny.en decodes the 3.1 s clip in ")
    assert 0 < calibration["fastest_ms"] <= calibration["decode_ms"] <= calibration["slowest_ms"]
    assert relative(calibration["decode_ms"] / 1000, calibration) == 1.0 and relative(0.5, None) is None


def test_the_latency_benchmark_carries_the_calibration_and_its_figures_relative_to_it(tmp_path, trained_model):
    env = {"IVR_VAR": str(tmp_path)}
    assert ivr_command("db", "seed", env=env).returncode == 0
    done = ivr_command("bench", "latency", "--json", "tests/scenarios/goodbye_espeak.yml", env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)

    calibration = report["calibration"]
    assert calibration["decode_ms"] > 0 and calibration["clip_seconds"] > 0
    assert calibration["cpu"] and calibration["cores"] >= 1
    ratios = report["relative_to_calibration"]
    assert ratios["first_audio_p95"] == round(report["stages"]["first_audio"]["p95"] * 1000 / calibration["decode_ms"], 2)
