"""A throwaway PostgreSQL server for tests: initdb in a temporary folder, unix socket only, gone afterwards.

Runs the server as the `postgres` user when the tests run as root (PostgreSQL refuses to run as root).
Installs Debian's `postgresql` package when no server binaries are found and we are root; otherwise fails
with what to install.
"""
from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional

import psycopg2


class PostgresUnavailable(RuntimeError):
    pass


class Postgres:
    def __init__(self, bin_dir: Path, root: Path, port: int, run_as: List[str]):
        self.bin_dir, self.root, self.port, self._run_as = bin_dir, root, port, run_as
        self.data = root / "data"
        self._names = itertools.count(1)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@/{database}?host={self.root}&port={self.port}"

    def create_database(self) -> str:
        name = f"accounts_{next(self._names)}"
        self._admin(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def dump(self, database: str) -> bytes:
        return self._run("pg_dump", "-h", str(self.root), "-p", str(self.port), "-U", "postgres", database).stdout

    def files(self) -> Iterator[Path]:
        """Every file the server keeps: tables, indexes and the write-ahead log."""
        return (path for path in self.data.rglob("*") if path.is_file())

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _admin(self, statement: str) -> None:
        connection = psycopg2.connect(dbname="postgres", user="postgres", host=str(self.root), port=self.port)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess:
        command = [*self._run_as, str(self.bin_dir / program), *args]
        result = subprocess.run(command, capture_output=True, timeout=120)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(command)} failed ({result.returncode}): "
                                      f"{result.stderr.decode(errors='replace').strip()}")
        return result


def start_postgres() -> Postgres:
    bin_dir = _server_binaries() or _install_server()
    as_root = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="ivr-pg-", dir="/tmp"))  # short: a socket path has ~100 bytes
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    server = Postgres(bin_dir, root, _free_port(), ["runuser", "-u", "postgres", "--"] if as_root else [])
    try:
        server._run("initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        options = (f"-k {root} -p {server.port} -c listen_addresses='' -c fsync=off -c full_page_writes=off "
                   f"-c max_connections=200")
        server._run("pg_ctl", "-D", str(server.data), "-l", str(root / "server.log"), "-o", options, "-w", "-t",
                    "60", "start")
    except (PostgresUnavailable, subprocess.TimeoutExpired) as error:
        log = root / "server.log"
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"could not start a PostgreSQL server: {error}\n{detail}") from error
    return server


def _server_binaries() -> Optional[Path]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _install_server() -> Path:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) are missing: "
                                  "install them, e.g.  sudo apt-get install -y postgresql")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(command)} failed: {result.stderr.strip()[-1000:]}")
    bin_dir = _server_binaries()
    if bin_dir is None:
        raise PostgresUnavailable("apt-get installed postgresql but no initdb was found under /usr/lib/postgresql")
    return bin_dir


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
