"""The machine calibration `ivr bench …` prints first: it runs through the real Whisper tiny.en on the
clip that ships with the project. A figure of this machine, so never compared with a number here."""
from ivr.tools.calibration import CLIP, line, measure, relative


def test_the_calibration_decodes_the_shipped_clip_and_names_the_machine():
    calibration = measure()
    assert calibration["decode_ms"] > 0 and calibration["runs"] == 5
    assert 2.5 < calibration["clip_seconds"] < 3.5 and CLIP.stat().st_size < 200_000
    assert "balance" in calibration["heard"].lower()  # the real model heard the real clip
    assert calibration["cpu"] and calibration["cores"] >= 1 and calibration["python"].startswith("3.")
    assert line(calibration).startswith("calibration: whisper tiny.en decodes the 3.1 s clip in ")
    assert relative(calibration["decode_ms"] / 1000, calibration) == 1.0 and relative(0.5, None) is None
