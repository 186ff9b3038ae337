"""Fixtures shared by the tests (the helpers themselves live in ``promotwin.testing``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from promotwin.scenarios import Scenario
from promotwin.testing.postgres import PostgresServer, start_postgres


@pytest.fixture
def appliance() -> Scenario:
    from promotwin.scenarios import load_scenario

    return load_scenario("appliance_promo")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session; skips (with the reason) if it cannot start."""
    server = start_postgres()
    if isinstance(server, str):
        pytest.skip(server)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A store location that does not exist yet: a SQLite file (anchor file next to it), or a
    fresh PostgreSQL database (anchor file named by TWIN_AUDIT_ANCHOR)."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    monkeypatch.setenv("TWIN_AUDIT_ANCHOR", str(tmp_path / "postgres.anchor"))
    return server.new_database()
