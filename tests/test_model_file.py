"""The dialog model file: a damaged one is refused in one line at load, and `ivr train` replaces it."""
import os
import shutil

from conftest import ivr_command
from ivr.dialog.model import damage


def _copy_model(trained_model, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(trained_model, models / trained_model.name)
    shutil.copy(trained_model.with_suffix("").with_suffix(".fingerprint"), models)
    return models / trained_model.name


def _truncate(model) -> None:
    data = model.read_bytes()
    model.write_bytes(data[:len(data) // 2])


def _flip_a_byte(model) -> None:
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))


def test_a_damaged_model_is_refused_at_load_in_one_line_naming_the_file_and_the_fix(tmp_path, trained_model):
    model = _copy_model(trained_model, tmp_path)
    for damaging in (_truncate, _flip_a_byte):
        shutil.copy(trained_model, model)
        damaging(model)
        chat = ivr_command("chat", input="", timeout=180,
                           env={"IVR_MODELS": str(model.parent), "IVR_VAR": str(tmp_path / "var")})
        assert chat.returncode == 2, (damaging.__name__, chat.stderr[-2000:])
        last = chat.stderr.strip().splitlines()[-1]
        assert last.startswith(f"ivr: {model}:0:") and "ivr train --force" in last, (damaging.__name__, last)
        assert "Traceback" not in chat.stderr and "AttributeError" not in chat.stderr, chat.stderr[-2000:]


def test_ivr_train_retrains_a_damaged_model_instead_of_keeping_it_as_unchanged(tmp_path, trained_model):
    model = _copy_model(trained_model, tmp_path)
    _truncate(model)
    assert damage(model)
    trained = ivr_command("train", env={"IVR_MODELS": str(model.parent)}, timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "unchanged" not in trained.stderr and "damaged" in trained.stderr, trained.stderr[-2000:]
    assert damage(model) is None  # whole again, and (checked by `ivr train` before the swap) it loads
    assert not list(model.parent.glob(".training-*"))  # the scratch folder is gone


def test_a_freshly_trained_model_that_does_not_load_never_replaces_the_last_good_one(tmp_path, trained_model):
    """Rasa trains and saves a pipeline whose last component refuses to load (tests/never_loads.py):
    `ivr train` tries the new model before the swap, says so in one line, and keeps the good one."""
    from conftest import ROOT

    python_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    model = _copy_model(trained_model, tmp_path)
    good, stamp = model.read_bytes(), model.with_name("dialog.fingerprint").read_text()
    dialogs = tmp_path / "dialogs"
    shutil.copytree(ROOT / "dialogs", dialogs)
    config = dialogs / "config.yml"
    config.write_text(config.read_text().replace("    threshold: 0.4\n",
                                                 "    threshold: 0.4\n  - name: never_loads.NeverLoads\n"))
    trained = ivr_command("train", timeout=600, env={"IVR_DIALOGS": str(dialogs), "IVR_MODELS": str(model.parent),
                                                     "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), *python_path])})
    assert trained.returncode == 2, trained.stderr[-2000:]
    last = trained.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ivr: {dialogs}:0: the newly trained model does not load"), last
    assert last.endswith(f"the last good model {model} is kept"), last
    assert model.read_bytes() == good and model.with_name("dialog.fingerprint").read_text() == stamp
    assert not list(model.parent.glob(".training-*"))
