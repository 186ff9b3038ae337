"""Invariants of the twin over random small networks and every heuristic policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promotwin.policies.heuristics import BaseStockPolicy, OrderPointPolicy, StaticForecastPolicy
from promotwin.testing.scenarios import Checking, ledger_stock, small_scenario
from promotwin.twin import simulate
from promotwin.twin.ledger import Kind
from promotwin.twin.model import Twin

POLICIES = {
    "order-point": OrderPointPolicy,
    "base-stock": BaseStockPolicy,
    "static-forecast": StaticForecastPolicy,
    "base-stock-expedite": lambda: BaseStockPolicy(name="base-stock-expedite", expedite=True),
}

networks = st.fixed_dictionaries(
    {
        "stores": st.integers(1, 5),
        "dcs": st.integers(1, 2),
        "skus": st.integers(1, 6),
        "suppliers": st.integers(1, 3),
        "categories": st.integers(1, 3),
        "promotions": st.integers(0, 2),
        "seed": st.integers(0, 10_000),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=networks, policy=st.sampled_from(sorted(POLICIES)), seed=st.integers(0, 2**16))
def test_units_conserved_and_never_negative(net: dict, policy: str, seed: int) -> None:
    net = {**net, "dcs": min(net["dcs"], net["stores"])}
    scenario = small_scenario(horizon_days=30, synthetic=net)
    checker = Checking(POLICIES[policy]())
    twin = Twin(scenario, checker, seed)
    twin.run()
    ledger = twin.ledger.frame()

    # stock never negative, on hand, in transit and on order alike, on any day
    assert min(checker.minima) >= 0

    # every day: opening stock + supplier receipts - sales = on hand + in transit between locations
    by_day = ledger.groupby(["day", "kind"])["qty"].sum().unstack(fill_value=0)
    by_day = by_day.reindex(range(30), fill_value=0).cumsum()
    col = lambda k: by_day.get(int(k), 0)  # noqa: E731
    inflow = col(Kind.INITIAL) + col(Kind.SUPPLIER_RECEIPT) + col(Kind.EXPEDITE_RECEIPT)
    expected = (inflow - col(Kind.SALE)).to_numpy()
    held = np.array([on_hand + in_transit for on_hand, in_transit, _ in checker.totals])
    np.testing.assert_array_equal(held, expected)

    # the ledger alone reproduces the final stock of every location x SKU
    stock = ledger_stock(ledger, twin.net.n_locations, twin.net.n_skus)
    np.testing.assert_array_equal(stock, twin.on_hand)

    # a lost sale moves no unit: each day's demand is either sold or lost, never both
    for d in twin.daily:
        assert d["sold"].sum() + d["lost"].sum() == d["demand"].sum()
    assert len(twin.daily) == 30


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=networks, policy=st.sampled_from(sorted(POLICIES)), seed=st.integers(0, 2**16))
def test_same_seed_same_ledger(net: dict, policy: str, seed: int) -> None:
    net = {**net, "dcs": min(net["dcs"], net["stores"])}
    scenario = small_scenario(horizon_days=25, synthetic=net)
    a = simulate(scenario, POLICIES[policy](), seed)
    b = simulate(scenario, POLICIES[policy](), seed)
    pd.testing.assert_frame_equal(a.ledger, b.ledger)
    pd.testing.assert_frame_equal(a.daily, b.daily)
    assert a.kpis == b.kpis or all(
        (x == y) or (x != x and y != y)
        for x, y in zip(a.kpis.values(), b.kpis.values(), strict=True)
    )


def test_different_seed_different_demand() -> None:
    scenario = small_scenario()
    a = simulate(scenario, BaseStockPolicy(), 1)
    b = simulate(scenario, BaseStockPolicy(), 2)
    assert a.kpis["demand_units"] != b.kpis["demand_units"]


def test_common_random_numbers_across_policies() -> None:
    """Every policy faces the same demand draws (sales + lost sales per cell and day)."""
    scenario = small_scenario()

    def demand(policy: object) -> pd.Series:
        led = simulate(scenario, policy, 3).ledger  # type: ignore[arg-type]
        rows = led[led["kind"].isin([int(Kind.SALE), int(Kind.LOST)])]
        # ecommerce may be served by a store (ship-from-store) or the DC: count it by channel only
        return rows.groupby(["day", "sku", "channel"])["qty"].sum()

    pd.testing.assert_series_equal(demand(OrderPointPolicy()), demand(BaseStockPolicy()))


def test_summary_ledger_gives_the_same_kpis(appliance) -> None:  # type: ignore[no-untyped-def]
    full = simulate(appliance, BaseStockPolicy(), 4, days=35, ledger_detail="sku")
    summary = simulate(appliance, BaseStockPolicy(), 4, days=35, ledger_detail="summary")
    assert len(summary.ledger) < len(full.ledger) / 5
    for key, value in full.kpis.items():
        assert np.isclose(summary.kpis[key], value, rtol=1e-9, equal_nan=True), key


def test_summary_decisions_are_the_sku_lines_summed_by_route(appliance) -> None:  # type: ignore[no-untyped-def]
    """Summary decisions (one row per kind x origin x destination a day) against a pandas
    groupby of the SKU-level lines, for a heuristic (lines in runs) and the optimizer (not)."""
    from promotwin.policies.registry import make_policy

    keys = ["day", "status", "kind", "origin", "destination"]
    for name in ("base-stock", "optimizer"):
        full = simulate(appliance, make_policy(name), 4, days=12, ledger_detail="sku").decisions
        summary = simulate(appliance, make_policy(name), 4, days=12, ledger_detail="summary")
        want = full.groupby(keys).agg(
            proposed=("proposed", "sum"),
            executed=("executed", "sum"),
            value=("value", "sum"),
            lines=("lines", "sum"),
            confidence=("confidence", "mean"),
        )
        got = summary.decisions.set_index(keys).sort_index()[want.columns]
        assert len(got) == len(want) and (summary.decisions["sku"] == -1).all()
        pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-9)


def test_group_lines_partitions_lines_by_key() -> None:
    from promotwin.twin.execution import group_lines

    rng = np.random.default_rng(5)
    for keys in (np.repeat([7, 3, 9], [4, 1, 2]), rng.integers(0, 6, 40)):  # runs, and not
        g = group_lines(keys)
        by_group = g.lines(np.arange(len(keys)))
        members = [by_group[a:b] for a, b in zip(g.starts[:-1], g.starts[1:], strict=True)]
        assert sorted(by_group.tolist()) == list(range(len(keys)))
        for key, lines in zip(g.keys, members, strict=True):
            assert (keys[lines] == key).all() and (np.diff(lines) > 0).all()  # line order kept
        assert len(set(g.keys.tolist())) == len(g.keys)
        assert np.array_equal(g.keys[g.of_line()], keys)
        assert np.array_equal(keys[g.first_lines()], g.keys)


def test_start_from_a_known_state() -> None:
    """A twin started from an ERP-like state: its opening stock and open orders, conserved."""
    from promotwin.policies.contract import InboundShipment

    scenario = small_scenario(horizon_days=12)
    twin = Twin(scenario, BaseStockPolicy(), seed=2)
    on_hand = np.full((twin.net.n_locations, twin.net.n_skus), 7, np.int64)
    po = InboundShipment("purchase", 0, 0, 4, np.array([0, 1]), np.array([50, 20]))
    twin.start_from(on_hand, [po], day_offset=1)  # due day 4 -> arrives at the start of day 3
    assert twin.on_order[0, 0] == 50
    twin.run()
    ledger = twin.ledger.frame()
    initial = ledger[ledger["kind"] == int(Kind.INITIAL)]
    assert initial["qty"].sum() == on_hand.sum()
    receipts = ledger[(ledger["kind"] == int(Kind.SUPPLIER_RECEIPT)) & (ledger["day"] == 3)]
    assert {(0, 0, 50), (0, 1, 20)} <= set(
        zip(receipts["location"], receipts["sku"], receipts["qty"], strict=True)
    )
    stock = ledger_stock(ledger, twin.net.n_locations, twin.net.n_skus)
    np.testing.assert_array_equal(stock, twin.on_hand)
    with pytest.raises(RuntimeError):
        twin.start_from(on_hand, [])


def test_ship_from_store_fills_unmet_ecommerce_store_by_store() -> None:
    """What a DC cannot ship comes from its ship-from-store stores in order, each giving what it
    holds until the order is filled; SKUs the DC is not short of are left alone."""
    from promotwin.scenarios.network import compile_network
    from promotwin.twin.fulfilment import sfs_stores, ship_from_store

    net = compile_network(small_scenario())
    nd = net.n_dcs
    stores_of_dc = sfs_stores(net)
    d = next(d for d, stores in enumerate(stores_of_dc) if len(stores) >= 2)
    first, second = stores_of_dc[d][:2]
    store = np.zeros((net.n_stores, net.n_skus), np.int64)
    store[first, 2], store[second, 2] = 3, 5
    store[first, 4] = 7
    before = store.copy()
    unmet = np.zeros((nd, net.n_skus), np.int64)
    unmet[d, 2] = 6
    where, qty = ship_from_store(unmet, store, stores_of_dc)
    assert list(zip(where.rows, where.skus, qty, strict=True)) == [(first, 2, 3), (second, 2, 3)]
    assert unmet[d, 2] == 0 and store[second, 2] == 2
    assert store[first, 4] == 7  # the DC was not short of SKU 4
    assert (before - store).sum() == 6
