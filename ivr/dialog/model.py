"""The dialog model file (models/dialog.tar.gz): where it is, whether it is whole, and loading it.

A model that cannot be loaded is said in one line naming the file and what to do, never found out
later as an AttributeError in the middle of a call (Rasa's own loader logs the error and hands back
an agent without a model).
"""
from __future__ import annotations

import tarfile
import zlib
from pathlib import Path
from typing import Optional

from ivr.dialog.settings import DialogError

MODEL_NAME = "dialog"


def model_path(models_dir: Path) -> Path:
    return models_dir / f"{MODEL_NAME}.tar.gz"


def damage(model: Path) -> Optional[str]:
    """Why the archive cannot be read whole (truncated, bytes changed), or None. Reads every byte, so
    gzip checks its CRC: quick enough for `ivr train` to check before it says "unchanged"."""
    try:
        with tarfile.open(model, "r:gz") as archive:
            members = 0
            for member in archive:
                members += 1
                if member.isfile():
                    archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        return str(error) or type(error).__name__
    return None if members else "the archive is empty"


def refused(model: Path, why: str) -> DialogError:
    first_line = (why.strip().splitlines() or [""])[0][:160]
    return DialogError(f"{model}:0: the dialog model cannot be loaded ({first_line}): it is corrupt or "
                       f"truncated; run `ivr train --force` to train it again")


def load_agent(model: Path, action_endpoint=None, tracker_store=None):
    """A Rasa Agent with this model loaded, or DialogError naming the file and the fix."""
    from rasa.core.agent import Agent

    why = damage(model)
    if why:
        raise refused(model, why)
    agent = Agent(action_endpoint=action_endpoint, tracker_store=tracker_store)
    try:
        agent.load_model(str(model))
    except Exception as error:  # noqa: BLE001 - whatever Rasa trips on, the file is what the user can fix
        raise refused(model, f"{type(error).__name__}: {error}") from error
    return agent
