"""Readiness scoring: it reacts to supply the right way, and mitigations are measured."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from promotwin.policies.contract import InboundShipment, PlanningSnapshot
from promotwin.policies.readiness import assess, readiness
from promotwin.scenarios import Scenario, load_scenario
from promotwin.scenarios.network import compile_network
from promotwin.twin.outlook import before_launch

PROMO = "SUMMER-COOL"


@pytest.fixture(scope="module")
def case() -> tuple[Scenario, PlanningSnapshot, np.ndarray]:
    s = load_scenario("appliance_promo")
    snap = before_launch(s, PROMO, days_before=7, seed=0)
    return s, snap, compile_network(s).skus["elasticity"].to_numpy(np.float64)


def test_score_drops_when_supply_is_cut(case: tuple) -> None:
    _, snap, _ = case
    before = assess(snap, PROMO)
    promoted = snap.promotion_cells[PROMO].any(axis=0)
    cut = snap.on_hand.copy()
    cut[:, promoted] //= 3
    after = assess(dataclasses.replace(snap, on_hand=cut), PROMO)
    assert after.score < before.score - 5
    assert after.short_units > before.short_units
    assert any(r.kind == "stock" for r in after.reasons)


def test_score_rises_when_an_expedite_covers_the_shortfalls(case: tuple) -> None:
    _, snap, _ = case
    before = assess(snap, PROMO)
    stock = [r for r in before.reasons if r.kind == "stock"]
    assert stock, "the reference promotion starts short of stock"
    li = {x: i for i, x in enumerate(snap.location_ids)}
    si = {x: i for i, x in enumerate(snap.sku_ids)}
    lines = tuple(
        InboundShipment(
            "expedite",
            int(snap.sku_supplier[si[r.sku]]),
            li[r.where],
            snap.day + 2,
            np.array([si[r.sku]]),
            np.array([int(np.ceil(r.units))]),
        )
        for r in stock
    )
    after = assess(dataclasses.replace(snap, inbound=snap.inbound + lines), PROMO)
    assert after.score > before.score
    assert not [r for r in after.reasons if r.kind == "stock"]


def test_reasons_name_place_sku_day_and_lead_time(case: tuple) -> None:
    _, snap, _ = case
    r = next(r for r in assess(snap, PROMO).reasons if r.kind == "stock")
    assert r.day is not None
    date = snap.date + dt.timedelta(days=r.day - snap.day)  # a date, not a day index
    assert r.where in r.text and r.sku in r.text and f"by {date.isoformat()}" in r.text
    assert "day " not in r.text
    assert "80th percentile" in r.text


def test_a_higher_quantile_is_harder_to_be_ready_for(case: tuple) -> None:
    _, snap, _ = case
    assert assess(snap, PROMO, quantile=0.95).score <= assess(snap, PROMO, quantile=0.6).score


def test_mitigations_are_rescored_not_asserted(case: tuple) -> None:
    s, snap, elasticity = case
    report = readiness(snap, PROMO, 0.8, s.demand.forecast_error, elasticity, s.promotions[0].depth)
    actions = {m.action for m in report.mitigations}
    assert {"expedite", "limit_depth", "cap_ecommerce", "move_start"} <= actions
    for m in report.mitigations:
        assert m.gain == pytest.approx(m.score_after - report.score)
    expedite = next(m for m in report.mitigations if m.action == "expedite")
    assert expedite.gain > 0 and expedite.cost > 0
    depth = next(m for m in report.mitigations if m.action == "limit_depth")
    assert depth.gain >= 0


def test_unknown_promotion_is_a_clear_error(case: tuple) -> None:
    _, snap, _ = case
    with pytest.raises(ValueError, match="no promotion 'NOPE'; known: SUMMER-COOL"):
        assess(snap, "NOPE")


def test_rebalance_moves_surplus_over_a_dc_lane_at_the_lane_cost(case: tuple) -> None:
    """With a DC<->DC lane (ours replaces the scenario's) and a surplus at the other DC,
    "rebalance" moves units to the short DC, never more than a DC's shortfall, at the lanes'
    cost per unit."""
    s, snap, elasticity = case
    short_dc = next(
        snap.location_ids.index(r.where) for r in assess(snap, PROMO).reasons if r.kind == "stock"
    )
    other = 1 - short_dc
    lane = {"transit_days": 2, "cost_per_unit": 1.5, "capacity": 1e9}
    own = snap.lanes[~((snap.lanes["o"] == other) & (snap.lanes["d"] == short_dc))]
    lanes = pd.concat(
        [
            own,
            pd.DataFrame(
                [
                    {"origin": snap.location_ids[other], "destination": snap.location_ids[short_dc]}
                    | {"o": other, "d": short_dc}
                    | lane
                ]
            ),
        ],
        ignore_index=True,
    )
    on_hand = snap.on_hand.copy()  # the other DC holds twice its own network's forecast
    network = snap.forecast_mean[:, snap.serving_dc == other].sum(axis=(0, 1))
    on_hand[other] += np.ceil(2 * network).astype(np.int64)
    rich = dataclasses.replace(snap, lanes=lanes, on_hand=on_hand)
    report = readiness(rich, PROMO, 0.8, s.demand.forecast_error, elasticity, s.promotions[0].depth)
    move = next(m for m in report.mitigations if m.action == "rebalance")
    base = assess(rich, PROMO, 0.8, s.demand.forecast_error)
    short = {(r.where, r.sku): r.units for r in base.reasons if r.kind == "stock"}
    cost = 0.0
    for part in move.detail.split(", "):  # "97 x FAN-05 DC-SOUTH->DC-NORTH"
        qty, sku, origin, destination = re.fullmatch(
            r"([\d,]+) x (\S+) (\S+)->(\S+)", part
        ).groups()
        units = int(qty.replace(",", ""))
        assert 0 < units <= np.ceil(short[(destination, sku)])
        lane_cost = lanes[(lanes["origin"] == origin) & (lanes["destination"] == destination)]
        cost += units * float(lane_cost["cost_per_unit"].iloc[0])
    assert move.cost == pytest.approx(cost)
    assert any(
        part.endswith(f"->{snap.location_ids[short_dc]}") for part in move.detail.split(", ")
    )
    assert move.gain > 0
