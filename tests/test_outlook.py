"""The planner's core (:mod:`promotwin.twin.outlook`): scenario variants, the expected outlook,
one twin run for the projection and the readiness snapshot before launch."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from promotwin.cli.main import app
from promotwin.policies.contract import PlanningSnapshot
from promotwin.policies.readiness import SHIFT_DAYS, readiness
from promotwin.policies.registry import make_policy
from promotwin.scenarios import Scenario, load_scenario, parse_scenario
from promotwin.testing.dashboards import APPLIANCE_PROMO, appliance_projections
from promotwin.testing.scenarios import small_scenario
from promotwin.twin import outlook, simulate

PROMO = APPLIANCE_PROMO


@pytest.fixture(scope="module")
def appliance() -> Scenario:
    return load_scenario("appliance_promo")


@pytest.fixture(scope="module")
def current() -> outlook.PlannerResult:
    return appliance_projections()[0]


@pytest.fixture(scope="module")
def deeper() -> outlook.PlannerResult:
    return appliance_projections()[1]


def test_variant_changes_only_the_promotion(appliance: Scenario) -> None:
    s = outlook.PromoSettings.of(appliance.promotions[0])
    v = outlook.variant(appliance, PROMO, dataclasses.replace(s, depth=0.4, ecommerce_cap=0.5))
    p = v.promotions[0]
    assert p.depth == 0.4 and max(w.lift for w in p.ecommerce_waves) == 0.5
    assert v.skus == appliance.skus and v.promotions[0].skus == appliance.promotions[0].skus
    with pytest.raises(ValueError, match="at least one channel"):
        outlook.variant(appliance, PROMO, dataclasses.replace(s, channels=()))
    with pytest.raises(ValueError, match="must run between"):
        outlook.variant(
            appliance, PROMO, dataclasses.replace(s, end=s.start - dt.timedelta(days=1))
        )
    with pytest.raises(ValueError, match="no promotion 'NOPE'"):
        outlook.variant(appliance, "NOPE", s)


def test_variant_yaml_round_trips(appliance: Scenario) -> None:
    s = outlook.PromoSettings.of(appliance.promotions[0])
    v = outlook.variant(appliance, PROMO, dataclasses.replace(s, depth=0.3))
    again = parse_scenario(outlook.variant_yaml(v, "variant-30"))
    assert again.name == "variant-30"
    assert again.model_copy(update={"name": v.name}) == v


def test_recording_the_snapshot_changes_nothing(
    appliance: Scenario, current: outlook.PlannerResult
) -> None:
    """The projection's run is the plain run: same run id, KPIs and ledger."""
    plain = simulate(appliance, make_policy("base-stock"), seed=0, days=current.days)
    assert plain.run_id == current.run_id
    for key in outlook.PROJECTION_KPIS:
        assert current.kpis[key] == pytest.approx(plain.kpis[key], nan_ok=True)
    recorder = outlook.launch_recorder(appliance, PROMO, make_policy("base-stock"), 7)
    again = simulate(appliance, recorder, seed=0, days=current.days)
    pd.testing.assert_frame_equal(again.ledger, plain.ledger)


def _shipments(s: PlanningSnapshot) -> list[tuple[str, int, int, int, list[int], list[int]]]:
    return [
        (x.kind, x.origin, x.destination, x.due_day, x.sku.tolist(), x.qty.tolist())
        for x in s.inbound
    ]


def _assert_same_state(a: PlanningSnapshot, b: PlanningSnapshot) -> None:
    assert a.day == b.day and _shipments(a) == _shipments(b)
    for name in ("on_hand", "in_transit", "on_order", "forecast_mean", "history_mean"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_before_launch_is_the_snapshot_the_twin_hands_its_policy(appliance: Scenario) -> None:
    """``twin readiness`` runs the twin only to the assessment day and keeps that day's
    snapshot, long enough to reach the promotion's end moved by every shift."""
    promo = appliance.promotions[0]
    start, end = appliance.day_of(promo.start), appliance.day_of(promo.end)
    alone = outlook.before_launch(appliance, PROMO, days_before=7, seed=0)
    assert alone.day == start - 7
    assert alone.horizon == end - alone.day + 1 + max(SHIFT_DAYS)
    recorder = outlook.launch_recorder(appliance, PROMO, make_policy("base-stock"), 7)
    simulate(appliance, recorder, seed=0, days=alone.day + 1)
    _assert_same_state(alone, recorder.recorded())


@pytest.mark.xfail(
    strict=True,
    reason="Twin draws supplier lead times and fills as [supplier, day] for the whole run, so "
    "a longer run sees other draws on the same early days (twin/model.py "
    "_draw_supplier_outcomes); the planner's snapshot differs from `twin readiness`'s",
)
def test_the_snapshot_before_launch_does_not_depend_on_the_run_length(
    appliance: Scenario,
) -> None:
    alone = outlook.before_launch(appliance, PROMO, days_before=7, seed=0)
    recorder = outlook.launch_recorder(appliance, PROMO, make_policy("base-stock"), 7)
    simulate(appliance, recorder, seed=0, days=alone.day + 2)
    _assert_same_state(alone, recorder.recorded())


def test_the_planner_and_twin_readiness_report_the_same_score(
    appliance: Scenario, current: outlook.PlannerResult
) -> None:
    res = CliRunner().invoke(app, ["readiness", "appliance_promo", "--promotion", PROMO])
    assert res.exit_code == 0, res.output
    assert f"readiness {current.readiness.score:.0f}/100" in res.output
    snap = outlook.before_launch(appliance, PROMO, 7, 0)
    default = appliance.demand.elasticity
    own = {k.id: default if k.elasticity is None else k.elasticity for k in appliance.skus}
    elasticity = np.array([own[k] for k in snap.sku_ids])
    by_hand = readiness(
        snap, PROMO, 0.8, appliance.demand.forecast_error, elasticity, appliance.promotions[0].depth
    )
    assert current.readiness.score == pytest.approx(by_hand.score)
    assert [m.action for m in current.readiness.mitigations] == [
        m.action for m in by_hand.mitigations
    ]


def test_deeper_discount_means_more_uplift_more_stockouts_lower_readiness(
    current: outlook.PlannerResult, deeper: outlook.PlannerResult
) -> None:
    assert deeper.outlook.extra_units > current.outlook.extra_units * 1.2
    up_now = current.outlook.uplift.set_index(["by", "group", "channel"])["uplift"]
    up_deep = deeper.outlook.uplift.set_index(["by", "group", "channel"])["uplift"]
    assert (up_deep > up_now).all()
    assert deeper.kpis["promo_lost_sales_units"] > current.kpis["promo_lost_sales_units"]
    assert deeper.lost[["walk_in", "pickup", "ecommerce"]].to_numpy().sum() > (
        current.lost[["walk_in", "pickup", "ecommerce"]].to_numpy().sum()
    )
    assert deeper.kpis["readiness"] < current.kpis["readiness"]
    o = current.outlook
    assert (o.uplift["low"] < o.uplift["uplift"]).all() and (
        o.uplift["uplift"] < o.uplift["high"]
    ).all()
    assert o.margin_low <= o.margin <= o.margin_high
    assert o.margin - o.margin_before_funding == pytest.approx(o.vendor_funding)


def test_spill_over_and_margin_match_the_demand_model_by_hand(appliance: Scenario) -> None:
    """Cannibalised categories lose units, the halo category gains; the expected funding is
    the funding rate times the expected promoted units."""
    s = outlook.variant(appliance, PROMO, outlook.PromoSettings.of(appliance.promotions[0]))
    o = outlook.outlook(s, PROMO)
    spill = o.spill.set_index("category")
    assert spill.loc["cooling", "change_units"] < 0 and spill.loc["kitchen", "change_units"] < 0
    assert spill.loc["accessories", "change_units"] > 0
    assert spill.loc["floorcare", "change_units"] == pytest.approx(0.0)
    assert o.vendor_funding == pytest.approx(4.0 * o.promoted_units)
    # the promotion covers every cell of its SKUs: each grouping adds up to its promoted units
    for by in ("region", "cluster"):
        part = o.uplift[o.uplift["by"] == by]
        assert part["expected_units"].sum() == pytest.approx(o.promoted_units, rel=1e-9)


def test_before_launch_replays_the_scenarios_history(tmp_path: Path) -> None:
    """A scenario that replays recorded sales (here: none at all) is assessed on them: with no
    sales the ERP-style trailing average only decays, h = baseline x (1 - 1/28)^(days run)."""
    s = small_scenario()
    empty = [(s.start_date, s.stores[0].id, s.skus[0].id, "walk_in", 0)]
    columns = ["date", "location", "sku", "channel", "units"]
    pd.DataFrame(empty, columns=columns).to_csv(tmp_path / "history.csv", index=False)
    raw = yaml.safe_load(s.model_dump_json())
    raw["demand"]["history"] = "history.csv"
    (tmp_path / "replay.yaml").write_text(yaml.safe_dump(raw))
    replayed = load_scenario(tmp_path / "replay.yaml")
    snap = outlook.before_launch(replayed, replayed.promotions[0].id, days_before=7, seed=0)
    decayed = snap.baseline_mean * (1 - 1 / 28) ** (snap.day + 1)
    np.testing.assert_allclose(snap.history_mean, decayed, rtol=1e-12, atol=1e-15)
