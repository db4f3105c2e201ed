"""`ivr train`: the dialog model in models/dialog.tar.gz, retrained only when dialogs/ changed."""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from ivr.dialog.check import check_dialogs, yaml_files
from ivr.dialog.model import MODEL_NAME, damage, load_agent, model_path
from ivr.dialog.quiet import quiet_rasa
from ivr.dialog.settings import DialogError

log = logging.getLogger(__name__)
__all__ = ["fingerprint", "model_path", "train"]


def fingerprint(dialogs_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in yaml_files(dialogs_dir):
        if path.name in ("voice.yml", "endpoints.yml") or "tests" in path.relative_to(dialogs_dir).parts:
            continue  # not part of what Rasa learns
        digest.update(str(path.relative_to(dialogs_dir)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def train(dialogs_dir: Path, models_dir: Path, force: bool = False) -> Path:
    target, stamp = model_path(models_dir), models_dir / f"{MODEL_NAME}.fingerprint"
    print_ = log.warning
    current = fingerprint(dialogs_dir)
    if not force and target.exists() and stamp.exists() and stamp.read_text() == current:
        why = damage(target)  # unchanged dialogs do not make a damaged file good: train it again
        if not why:
            print_("dialogs unchanged since the last training: keeping %s", target)
            return target
        print_("%s is damaged (%s): training it again", target, why)
    problems = [p for p in check_dialogs(dialogs_dir) if not p.warning]
    if problems:
        raise DialogError("\n".join(map(str, problems)) + "\nnot training: fix the problems above first")
    quiet_rasa()
    from rasa.model_training import train as rasa_train

    models_dir.mkdir(parents=True, exist_ok=True)
    # Trained beside the last good model and swapped in only when done: a failed training keeps it.
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".training-") as scratch:
        result = rasa_train(domain=str(dialogs_dir / "domain.yml"), config=str(dialogs_dir / "config.yml"),
                            training_files=[str(dialogs_dir / "data")], output=scratch,
                            fixed_model_name=MODEL_NAME, force_training=True)
        trained = model_path(Path(scratch))
        kept = f"; the last good model {target} is kept" if target.exists() else ""
        if result.code != 0 or not trained.exists():
            raise DialogError(f"{dialogs_dir}:0: Rasa training failed (code {result.code}){kept}")
        try:
            load_agent(trained)  # a model that does not load must not replace one that does
        except DialogError as error:
            raise DialogError(f"{dialogs_dir}:0: the newly trained model does not load ({error.__cause__ or error})"
                              f"{kept}") from error
        os.replace(trained, target)
    stamp.write_text(current)
    return target
