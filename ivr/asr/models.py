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

from ivr.asr.base import RecognitionError, Recognizer
from ivr.asr.vosk_engine import PULL_HINT, VoskRecognizer, looks_like_model

ENGLISH_MODEL = "vosk-model-small-en-us-0.15"
ENGLISH_URL = f"https://alphacephei.com/vosk/models/{ENGLISH_MODEL}.zip"
ENGLISH_SIZE = 41_205_931
# SHA-256 of the published zip, as pinned independently by Yocto's and Arch's vosk recipes and Homebrew;
# `ivr models pull` refuses anything else.
ENGLISH_SHA256 = "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498"


def find_vosk_model(flag: Optional[Path], models_dir: Path, env: Mapping[str, str] = os.environ) -> Optional[Path]:
    """`--vosk-model`, else IVR_VOSK_MODEL, else models/vosk/ (the model itself or one folder inside it).
    A folder named explicitly must be a model: a typo is an error, not a silent fall back to Whisper."""
    named, source = (flag, "--vosk-model") if flag else (None, "")
    if named is None and env.get("IVR_VOSK_MODEL"):
        named, source = Path(env["IVR_VOSK_MODEL"]), "IVR_VOSK_MODEL"
    if named is not None:
        named = Path(named).expanduser()
        if not named.is_dir():
            raise RecognitionError(f"{source} {named}: no such folder; {PULL_HINT}")
        if not looks_like_model(named):
            raise RecognitionError(f"{source} {named}: not a Vosk model folder (no am/ or conf/model.conf); "
                                   f"{PULL_HINT}")
        return named
    default = Path(models_dir) / "vosk"
    if looks_like_model(default):
        return default
    inside = sorted(p for p in default.iterdir() if p.is_dir() and looks_like_model(p)) if default.is_dir() else []
    return inside[0] if inside else None


def load_recognizer(vosk_model: Optional[Path], whisper_model: Optional[Path], models_dir: Path,
                    log: logging.Logger, env: Mapping[str, str] = os.environ) -> Recognizer:
    """The recognizer this process shares between calls, and why it was chosen, said loudly once."""
    folder = find_vosk_model(vosk_model, models_dir, env)
    if folder is not None:
        recognizer = VoskRecognizer(folder)
        why = "--vosk-model" if vosk_model else "IVR_VOSK_MODEL" if env.get("IVR_VOSK_MODEL") else "installed"
        log.warning("ASR: %s from %s (%s); Whisper is not loaded", recognizer.name, folder, why)
        return recognizer
    from ivr.asr.whisper_engine import WhisperRecognizer

    recognizer = WhisperRecognizer(whisper_model)
    log.warning("ASR: no English Vosk model in %s (run `ivr models pull`, or pass --vosk-model); using %s",
                Path(models_dir) / "vosk", "the bundled Whisper tiny.en" if whisper_model is None else recognizer.name)
    return recognizer


def pull_vosk_model(models_dir: Path, timeout: float = 60.0) -> Path:
    """Download the small English Vosk model into models/vosk/, checked against its pinned SHA-256."""
    target = Path(models_dir) / "vosk"
    installed = find_vosk_model(None, models_dir, env={})
    if installed is not None:
        return installed
    if target.exists() and any(target.iterdir()):
        raise RecognitionError(f"{target} holds files that are not a Vosk model; move them away and pull again")
    with tempfile.TemporaryDirectory(prefix="ivr-pull-") as scratch:
        archive = Path(scratch) / f"{ENGLISH_MODEL}.zip"
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(ENGLISH_URL, timeout=timeout) as response, archive.open("wb") as out:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
        except OSError as exc:
            raise RecognitionError(f"cannot download {ENGLISH_URL} ({getattr(exc, 'reason', exc)}): no network? "
                                   f"The bundled Whisper tiny.en stays in use") from exc
        if digest.hexdigest() != ENGLISH_SHA256:
            raise RecognitionError(f"{ENGLISH_URL}: SHA-256 {digest.hexdigest()} ({archive.stat().st_size} bytes) "
                                   f"is not the pinned {ENGLISH_SHA256} ({ENGLISH_SIZE} bytes); not installed")
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(scratch)  # zipfile drops ".." and absolute parts of member names
        unpacked = Path(scratch) / ENGLISH_MODEL
        if not looks_like_model(unpacked):
            raise RecognitionError(f"{ENGLISH_URL}: the archive holds no {ENGLISH_MODEL}/ model folder; not installed")
        if target.exists():
            target.rmdir()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(unpacked), str(target))
    return target


def list_models(models_dir: Path, env: Mapping[str, str] = os.environ) -> list[str]:
    """What is installed and which engine a call would get, one line each."""
    lines = []
    try:
        folder = find_vosk_model(None, models_dir, env)
    except RecognitionError as exc:
        folder = None
        lines.append(f"vosk: {exc}")
    if folder:
        lines.append(f"vosk: {folder}")
    else:
        lines.append(f"vosk: no English model in {Path(models_dir) / 'vosk'} (`ivr models pull` downloads "
                     f"{ENGLISH_MODEL}, about 40 MB)")
    from ivr.asr.whisper_engine import bundled_model, verify

    try:
        whisper = bundled_model()
        verify(whisper)
        lines.append(f"whisper tiny.en (bundled, SHA-256 checked): {whisper}")
    except RecognitionError as exc:
        lines.append(f"whisper tiny.en: {exc}")
    lines.append(f"in use: {'vosk' if folder else 'whisper tiny.en'}")
    return lines
