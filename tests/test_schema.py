"""Each store's schema is declared once, as SQLAlchemy tables: a database made fresh from them and one an
earlier ivr made from its DDL strings (tests/old_schemas.py), then opened by this one, are the same on
SQLite and on PostgreSQL: columns, types, nullability, keys, CHECKs, indexes and the versions counted."""
import re

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, inspect, text

from old_schemas import made_by_old_ivr
from ivr.accounts.model import StoreUnavailable
from ivr.accounts.store import Store
from ivr.queue.sessions import SessionStore
from ivr.queue.store import QueueStore
from ivr.records.store import CallRecords
from ivr.storage import AddColumn, Database, Schema, primary_key

OPEN = {"accounts": Store, "records": CallRecords, "queue": QueueStore, "console": SessionStore}
VERSIONS = {"accounts": 1, "records": 1, "queue": 3, "console": 1}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """Makes fresh, empty databases on one backend: database() -> URL."""
    made, files = [], iter(range(1000))

    def new() -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / 'var' / f'store{next(files)}.db'}"
        server = request.getfixturevalue("postgres")
        made.append(server.create_database())
        return server.url(made[-1])
    yield new
    for name in made:
        request.getfixturevalue("postgres").drop_database(name)


def opened(store: str, url: str) -> str:
    with OPEN[store](url) as opened_store:
        assert opened_store.schema_version() == VERSIONS[store]
    return url


def described(url: str) -> dict:
    """Everything the database says about its tables, as SQLAlchemy's inspector and the catalog read it."""
    engine = create_engine(url, future=True)
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as conn:
            seen = inspect(conn)
            tables = {}
            for table in sorted(seen.get_table_names()):
                columns = [{**column, "type": str(column["type"])} for column in seen.get_columns(table)]
                tables[table] = dict(
                    columns=columns, primary_key=seen.get_pk_constraint(table),
                    # SQLite's reflection reads ON DELETE only in the table-level form: ask SQLite itself.
                    foreign_keys=conn.exec_driver_sql(f"PRAGMA foreign_key_list({table})").all() if sqlite else
                    seen.get_foreign_keys(table),
                    checks=sorted(seen.get_check_constraints(table), key=str),
                    # SQLite's reflection reads UNIQUE only in the table-level form; the unique indexes SQLite
                    # keeps for every UNIQUE and non-rowid key are compared instead (and show a lost rowid).
                    indexes=sorted(({**index, "dialect_options": {k: str(v) for k, v in
                                                                  index.get("dialect_options", {}).items()}}
                                    for index in seen.get_indexes(table, **({"include_auto_indexes": True}
                                                                            if sqlite else {}))),
                                   key=lambda index: index["name"]),
                    unique=None if sqlite else sorted(seen.get_unique_constraints(table), key=str),
                    rows=conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all() if "version" in table else None)
            # What the inspector leaves out: the WHERE of a partial index.
            indexes = conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL" if sqlite else
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")).all()
    finally:
        engine.dispose()
    return {"tables": tables, "index_sql": sorted((name, re.sub(r"\s+", " ", sql)) for name, sql in indexes)}


@pytest.mark.parametrize("store", sorted(OPEN))
def test_a_database_an_earlier_ivr_made_and_a_new_one_are_the_same(store, database):
    old = database()
    made_by_old_ivr(old, store)
    assert described(opened(store, old)) == described(opened(store, database()))


def test_a_queue_from_version_1_upgraded_is_the_same_as_a_new_one(database):
    """The one upgrade so far (leases, `lost`, one caller per agent), run by today's code."""
    old = database()
    made_by_old_ivr(old, "queue", versions=1)
    upgraded, new = described(opened("queue", old)), described(opened("queue", database()))
    assert upgraded == new
    entries = new["tables"]["queue_entries"]
    assert [check["sqltext"] for check in entries["checks"] if "lost" in check["sqltext"]], entries["checks"]
    assert [name for name, sql in new["index_sql"]
            if name == "queue_one_caller_per_agent" and "WHERE" in sql and "taken" in sql]


def test_a_column_added_in_one_place_reaches_old_and_new_databases_alike(database):
    """What a developer adding a column writes: the Column in the table, and an upgrade worded from it."""
    def schema(with_note: bool) -> Schema:
        metadata = MetaData()
        table = Table("notes_demo", metadata, primary_key("name", String(32)),
                      Column("count", Integer, nullable=False),
                      *([Column("note", String(80), nullable=False, server_default="none")] if with_note else []))
        return Schema(metadata, upgrades=[[AddColumn(table.c.note)]] if with_note else [])

    def opened_with(url: str, version: int) -> str:
        Database(url, what="demo", schema=schema(version == 2), version_table="demo_schema_version",
                 migration_lock=1, unavailable=StoreUnavailable).close()
        return url

    old = opened_with(database(), 1)
    engine = create_engine(old, future=True)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO notes_demo (name, count) VALUES ('kept', 3)"))
    engine.dispose()
    assert described(opened_with(old, 2)) == described(opened_with(database(), 2))
    engine = create_engine(old, future=True)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name, count, note FROM notes_demo")).all() == [("kept", 3, "none")]
    engine.dispose()
