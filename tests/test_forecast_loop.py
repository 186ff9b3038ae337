"""Forecasting in the loop: hidden truth, the forecaster seam, sensing, the sales history."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from promotwin.demand.forecaster import (
    ForecasterError,
    OracleForecaster,
    make_forecaster,
)
from promotwin.demand.history import validate_history
from promotwin.demand.model import BoolArray, DemandModel
from promotwin.demand.sensing import SensingForecaster
from promotwin.policies.heuristics import OrderPointPolicy
from promotwin.scenarios.network import compile_network
from promotwin.scenarios.schema import HiddenTruth, InitialInventory, Scenario, UpliftDeviation
from promotwin.testing.forecasts import ExactPlan
from promotwin.twin import simulate
from promotwin.twin.history import pre_season, sales_history
from promotwin.twin.ledger import Kind

URBAN, SUBURBAN = 0.4, -0.3


def _with_truth(scenario: Scenario, truth: HiddenTruth, **changes: object) -> Scenario:
    demand = scenario.demand.model_copy(update={"truth": truth})
    return scenario.model_copy(update={"demand": demand, **changes})


def _cluster_truth(sd: float = 0.0) -> HiddenTruth:
    return HiddenTruth(
        uplift_deviations=(
            UpliftDeviation(clusters=("urban",), deviation=URBAN, sd=sd),
            UpliftDeviation(clusters=("suburban",), deviation=SUBURBAN, sd=sd),
        )
    )


def test_true_uplift_is_the_planned_one_times_the_cluster_deviation(appliance: Scenario) -> None:
    scenario = _with_truth(appliance, _cluster_truth())
    net = compile_network(scenario)
    truth, plan = DemandModel(scenario, net), DemandModel(scenario, net, view="plan")
    pc = plan.promotions[0]
    day = pc.start_day + 1
    ratio = truth.mean(day) / plan.mean(day)
    cluster = net.locations["cluster"].to_numpy(str)
    for name, deviation in (("urban", URBAN), ("suburban", SUBURBAN), ("rural", 0.0)):
        cells = pc.cells & (cluster == name)[:, None]
        assert cells.any()
        assert np.allclose(ratio[cells], 1 + deviation), name
    dc_cells = pc.cells[: net.n_dcs]  # ecommerce rows belong to no cluster
    assert np.allclose(ratio[: net.n_dcs][dc_cells], 1.0)


def test_neutral_truth_leaves_demand_as_planned(appliance: Scenario) -> None:
    scenario = _with_truth(appliance, HiddenTruth())
    net = compile_network(scenario)
    truth, plan = DemandModel(scenario, net), DemandModel(scenario, net, view="plan")
    for day in range(0, scenario.horizon_days, 5):
        assert np.array_equal(truth.mean(day), plan.mean(day))


def test_truth_draws_are_common_across_runs_of_a_seed(appliance: Scenario) -> None:
    scenario = _with_truth(appliance, _cluster_truth(sd=0.2))
    net = compile_network(scenario)
    a, b, c = (DemandModel(scenario, net, truth_seed=s).uplifts["SUMMER-COOL"] for s in (3, 3, 4))
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_wrong_elasticity_and_unplanned_halo_change_only_the_truth(appliance: Scenario) -> None:
    truth = HiddenTruth(
        elasticity_shift=-0.5, unplanned_halo={"kitchen": ("floorcare",)}, unplanned_halo_rate=0.2
    )
    scenario = _with_truth(appliance, truth)
    net = compile_network(scenario)
    t, p = DemandModel(scenario, net), DemandModel(scenario, net, view="plan")
    pc = p.promotions[0]
    day = pc.start_day + 1
    ratio = t.mean(day) / p.mean(day)
    depth = pc.promotion.depth
    store = net.n_dcs
    k = net.sku_index["FAN-01"]
    assert np.isclose(ratio[store, k], (1 - depth) ** -0.5)  # (1-d)^(e+shift) / (1-d)^e
    floorcare = net.skus["category"].to_numpy(str) == "floorcare"
    assert (ratio[store, floorcare] > 1).all()  # the halo nobody planned


def test_sensing_recovers_a_cluster_deviation(appliance: Scenario) -> None:
    """Stocked well (nothing censored), a week into the promotion the sensed multiplier per
    cluster is the hidden deviation within sampling error, and the forecast there follows."""
    scenario = _with_truth(
        appliance, _cluster_truth(), initial_inventory=InitialInventory(store_days=60, dc_days=60)
    )
    sensing = SensingForecaster(ExactPlan())
    start = scenario.day_of(scenario.promotions[0].start)
    simulate(scenario, OrderPointPolicy(), seed=2, days=start + 7, forecaster=sensing)
    sensed = sensing.segment_uplift()
    for region in ("North", "Central", "South"):
        urban = sensed[("SUMMER-COOL", f"urban cluster, {region}")]
        suburban = sensed[("SUMMER-COOL", f"suburban cluster, {region}")]
        rural = sensed[("SUMMER-COOL", f"rural cluster, {region}")]
        assert abs(urban - (1 + URBAN)) < 0.1, (region, urban)
        assert abs(suburban - (1 + SUBURBAN)) < 0.1, (region, suburban)
        assert abs(rural - 1.0) < 0.1, (region, rural)
    notes = sensing.notes()
    assert any(n.startswith("sensed uplift +") and "urban cluster, North" in n for n in notes)
    # the forecast for tomorrow: urban promoted cells up, suburban down, against the plan
    day = start + 6
    ratio = sensing.window(day, 3)[0] / sensing.prior.window(day, 3)[0]
    net = compile_network(scenario)
    cells = scenario_cells(scenario)
    cluster = net.locations["cluster"].to_numpy(str)[:, None]
    assert np.median(ratio[cells & (cluster == "urban")]) > 1.25
    assert np.median(ratio[cells & (cluster == "suburban")]) < 0.8


def scenario_cells(scenario: Scenario) -> BoolArray:
    return DemandModel(scenario, compile_network(scenario), view="plan").promotions[0].cells


def test_sensing_leaves_stocked_out_cells_out(appliance: Scenario) -> None:
    """A cell-day that stocked out says only "at least": it must not pull the multiplier down."""
    scenario = _with_truth(appliance, HiddenTruth())
    net = compile_network(scenario)
    sensing = SensingForecaster(ExactPlan())
    sensing.start(DemandModel(scenario, net), np.random.default_rng(0))
    day = scenario.day_of(scenario.promotions[0].start)
    zero = np.zeros((net.n_locations, net.n_skus))
    sensing.observe(day, zero, np.ones_like(zero, dtype=bool))  # everything sold out at 0
    assert np.allclose(sensing.multiplier, 1.0)
    sensing.observe(day, zero, np.zeros_like(zero, dtype=bool))  # truly no demand
    assert (sensing.multiplier < 1.0).all()


def test_oracle_forecaster_is_the_default(appliance: Scenario) -> None:
    a = simulate(appliance, OrderPointPolicy(), seed=1, days=35)
    b = simulate(appliance, OrderPointPolicy(), seed=1, days=35, forecaster=OracleForecaster())
    assert a.kpis == b.kpis and b.forecaster == "oracle" and b.model_file is None


def test_oracle_with_sensing_is_reproducible(appliance: Scenario) -> None:
    runs = [
        simulate(
            appliance,
            OrderPointPolicy(),
            3,
            days=40,
            forecaster=make_forecaster("oracle", sensing=True),
        )
        for _ in range(2)
    ]
    assert runs[0].kpis == runs[1].kpis and runs[0].forecaster == "oracle+sensing"


@pytest.mark.parametrize(
    ("name", "model", "message"),
    [
        ("gbm", None, "needs --model FILE"),
        ("glm", None, "needs --model"),
        ("prophet", None, "unknown forecaster"),
        ("oracle", "x.json", "not oracle"),
        ("glm", "no-such-file.json", "file not found"),
    ],
)
def test_forecaster_bad_input_says_what_to_do(name: str, model: str | None, message: str) -> None:
    with pytest.raises(ForecasterError, match=message):
        make_forecaster(name, model)


def test_sales_history_is_the_pre_season_ledger(appliance: Scenario) -> None:
    """Units in the history are the pre-season run's sales (conserved, ecommerce from stores
    folded onto the DC rows); flags and prices are what a fit reads."""
    frame = sales_history(appliance, 6, OrderPointPolicy(), seed=4)
    past = pre_season(appliance, 6, 4)
    assert frame["date"].min() == np.datetime64(past.start_date)
    assert frame["date"].max() < np.datetime64(appliance.start_date)
    ledger = simulate(past, OrderPointPolicy(), seed=4, ledger_detail="sku").ledger
    assert frame["units"].sum() == ledger.loc[ledger["kind"] == int(Kind.SALE), "qty"].sum()
    assert set(frame.loc[frame["channel"] == "ecommerce", "location"]) <= {"DC-NORTH", "DC-SOUTH"}
    promoted = frame[frame["promo"] == 1]
    assert len(promoted) and np.allclose(
        promoted["price"], (promoted["regular_price"] * (1 - promoted["depth"])).round(2)
    )
    assert frame["stockout"].isin([0, 1]).all()
    validate_history(frame)


def test_experiment_spec_varies_the_forecaster() -> None:
    from promotwin.experiments.runner import plan_tasks, run_one
    from promotwin.experiments.spec import SpecError, parse_spec

    spec = {
        "name": "forecasters",
        "scenarios": ["appliance_promo"],
        "replications": 2,
        "days": 35,
        "policies": [
            "base-stock",
            {
                "label": "base-stock-sensing",
                "policy": "base-stock",
                "forecast": "plan",
                "sensing": True,
            },
        ],
    }
    experiment = parse_spec(yaml.safe_dump(spec))
    tasks = {t.policy: t for t in plan_tasks(experiment)}
    assert tasks["base-stock"].forecast == ("oracle", None, False)
    assert tasks["base-stock-sensing"].forecast == ("plan", None, True)
    assert tasks["base-stock"].key != tasks["base-stock-sensing"].key
    cell = experiment.cells[0].model
    t = tasks["base-stock-sensing"]
    record = run_one(cell, t.policy_name, t.seed, t.days, t.forecast)
    assert record["forecaster"] == "plan+sensing"
    spec["policies"][1]["forecast"] = "glm"  # type: ignore[index]
    with pytest.raises(SpecError, match="needs --model"):
        parse_spec(yaml.safe_dump(spec))


def test_plan_forecaster_is_the_oracle_without_the_hidden_truth(appliance: Scenario) -> None:
    neutral = _with_truth(appliance, HiddenTruth())
    surprise = _with_truth(appliance, _cluster_truth())
    for scenario, same in ((neutral, True), (surprise, False)):
        model = DemandModel(scenario, compile_network(scenario))
        oracle, plan = make_forecaster("oracle"), make_forecaster("plan")
        oracle.start(model, np.random.default_rng(1))
        plan.start(model, np.random.default_rng(1))
        day = scenario.day_of(scenario.promotions[0].start)
        assert np.array_equal(oracle.window(day, 5), plan.window(day, 5)) == same
