"""Shadow mode without an ERP: comparison, mapping, folder adapter, retries, run store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promotwin.policies.contract import ActionKind
from promotwin.policies.heuristics import BaseStockPolicy
from promotwin.policies.registry import make_policy
from promotwin.shadow import (
    ErpDataError,
    ErpState,
    ErpUnavailable,
    IdMapping,
    RetryPolicy,
    RunStore,
    ShadowRunner,
    SnapshotFolderAdapter,
    SnapshotOptions,
    build_snapshot,
    write_folder,
)
from promotwin.shadow.compare import compare
from promotwin.shadow.runner import parse_every

AS_OF = dt.date(2026, 3, 10)
SALES = ["date", "location", "sku", "channel", "units"]


def small_state() -> ErpState:
    """One DC (id 1) serving one store (id 2); two products from one supplier (lead 4 days)."""
    return ErpState.build(
        AS_OF,
        "test",
        locations=pd.DataFrame(
            {
                "erp_id": ["1", "2"],
                "code": ["DC", "S1"],
                "name": ["dc", "store"],
                "kind": ["dc", "store"],
                "serving_dc": ["", "1"],
            }
        ),
        lanes=pd.DataFrame({"origin": ["1"], "destination": ["2"], "transit_days": [2]}),
        products=pd.DataFrame(
            {
                "erp_id": ["10", "11"],
                "code": ["A", "B"],
                "name": ["a", "b"],
                "category": ["c", "c"],
                "price": [10.0, 4.0],
                "unit_cost": [6.0, 2.0],
            }
        ),
        suppliers=pd.DataFrame({"erp_id": ["7"], "code": ["V"], "name": ["v"]}),
        product_suppliers=pd.DataFrame(
            {
                "product": ["10", "11"],
                "supplier": ["7", "7"],
                "lead_time_days": [4.0, 4.0],
                "sequence": [1, 1],
            }
        ),
        stock=pd.DataFrame(
            {
                "location": ["1", "1", "2", "2"],
                "product": ["10", "11", "10", "11"],
                "on_hand": [50.0, 0.0, 3.0, 1.0],
                "forecast": [np.nan] * 4,
            }
        ),
        inbound=pd.DataFrame(
            {
                "kind": ["purchase"],
                "origin": ["7"],
                "destination": ["1"],
                "product": ["11"],
                "qty": [12.0],
                "planned_date": [AS_OF + dt.timedelta(days=3)],
                "reference": ["po1"],
            }
        ),
        sales=pd.DataFrame(
            {
                "date": [
                    AS_OF,
                    AS_OF - dt.timedelta(days=1),
                    AS_OF - dt.timedelta(days=40),
                    AS_OF - dt.timedelta(days=2),
                ],
                "location": ["2", "2", "2", "2"],
                "product": ["10", "10", "10", "11"],
                "channel": ["walk_in"] * 4,
                "units": [14.0, 14.0, 100.0, 84.0],
            }
        ),
    )


def test_snapshot_from_tables_hand_checked() -> None:
    built = build_snapshot(small_state(), IdMapping())
    s = built.snapshot
    assert s.location_ids == ("DC", "S1") and s.sku_ids == ("A", "B")
    assert s.on_hand.tolist() == [[50, 0], [3, 1]]
    assert s.on_order.tolist() == [[0, 12], [0, 0]]
    assert [(x.due_day, x.qty.tolist()) for x in s.inbound] == [(3, [12])]
    assert s.history_mean[1, 0] == pytest.approx(28 / 28)  # the 40-day-old sale is outside
    assert s.lanes["transit_days"].tolist() == [2]
    assert s.supplier_ids == ("V",) and s.lead_time_mean.tolist() == [4.0]
    assert built.issues == ()


def test_compare_hand_solved() -> None:
    d = dt.date(2026, 1, 1)
    policy = pd.DataFrame(
        {
            "sku": ["A", "B", "C"],
            "location": ["DC"] * 3,
            "qty": [100.0, 10.0, 5.0],
            "due": [d, d, d],
        }
    )
    erp = pd.DataFrame(
        {
            "sku": ["A", "B", "D"],
            "location": ["DC"] * 3,
            "qty": [90.0, 20.0, 7.0],
            "due": [d - dt.timedelta(days=2), d, d],
        }
    )
    c = compare(policy, erp, tolerance=0.2)
    assert c.summary["keys"] == 4 and c.summary["both"] == 2
    assert c.summary["policy_only"] == 1 and c.summary["erp_only"] == 1
    assert c.summary["agreement_rate"] == pytest.approx(1 / 4)  # only A is within 20 %
    assert c.lines.set_index("sku").loc["A", "timing_diff_days"] == 2
    assert c.summary["mean_abs_qty_diff"] == pytest.approx(10.0)


def test_mapping_reports_unknown_items_and_persists(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "s.sqlite")
    state = small_state()
    mapping = store.load_mapping("erp")
    assert mapping.resolve(state.tables) == []  # first run initialises
    store.save_mapping("erp", mapping)
    again = store.load_mapping("erp")
    assert again.entries == mapping.entries
    products = pd.concat(
        [
            state["products"],
            pd.DataFrame(
                {
                    "erp_id": ["12"],
                    "code": ["NEW"],
                    "name": ["n"],
                    "category": ["c"],
                    "price": [1.0],
                    "unit_cost": [0.5],
                }
            ),
        ]
    )
    bigger = ErpState.build(AS_OF, "test", **{**state.tables, "products": products})
    built = build_snapshot(bigger, again)
    assert "NEW" not in built.snapshot.sku_ids
    assert any("unknown product" in i and "NEW" in i for i in built.issues)


def test_folder_adapter_round_trip_and_bad_folders(tmp_path: Path) -> None:
    state = small_state()
    folder = write_folder(state, tmp_path / "snap")
    schema = json.loads((folder / "schema.json").read_text())
    assert set(schema["properties"]) >= {"stock", "products", "purchases"}
    again = SnapshotFolderAdapter(folder).read_state()
    assert build_snapshot(again, IdMapping()).digest == build_snapshot(state, IdMapping()).digest
    with pytest.raises(ValueError, match="holds a snapshot as of"):
        SnapshotFolderAdapter(folder).read_state(AS_OF + dt.timedelta(days=1))
    (folder / "stock.csv").unlink()
    with pytest.raises(ErpDataError, match="missing table"):
        SnapshotFolderAdapter(folder).read_state()
    with pytest.raises(ErpDataError, match="manifest"):
        SnapshotFolderAdapter(tmp_path)


class FlakyFolder(SnapshotFolderAdapter):
    """Fault injection: the first ``failures`` reads fail as if the ERP were down."""

    def __init__(self, folder: Path, failures: int):
        super().__init__(folder)
        self.failures = failures
        self.calls = 0

    def read_state(self, as_of: dt.date | None = None, history_days: int = 28) -> ErpState:
        self.calls += 1
        if self.calls <= self.failures:
            raise ErpUnavailable("connection refused")
        return super().read_state(as_of, history_days)


def test_runner_retries_then_records_ok(tmp_path: Path) -> None:
    folder = write_folder(small_state(), tmp_path / "snap")
    store = RunStore(tmp_path / "s.sqlite")
    retry = RetryPolicy(attempts=5, initial_delay=0.01, time_limit=10)
    result = ShadowRunner(FlakyFolder(folder, 2), store, "base-stock", retry=retry).run_once()
    assert result.run.status == "ok" and result.run.attempts == 4  # 3 reads + actions
    assert len(store.recommendations(result.run.run_id)) == result.run.n_recommendations > 0


def test_runner_gives_up_and_records_failure_without_partial_results(tmp_path: Path) -> None:
    folder = write_folder(small_state(), tmp_path / "snap")
    store = RunStore(tmp_path / "s.sqlite")
    retry = RetryPolicy(attempts=3, initial_delay=0.01, time_limit=10)
    result = ShadowRunner(FlakyFolder(folder, 99), store, "base-stock", retry=retry).run_once()
    assert result.run.status == "failed" and "connection refused" in result.run.reason
    assert result.run.attempts == 3
    runs = store.runs()
    assert len(runs) == 1 and store.recommendations(result.run.run_id).empty


def test_every_loop_survives_failures(tmp_path: Path) -> None:
    folder = write_folder(small_state(), tmp_path / "snap")
    store = RunStore(tmp_path / "s.sqlite")
    retry = RetryPolicy(attempts=1, initial_delay=0.01, time_limit=5)
    runner = ShadowRunner(FlakyFolder(folder, 1), store, "order-point", retry=retry)
    results = runner.run_every(parse_every("1s"), max_runs=2, sleep=lambda _: None)
    assert [r.run.status for r in results] == ["failed", "ok"]
    with pytest.raises(ValueError, match="unit"):
        parse_every("soon")


def test_write_drafts_to_folder_outbox(tmp_path: Path) -> None:
    folder = write_folder(small_state(), tmp_path / "snap")
    store = RunStore(tmp_path / "s.sqlite")
    result = ShadowRunner(
        SnapshotFolderAdapter(folder), store, "base-stock", write_drafts=True
    ).run_once()
    buys = result.recommendations.query("kind == 'purchase'")
    assert len(buys) > 0
    outbox = list((folder / "outbox").glob("*.csv"))
    assert len(outbox) == 1 and len(pd.read_csv(outbox[0])) == len(buys)
    assert len(store.drafts(result.run.run_id)) == len(buys)
    # the same recommendation again: found under its key, not written twice
    again = ShadowRunner(
        SnapshotFolderAdapter(folder), store, "base-stock", write_drafts=True
    ).run_once()
    assert again.run.status == "ok" and len(again.drafts) == 0
    assert list((folder / "outbox").glob("*.csv")) == outbox
    keys = store.draft_keys()
    assert keys["state"].tolist() == ["created"] and keys["run_id"].iloc[0] == result.run.run_id


def test_degraded_run_no_sales_cost_zero_and_failed_runs_keep_as_of(tmp_path: Path) -> None:
    state = small_state()
    tables = dict(state.tables)
    tables["sales"] = tables["sales"].iloc[0:0]
    tables["products"] = tables["products"].assign(unit_cost=[0.0, 2.0])
    folder = write_folder(ErpState.build(AS_OF, "test", **tables), tmp_path / "snap")
    store = RunStore(tmp_path / "s.sqlite")
    result = ShadowRunner(
        SnapshotFolderAdapter(folder), store, "base-stock", write_drafts=True
    ).run_once()
    assert result.run.status == "degraded"
    codes = set(store.warnings(result.run.run_id)["code"])
    assert {"no-sales-history", "cost-missing", "drafts-not-written"} <= codes
    assert "all forecasts are 0" in result.run.reason and "['A']" in result.run.reason
    assert not (folder / "outbox").exists()  # a degraded run writes no drafts
    failed = ShadowRunner(
        FlakyFolder(folder, 99), store, "base-stock", retry=RetryPolicy(attempts=1)
    ).run_once()
    assert failed.run.status == "failed" and failed.run.as_of == str(AS_OF)


def test_layout_csv_checked_row_by_row_and_applied() -> None:
    from promotwin.shadow import layout

    rows = pd.DataFrame(
        {
            "erp_code": ["DC", "S1", "S1", "S2"],
            "role": ["dc", "store", "store", "shop"],
            "serving_dc": ["", "XX", "DC", ""],
            "supplied_by": ["supplier", "dc", "dc", "supplier"],
        }
    )
    with pytest.raises(ValueError) as err:
        layout.validate(rows, "layout.csv")
    text = str(err.value)
    assert "'S1' appears more than once" in text and "line 3 (S1)" in text and "'XX'" in text
    assert "line 5 (S2): role 'shop'" in text
    good = layout.validate(rows.drop(index=[1, 3]).assign(role=["dc", "store"]))
    # the state's S1 (erp 2) becomes a store buying direct: a direct-store-delivery store,
    # replenished by its own purchases, not by the DC (its home DC only for ecommerce)
    good.loc[good["erp_code"] == "S1", ["serving_dc", "supplied_by"]] = ["", "supplier"]
    locations, notes = layout.apply(small_state()["locations"], good)
    assert notes == []
    tables = {**small_state().tables, "locations": locations}
    built = build_snapshot(ErpState.build(AS_OF, "test", **tables), IdMapping())
    s = built.snapshot
    assert s.location_ids == ("DC", "S1") and s.n_dcs == 1
    assert built.warnings == ()
    assert s.direct is not None and s.direct.tolist() == [False, True]
    assert s.dc_replenished is not None and s.dc_replenished.tolist() == [False, False]
    plan = BaseStockPolicy().decide(s)
    assert (plan.destination[plan.kind == ActionKind.SHIPMENT] != 1).all()
    # the counterfactual's twin network keeps S1 a store supplied direct, served by no DC
    from promotwin.shadow.counterfactual import scenario_from_snapshot

    twin = scenario_from_snapshot(built, {}, 5, AS_OF)
    assert [(x.id, x.supplied_by) for x in twin.stores] == [("S1", "supplier")]
    assert twin.dcs[0].serves == ()


def test_sales_channels_follow_the_kept_layout(tmp_path: Path) -> None:
    from promotwin.shadow.runner import apply_kept_layout

    state = small_state()
    sales = pd.concat(
        [state["sales"], state["sales"].assign(location="1", channel="ecommerce", units=5.0)],
        ignore_index=True,
    )
    state = dataclasses.replace(state, tables={**state.tables, "sales": sales})
    store = RunStore(tmp_path / "s.sqlite")
    # S1 (erp 2) re-roled as a DC; the old DC (erp 1) as a store buying from suppliers
    store.save_layout(
        "test",
        pd.DataFrame(
            {
                "erp_code": ["DC", "S1"],
                "role": ["store", "dc"],
                "serving_dc": ["", ""],
                "supplied_by": ["supplier", "supplier"],
                "reason": ["", ""],
            }
        ),
    )
    kept, _, _ = apply_kept_layout(store, state)
    got = kept["sales"].groupby(["location", "channel"])["units"].sum().to_dict()
    # every unit kept, each warehouse's sales now in the channel of its new role
    assert got == {("1", "walk_in"): 20.0, ("2", "ecommerce"): 212.0}
    assert kept["sales"].drop(columns="channel").equals(sales.drop(columns="channel"))
    # without a kept layout the adapter's channels stand
    assert apply_kept_layout(RunStore(tmp_path / "t.sqlite"), state)[0]["sales"].equals(sales)


def test_counterfactual_replays_the_erps_actual_receipts() -> None:
    from promotwin.shadow.counterfactual import counterfactual
    from promotwin.shadow.erpdata import ErpActions

    start, days = AS_OF + dt.timedelta(days=1), 6
    end = start + dt.timedelta(days=days - 1)
    built = build_snapshot(small_state(), IdMapping())
    cost_b = float(built.snapshot.unit_cost[1])

    def replay(**receipt: object) -> dict[str, float]:
        """The ERP bought 30 B for the DC on the period's first day (planned lead 4 days)."""
        line = {
            "reference": "P1/purchase.line,1",
            "state": "done",
            "source": "planner",
            "supplier": "7",
            "destination": "1",
            "product": "11",
            "qty": 30.0,
            "order_date": start,
            "delivery_date": start + dt.timedelta(days=4),
            **receipt,
        }
        actions = ErpActions.build(start, end, purchases=pd.DataFrame([line]))
        return counterfactual(built, actions, pd.DataFrame(columns=SALES), "base-stock").kpis[
            "erp-actual"
        ]

    planned = replay()  # no receipt data: arrives after the planned 4 days
    early = replay(received_date=start + dt.timedelta(days=2), received_qty=30.0)
    half = replay(received_date=start + dt.timedelta(days=2), received_qty=15.0)
    never = replay(received_date=None, received_qty=0.0)
    late = replay(received_date=end + dt.timedelta(days=3), received_qty=30.0)
    got = {k: r["purchased_units"] - 12 for k, r in [("planned", planned), ("early", early)]}
    got |= {k: r["purchased_units"] - 12 for k, r in [("half", half), ("never", never)]}
    got["late"] = late["purchased_units"] - 12  # 12: the purchase open before the period
    assert got == {"planned": 30, "early": 30, "half": 15, "never": 0, "late": 0}
    # 30 units on the DC's shelf 2 days longer (day 2 instead of day 4) out of 6 days
    held = early["avg_inventory_value"] - planned["avg_inventory_value"]
    assert held == pytest.approx(30 * cost_b * 2 / days)
    assert half["avg_inventory_value"] - never["avg_inventory_value"] == pytest.approx(
        15 * cost_b * 4 / days
    )


def test_store_made_before_degraded_runs_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    old = RunStore(tmp_path / "new.sqlite")
    result = ShadowRunner(
        SnapshotFolderAdapter(write_folder(small_state(), tmp_path / "snap")), old, "base-stock"
    ).run_once()
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, started TEXT NOT NULL, finished TEXT NOT "
        "NULL, status TEXT NOT NULL CHECK (status IN ('ok', 'partial', 'failed')), reason TEXT "
        "NOT NULL, source TEXT NOT NULL, policy TEXT NOT NULL, as_of TEXT, snapshot_hash TEXT, "
        "state_digest TEXT, n_recommendations INTEGER NOT NULL, attempts INTEGER NOT NULL, "
        "write_drafts INTEGER NOT NULL, seconds REAL NOT NULL);"
    )
    con.execute(
        "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", tuple(vars(result.run).values())
    )
    con.commit()
    con.close()
    store = RunStore(path)
    assert store.runs()["run_id"].tolist() == [result.run.run_id]
    degraded = dataclasses.replace(result.run, run_id="later", status="degraded")
    store.record(degraded)
    assert store.runs()["status"].tolist() == ["ok", "degraded"]


def test_same_plan_as_policy_on_the_snapshot(tmp_path: Path) -> None:
    built = build_snapshot(small_state(), IdMapping())
    folder = write_folder(small_state(), tmp_path / "snap")
    result = ShadowRunner(
        SnapshotFolderAdapter(folder), RunStore(tmp_path / "s.sqlite"), "base-stock"
    ).run_once()
    direct = make_policy("base-stock").decide(built.snapshot).to_frame(built.snapshot)
    got = result.recommendations[direct.columns]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), direct, check_dtype=False)


def test_core_imports_without_tryton() -> None:
    code = (
        "import sys\n"
        "for m in ('trytond', 'proteus'): sys.modules[m] = None\n"
        "import shadow, cli.main\n"
        "from shadow.tryton import TrytonAdapter\n"
        "assert 'trytond' not in [k for k, v in sys.modules.items() if v is not None]\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_url_credentials_rejected_and_redacted() -> None:
    from promotwin.shadow.tryton import TrytonAdapter, redact

    with pytest.raises(ValueError, match="not in the URL"):
        TrytonAdapter("http://admin:secret@127.0.0.1:1/db")
    assert "secret" not in redact("http://admin:secret@127.0.0.1:8000/db")


def test_retries_last_as_long_as_the_time_limit_allows(tmp_path: Path) -> None:
    folder = write_folder(small_state(), tmp_path / "snap")
    retry = RetryPolicy(initial_delay=0.01, max_delay=0.02, time_limit=10)
    result = ShadowRunner(
        FlakyFolder(folder, 9), RunStore(tmp_path / "s.sqlite"), "base-stock", retry=retry
    ).run_once()
    assert result.run.status == "ok" and result.run.attempts == 11  # 10 reads + actions
    gives_up = RetryPolicy(initial_delay=0.2, max_delay=0.2, time_limit=1.0)
    failed = ShadowRunner(
        FlakyFolder(folder, 99), RunStore(tmp_path / "s.sqlite"), "base-stock", retry=gives_up
    ).run_once()
    assert failed.run.status == "failed" and "1 s time limit" in failed.run.reason
    assert 4 <= failed.run.attempts <= 6 and failed.run.seconds < 2


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://127.0.0.1:8000/db", "unsupported Tryton URL scheme 'ftp'"),
        ("http://127.0.0.1:8000/", "needs the database name"),
        ("http://:8000/db", "no host"),
    ],
)
def test_configuration_errors_exit_2_and_are_not_recorded(
    tmp_path: Path, url: str, says: str
) -> None:
    from typer.testing import CliRunner

    from promotwin.cli.main import app

    store = tmp_path / "runs.sqlite"
    for args in (
        ["--url", url, "--once", "--store", str(store)],
        ["export", "--url", url, "--out", str(tmp_path / "out")],
        ["counterfactual", "--url", url, "--start", "2026-03-01", "--end", "2026-03-02"],
    ):
        result = CliRunner().invoke(app, ["shadow", *args])
        assert result.exit_code == 2, (args, result.output)
        assert says in result.output and "internal error" not in result.output
    assert not store.exists() or RunStore(store).runs().empty


def test_export_layout_and_counterfactual_report_an_unreachable_erp(tmp_path: Path) -> None:
    import socket

    from typer.testing import CliRunner

    from promotwin.cli.main import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connection refused
    url = f"http://127.0.0.1:{port}/db"
    env = {"TWIN_ERP_USER": "admin", "TWIN_ERP_PASSWORD": "x"}
    for args in (
        ["export", "--url", url, "--out", str(tmp_path / "out"), "--time-limit", "1"],
        ["layout", "--url", url, "--time-limit", "1", "--store", str(tmp_path / "s.sqlite")],
        ["counterfactual", "--url", url, "--start", "2026-03-01", "--end", "2026-03-02"]
        + ["--time-limit", "1", "--store", str(tmp_path / "s.sqlite")],
    ):
        result = CliRunner().invoke(app, ["shadow", *args], env=env)
        assert result.exit_code == 1, (args, result.output)
        assert "ERP fault" in result.output and "time limit" in result.output
        assert "internal error" not in result.output


def test_folder_tables_checked_row_by_row(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from promotwin.cli.main import app

    folder = write_folder(small_state(), tmp_path / "snap")

    def edit(name: str, **columns: list[str]) -> None:
        frame = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
        for col, values in columns.items():
            frame[col] = values
        frame.to_csv(folder / f"{name}.csv", index=False)

    edit("products", erp_id=["10", "10"])  # duplicate id
    edit("locations", kind=["dc", "warehouse"])  # unknown kind
    edit("stock", on_hand=["50", "ten", "3", "1"], location=["1", "1", "9", "2"])
    edit("sales", units=["1", "-2", "1", "1"], channel=["walk_in", "walk_in", "mail", "walk_in"])
    with pytest.raises(ValueError) as err:
        SnapshotFolderAdapter(folder)
    text = str(err.value)
    for part in (
        "table 'products', column 'erp_id': duplicate id(s) ['10'] at line(s) 2, 3",
        "table 'locations', column 'kind'",
        "table 'stock', column 'on_hand'",
        "line(s) 3",
        "table 'stock', column 'location': unknown locations ['9']",
        "table 'sales', column 'units': input should be greater than or equal to 0 at line(s) 3",
        "table 'sales', column 'channel'",
    ):
        assert part in text, part
    result = CliRunner().invoke(
        app,
        ["shadow", "--erp", "folder", "--url", str(folder), "--once"]
        + ["--store", str(tmp_path / "s.sqlite")],
    )
    assert result.exit_code == 2 and "duplicate id" in result.output, result.output
    assert not (tmp_path / "s.sqlite").exists() or RunStore(tmp_path / "s.sqlite").runs().empty


def test_forecaster_fitted_on_erp_history_then_loaded(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    days = [AS_OF - dt.timedelta(days=d) for d in range(56)]
    rates = {"10": 3.0, "11": 1.0}
    sales = pd.DataFrame(
        [
            {"date": d, "location": "2", "product": p, "channel": "walk_in", "units": u}
            for d in days
            for p, rate in rates.items()
            if (u := int(rng.poisson(rate)))
        ]
    )
    tables = {**small_state().tables, "sales": sales}
    folder = write_folder(ErpState.build(AS_OF, "test", 56, **tables), tmp_path / "snap")
    store = RunStore(tmp_path / "runs" / "s.sqlite")
    gbm = SnapshotOptions(forecast="gbm")
    first = ShadowRunner(SnapshotFolderAdapter(folder), store, "base-stock", options=gbm).run_once()
    assert first.run.status == "ok", first.run.reason
    recorded = store.model(first.run.run_id)
    assert recorded is not None and recorded[0] == "gbm" and Path(str(recorded[1])).exists()
    assert Path(str(recorded[1])).parent == tmp_path / "runs" / "models"
    s = first.built.snapshot  # type: ignore[union-attr]
    store_row = s.location_ids.index("S1")
    for sku, erp_id in (("A", "10"), ("B", "11")):
        sold = sales[sales["product"] == erp_id]["units"].sum() / 56
        got = s.forecast_mean[:, store_row, s.sku_ids.index(sku)]
        assert np.allclose(got, sold, rtol=0.15), (sku, got[:3], sold)  # the sample mean
    loaded = ShadowRunner(
        SnapshotFolderAdapter(folder),
        store,
        "base-stock",
        options=SnapshotOptions(forecast="gbm", model_file=str(recorded[1])),
    ).run_once()
    assert loaded.built is not None and loaded.built.digest == first.built.digest  # type: ignore[union-attr]
    glm = ShadowRunner(
        SnapshotFolderAdapter(folder),
        store,
        "base-stock",
        options=SnapshotOptions(forecast="glm", model_file=str(tmp_path / "glm.json")),
    ).run_once()
    assert glm.run.status == "failed" and "cannot plan on this data" in glm.run.reason
    assert "no promoted rows" in glm.run.reason  # Tryton has no promotions to fit a GLM on
