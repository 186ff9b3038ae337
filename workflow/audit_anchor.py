"""Anchors for the audit trail's head, kept outside its database.

The hash chain shows an edited, deleted or reordered record, but someone who deletes the last
records *and* rewrites the head row leaves a shorter chain that is intact. An anchor is a
(seq, hash) pair the store once reported as its head, written where that person would also have
to reach: an append-only anchor file (one JSON line per committed transaction that advanced the
head) and each governed run's ``manifest.json``. Verification checks that every anchored record
is still in the chain with the same hash.

With ``TWIN_AUDIT_KEY`` set, each anchor carries an HMAC-SHA256 over its fields, so new anchors
cannot be forged (to match a rewritten log) without the key.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promotwin import strict_json

ENV_KEY = "TWIN_AUDIT_KEY"
ENV_ANCHOR = "TWIN_AUDIT_ANCHOR"
SUFFIX = ".anchor"


class AnchorError(ValueError):
    """An anchor file or manifest that cannot be read as anchors (says where and why)."""


def audit_key() -> bytes | None:
    """The signing key from ``TWIN_AUDIT_KEY`` (None when unset or empty)."""
    key = os.environ.get(ENV_KEY, "")
    return key.encode() if key else None


@dataclass(frozen=True)
class Anchor:
    """The head the store reported: record ``seq`` had ``hash``; ``source`` says where it was
    read from (for messages)."""

    seq: int
    hash: str
    at: str
    run_id: str = ""
    mac: str = ""
    source: str = ""

    def signed_text(self) -> bytes:
        return f"{self.seq}|{self.hash}|{self.at}|{self.run_id}".encode()

    def signature_ok(self, key: bytes) -> bool:
        expected = hmac.new(key, self.signed_text(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.mac)

    def record(self) -> dict[str, Any]:
        """The JSON form (anchor file line, manifest entry)."""
        fields: dict[str, Any] = {"seq": self.seq, "hash": self.hash, "at": self.at}
        if self.run_id:
            fields["run_id"] = self.run_id
        if self.mac:
            fields["mac"] = self.mac
        return fields


def make_anchor(seq: int, hash_: str, run_id: str = "", key: bytes | None = None) -> Anchor:
    """An anchor for the head (seq, hash) now, signed when a key is given."""
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    anchor = Anchor(seq, hash_, at, run_id)
    if key is None:
        return anchor
    mac = hmac.new(key, anchor.signed_text(), hashlib.sha256).hexdigest()
    return Anchor(seq, hash_, at, run_id, mac)


def parse_anchor(data: Any, source: str) -> Anchor:
    """One anchor from its JSON form; ``AnchorError`` naming ``source`` if it is not one."""
    if not isinstance(data, Mapping):
        raise AnchorError(f"{source}: not an anchor (expected an object with seq, hash, at)")
    seq, hash_, at = data.get("seq"), data.get("hash"), data.get("at")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise AnchorError(f"{source}: seq must be a record number, not {seq!r}")
    if not isinstance(hash_, str) or len(hash_) != 64:
        raise AnchorError(f"{source}: hash must be 64 hex digits, not {hash_!r}")
    if not isinstance(at, str):
        raise AnchorError(f"{source}: at must be a timestamp, not {at!r}")
    run_id, mac = data.get("run_id", ""), data.get("mac", "")
    return Anchor(seq, hash_, at, str(run_id), str(mac), source)


class AnchorFile:
    """An append-only file of anchors, one JSON line each; appends from several processes
    queue on an exclusive ``flock`` and are fsynced before the writer goes on."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, anchor: Anchor) -> None:
        line = strict_json.dumps(anchor.record(), separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

    def read(self) -> list[Anchor]:
        """Every anchor in the file, in the order written; ``[]`` if there is no file."""
        if not self.path.is_file():
            return []
        anchors = []
        text = self.path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            source = f"{self.path} line {number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AnchorError(f"{source}: not JSON ({exc.msg})") from None
            anchors.append(parse_anchor(data, source))
        return anchors


def manifest_anchor(path: str | Path) -> Anchor:
    """The audit head a governed run recorded in its ``manifest.json`` (key ``audit``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnchorError(f"no manifest at {path}: give a run's --out folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnchorError(f"{path} is not a run manifest (not JSON: {exc})") from None
    if not isinstance(manifest, Mapping) or "audit" not in manifest:
        raise AnchorError(
            f"{path} records no audit head: only governed runs (`twin governance run --out`) do"
        )
    return parse_anchor(manifest["audit"], f"manifest {path}")


def default_anchor_path(url: str) -> Path | None:
    """Where a store's anchor file lives: next to a SQLite file (``store.db.anchor``); for a
    server, the file ``TWIN_AUDIT_ANCHOR`` names; None for an in-memory store or a server
    without the variable."""
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            return None
        return Path(url.removeprefix("sqlite:///") + SUFFIX)
    configured = os.environ.get(ENV_ANCHOR, "")
    return Path(configured) if configured else None
