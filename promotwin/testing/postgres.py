"""A real PostgreSQL server for the store tests: one per session, a fresh database per test.

Debian's ``postgresql`` package (``apt-get install -y postgresql``; ``.ci/run`` installs it).
``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user; its data
folder is a fresh temporary folder that user owns. The server listens on 127.0.0.1 on a free
port (and on a socket inside its folder), with trust authentication: nothing else can reach it.
Durability settings are off (``fsync``): a test server never outlives its session, and the
tests' crashes are process crashes, which PostgreSQL survives without them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

VERSIONS = Path("/usr/lib/postgresql")


def _bin_dir() -> Path | None:
    """The newest installed server's bin folder (Debian keeps them per major version)."""
    found = sorted(
        (p for p in VERSIONS.glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server; ``new_database()`` gives a SQLAlchemy URL to an empty database."""

    folder: Path
    port: int
    bin_dir: Path
    as_postgres: bool
    _names: itertools.count[int] = field(default_factory=itertools.count)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)

    def stop(self) -> None:
        _run(self, "pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def _run(server: PostgresServer, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(server.bin_dir / tool), *args]
    if server.as_postgres:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def start_postgres() -> PostgresServer | str:
    """Start a server; the reason as a sentence if it cannot start (tests skip with it)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install -r requirements.lock"
    bin_dir = _bin_dir()
    if bin_dir is None:
        return "no PostgreSQL server installed: apt-get install -y postgresql"
    as_postgres = os.geteuid() == 0
    if as_postgres and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as the postgres user"
    folder = Path(tempfile.mkdtemp(prefix="promotwin-pg-"))
    if as_postgres:
        shutil.chown(folder, "postgres")
    server = PostgresServer(folder, _free_port(), bin_dir, as_postgres)
    data = str(folder / "data")
    steps = [
        ("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"),
        (
            "pg_ctl",
            "-D",
            data,
            "-l",
            str(folder / "server.log"),
            "-o",
            f"-k {folder} -c listen_addresses=127.0.0.1 -p {server.port} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "-w",
            "start",
        ),
    ]
    for tool, *args in steps:
        done = _run(server, tool, *args)
        if done.returncode != 0:
            log = folder / "server.log"
            tail = log.read_text()[-500:] if log.is_file() else ""
            shutil.rmtree(folder, ignore_errors=True)
            return f"PostgreSQL {tool} failed: {(done.stderr or done.stdout).strip()} {tail}"
    return server
