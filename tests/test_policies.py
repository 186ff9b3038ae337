"""Heuristic policies and integer allocation on hand-built situations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import norm

from promotwin.policies.allocation import cut_to_limit
from promotwin.policies.contract import ActionKind, Plan, PlanningSnapshot
from promotwin.policies.heuristics import (
    BaseStockPolicy,
    OrderPointPolicy,
    StaticForecastPolicy,
    cover_sum,
)
from promotwin.policies.registry import POLICIES, make_policy
from promotwin.testing.scenarios import single_cell_scenario, small_scenario
from promotwin.twin import simulate
from promotwin.twin.model import Twin


@given(
    qty=st.lists(st.integers(0, 50), min_size=1, max_size=30),
    data=st.data(),
)
def test_cut_to_limit_respects_limits_and_keeps_what_fits(qty: list[int], data) -> None:  # type: ignore[no-untyped-def]
    groups = data.draw(st.lists(st.integers(0, 3), min_size=len(qty), max_size=len(qty)))
    limits = data.draw(st.lists(st.integers(0, 120), min_size=4, max_size=4))
    out = cut_to_limit(qty, groups, limits)
    q, g, lim = np.array(qty), np.array(groups), np.array(limits)
    assert (out >= 0).all() and (out <= q).all()
    for k in range(4):
        want, got = q[g == k].sum(), out[g == k].sum()
        assert got == min(want, lim[k])  # every unit that fits is kept
        if want <= lim[k]:
            assert (out[g == k] == q[g == k]).all()  # groups within their limit untouched


def test_plan_builder_takes_scalars_and_arrays_and_owns_its_columns() -> None:
    from promotwin.policies.contract import PlanBuilder

    plan = PlanBuilder("p")
    origin, qty = np.array([0, 0, 1]), np.array([3, 0, 2])
    plan.add(ActionKind.SHIPMENT, origin, [4, 5, 6], [7, 8, 9], qty, 2.0, 1.5, "arrays")
    plan.add(ActionKind.TRANSFER, origin[:2], 5, 8, qty[:1].repeat(2), 1.0, 1.0, "all kept")
    plan.add(ActionKind.PURCHASE, 1, 0, 3, 10, 4.0, 0.5, "one line of scalars")
    built = plan.build()
    origin[:], qty[:] = 9, 99  # the caller's arrays change after the plan is built
    assert built.qty.tolist() == [3, 2, 3, 3, 10] and built.origin.tolist() == [0, 1, 0, 0, 1]
    assert built.confidence.tolist() == [1.0, 1.0, 1.0, 1.0, 0.5]  # clipped to [0, 1]
    assert [built.reasons[r] for r in built.reason[[0, 2, 4]]] == [
        "arrays",
        "all kept",
        "one line of scalars",
    ]


def test_cut_to_limit_does_not_round_small_lines_away() -> None:
    assert cut_to_limit([1, 1, 1, 1], [0, 0, 0, 0], [2]).sum() == 2


def _snapshot(on_hand: int, in_transit: int = 0) -> PlanningSnapshot:
    twin = Twin(single_cell_scenario(30), BaseStockPolicy(), seed=0)
    snap = twin.snapshot(0, twin.forecast_for(0).window)
    oh = snap.on_hand.copy()
    oh[1, 0] = on_hand
    transit = snap.in_transit.copy()
    transit[1, 0] = in_transit
    return dataclasses.replace(snap, on_hand=oh, in_transit=transit)


def test_base_stock_orders_up_to_level() -> None:
    snap = _snapshot(on_hand=2, in_transit=1)
    plan = BaseStockPolicy(service_level=0.9).decide(snap)
    ship = plan.of_kind(ActionKind.SHIPMENT)
    level = np.ceil(4.0 + norm.ppf(0.9) * np.sqrt(4.0))  # 1-day lane covers one day of demand
    assert ship.qty.tolist() == [level - 3]
    assert ship.origin.tolist() == [0] and ship.destination.tolist() == [1]
    assert len(plan.of_kind(ActionKind.PURCHASE)) == 0  # the DC holds years of stock


def test_base_stock_dcs_hold_the_stores_safety_stock(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ample supply the DCs ship nearly every unit the stores ask for.

    Each store's order-up-to level holds its own safety stock; a DC echelon level with only the
    pooled (far smaller) echelon safety cannot refill them, and a quarter of the units the stores
    ask for go unshipped every day. Counted where the policy cuts requests to the DCs' stock.
    """
    import promotwin.policies.heuristics as heuristics
    from promotwin.scenarios import load_scenario
    from promotwin.twin.run import simulate

    asked, shipped = [], []
    cut = heuristics.cut_to_limit

    def counting(qty, group, limit):  # type: ignore[no-untyped-def]
        out = cut(qty, group, limit)
        asked.append(int(np.sum(qty)))
        shipped.append(int(out.sum()))
        return out

    monkeypatch.setattr(heuristics, "cut_to_limit", counting)
    simulate(load_scenario("steady_network"), BaseStockPolicy(), seed=1, days=90)
    assert 1 - sum(shipped) / sum(asked) < 0.02


def _same_plan(a: Plan, b: Plan) -> bool:
    cols = ("kind", "origin", "destination", "sku", "qty", "unit_cost", "confidence", "reason")
    return all(np.array_equal(getattr(a, c), getattr(b, c)) for c in cols)


def test_base_stock_plans_alike_with_or_without_the_provider_terms(appliance) -> None:  # type: ignore[no-untyped-def]
    """The twin hands over each date's forecast terms (computed once per date); base-stock plans
    the same as from ``forecast_mean`` alone, and a what-if that edits the forecast drops them."""
    twin = Twin(appliance, BaseStockPolicy(), seed=3)
    policy = BaseStockPolicy()
    for day in range(6):
        forecast = twin.forecast_for(day)
        snap = twin.snapshot(day, forecast.window, forecast.terms)
        assert snap.forecast_terms is not None
        alone = dataclasses.replace(snap, forecast_terms=None)
        assert _same_plan(policy.decide(snap), policy.decide(alone))
    edited = dataclasses.replace(snap, forecast_mean=snap.forecast_mean * 3)
    assert edited.forecast_terms is None  # a what-if never needs to know about the terms
    assert not _same_plan(policy.decide(edited), policy.decide(snap))


def test_every_array_in_a_snapshot_is_read_only(appliance) -> None:  # type: ignore[no-untyped-def]
    """Writing to any array a policy is handed fails (the twin's own state is unaffected)."""
    twin = Twin(appliance, BaseStockPolicy(), seed=3, days=6)
    twin.run()  # shipments in flight, promotions known
    forecast = twin.forecast_for(6)
    snap = twin.snapshot(6, forecast.window, forecast.terms)
    assert snap.inbound and snap.promotion_cells and snap.forecast_terms is not None
    arrays = {f.name: getattr(snap, f.name) for f in dataclasses.fields(snap)}
    arrays = {k: v for k, v in arrays.items() if isinstance(v, np.ndarray)}
    arrays |= {f"promotion_cells[{k}]": v for k, v in snap.promotion_cells.items()}
    for i, sh in enumerate(snap.inbound):
        arrays |= {f"inbound[{i}].sku": sh.sku, f"inbound[{i}].qty": sh.qty}
    for j, day in enumerate(snap.forecast_terms.days):
        arrays |= {f"terms[{j}].{f.name}": getattr(day, f.name) for f in dataclasses.fields(day)}
    assert {"on_hand", "forecast_mean", "history_mean", "price", "serving_dc"} <= set(arrays)
    for name, a in arrays.items():
        with pytest.raises(ValueError, match="read-only"):
            a.flat[0] = a.flat[0]
        assert not a.flags.writeable, name
    before = twin.on_hand.sum()
    twin.on_hand[0, 0] += 1  # the twin's own arrays stay writeable; the snapshot copied them
    assert twin.on_hand.sum() == before + 1 and snap.on_hand.sum() == before


def test_order_point_orders_to_max_only_at_or_below_min() -> None:
    policy = OrderPointPolicy(safety_days=2, order_days=5)
    usage = 4.0  # history starts at the baseline demand
    minimum, maximum = np.ceil(usage * (1 + 2)), np.ceil(usage * (1 + 2)) + np.ceil(usage * 5)
    above = policy.decide(_snapshot(on_hand=int(minimum) + 1))
    assert len(above.of_kind(ActionKind.SHIPMENT)) == 0
    at_min = policy.decide(_snapshot(on_hand=int(minimum)))
    assert at_min.of_kind(ActionKind.SHIPMENT).qty.tolist() == [maximum - minimum]


def test_static_forecast_raises_order_points_before_the_promotion(appliance) -> None:  # type: ignore[no-untyped-def]
    twin = Twin(appliance, StaticForecastPolicy(), seed=0)
    policy = StaticForecastPolicy()
    start = int(twin.model.promotion_table()["start_day"].iloc[0])
    early = twin.snapshot(2, twin.forecast_for(2).window)
    policy.decide(early)
    baseline = policy.planned(2)
    during = policy.planned(start + 1)
    cells = early.promotion_cells["SUMMER-COOL"]
    assert np.allclose(during[cells], baseline[cells] * appliance.promotions[0].planned_uplift)
    assert np.allclose(during[~cells], baseline[~cells])


def test_cover_sum_against_loops() -> None:
    rng = np.random.default_rng(1)
    window = rng.random((5, 3, 4))
    days = rng.integers(0, 8, size=(3, 4))
    by_loop = np.array(
        [
            [
                window[: min(d, 5), i, k].sum() + max(d - 5, 0) * window[-1, i, k]
                for k, d in enumerate(row)
            ]
            for i, row in enumerate(days)
        ]
    )
    assert np.allclose(cover_sum(window, days), by_loop)


def test_uplift_file_errors_name_the_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from promotwin.policies.heuristics import read_uplift_file

    good = tmp_path / "good.csv"
    good.write_text("promotion,uplift\nP1,2.5\nP2,1.2\n")
    assert read_uplift_file(good) == {"P1": 2.5, "P2": 1.2}
    bad = tmp_path / "bad.csv"
    bad.write_text("promotion,uplift\nP1,2.5\nP2,lots\n")
    with pytest.raises(ValueError, match="line 3"):
        read_uplift_file(bad)
    with pytest.raises(ValueError, match="cannot read"):
        read_uplift_file(tmp_path / "missing.csv")


def test_static_plan_uses_the_uplift_file(appliance) -> None:  # type: ignore[no-untyped-def]
    twin = Twin(appliance, StaticForecastPolicy(), seed=0)
    snap = twin.snapshot(2, twin.forecast_for(2).window)
    start = int(snap.promotions["start_day"].iloc[0])
    policy = StaticForecastPolicy(uplifts={"SUMMER-COOL": 3.0})
    policy.decide(snap)
    cells = snap.promotion_cells["SUMMER-COOL"]
    assert np.allclose(policy.planned(start)[cells], snap.baseline_mean[cells] * 3.0)


@pytest.mark.parametrize("name", list(POLICIES))
def test_a_reused_policy_gives_the_results_of_a_fresh_one(name: str, appliance) -> None:  # type: ignore[no-untyped-def]
    """One object reused for several runs, in any order, gives each run's fresh results (the
    twin starts every run with ``policy.start``). Order-point once carried its order points
    from one run into the next (appliance_promo, seed 2, 60 days: total cost 1,523,597 reused
    vs 1,838,979 fresh)."""
    scenario, days = (
        (small_scenario(horizon_days=12), 12) if name == "optimizer" else (appliance, 35)
    )
    fresh = {seed: simulate(scenario, make_policy(name), seed=seed, days=days) for seed in (2, 3)}
    reused = make_policy(name)
    for seed in (3, 2, 3):
        again = simulate(scenario, reused, seed=seed, days=days)
        pd.testing.assert_frame_equal(again.ledger, fresh[seed].ledger)
        pd.testing.assert_frame_equal(again.decisions, fresh[seed].decisions)
        pd.testing.assert_series_equal(pd.Series(again.kpis), pd.Series(fresh[seed].kpis))
    # the two seeds differ, so a policy stuck on one run's state would show
    assert fresh[2].kpis["total_cost"] != fresh[3].kpis["total_cost"]
