"""A copy of the shipped dialogs whose voice.yml asks every caller the survey, for the survey tests (the shipped
dialogs ask no one: share 0)."""
from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def surveying_dialogs(folder: Path) -> Path:
    """dialogs/ copied into `folder` with survey.share 1 (after_agent as shipped, true); returns the copy."""
    dialogs = folder / "dialogs"
    shutil.copytree(ROOT / "dialogs", dialogs)
    voice = dialogs / "voice.yml"
    asking = voice.read_text().replace("survey:\n  share: 0.0", "survey:\n  share: 1.0")
    assert asking != voice.read_text() and "after_agent: true" in asking
    voice.write_text(asking)
    return dialogs
