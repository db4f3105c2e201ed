"""Data at rest: key material apart from the data and private, databases private, sealed answers that expire."""
import os
import subprocess
import sys

import pytest

from conftest import ivr_command
from ivr.accounts import CardTokens, install_secret, open_store
from ivr.config import Settings
from ivr.masking import SEAL_WINDOW_SECONDS, Seal, SealKeys, is_sealed
from ivr.queue import open_queue
from ivr.records import open_records

CARD = "4111111111111111"


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


def _as_world_readable_by_default():
    os.umask(0o022)  # what most shells give: without care, new files come out 0644


def test_an_old_secret_beside_the_data_moves_into_a_private_keys_folder_keeping_its_value(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    old_secret = bytes(range(32))
    (var / "card-secret").write_text(old_secret.hex() + "\n")
    os.chmod(var / "card-secret", 0o644)  # as an older ivr could leave it
    token_before = CardTokens(old_secret).card(CARD).token

    seeded = ivr_command("db", "seed", env={"IVR_VAR": str(var), "IVR_DATABASE_URL": ""},
                         preexec_fn=_as_world_readable_by_default, timeout=120)
    assert seeded.returncode == 0, seeded.stderr

    assert not (var / "card-secret").exists()  # nothing secret is left beside the databases
    assert _mode(var / "keys") == 0o700 and _mode(var / "keys" / "card-secret") == 0o600
    assert install_secret(var) == old_secret  # the value is kept: cards tokenised before still match
    assert CardTokens.for_install(var).card(CARD).token == token_before
    databases = [p for p in var.iterdir() if p.is_file()]
    assert [p.name for p in databases if p.name.endswith(".db")] == ["accounts.db"]
    assert {p.name: _mode(p) for p in databases} == {p.name: 0o600 for p in databases}


def test_a_new_install_keeps_its_secret_in_the_keys_folder_and_refuses_a_widened_one(tmp_path):
    var = tmp_path / "var"
    secret = install_secret(var)
    assert (var / "keys" / "card-secret").read_text().strip() == secret.hex()
    assert sorted(p.name for p in var.iterdir()) == ["keys"]
    os.chmod(var / "keys", 0o755)
    with pytest.raises(PermissionError, match="chmod 700"):
        install_secret(var)


def test_every_sqlite_database_and_its_journal_files_are_made_owner_only(tmp_path):
    var = tmp_path / "var"
    settings = Settings(var_dir=var)
    old_umask = os.umask(0o022)
    try:
        var.mkdir()
        (var / "calls.db").touch(mode=0o644)  # one an older ivr made: tightened when opened
        stores = [opener(settings) for opener in (open_store, open_queue, open_records)]
        try:
            with stores[0]._db.transaction(write=True):  # a connection in use: SQLite's WAL files exist now
                modes = {p.name: _mode(p) for p in var.iterdir() if p.is_file()}
            assert modes == {name: 0o600 for name in modes}
            assert {"accounts.db", "accounts.db-wal", "accounts.db-shm", "queue.db", "calls.db"} <= set(modes)
        finally:
            [store.close() for store in stores]
    finally:
        os.umask(old_umask)


def test_a_sealed_answer_copied_from_a_log_cannot_be_opened_with_the_install_files(tmp_path):
    """Another process with the same var/ (the install secret, the databases) is what a thief of the
    disk or of a log has: it cannot open what a call sealed, while the sealing process can."""
    var = tmp_path / "var"
    seal = Seal(var)
    message = seal.message("2468")
    token = _token(message)
    assert seal.open(token) == "2468"
    opened = subprocess.run([sys.executable, "-c", "import sys; from ivr.masking import Seal; "
                             "print(Seal(sys.argv[1]).open(sys.argv[2]))", str(var), token],
                            capture_output=True, text=True, timeout=60)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.strip() == "None"


def test_a_sealed_answer_opens_across_one_window_boundary_and_never_after(tmp_path):
    """A call whose PIN is sealed just before a rotation is checked just after it; a token is dead one
    window later, and the process still seals and opens new answers."""
    now = [10 * SEAL_WINDOW_SECONDS - 1.0]
    seal = Seal(tmp_path / "var", SealKeys(clock=lambda: now[0]))
    token = _token(seal.message("2468"))
    now[0] += 2  # the window turns while the call is in progress
    assert seal.open(token) == "2468"
    later = _token(seal.message("1357"))
    now[0] += SEAL_WINDOW_SECONDS  # one more window: the first token's key is gone
    assert seal.open(token) is None
    assert seal.open(later) == "1357"  # sealed in the window just before: still open
    now[0] += SEAL_WINDOW_SECONDS
    assert seal.open(later) is None
    assert seal.open(_token(seal.message("9999"))) == "9999"


def test_what_a_seal_writes_it_reads_back_and_nothing_else(tmp_path):
    """The sealed message format has one owner: the message the call sends opens to the answer; the
    shapes a dialog may hand an action instead (plain words, other intents, broken JSON) open to nothing."""
    seal = Seal(tmp_path / "var")
    message = seal.message("2468")
    assert is_sealed(message) and seal.opened(message) == "2468"
    for other in ("2468", "/inform", '/inform{"sealed": ""}', "/inform{broken", '/inform["sealed"]',
                  '/inform{"sealed": "not a token"}', "/affirm", None, 2468):
        assert seal.opened(other) is None, other


def _token(message: str) -> str:
    return message.split('"sealed": "')[1].rstrip('"}')

