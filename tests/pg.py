"""A throwaway PostgreSQL server for tests (pytest plugin, registered in tests/conftest.py).

``pg_server`` (session scope) runs ``initdb`` and ``pg_ctl`` from /usr/lib/postgresql/*/bin in a
fresh directory on a free loopback port, trust authentication, no fsync (a test database need not
survive a power cut). PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` OS user (``runuser``) in a directory it owns, made with ``mkdtemp`` because pytest's
``tmp_path`` lives under a root-only directory. ``pg_url`` gives every test its own database.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class PgServer:
    port: int
    data: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def find_pg_bin() -> Path | None:
    """The newest PostgreSQL server binaries' directory, if installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A running PostgreSQL server for the whole test session."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        msg = (
            "PostgreSQL is not installed: run scripts/setup.sh --test (apt-get install postgresql)"
        )
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    root = Path(tempfile.mkdtemp(prefix="qloop-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    try:
        subprocess.run(
            _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                             "--auth=trust", "--no-sync", "-E", "UTF8"]),
            **run,
        )  # fmt: skip
        options = f"-h 127.0.0.1 -p {port} -k {root} -F -c max_connections=50"
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log),
                             "-o", options, "-w", "-t", "60", "start"]),
            **run,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        server_log = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc.stderr}\n{server_log}")
    try:
        yield PgServer(port, data)
    finally:
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                             "stop"]),
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """SQLAlchemy URL of a new, empty database on the session's server."""
    return pg_server.create_database()
