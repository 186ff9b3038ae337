"""Shadow mode on a second real Tryton laid out differently (``promotwin.testing.tryton_direct``):
stores that buy direct, a store served by a DC, confirmed sales not shipped, cost 0, a product
with no supplier, an ambiguous warehouse. The truth is the seed's own tables, and Tryton read
back independently through proteus."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from promotwin.cli.main import app
from promotwin.shadow import Credentials, IdMapping, RunStore, ShadowRunner, build_snapshot
from promotwin.testing import tryton_direct as seed
from promotwin.testing.resetting_proxy import ResettingProxy
from promotwin.testing.tryton import (
    ADMIN_PASSWORD,
    Provisioned,
    Server,
    copy_database,
    free_port,
    provision_with,
    write_config,
)
from promotwin.testing.tryton_direct import DirectSeeded, seed_direct

pytestmark = pytest.mark.slow
DAYS = 28
ADMIN = Credentials("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="session")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Provisioned[DirectSeeded]:
    result = provision_with(tmp_path_factory.getbasetemp(), "direct", seed_direct)
    if isinstance(result, str):
        if os.environ.get("TWIN_REQUIRE_TRYTON"):
            pytest.fail(result)
        pytest.skip(result)
    return result


@pytest.fixture
def db(direct: Provisioned[DirectSeeded]) -> str:
    return direct.copy("d")


def adapter(direct: Provisioned[DirectSeeded], database: str) -> Any:
    from promotwin.shadow.tryton import TrytonAdapter

    return TrytonAdapter(direct.url(database))


def erp_requests(direct: Provisioned[DirectSeeded], database: str) -> dict[tuple[str, str], float]:
    """The ERP's own order-point requests, read straight from Tryton: (product, warehouse) ->
    units."""
    from proteus import config

    cfg = config.set_trytond(database, config_file=str(direct.conf))
    rows = cfg.get_proxy("purchase.request").search_read(
        [("state", "=", "draft")],
        0,
        None,
        None,
        ["product.code", "warehouse.code", "quantity"],
        cfg.context,
    )
    return {(r["product."]["code"], r["warehouse."]["code"]): r["quantity"] for r in rows}


def test_layout_proposed_from_the_erp_structure(direct: Provisioned[DirectSeeded], db: str) -> None:
    locations = adapter(direct, db).read_state()["locations"].set_index("code")
    assert set(locations.index) == set(seed.WAREHOUSES)
    id_of = direct.seeded.ids["location"]
    for store, dc in seed.PROVISIONED.items():
        assert locations.loc[store, "kind"] == "store"
        assert locations.loc[store, "serving_dc"] == str(id_of[dc])
        assert f"provisioned from {dc}" in locations.loc[store, "reason"]
    # SHOP-3 also has purchase order points of its own; SHOP-1 has none
    assert locations.loc["SHOP-3", "supplied_by"] == "both"
    assert locations.loc["SHOP-1", "supplied_by"] == "dc"
    assert locations.loc["CENTRAL", "kind"] == "dc"
    assert "provisions SHOP-1, SHOP-3" in locations.loc["CENTRAL", "reason"]
    # SHOP-2: nobody provisions it, it sells (confirmed orders only) and buys itself
    assert locations.loc["SHOP-2", ["kind", "serving_dc", "supplied_by"]].tolist() == [
        "store",
        "",
        "supplier",
    ]
    n_ops = len(seed.ORDER_POINTS["SHOP-2"])
    assert f"{n_ops} purchase order point(s)" in locations.loc["SHOP-2", "reason"]
    # OVERFLOW holds stock but neither sells, buys nor provisions: ambiguous, never a DC
    assert locations.loc["OVERFLOW", "kind"] == ""
    assert "ambiguous" in locations.loc["OVERFLOW", "reason"]


def test_reservations_costs_and_sales_history(direct: Provisioned[DirectSeeded], db: str) -> None:
    seeded = direct.seeded
    built = build_snapshot(adapter(direct, db).read_state(), IdMapping())
    s = built.snapshot
    # the DC first, then the shops: SHOP-1 its DC's, SHOP-2 buying direct (direct-store
    # delivery, CENTRAL its home DC), SHOP-3 both
    assert s.location_ids == ("CENTRAL", "SHOP-1", "SHOP-2", "SHOP-3")
    assert s.n_dcs == 1 and s.serving_dc.tolist() == [0, 0, 0, 0]
    assert s.direct is not None and s.direct.tolist() == [False, False, True, True]
    assert s.dc_replenished is not None
    assert s.dc_replenished.tolist() == [False, True, False, True]
    li = {x: i for i, x in enumerate(s.location_ids)}
    ki = {x: i for i, x in enumerate(s.sku_ids)}
    assert s.committed is not None
    for loc in s.location_ids:
        for sku in s.sku_ids:
            promised = seeded.promised.get((loc, sku), 0)
            assert s.committed[li[loc], ki[sku]] == promised, (loc, sku)
            assert s.on_hand[li[loc], ki[sku]] == seeded.on_hand[(loc, sku)] - promised
    assert s.on_hand[li["SHOP-2"], ki["P-01"]] == 35 - 18 == 17  # as the ERP sees it
    # shipped from CENTRAL today, not received: in transit to SHOP-1, due after the transit days
    want_transit = np.zeros_like(s.in_transit)
    for (loc, sku), units in seeded.in_transit.items():
        want_transit[li[loc], ki[sku]] = units
    assert want_transit.sum() > 0 and np.array_equal(s.in_transit, want_transit)
    transfers = [sh for sh in s.inbound if sh.kind == "transfer"]
    assert [(sh.origin, sh.destination, sh.due_day) for sh in transfers] == [
        (li["CENTRAL"], li["SHOP-1"], seed.TRANSIT_DAYS)
    ]
    # unit cost: the cost price, else the supplier's price list (P-05); P-06 has neither
    for sku in s.sku_ids:
        assert s.unit_cost[ki[sku]] == pytest.approx(seeded.unit_cost[sku]), sku
    codes = {w.code: w for w in built.warnings}
    assert "P-06" in codes["cost-missing"].message and codes["cost-missing"].degrading
    assert "P-06" in codes["no-supplier"].message
    assert "OVERFLOW" in codes["ambiguous-warehouse"].message
    assert "direct-purchases-not-modelled" not in codes  # direct delivery is in the twin now
    # sales: done moves where a shop shipped (SHOP-1 ignores its unshipped order), confirmed
    # sale lines where it shipped nothing (SHOP-2)
    want = np.zeros(s.on_hand.shape)
    for (loc, sku), units in seeded.sold_moves.items():
        want[li[loc], ki[sku]] = units / DAYS
    for (loc, sku), units in seeded.ordered.items():
        if loc == "SHOP-2":
            want[li[loc], ki[sku]] = units / DAYS
    assert np.allclose(s.history_mean, want)


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["shadow", *args])


def test_degraded_then_layout_imported_then_direct_purchases_compared(
    direct: Provisioned[DirectSeeded], db: str, tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite"
    url = direct.url(db)
    common = ["--url", url, "--store", str(store)]
    first = _cli(*common, "--policy", "order-point", "--once")
    assert first.exit_code == 3, first.output
    assert "degraded" in first.output and "--allow-degraded" in first.output
    runs = RunStore(store).runs()
    assert runs["status"].tolist() == ["degraded"]
    assert "OVERFLOW" in runs["reason"].iloc[0] and "cost 0" in runs["reason"].iloc[0]
    again = _cli(*common, "--policy", "order-point", "--once", "--allow-degraded")
    assert again.exit_code == 0, again.output

    # the rollout team gives OVERFLOW a role: a DC that provisions nobody
    csv = tmp_path / "layout.csv"
    shown = _cli("layout", *common, "--export", str(csv))
    assert shown.exit_code == 0, shown.output
    assert "layout kept in the run store" in shown.output and "OVERFLOW" in shown.output
    layout = pd.read_csv(csv, dtype=str, keep_default_na=False)
    layout.loc[layout["erp_code"] == "OVERFLOW", ["role", "supplied_by"]] = ["dc", "supplier"]
    bad = layout.copy()
    bad.loc[bad["erp_code"] == "SHOP-1", "serving_dc"] = "NOWHERE"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    refused = _cli("layout", *common, "--import", str(tmp_path / "bad.csv"))
    assert refused.exit_code == 2 and "SHOP-1" in refused.output and "NOWHERE" in refused.output
    layout.to_csv(csv, index=False)
    imported = _cli("layout", *common, "--import", str(csv))
    assert imported.exit_code == 0, imported.output

    result = ShadowRunner(adapter(direct, db), RunStore(store), "order-point").run_once()
    assert "OVERFLOW" in result.built.snapshot.location_ids  # type: ignore[union-attr]
    assert "ambiguous" not in result.run.reason and "cost 0" in result.run.reason
    buys = result.recommendations.query("kind == 'purchase'")
    assert len(buys) > 0 and "SHOP-2" in set(buys["destination"])
    # the direct shop's purchases against the ERP's own order points there (and the planner's)
    summary, lines = result.comparisons["same-day"]
    requests = erp_requests(direct, db)
    assert any(loc == "SHOP-2" for _, loc in requests)
    planner = {(p["product"], p["warehouse"]): p["qty"] for p in direct.seeded.purchases}
    want = pd.Series(requests).add(pd.Series(planner), fill_value=0)
    got = lines[lines["erp_qty"] > 0].set_index(["sku", "location"])["erp_qty"]
    assert got.sort_index().to_dict() == want.sort_index().to_dict()
    shop2 = lines[(lines["location"] == "SHOP-2") & (lines["policy_qty"] > 0)]
    assert shop2["policy_qty"].sum() == buys.query("destination == 'SHOP-2'")["qty"].sum()

    show = _cli("show", result.run.run_id, "--store", str(store))
    assert show.exit_code == 0, show.output
    assert "vs ERP (same-day)" in show.output and "[cost-missing]" in show.output
    assert f"{summary['erp_units']:.0f}" in show.output


# -- idempotent write-back over RPC, through a proxy that resets after forwarding a create -------


@pytest.fixture(scope="module")
def server(direct: Provisioned[DirectSeeded]) -> Iterator[Server]:
    dbs = tuple(copy_database(direct.folder, direct.template, n) for n in ("wb_http", "wb_jsonrpc"))
    port = free_port()
    srv = Server(write_config(direct.folder, port), port, dbs)
    srv.start()
    yield srv
    srv.stop()


def _erp_drafts(path: Path) -> pd.DataFrame:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return pd.read_sql_query(
            "SELECT p.id, p.reference, p.state, p.delivery_date, p.warehouse, l.product, "
            "l.quantity, l.unit_price FROM purchase_purchase p JOIN purchase_line l "
            "ON l.purchase = p.id WHERE p.reference LIKE 'promotwin-%'",
            con,
        )
    finally:
        con.close()


@pytest.mark.parametrize("protocol", ["http", "jsonrpc+http"])
def test_drafts_written_once_through_a_connection_reset(
    direct: Provisioned[DirectSeeded], server: Server, tmp_path: Path, protocol: str
) -> None:
    from promotwin.shadow.tryton import TrytonAdapter

    database = "wb_http" if protocol == "http" else "wb_jsonrpc"
    proxy = ResettingProxy(server.port, b"purchase.purchase.create").start()
    store = RunStore(tmp_path / "s.sqlite")
    url = f"{protocol}://127.0.0.1:{proxy.port}/{database}"
    try:
        first = ShadowRunner(
            TrytonAdapter(url, ADMIN, timeout=20),
            store,
            "order-point",
            write_drafts=True,
            allow_degraded=True,
        ).run_once()
    finally:
        proxy.stop()
    assert first.run.status != "failed", first.run.reason
    assert proxy.reset_done == 1  # the ERP saved the first draft; its answer never arrived
    erp = _erp_drafts(direct.path(database))
    keys = store.draft_keys()
    drafts = erp.drop_duplicates("id")
    assert len(drafts) > 0 and set(drafts["state"]) == {"draft"}
    assert drafts["reference"].is_unique  # 0 duplicates
    created = keys[keys["state"] == "created"]
    assert dict(zip(created["key"], created["erp_id"].astype(int), strict=True)) == dict(
        zip(drafts["reference"], drafts["id"], strict=True)
    )  # 0 orphans: every draft in the ERP is recorded under its key, and nothing else
    # the drafts carry the supplier's price list and the delivery date the run planned
    price = {direct.seeded.ids["product"][c]: float(p) for c, _, _, _, p in seed.PRODUCTS if p}
    assert np.allclose(erp["unit_price"].astype(float), erp["product"].map(price))
    buys = first.recommendations.query("kind == 'purchase' and status == 'approved'")
    planned = {
        (int(w), int(p)): str(d)
        for w, p, d in zip(
            buys["erp_destination"], buys["erp_product"], buys["due_date"], strict=True
        )
    }
    got = {
        (int(w), int(p)): str(d)
        for w, p, d in zip(erp["warehouse"], erp["product"], erp["delivery_date"], strict=True)
    }
    assert got == planned

    # the same recommendation again, with no fault: nothing new in the ERP
    again = ShadowRunner(
        TrytonAdapter(f"{protocol}://127.0.0.1:{server.port}/{database}", ADMIN, timeout=20),
        store,
        "order-point",
        write_drafts=True,
        allow_degraded=True,
    ).run_once()
    assert again.run.status != "failed", again.run.reason
    assert len(again.drafts) == 0
    assert _erp_drafts(direct.path(database)).equals(erp)
