"""Input safety beyond the corpus: strict JSON, the size guard's speed, one writer per output,
dates never guessed, store checks that let good stores through."""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from promotwin import strict_json
from promotwin.cli.main import app
from promotwin.cli.outputs import OutputError, check_store, check_writable, exclusive, lock_path
from promotwin.demand.glm_design import prepare
from promotwin.demand.history import validate_history, weekly_gaps
from promotwin.demand.replay import HistoryError
from promotwin.scenarios import ScenarioError, parse_scenario
from promotwin.scenarios.loading import estimate_size, parse_size

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
PACKAGE_DIRS = [
    "twin",
    "scenarios",
    "demand",
    "policies",
    "optimization",
    "workflow",
    "shadow",
    "experiments",
    "dashboards",
    "cli",
    "promotwin",
    "service",
]
runner = CliRunner()


def _json_dump_calls(path: Path) -> list[tuple[int, bool]]:
    """(line, has allow_nan=False) of every ``json.dump``/``json.dumps`` call in ``path``."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("dump", "dumps")
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "json"
        ):
            strict = any(
                k.arg == "allow_nan"
                and isinstance(k.value, ast.Constant)
                and k.value.value is False
                for k in node.keywords
            )
            calls.append((node.lineno, strict))
    return calls


def test_every_json_the_package_writes_is_strict() -> None:
    loose = []
    scanned = 0
    for folder in PACKAGE_DIRS:
        for path in (ROOT / folder).rglob("*.py") if (ROOT / folder).is_dir() else []:
            for line, strict in _json_dump_calls(path):
                scanned += 1
                if not strict:
                    loose.append(f"{path.relative_to(ROOT)}:{line}")
    assert scanned >= 2, "the scan found the strict writer's own calls"
    assert not loose, f"json.dump(s) without allow_nan=False (use promotwin.strict_json): {loose}"


def strict_loads(text: str) -> object:
    """Parse JSON as strict readers do: ``NaN`` and ``Infinity`` are errors."""

    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_strict_json_writes_null_for_non_finite_numbers() -> None:
    import numpy as np

    value = {"a": float("nan"), "b": [float("inf"), 1.5], "c": np.float64("-inf"), "d": 3}
    with pytest.raises(ValueError, match="NaN is not JSON"):
        strict_loads(json.dumps(value))  # what plain json writes
    assert strict_loads(strict_json.dumps(value)) == {
        "a": None,
        "b": [None, 1.5],
        "c": None,
        "d": 3,
    }


def test_an_infinite_price_never_reaches_kpis_json(tmp_path: Path) -> None:
    text = (DATA / "good_scenario.yaml").read_text().replace("price: 20", "price: .inf")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text)
    assert any(p.where == "skus.0.price" and "finite" in p.message for p in info.value.problems)


def test_size_guard_refuses_huge_networks_fast() -> None:
    for block in ("{stores: 1000000000000, skus: 10}", "{stores: 100000, skus: 5000}"):
        text = f"name: big\nstart_date: 2026-01-01\nhorizon_days: 60\nsynthetic: {block}\n"
        t0 = time.perf_counter()
        with pytest.raises(ScenarioError) as info:
            parse_scenario(text)
        assert time.perf_counter() - t0 < 2
        assert "too large" in str(info.value) and "--max-memory" in str(info.value)
    # the estimate is linear in cells and days: 2 x the cells, ~2 x the memory above the base
    one, two = estimate_size(100, 1000, 30), estimate_size(200, 1000, 30)
    assert two.cells == 2 * one.cells
    assert math.isclose(
        two.memory_bytes - one.memory_bytes,
        one.memory_bytes - estimate_size(0, 1000, 30).memory_bytes,
    )


def test_max_memory_raises_the_limit_knowingly() -> None:
    text = "name: m\nstart_date: 2026-01-01\nhorizon_days: 10\nsynthetic: {stores: 3, skus: 4}\n"
    assert len(parse_scenario(text).stores) == 3
    with pytest.raises(ScenarioError, match="too large"):
        parse_scenario(text, max_memory=parse_size("1M"))
    assert parse_size("8G") == 8 * 2**30 and parse_size("512MiB") == 512 * 2**20
    for bad in ("", "lots", "-1G", "nanG", "infG"):
        with pytest.raises(ValueError, match="--max-memory"):
            parse_size(bad)


def _history(dates: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"date": dates, "location": "S1", "sku": "K1", "channel": "walk_in", "units": 3}
    )


def test_dd_mm_dates_are_refused_not_guessed_and_read_with_a_format() -> None:
    dates = [f"{d:02d}/03/2026" for d in range(1, 13)]  # every day <= 12: either reading parses
    with pytest.raises(HistoryError, match="DD/MM vs MM/DD is not guessed"):
        validate_history(_history(dates))
    clean = validate_history(_history(dates), date_format="DD/MM/YYYY")
    assert list(clean["date"].dt.day) == list(range(1, 13))
    assert set(clean["date"].dt.month) == {3}
    us = validate_history(_history(dates), date_format="%m/%d/%Y")
    assert list(us["date"].dt.month) == list(range(1, 13))


def test_week_numbers_get_their_own_message() -> None:
    frame = _history([str(w) for w in range(1, 9)]).assign(date=range(1, 9))
    with pytest.raises(HistoryError, match="week numbers") as info:
        validate_history(frame)
    assert "duplicate" not in str(info.value)


def test_weekly_gaps_are_listed_and_a_late_series_is_not_a_gap() -> None:
    weeks = pd.date_range("2026-01-05", periods=8, freq="7D").strftime("%Y-%m-%d")
    early = _history(list(weeks[[0, 1, 2, 5, 6, 7]]))  # weeks 3 and 4 missing
    late = _history(list(weeks[4:])).assign(sku="K2")  # listed from week 4 on: no gap
    clean = validate_history(pd.concat([early, late], ignore_index=True))
    gaps = weekly_gaps(clean)
    assert len(gaps) == 1 and "S1 / K1 / walk_in: 2 missing week(s)" in gaps[0]


def test_a_day_before_a_series_first_row_is_not_listed_yet_not_zero_sales() -> None:
    days = pd.date_range("2026-01-05", periods=20, freq="D").strftime("%Y-%m-%d")
    early = _history(list(days[[0, 1, 2, 5, 6, 19]]))  # days 3, 4 and 7-18 sold nothing
    late = _history(list(days[12:])).assign(sku="K2")  # listed from day 12 on
    rows, _, period = prepare(validate_history(pd.concat([early, late], ignore_index=True)))
    assert period == 1
    per_sku = rows.groupby("sku")["date"].agg(["min", "count"])
    assert per_sku.loc["K1", "count"] == 20 and per_sku.loc["K2", "count"] == 8
    assert per_sku.loc["K2", "min"] == pd.Timestamp(days[12])
    k1 = rows[rows["sku"] == "K1"].set_index("date")["units"]
    assert (k1.loc[pd.Timestamp(days[3])], k1.loc[pd.Timestamp(days[10])]) == (0, 0)


def test_fit_with_weekly_gaps_refused_unless_weekly(tmp_path: Path) -> None:
    weeks = pd.date_range("2026-01-05", periods=30, freq="7D").strftime("%Y-%m-%d")
    rows = _history(list(weeks)).assign(price=[8.0 if i % 5 == 0 else 10.0 for i in range(30)])
    rows = rows.assign(units=[9 if i % 5 == 0 else 3 + i % 3 for i in range(30)])
    rows.drop(index=[10, 11]).to_csv(tmp_path / "h.csv", index=False)
    out = tmp_path / "m.json"
    refused = runner.invoke(app, ["fit", str(tmp_path / "h.csv"), "--out", str(out)])
    assert refused.exit_code == 2 and "--weekly" in refused.output and not out.exists()
    fitted = runner.invoke(app, ["fit", str(tmp_path / "h.csv"), "--out", str(out), "--weekly"])
    assert fitted.exit_code == 0, fitted.output
    assert "assumed: missing weeks were left out of the fit" in " ".join(fitted.output.split())
    strict_loads(out.read_text())
    assert not lock_path(out).exists()


def _twin(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "promotwin.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )


@contextlib.contextmanager
def _held(out: Path) -> Iterator[subprocess.Popen[str]]:
    """Another real process holding ``out``'s lock until the block ends."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from promotwin.cli.outputs import exclusive\n"
            "with exclusive(pathlib.Path(sys.argv[1])):\n"
            "    print('held', flush=True); sys.stdin.readline()",
            str(out),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)


def test_a_second_writer_exits_2_naming_the_holder(tmp_path: Path) -> None:
    """A real process holds --out; a real `twin run` to the same folder stops at once."""
    out = tmp_path / "run"
    with _held(out) as holder:
        second = _twin("run", str(DATA / "good_scenario.yaml"), "--out", str(out), "--days", "5")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        assert f"pid {holder.pid}" in err and "being written" in err
        assert not out.exists()
    assert not lock_path(out).exists()


@pytest.mark.parametrize("command", ["compare", "fit"])
def test_experiment_folders_and_fit_outputs_have_one_writer(command: str, tmp_path: Path) -> None:
    """A held experiment folder or model file: compare (resume included) and fit exit 2."""
    out = tmp_path / ("exp" if command == "compare" else "model.json")
    history = tmp_path / "h.csv"
    pd.DataFrame(
        {
            "date": pd.date_range("2026-01-01", periods=40).strftime("%Y-%m-%d"),
            "location": "S1",
            "sku": "K1",
            "channel": "walk_in",
            "units": 3,
            "price": 10.0,
        }
    ).to_csv(history, index=False)
    args = {
        "compare": ["compare", "appliance_policies", "--out", str(out), "--workers", "1"],
        "fit": ["fit", str(history), "--out", str(out)],
    }[command]
    with _held(out) as holder:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert f"pid {holder.pid}" in " ".join(result.output.split())
        assert not out.exists()


def test_two_concurrent_runs_one_result_never_lost(tmp_path: Path) -> None:
    """Two `twin run`s into one --out at once: exactly one writes, the other exits 2."""
    out = tmp_path / "run"
    args = ("run", str(DATA / "good_scenario.yaml"), "--out", str(out), "--days", "20")
    runs = [_twin(*args, "--seed", str(seed)) for seed in (1, 2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    winner = next(i for i, (code, _, _) in enumerate(results) if code == 0)
    loser_err = results[1 - winner][2]
    assert "being written" in loser_err or "--overwrite" in loser_err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == winner + 1  # the folder holds the run that said "wrote"
    assert "wrote" in results[winner][1] and "wrote" not in results[1 - winner][1]


def test_lock_is_released_and_reusable(tmp_path: Path) -> None:
    dest = tmp_path / "x"
    with exclusive(dest):
        assert "pid" in lock_path(dest).read_text()
    with exclusive(dest):
        pass
    assert list(tmp_path.iterdir()) == []


def test_good_stores_pass_the_store_check(tmp_path: Path) -> None:
    import sqlite3

    check_store(str(tmp_path / "new.sqlite"))  # a new file in a writable folder
    sqlite3.connect(tmp_path / "db.sqlite").execute("create table t (x)").connection.commit()
    check_store(str(tmp_path / "db.sqlite"), create=False)
    check_store(f"sqlite:///{tmp_path / 'db.sqlite'}", create=False)
    with pytest.raises(OutputError, match="not a SQLite database"):
        check_store(str(DATA / "good_scenario.yaml"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.sqlite"]


def _hold_write_lock(paths: list[str], seconds: float, holding: Any) -> None:
    """Another process: hold a write transaction on every SQLite file in ``paths``."""
    import sqlite3

    cons = [sqlite3.connect(p, isolation_level=None) for p in paths]
    for con in cons:
        con.execute("BEGIN IMMEDIATE")
    holding.set()
    time.sleep(seconds)
    for con in cons:
        con.execute("COMMIT")


def test_sqlite_stores_wait_for_a_busy_writer_longer_than_sqlites_default(tmp_path: Path) -> None:
    """sqlite3 gives up after 5 s by default ("database is locked"); our stores wait longer, so
    a second writer (a shadow run beside a governed run) queues instead of losing its write."""
    import multiprocessing as mp

    from promotwin.shadow.mapping import IdMapping
    from promotwin.shadow.store import RunStore
    from promotwin.workflow.store import AuditEvent, Store

    governance, shadow = Store(tmp_path / "g.sqlite"), RunStore(tmp_path / "s.sqlite")
    ctx = mp.get_context("spawn")
    holding = ctx.Event()
    paths = [str(tmp_path / "g.sqlite"), str(tmp_path / "s.sqlite")]
    holder = ctx.Process(target=_hold_write_lock, args=(paths, 6.0, holding))
    holder.start()
    assert holding.wait(timeout=60)
    started = time.perf_counter()
    with governance.begin() as conn:
        governance.append(conn, [AuditEvent("r1", "proposed", "waiting-writer", 0)])
    row = pd.DataFrame(
        [("product", "7", "K-7", "K7")], columns=["kind", "erp_id", "code", "twin_id"]
    )
    shadow.save_mapping("erp", IdMapping.from_frame(row))
    waited = time.perf_counter() - started
    holder.join(timeout=30)
    assert holder.exitcode == 0
    assert waited > 5.0  # it really waited past sqlite3's default
    assert list(governance.audit_frame()["actor"]) == ["waiting-writer"]
    assert governance.verify().ok
    assert shadow.load_mapping("erp").entries["product"] == {"7": "K7"}


def test_a_store_file_marked_read_only_is_refused_even_for_root(tmp_path: Path) -> None:
    from promotwin.workflow.store import Store

    path = tmp_path / "frozen.sqlite"
    Store(path)
    path.chmod(0o444)  # root may still write it; the user said nobody should
    with pytest.raises(OutputError, match=r"read-only: make it writable \(chmod u\+w\)"):
        check_store(str(path), create=False)
    with pytest.raises(OutputError, match="read-only"):
        check_writable(path, "--out", "file")


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word (a hung PostgreSQL)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_postgresql_server_that_never_answers_is_refused_in_seconds() -> None:
    with _silent_server() as port:
        started = time.perf_counter()
        with pytest.raises(OutputError, match="cannot reach the PostgreSQL server") as info:
            check_store(f"postgresql://twin:secret@127.0.0.1:{port}/twin")
        elapsed = time.perf_counter() - started
    assert elapsed < 15, elapsed
    assert "secret" not in str(info.value) and "check the host, port" in str(info.value)
