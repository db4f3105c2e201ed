"""The accounts' databases: opened by many at once and migrated once, refused when made by a newer ivr,
StoreUnavailable when unreachable or gone, found from the environment or the var folder, and never created empty
by a call."""
from __future__ import annotations

import os
import shutil
import threading
import time

import pytest
import sqlalchemy

from accounts_fixtures import backend, tokens, url  # noqa: F401 - fixtures: a fresh database on each backend
from ivr.accounts import Store, StoreUnavailable, UnknownAccount, database_url, seed
from ivr.config import Settings


# --- opening, migrating, failing -----------------------------------------------------------------------------

def opened_at_once(url: str, count: int = 6) -> tuple[list, list]:
    """`count` threads open the store at the same moment: the stores opened and the errors raised."""
    opened, errors = [], []
    start = threading.Barrier(count)

    def open_store():
        try:
            start.wait()
            opened.append(Store(url))
        except Exception as error:  # noqa: BLE001 - reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(count)]
    [thread.start() for thread in threads]
    [thread.join(60) for thread in threads]
    return opened, errors


def test_opening_a_new_database_concurrently_migrates_it_once(url):
    opened, errors = opened_at_once(url)
    assert not errors and len(opened) == 6
    assert {store.schema_version() for store in opened} == {1}
    with pytest.raises(UnknownAccount):
        opened[0].account("48151623")
    for store in opened:
        store.close()


def test_new_sqlite_files_opened_six_at_once_are_never_found_locked(tmp_path):
    """Switching a new file to WAL needs it to itself, and SQLite refused the switch at once while
    another opener migrated: about one start in eight failed with 'database is locked'."""
    for trial in range(30):
        opened, errors = opened_at_once(f"sqlite:///{tmp_path}/{trial}/accounts.db")
        for store in opened:
            store.close()
        assert errors == [] and len(opened) == 6, (trial, errors)


def test_a_database_from_a_newer_ivr_is_refused(url):
    Store(url).close()
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("INSERT INTO schema_version (version) VALUES (99)"))
    engine.dispose()
    with pytest.raises(StoreUnavailable, match="schema version 99"):
        Store(url)


def test_an_unreachable_database_is_store_unavailable(tmp_path, postgres):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(StoreUnavailable):
        Store(f"sqlite:///{tmp_path / 'a-file' / 'accounts.db'}")
    (tmp_path / "garbage.db").write_bytes(os.urandom(8192))
    with pytest.raises(StoreUnavailable, match="unavailable"):
        Store(f"sqlite:///{tmp_path / 'garbage.db'}")
    nobody = tmp_path / "no-server"
    nobody.mkdir()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unavailable"):
        Store(f"postgresql+psycopg2://postgres@/accounts?host={nobody}&port=5432")
    assert time.monotonic() - started < 10


def test_a_database_that_goes_away_is_store_unavailable(postgres, tokens, tmp_path):
    name = postgres.create_database()
    store = Store(postgres.url(name))
    seed(store, tokens)
    postgres.drop_database(name)  # terminates the store's connections too
    with pytest.raises(StoreUnavailable):
        store.account("48151623")
    store.close()

    path = tmp_path / "db" / "accounts.db"
    with Store(f"sqlite:///{path}") as sqlite_store:
        seed(sqlite_store, tokens)
        shutil.rmtree(path.parent)
        path.parent.mkdir()
        path.write_bytes(os.urandom(8192))
        with pytest.raises(StoreUnavailable):
            sqlite_store.account("48151623")


def test_the_database_url_comes_from_the_environment_or_the_var_folder(tmp_path):
    settings = Settings(var_dir=tmp_path / "var")
    assert database_url(settings, env={}) == f"sqlite:///{tmp_path / 'var' / 'accounts.db'}"
    assert database_url(settings, env={"IVR_DATABASE_URL": "postgresql+psycopg2://ivr@/ivr"}) == \
        "postgresql+psycopg2://ivr@/ivr"


def test_a_store_opened_for_calls_is_never_created_empty(url, tokens):
    """Calls open the store with create=False: a database never set up is unavailable, not made anew."""
    with pytest.raises(StoreUnavailable, match="ivr db seed"):
        Store(url, create=False)
    with pytest.raises(StoreUnavailable):  # and that failed open left nothing behind to be found next time
        Store(url, create=False)
    with Store(url) as made:  # `ivr db seed` creates it
        seed(made, tokens)
    with Store(url, create=False) as opened:
        assert opened.account("48151623").balance_cents == 12075
