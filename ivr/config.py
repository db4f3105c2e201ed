"""Settings from flags, environment and the dialogs/ folder, in one place."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    dialogs_dir: Path = ROOT / "dialogs"
    models_dir: Path = ROOT / "models"
    var_dir: Path = ROOT / "var"
    vosk_model: Optional[Path] = None  # --vosk-model, else IVR_VOSK_MODEL, else models/vosk/
    whisper_model: Optional[Path] = None  # --whisper-model: any CTranslate2 Whisper folder

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **flags) -> "Settings":
        values = {
            "dialogs_dir": env.get("IVR_DIALOGS"),
            "models_dir": env.get("IVR_MODELS"),
            "var_dir": env.get("IVR_VAR"),
            "vosk_model": env.get("IVR_VOSK_MODEL"),
            "whisper_model": env.get("IVR_WHISPER_MODEL"),
        }
        values.update({k: v for k, v in flags.items() if v is not None})
        return cls(**{k: Path(v) for k, v in values.items() if v})


def add_engine_flags(command) -> None:
    """--vosk-model and --whisper-model on an argparse command that loads a recognizer; main() reads
    them into Settings. Here, beside Settings, so every area's commands offer the same two flags."""
    command.add_argument("--vosk-model", type=Path, help="a Vosk model folder (else IVR_VOSK_MODEL, else models/vosk)")
    command.add_argument("--whisper-model", type=Path, help="a CTranslate2 Whisper folder (default: bundled tiny.en)")
