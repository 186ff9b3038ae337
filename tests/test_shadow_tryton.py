"""Shadow mode against a real Tryton 8.2 (no mocks): in-process through proteus, and over
XML-RPC / JSON-RPC to a real ``trytond`` server on 127.0.0.1.

Provisioning (module activation + seeding) runs once per session; each test gets a copy of the
seeded template database. Skipped, with the reason, when Tryton cannot be provisioned
(set TWIN_REQUIRE_TRYTON=1 to make that an error instead).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from promotwin.policies.contract import ActionKind
from promotwin.policies.registry import make_policy
from promotwin.scenarios import parse_scenario
from promotwin.shadow import (
    Credentials,
    ErpState,
    IdMapping,
    RetryPolicy,
    RunStore,
    ShadowRunner,
    SnapshotFolderAdapter,
    build_snapshot,
    write_folder,
)
from promotwin.shadow.counterfactual import counterfactual
from promotwin.shadow.snapshot import sales_history
from promotwin.testing.tryton import (
    ADMIN_PASSWORD,
    Provisioned,
    Server,
    copy_database,
    dump_database,
    free_port,
    provision,
    write_config,
)
from promotwin.twin.model import Shipment, Twin

# module activation and seeding take ~30-70 s once per session: CI runs them (`make test-slow`);
# `make test` leaves them out to stay under 5 minutes
pytestmark = pytest.mark.slow

ADMIN = Credentials("admin", ADMIN_PASSWORD)
SESSION_TABLES = {"ir_session"}  # the server's own login bookkeeping, not the adapter's doing


@pytest.fixture(scope="session")
def tryton(tmp_path_factory: pytest.TempPathFactory) -> Provisioned:
    result = provision(tmp_path_factory.getbasetemp())
    if isinstance(result, str):
        if os.environ.get("TWIN_REQUIRE_TRYTON"):
            pytest.fail(result)
        pytest.skip(result)
    return result


@pytest.fixture
def db(tryton: Provisioned) -> str:
    return tryton.copy()


def adapter(tryton: Provisioned, database: str) -> Any:
    from promotwin.shadow.tryton import TrytonAdapter

    return TrytonAdapter(tryton.url(database))


# -- the snapshot --------------------------------------------------------------------------------


def test_snapshot_matches_what_was_seeded(tryton: Provisioned, db: str) -> None:
    seeded = tryton.seeded
    built = build_snapshot(adapter(tryton, db).read_state(), IdMapping())
    s = built.snapshot
    assert built.issues == ()
    assert s.location_ids == ("DC-N", "DC-S", "ST-1", "ST-2")
    assert s.n_dcs == 2 and s.serving_dc.tolist() == [0, 1, 0, 1]
    assert s.sku_ids == tuple(sorted(p["code"] for p in seeded.products))
    assert s.date == seeded.today
    li = {x: i for i, x in enumerate(s.location_ids)}
    ki = {x: i for i, x in enumerate(s.sku_ids)}
    expected = np.zeros_like(s.on_hand)
    promised = np.zeros_like(s.on_hand)
    for (loc, sku), q in seeded.open_sales.items():
        promised[li[loc], ki[sku]] = q
    for (loc, sku), q in seeded.on_hand.items():
        expected[li[loc], ki[sku]] = q
    assert promised.sum() > 0 and s.committed is not None
    assert np.array_equal(s.committed, promised)  # confirmed, unshipped sales
    assert np.array_equal(s.on_hand, expected - promised)  # what is available to plan with
    on_order = np.zeros_like(s.on_order)
    for o in seeded.open_orders:
        on_order[li[o["dc"]], ki[o["sku"]]] += o["qty"]
    assert np.array_equal(s.on_order, on_order)
    assert s.in_transit.sum() == 0
    due = sorted(
        (li[o["dc"]], (o["due"] - seeded.today).days, o["qty"]) for o in seeded.open_orders
    )
    got = sorted((sh.destination, sh.due_day, int(q)) for sh in s.inbound for q in sh.qty)
    assert got == due
    for sku, lead in seeded.lead_time.items():
        k = ki[sku]
        assert s.lead_time_mean[s.sku_supplier[k]] == lead
        assert s.supplier_ids[s.sku_supplier[k]] == seeded.supplier_of[sku]
    sold = np.zeros(s.on_hand.shape)
    for (loc, sku), q in seeded.sold.items():
        sold[li[loc], ki[sku]] = q
    assert np.allclose(s.history_mean, sold / 28)
    assert np.allclose(s.forecast_mean, s.history_mean[None])
    lanes = {
        (o, d): t
        for o, d, t in zip(
            s.lanes["origin"], s.lanes["destination"], s.lanes["transit_days"], strict=True
        )
    }
    assert lanes == {("DC-N", "ST-1"): 1, ("DC-S", "ST-2"): 2}
    price = {p["code"]: p["price"] for p in seeded.products}
    assert np.allclose(s.price, [price[k] for k in s.sku_ids])


def _twin_from_seed(tryton: Provisioned, policy_name: str) -> tuple[Twin, Any]:
    """The equivalent twin state, built from the seed spec (not from the ERP)."""
    seeded = tryton.seeded
    spec = seeded.spec
    stores = [
        {"id": st, "region": "r", "channels": ["walk_in"], "pickup_share": 0.0}
        for st, _, _ in spec.stores
    ]
    raw = {
        "name": "seeded",
        "start_date": str(seeded.today),
        "horizon_days": 30,
        "stores": stores,
        "dcs": [
            {
                "id": dc,
                "region": "r",
                "throughput": 1e9,
                "serves": [st for st, d, _ in spec.stores if d == dc],
            }
            for dc in spec.dcs
        ],
        "suppliers": [
            {
                "id": v,
                "lead_time": {"distribution": "fixed", "mean": lead},
                "expedite_lead_time": max(int(np.ceil(lead / 2)), 1),
            }
            for v, lead in spec.suppliers
        ],
        "lanes": [
            {"origin": dc, "destination": st, "transit_days": t} for st, dc, t in spec.stores
        ],
        "skus": [
            {
                "id": p["code"],
                "category": p["category"],
                "price": p["price"],
                "unit_cost": p["cost"],
                "supplier": seeded.supplier_of[p["code"]],
                "baseline": 1.0,
            }
            for p in sorted(seeded.products, key=lambda p: p["code"])
        ],
    }
    scenario = parse_scenario(yaml.safe_dump(raw, sort_keys=False))
    twin = Twin(scenario, make_policy(policy_name))
    net = twin.net
    li, ki = net.location_index, net.sku_index
    twin.on_hand[:] = 0
    for (loc, sku), q in seeded.on_hand.items():  # available: less what customers were promised
        twin.on_hand[li[loc], ki[sku]] = q - seeded.open_sales.get((loc, sku), 0)
    for o in seeded.open_orders:
        d, k, v = li[o["dc"]], ki[o["sku"]], net.supplier_index[o["supplier"]]
        twin.on_order[d, k] += o["qty"]
        sku, qty = np.array([k]), np.array([o["qty"]])
        twin.open[len(twin.open)] = Shipment(
            "purchase", v, d, (o["due"] - seeded.today).days, sku, qty, qty, np.zeros(1)
        )
    for (loc, sku), q in seeded.sold.items():
        twin.history_mean[li[loc], ki[sku]] = q / 28
    window = np.ascontiguousarray(np.broadcast_to(twin.history_mean, (21, *twin.on_hand.shape)))
    return twin, twin.snapshot(0, window)


@pytest.mark.parametrize("policy_name", ["order-point", "base-stock"])
def test_same_policy_same_plan_from_tryton_and_twin(
    tryton: Provisioned, db: str, policy_name: str
) -> None:
    erp = build_snapshot(adapter(tryton, db).read_state(), IdMapping()).snapshot
    _, twin = _twin_from_seed(tryton, policy_name)
    assert erp.location_ids == twin.location_ids and erp.sku_ids == twin.sku_ids
    for name in (
        "on_hand",
        "on_order",
        "in_transit",
        "serving_dc",
        "sku_supplier",
        "lead_time_mean",
        "price",
        "unit_cost",
    ):
        assert np.allclose(getattr(erp, name), getattr(twin, name)), name
    assert np.allclose(erp.history_mean, twin.history_mean)
    plan_erp = make_policy(policy_name).decide(erp)
    plan_twin = make_policy(policy_name).decide(twin)
    assert len(plan_erp) > 0  # the seed leaves some cells below their levels
    pd.testing.assert_frame_equal(plan_erp.to_frame(erp), plan_twin.to_frame(twin))


def test_erp_order_point_requests_read_back_and_compared(
    tryton: Provisioned, db: str, tmp_path: Path
) -> None:
    from proteus import config

    a = adapter(tryton, db)
    result = ShadowRunner(a, RunStore(tmp_path / "s.sqlite"), "order-point").run_once()
    assert result.run.status == "ok", result.run.reason
    # read the ERP's own requests independently, straight from Tryton
    cfg = config.set_trytond(db, config_file=str(tryton.conf))
    rows = cfg.get_proxy("purchase.request").search_read(
        [("state", "=", "draft")],
        0,
        None,
        None,
        ["product.code", "warehouse.code", "quantity", "origin", "supply_date"],
        cfg.context,
    )
    assert rows and all(r["origin"].startswith("stock.order_point,") for r in rows)
    summary, lines = result.comparisons["same-day"]
    erp = lines[lines["erp_qty"] > 0]
    want = {(r["product."]["code"], r["warehouse."]["code"]): r["quantity"] for r in rows}
    assert (
        dict(zip(zip(erp["sku"], erp["location"], strict=True), erp["erp_qty"], strict=True))
        == want
    )
    buy = result.recommendations.query("kind == 'purchase'")
    pol = lines[lines["policy_qty"] > 0]
    assert pol["policy_qty"].sum() == buy["qty"].sum()
    assert summary["both"] + summary["policy_only"] + summary["erp_only"] == summary["keys"]
    assert summary["erp_units"] == pytest.approx(sum(want.values()))
    stored = RunStore(tmp_path / "s.sqlite").comparison(result.run.run_id, "same-day")
    assert stored is not None and stored[0]["keys"] == summary["keys"]


def test_snapshot_folder_round_trip(tryton: Provisioned, db: str, tmp_path: Path) -> None:
    state = adapter(tryton, db).read_state()
    direct = build_snapshot(state, IdMapping())
    for fmt in ("csv", "parquet"):
        folder = write_folder(state, tmp_path / fmt, fmt=fmt)
        again = build_snapshot(SnapshotFolderAdapter(folder).read_state(), IdMapping())
        assert again.digest == direct.digest, fmt


def _receive_today(tryton: Provisioned, db: str, order: dict[str, Any]) -> int:
    """Receive one of the seeded open purchase lines today (before its planned date), in the
    ERP itself: its supplier move done. Returns the units."""
    from proteus import config

    cfg = config.set_trytond(db, config_file=str(tryton.conf))
    moves = cfg.get_proxy("stock.move")
    ids = tryton.seeded.ids
    (move,) = moves.search(
        [
            ("from_location.type", "=", "supplier"),
            ("product", "=", ids["product"][order["sku"]]),
            ("to_location", "child_of", [ids["location"][order["dc"]]], "parent"),
            ("state", "=", "draft"),
        ],
        0,
        None,
        None,
        cfg.context,
    )
    moves.do([move], cfg.context)
    return int(order["qty"])


def test_counterfactual_replays_the_same_demand(tryton: Provisioned, db: str) -> None:
    seeded = tryton.seeded
    a = adapter(tryton, db)
    start, end = seeded.today - dt.timedelta(days=6), seeded.today
    mapping = IdMapping()
    built = build_snapshot(a.read_state(start - dt.timedelta(days=1)), mapping)
    history = sales_history(ErpState.build(end, a.name, sales=a.read_sales(start, end)), mapping)
    early = seeded.open_orders[0]
    assert early["due"] > end  # planned after the period; it came today
    units = _receive_today(tryton, db, early)
    actions = a.read_actions(start, end)
    assert len(actions["purchases"]) == len(seeded.open_orders)  # placed yesterday
    got = actions["purchases"].dropna(subset=["received_date"])
    assert got[["received_date", "received_qty"]].values.tolist() == [[end, units]]
    result = counterfactual(built, actions, history, "base-stock")
    # the ERP's replay receives that line in the period (its planned date is after it)
    assert result.kpis["erp-actual"]["purchased_units"] == units
    sale_days = {0, 1, 3, 6}  # days-ago of seeded sales inside the 7-day period
    expected = sum(q // 8 * len(sale_days) for q in seeded.sold.values())
    assert result.kpis["erp-actual"]["demand_units"] == expected
    assert result.kpis["policy"]["demand_units"] == expected
    table = result.table().set_index("kpi")
    assert table.loc["demand_units", "difference"] == 0
    # the policy run ships to stores every day, the ERP replay only orders: different paths
    assert table.loc["transport_cost", "policy"] > 0


def test_unknown_product_and_product_without_supplier(
    tryton: Provisioned, db: str, tmp_path: Path
) -> None:
    from proteus import config

    store = RunStore(tmp_path / "s.sqlite")
    a = adapter(tryton, db)
    first = ShadowRunner(a, store, "base-stock").run_once()
    assert first.run.status == "ok"
    cfg = config.set_trytond(db, config_file=str(tryton.conf))
    unit = cfg.get_proxy("product.uom").search([("name", "=", "Unit")], 0, 1, None, cfg.context)
    cfg.get_proxy("product.template").create(
        [
            {
                "name": "Orphan",
                "code": "SKU-NEW",
                "type": "goods",
                "default_uom": unit[0],
                "list_price": 5,
                "purchasable": True,
                "purchase_uom": unit[0],
                "products": [("create", [{"cost_price": 3}])],
            }
        ],
        cfg.context,
    )
    second = ShadowRunner(a, store, "base-stock").run_once()
    assert second.run.status == "partial"
    assert "unknown product" in second.run.reason and "SKU-NEW" in second.run.reason
    assert "SKU-NEW" not in second.built.snapshot.sku_ids  # type: ignore[union-attr]
    third = ShadowRunner(a, store, "base-stock", add_new=True).run_once()
    assert third.run.status == "partial" and "no supplier" in third.run.reason
    assert "SKU-NEW" in third.built.snapshot.sku_ids  # type: ignore[union-attr]
    buys = third.recommendations.query("kind in ('purchase', 'expedite')")
    assert "SKU-NEW" not in set(buys["sku"])
    assert store.load_mapping(a.name).reverse("product")["SKU-NEW"]


def test_cli_once_in_process(tryton: Provisioned, db: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from promotwin.cli.main import app

    store = tmp_path / "runs.sqlite"
    args = [
        "shadow",
        "--erp",
        "tryton",
        "--url",
        tryton.url(db),
        "--policy",
        "order-point",
        "--once",
        "--store",
        str(store),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "vs ERP (same-day)" in result.output
    runs = RunStore(store).runs()
    assert len(runs) == 1 and runs["status"].iloc[0] == "ok"
    listing = CliRunner().invoke(app, ["shadow", "runs", "--store", str(store)])
    assert runs["run_id"].iloc[0] in listing.output


# -- over RPC to a real trytond server ------------------------------------------------------------


@pytest.fixture(scope="session")
def server(tryton: Provisioned) -> Iterator[Server]:
    dbs = tuple(
        copy_database(tryton.folder, tryton.template, n)
        for n in ("rpc_read", "rpc_drafts", "rpc_faults")
    )
    port = free_port()
    srv = Server(write_config(tryton.folder, port), port, dbs)
    srv.start()
    yield srv
    srv.stop()


def rpc(server: Server, database: str, protocol: str = "http", **kw: Any) -> Any:
    from promotwin.shadow.tryton import TrytonAdapter

    url = f"{protocol}://127.0.0.1:{server.port}/{database}"
    return TrytonAdapter(url, kw.pop("credentials", ADMIN), **kw)


def _changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """Tables whose rows differ; SQLite's id counters are charged to the table they count."""
    changed = {t for t in before.keys() | after.keys() if before.get(t) != after.get(t)}
    if "sqlite_sequence" in changed:
        changed.discard("sqlite_sequence")
        old, new = set(before.get("sqlite_sequence", ())), set(after.get("sqlite_sequence", ()))
        changed |= {name for name, _ in old ^ new}
    return changed


def test_rpc_snapshots_equal_in_process_and_read_only(
    tryton: Provisioned, server: Server, tmp_path: Path
) -> None:
    path = tryton.path("rpc_read")
    before = dump_database(path)
    in_process = build_snapshot(adapter(tryton, "rpc_read").read_state(), IdMapping())
    for protocol in ("http", "jsonrpc+http"):
        a = rpc(server, "rpc_read", protocol)
        assert build_snapshot(a.read_state(), IdMapping()).digest == in_process.digest, protocol
        a.close()
    a = rpc(server, "rpc_read")
    result = ShadowRunner(a, RunStore(tmp_path / "s.sqlite"), "base-stock").run_once()
    a.close()
    assert result.run.status == "ok", result.run.reason
    after = dump_database(path)
    assert _changed(before, after) <= SESSION_TABLES  # nothing but the server's login sessions


def test_write_drafts_creates_draft_purchases_only(
    tryton: Provisioned, server: Server, tmp_path: Path
) -> None:
    path = tryton.path("rpc_drafts")
    before = dump_database(path)
    a = rpc(server, "rpc_drafts")
    store = RunStore(tmp_path / "s.sqlite")
    result = ShadowRunner(a, store, "base-stock", write_drafts=True).run_once()
    a.close()
    assert result.run.status == "ok", result.run.reason
    buys = result.recommendations.query("kind == 'purchase' and status == 'approved'")
    assert len(buys) > 0
    after = dump_database(path)
    assert _changed(before, after) <= SESSION_TABLES | {"purchase_purchase", "purchase_line"}
    import sqlite3

    con = sqlite3.connect(path)
    new = con.execute(
        "SELECT id, state FROM purchase_purchase WHERE description LIKE 'promotwin shadow%'"
    ).fetchall()
    lines = con.execute(
        "SELECT l.quantity FROM purchase_line l JOIN purchase_purchase p ON l.purchase = p.id "
        "WHERE p.description LIKE 'promotwin shadow%'"
    ).fetchall()
    con.close()
    assert new and {s for _, s in new} == {"draft"}
    assert sorted(q for (q,) in lines) == sorted(buys["qty"].astype(float))
    audit = store.drafts(result.run.run_id)
    assert len(audit) == len(buys)
    assert set(audit["erp_id"].astype(int)) == {i for i, _ in new}


def test_wrong_password_is_refused_and_never_stored(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "not-the-Password-42"
    a = rpc(server, "rpc_faults", credentials=Credentials("admin", secret))
    store_path = tmp_path / "s.sqlite"
    result = ShadowRunner(
        a, RunStore(store_path), "base-stock", retry=RetryPolicy(time_limit=20)
    ).run_once()
    assert result.run.status == "failed"
    assert "ErpLoginRefused" in result.run.reason
    assert result.run.attempts == 1  # a refused login is not retried
    assert secret.encode() not in store_path.read_bytes()
    assert secret not in caplog.text and ADMIN_PASSWORD not in caplog.text
    assert RunStore(store_path).recommendations(result.run.run_id).empty


def test_slow_erp_times_out_within_the_limit(tmp_path: Path, tryton: Provisioned) -> None:
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)  # accepts connections, never answers
    try:
        from promotwin.shadow.tryton import TrytonAdapter

        a = TrytonAdapter(f"http://127.0.0.1:{hole.getsockname()[1]}/db", ADMIN, timeout=0.3)
        t0 = time.monotonic()
        result = ShadowRunner(
            a,
            RunStore(tmp_path / "s.sqlite"),
            "base-stock",
            retry=RetryPolicy(initial_delay=0.2, time_limit=1.5),
        ).run_once()
        assert time.monotonic() - t0 < 5
    finally:
        hole.close()
    assert result.run.status == "failed"
    assert "ErpTimeout" in result.run.reason and result.run.attempts >= 2


def test_server_stopped_mid_run_then_back(tryton: Provisioned, tmp_path: Path) -> None:
    from promotwin.shadow.tryton import TrytonAdapter

    database = copy_database(tryton.folder, tryton.template, "rpc_stop")
    port = free_port()
    srv = Server(write_config(tryton.folder, port), port, (database,))
    srv.start()

    class StopsServer(TrytonAdapter):
        """A real adapter; after a few calls the real server is stopped (fault injection)."""

        calls = 0

        def _call(self, model: str, method: str, *args: Any, **kw: Any) -> Any:
            StopsServer.calls += 1
            if StopsServer.calls == 4:
                srv.stop()
            return super()._call(model, method, *args, **kw)

    store = RunStore(tmp_path / "s.sqlite")
    try:
        a = StopsServer(f"http://127.0.0.1:{port}/{database}", ADMIN, timeout=5)
        # 6 s: the reads before the stop take ~2 s on a loaded machine, leaving room to retry
        failed = ShadowRunner(
            a, store, "base-stock", retry=RetryPolicy(initial_delay=0.2, time_limit=6)
        ).run_once()
        assert failed.run.status == "failed"
        assert "Erp" in failed.run.reason and failed.run.attempts >= 2
        assert store.recommendations(failed.run.run_id).empty  # no half result
        assert store.comparison(failed.run.run_id, "same-day") is None
        # the server comes back while the runner is backing off: the run succeeds
        restart = threading.Timer(0.5, srv.start)
        restart.start()
        # enough attempts to outlast a restart on a loaded machine (it took > 7.5 s with five
        # test suites sharing two cores): backoff 0.5, 1, 2, 4, then 8 s, within 60 s
        ok = ShadowRunner(
            a, store, "base-stock", retry=RetryPolicy(attempts=12, initial_delay=0.5, time_limit=60)
        ).run_once()
        restart.join()
        assert ok.run.status == "ok", ok.run.reason
        assert ok.run.attempts >= 2
        assert set(store.runs()["status"]) == {"failed", "ok"}
    finally:
        srv.stop()


def test_purchase_lines_only_go_to_dcs(tryton: Provisioned, db: str) -> None:
    built = build_snapshot(adapter(tryton, db).read_state(), IdMapping())
    plan = make_policy("base-stock").decide(built.snapshot)
    supply = plan.kind == ActionKind.PURCHASE
    assert (plan.destination[supply] < built.snapshot.n_dcs).all()
