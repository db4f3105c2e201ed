"""What every store shares: opening SQLite or PostgreSQL by URL, its schema declared once as tables (made
from them when new, upgraded to them when older), one transaction per operation.

SQLite is the embedded default (a file in var/, WAL, writers take the lock up front with BEGIN IMMEDIATE);
PostgreSQL is chosen by a postgresql:// URL. Database trouble comes out as the store's own "unavailable" error,
naming the database with its password hidden. Times are stored as naive UTC, the same on both.
"""
from __future__ import annotations

import os
import sqlite3
import time
from functools import partial
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional, Sequence, TypeVar, Union

from sqlalchemy import (BigInteger, Column, Float, Identity, Integer, MetaData, Table, create_engine, event, exc,
                        func, inspect, select)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateColumn, DDLElement
from sqlalchemy.sql.expression import Executable


def database_url(settings, file_name: str, env: Mapping[str, str] = os.environ) -> str:
    """IVR_DATABASE_URL when set (e.g. postgresql+psycopg2://ivr@/ivr?host=/run/postgresql), else SQLite in var/."""
    return env.get("IVR_DATABASE_URL") or f"sqlite:///{Path(settings.var_dir).resolve() / file_name}"


# --- schemas ------------------------------------------------------------------------------------------------
# A store's tables are its schema's one declaration: a new database is made from them (CREATE TABLE and
# CREATE INDEX worded by each dialect), and an older one is brought to them by upgrades whose steps are
# worded from the same Column and Index objects. To add a column: add it to the Table, and add an upgrade
# `[AddColumn(table.c.new)]`. Never edit an upgrade once released: databases out there ran it.

Step = Union[str, Executable, Callable[[Connection], None]]
Upgrade = Union[Sequence[Step], Mapping[str, Sequence[Step]]]  # by dialect name when they differ


class Schema:
    """A store's tables as they are now (`metadata`) and `upgrades`: upgrades[0] takes a version 1 database
    to version 2, and so on. Version 1 is the store's first release; no database is at 0 but a new one."""

    def __init__(self, metadata: MetaData, upgrades: Sequence[Upgrade] = ()):
        self.metadata, self._upgrades = metadata, tuple(upgrades)
        self.version = 1 + len(self._upgrades)

    def upgrade(self, version: int, dialect: str) -> Sequence[Step]:
        """The steps that bring a database at `version - 1` to `version`."""
        steps = self._upgrades[version - 2]
        return steps[dialect] if isinstance(steps, Mapping) else steps


class AddColumn(DDLElement):
    """ALTER TABLE … ADD COLUMN, worded from the Column in the table (its type, nullability and CHECK)."""

    def __init__(self, column: Column):
        self.column = column


@compiles(AddColumn)
def _add_column(element: AddColumn, compiler, **kw) -> str:
    return (f"ALTER TABLE {compiler.preparer.format_table(element.column.table)} "
            f"ADD COLUMN {compiler.process(CreateColumn(element.column), **kw)}")


class Double(Float):
    """DOUBLE PRECISION on both databases, as the first schemas said (Float alone is FLOAT on SQLite)."""


@compiles(Double)
def _double(type_, compiler, **kw) -> str:
    return "DOUBLE PRECISION"


def primary_key(name: str, type_, *args) -> Column:
    """A one-column primary key, written on SQLite as the first schemas wrote it: without NOT NULL.

    SQLite enforces NOT NULL on a key only when told (ours are never NULL), so saying it now would make a
    new database differ from one made then; PostgreSQL makes every key NOT NULL by itself."""
    return Column(name, type_, *args, primary_key=True, info={_KEY_AS_FIRST_WRITTEN: True})


def surrogate_key() -> Column:
    """`id`: the rowid on SQLite (INTEGER PRIMARY KEY, numbered by SQLite), a BIGINT identity on PostgreSQL."""
    return primary_key("id", BigInteger().with_variant(Integer(), "sqlite"), Identity())


_KEY_AS_FIRST_WRITTEN = "ivr_key_as_first_written"


@compiles(CreateColumn, "sqlite")
def _sqlite_column(create: CreateColumn, compiler, **kw) -> str:
    column = create.element
    if column.info.get(_KEY_AS_FIRST_WRITTEN):  # name and type: the table's PRIMARY KEY (...) makes it the key
        return f"{compiler.preparer.format_column(column)} {compiler.dialect.type_compiler.process(column.type)}"
    return compiler.visit_create_column(create, **kw)


LOCK_WAIT_S = 30.0  # what a command or the console waits for a busy database; calls wait less


class Database:
    """One store's database: its engine, its migrations and its transactions. Safe to share between threads.

    `what` names the store in messages ("accounts database … is unavailable"). `schema` is the store's tables
    and the upgrades that bring an older database to them (Schema, above). `version_table` keeps the versions
    applied, so stores sharing one PostgreSQL database migrate apart; `migration_lock` is the PostgreSQL
    advisory lock concurrent opens take turns on.
    """

    def __init__(self, url: str, *, what: str, schema: Schema, version_table: str,
                 migration_lock: int, unavailable: type, create: bool = True, wait_s: float = LOCK_WAIT_S):
        """`create=False`: a database that was never set up is unavailable, not made anew and empty (a
        deleted accounts file must not turn every caller into a stranger). `wait_s`: the longest a
        statement waits for a lock before the store is unavailable (a caller must not hear 30 s of silence)."""
        self.what, self._unavailable = what, unavailable
        self._schema = schema
        self._versions = Table(version_table, MetaData(), Column("version", Integer, primary_key=True))
        self._migration_lock = migration_lock
        self.engine = _open_engine(url, what, unavailable, create, wait_s)
        self.sqlite = self.engine.dialect.name == "sqlite"
        self.where = self.engine.url.render_as_string(hide_password=True)
        try:
            self._migrate(create)
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self, write: bool = False, schema_change: bool = False) -> Iterator[Connection]:
        """One transaction; database trouble comes out as the store's unavailable error. SQLite writers take the
        write lock up front (BEGIN IMMEDIATE) so two writers queue instead of deadlocking on a lock upgrade.
        IntegrityError passes through: it is the store's to interpret. `schema_change`: on SQLite, with foreign
        keys off, its documented way to rebuild a table others refer to (the only way it changes a CHECK);
        migrations check the result with PRAGMA foreign_key_check before they commit."""
        fk_off = self.sqlite and schema_change
        try:
            with self.engine.connect() as conn:
                if fk_off:
                    conn.exec_driver_sql("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: before BEGIN
                if self.sqlite:
                    conn.exec_driver_sql("BEGIN IMMEDIATE" if write or schema_change else "BEGIN")
                try:
                    yield conn
                    conn.commit()
                finally:
                    if fk_off:  # the pooled connection goes back as every other one is
                        conn.rollback()
                        conn.exec_driver_sql("PRAGMA foreign_keys = ON")
        except exc.IntegrityError:
            raise
        except (exc.DBAPIError, exc.TimeoutError) as error:
            raise self._unavailable(f"{self.what} database {self.where} is unavailable: "
                                    f"{getattr(error, 'orig', None) or error}") from error

    def schema_version(self) -> int:
        with self.transaction() as conn:
            return conn.execute(select(func.max(self._versions.c.version))).scalar() or 0

    def _migrate(self, create: bool) -> None:
        latest = self._schema.version
        with self.transaction(write=True, schema_change=True) as conn:
            if not self.sqlite:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({self._migration_lock})")
            if not create and not inspect(conn).has_table(self._versions.name):
                raise self._unavailable(f"{self.what} database {self.where} was never set up: run `ivr db seed` "
                                        f"or restore it")
            conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {self._versions.name} (version INTEGER PRIMARY KEY)")
            version = conn.execute(select(func.max(self._versions.c.version))).scalar() or 0
            if version > latest:
                raise self._unavailable(f"{self.where} has schema version {version}; this ivr knows up to "
                                        f"{latest}: upgrade ivr")
            if version == 0:  # new: made from the tables as they are now, the same as one upgraded step by step
                self._schema.metadata.create_all(conn, checkfirst=False)
            else:
                for number in range(version + 1, latest + 1):
                    for step in self._schema.upgrade(number, self.engine.dialect.name):
                        _run(conn, step)
            for number in range(version + 1, latest + 1):  # every number counted, new or upgraded alike
                conn.execute(self._versions.insert().values(version=number))
            if self.sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                raise self._unavailable(f"{self.what} database {self.where}: a migration left rows pointing at "
                                        f"nothing (PRAGMA foreign_key_check); restore it from a backup")


def _run(conn: Connection, step) -> None:
    if isinstance(step, str):
        conn.exec_driver_sql(step)  # written out: data moved, or a constraint PostgreSQL named
    elif isinstance(step, Executable):
        conn.execute(step)  # worded from the tables by this database's dialect
    else:
        step(conn)  # a step that reads the database first (e.g. a SQLite table rebuild)


_Store = TypeVar("_Store", bound="DatabaseStore")


class DatabaseStore:
    """What every store does with its Database (`self._db`): close it, serve as a context manager, name it."""
    _db: Database

    def close(self) -> None:
        self._db.close()

    def __enter__(self: _Store) -> _Store:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._db.where!r})"

    def schema_version(self) -> int:
        return self._db.schema_version()

    def url(self) -> str:
        """Its database's URL, password included: for another store in the same database (never printed)."""
        return self._db.engine.url.render_as_string(hide_password=False)


def _open_engine(url: str, what: str, unavailable: type, create: bool = True, wait_s: float = LOCK_WAIT_S) -> Engine:
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise unavailable(f"{what} database URL {url!r} is not a URL: use sqlite:///PATH or "
                          f"postgresql+psycopg2://...") from error
    if parsed.get_backend_name() == "sqlite":
        if not create and parsed.database != ":memory:" and not Path(parsed.database or "").is_file():
            raise unavailable(f"{what} database {parsed.database} does not exist: run `ivr db seed` or restore it")
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise unavailable(f"cannot create the folder for {parsed.database}: {error}") from error
            _owner_only(Path(parsed.database), create, what, unavailable)
        engine = create_engine(parsed, future=True, connect_args={"timeout": wait_s, "check_same_thread": False})
        event.listen(engine, "connect", partial(_sqlite_connected, wait_s=wait_s))
        return engine
    if parsed.get_backend_name() == "postgresql":
        bounded = {} if wait_s >= LOCK_WAIT_S else {"options": f"-c lock_timeout={int(wait_s * 1000)}"}
        return create_engine(parsed, future=True, pool_pre_ping=True,
                             connect_args={"connect_timeout": max(1, min(5, int(wait_s))),
                                           "application_name": f"ivr-{what}", **bounded})
    raise unavailable(f"unsupported {what} database {parsed.render_as_string(hide_password=True)}: "
                      f"use sqlite:///PATH or postgresql+psycopg2://...")


def _owner_only(path: Path, create: bool, what: str, unavailable: type) -> None:
    """A SQLite database is its owner's only (0600): made so before SQLite opens it, since SQLite gives
    its -wal, -shm and -journal files the database's mode; one an older ivr left 0644 is tightened."""
    try:
        if create:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # an empty file is an empty database
        for file in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))):
            _tighten(file)
    except OSError as error:
        raise unavailable(f"{what} database {path} cannot be made private to its owner: {error}") from error


def _tighten(file: Path) -> None:
    try:
        if file.stat().st_mode & 0o077:
            os.chmod(file, 0o600)
    except FileNotFoundError:
        pass  # none, or a journal another opener's SQLite just removed


def _sqlite_connected(dbapi_connection, _record, wait_s: float = LOCK_WAIT_S) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves; pysqlite's implicit one is deferred
    cursor = dbapi_connection.cursor()
    _use_wal(cursor, wait_s)  # readers do not wait for a writer in progress
    cursor.execute("PRAGMA synchronous = FULL")  # a committed change survives a power cut
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _use_wal(cursor, wait_seconds: float = 30.0) -> None:
    """WAL is kept in the file, so only a new database really switches. The switch needs the database
    to itself and SQLite refuses it at once ("database is locked", no busy wait) while another opener
    is migrating: 27 of 200 trials of six concurrent opens failed so. Try again until it is free."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def now() -> datetime:
    return datetime.now(timezone.utc)


def to_db(moment: datetime) -> datetime:
    """Stored as naive UTC, the same on SQLite and PostgreSQL."""
    if moment.tzinfo is None:
        raise ValueError(f"a stored time needs a timezone: {moment!r}")
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def from_db(moment: Optional[datetime]) -> Optional[datetime]:
    return moment.replace(tzinfo=timezone.utc) if moment is not None else None
