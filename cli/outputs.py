"""Output destinations: checked before any work starts, and held by one writer at a time.

A destination (a run folder, a fitted-model file, an experiment folder) is locked with an
exclusive ``flock`` on a ``.NAME.lock`` file beside it, so a second ``twin`` process writing
to the same place stops at once with exit 2, naming the process that holds it. The lock file
sits beside the destination, not inside it, because a run replaces its folder when it finishes.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputError(ValueError):
    """An output location that cannot be written, or that another process is writing."""


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def read_only(path: Path) -> bool:
    """True if this user cannot write ``path``, or nobody may by its permission bits.

    The second test matters for root, whom ``os.access`` always lets write: a file somebody
    marked read-only (``chmod a-w``, e.g. to freeze an audit store) is not ours to change.
    """
    return not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222


def check_writable(path: Path, option: str, want: str) -> None:
    """Refuse ``path`` (``want``: "folder" or "file") if it cannot be created or written.

    Catches, before any work: a destination under a file, the wrong kind of thing already
    there, a file marked read-only, and a folder this user cannot write to (probed by creating
    a temporary file there).
    """
    if path.exists():
        if want == "folder" and not path.is_dir():
            raise OutputError(f"{option} {path} is a file: {option} needs a folder")
        if want == "file" and path.is_dir():
            raise OutputError(f"{option} {path} is a folder: {option} needs a file name")
        if want == "file" and read_only(path):
            raise OutputError(
                f"{option} {path} is read-only: make it writable (chmod u+w) or choose another file"
            )
    base = nearest_existing(path.parent if want == "file" or not path.exists() else path)
    if not base.is_dir():
        raise OutputError(
            f"{option} {path}: {base} is a file, so nothing can be created under it; "
            "choose another location"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".twin-probe.", dir=base)
    except OSError as exc:
        raise OutputError(
            f"{option} {path}: cannot write in {base} ({exc.strerror}); "
            "choose a folder you can write to"
        ) from None
    os.close(fd)
    os.unlink(probe)


def check_out_dir(path: Path, overwrite: bool, option: str = "--out") -> None:
    """Refuse an output folder that cannot be written, or not empty without ``--overwrite``."""
    check_writable(path, option, "folder")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise OutputError(
            f"{path} exists and is not empty: choose another {option} or add --overwrite"
        )


def lock_path(dest: Path) -> Path:
    dest = dest.absolute()
    return dest.parent / f".{dest.name}.lock"


def _holder(lock: Path) -> str:
    try:
        text = lock.read_text().strip()
    except OSError:
        text = ""
    return text or "another process"


@contextmanager
def exclusive(dest: Path, option: str = "--out") -> Iterator[None]:
    """Hold ``dest`` for this process; ``OutputError`` at once if another process holds it."""
    lock = lock_path(dest)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                f"{option} {dest} is being written by {_holder(lock)}: wait for it to "
                f"finish or choose another {option}"
            ) from None
        # The holder before us may have removed the file between our open and our lock;
        # then we hold a lock nobody else sees: open the current file again.
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        command = " ".join(["twin", *sys.argv[1:]])
        os.ftruncate(fd, 0)
        os.write(
            fd,
            f"pid {os.getpid()} on {socket.gethostname()} since {started} ({command})\n".encode(),
        )
        yield
    finally:
        os.unlink(lock)
        os.close(fd)


SQLITE_HEADER = b"SQLite format 3\x00"


def _redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL is reported by the caller; never echo a secret
        return url.split("@")[-1]


def check_store(store: str | Path, option: str = "--store", create: bool = True) -> None:
    """Refuse a store that cannot be used, saying what to do, before any work starts.

    A SQLite path must be a SQLite file (or, with ``create``, a new file in a writable folder);
    a ``postgresql://`` server must answer within a few seconds.
    """
    text = str(store)
    if "://" not in text:
        _check_sqlite_path(Path(text), option, create)
        return
    if text.startswith("sqlite:///"):
        _check_sqlite_path(Path(text.removeprefix("sqlite:///")), option, create)
    elif text.startswith(("postgresql://", "postgresql+")):
        _check_postgresql(text, option)
    elif not text.startswith("sqlite://"):
        raise OutputError(
            f"{option} {_redacted(text)}: unsupported store URL; give a SQLite file path "
            "or a postgresql://USER@HOST/DATABASE URL"
        )


def _check_sqlite_path(path: Path, option: str, create: bool) -> None:
    if path.is_dir():
        raise OutputError(
            f"{option} {path} is a folder: give a database file in it, e.g. {path / 'twin.sqlite'}"
        )
    if path.exists():
        try:
            with path.open("rb") as fh:
                head = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise OutputError(f"{option} {path}: cannot be read ({exc.strerror})") from None
        if head and head != SQLITE_HEADER:
            raise OutputError(
                f"{option} {path} is not a SQLite database: give the store's file or a new "
                "file name"
            )
        if read_only(path):
            raise OutputError(
                f"{option} {path} is read-only: make it writable (chmod u+w) or copy it "
                "somewhere writable"
            )
    elif not create:
        raise OutputError(f"{option}: no store at {path}; check the path (a run creates one)")
    check_writable(path, option, "file")


def _check_postgresql(url: str, option: str) -> None:
    import sqlalchemy as sa

    shown = _redacted(url)
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    except ModuleNotFoundError as exc:
        raise OutputError(
            f"{option} {shown}: the PostgreSQL driver {exc.name!r} is not installed; "
            "install psycopg (pip install 'psycopg[binary]')"
        ) from None
    except sa.exc.ArgumentError:
        raise OutputError(
            f"{option} {shown}: not a valid URL; write postgresql://USER@HOST:PORT/DATABASE"
        ) from None
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "no answer"
        raise OutputError(
            f"{option} {shown}: cannot reach the PostgreSQL server ({reason}); check the host, "
            "port, database name and credentials, and that the server is running"
        ) from None
    finally:
        engine.dispose()
