"""A fitted model's calendar forecast in the twin: every row lands in its cell (ecommerce at
the serving DC), a run that meets the same calendar does not forecast it again, and the gbm's
per-key lookups give what a per-row ``map`` gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promotwin.demand.forecaster import FittedForecaster
from promotwin.demand.forecasting import calendar, predict, store_info
from promotwin.demand.gbm import category_codes, lookup
from promotwin.demand.model import DemandModel
from promotwin.demand.models import fit_model
from promotwin.policies.heuristics import BaseStockPolicy
from promotwin.scenarios import Scenario
from promotwin.scenarios.network import compile_network
from promotwin.testing.scenarios import small_scenario
from promotwin.twin.history import sales_history


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return small_scenario()


@pytest.fixture(scope="module")
def gbm_file(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    history = sales_history(scenario, 8, BaseStockPolicy(), seed=1)
    categories = {k.id: k.category for k in scenario.skus}
    path = tmp_path_factory.mktemp("gbm") / "gbm.json"
    fit_model(history, "gbm", categories=categories).save(path)
    return path


def _world(scenario: Scenario, seed: int = 0) -> DemandModel:
    return DemandModel(scenario, compile_network(scenario), truth_seed=seed)


def test_each_calendar_row_lands_in_its_cell(scenario: Scenario, gbm_file: Path) -> None:
    """Per location x SKU, the twin's forecast over the calendar is the sum of the model's rows
    there: a store's store rows, and at a DC its own rows plus its stores' ecommerce rows."""
    world = _world(scenario)
    forecaster = FittedForecaster("gbm", gbm_file)
    forecaster.start(world, np.random.default_rng(0))
    days = len(forecaster.window(-1, 10_000))
    got = forecaster.window(-1, days).sum(axis=0)
    rows = calendar(
        forecaster._model, scenario.start_date, days, scenario.promotions, store_info(scenario)
    )
    mean, _ = predict(forecaster._model, rows)
    dc_of = {st: d.id for d in scenario.dcs for st in d.serves}
    at = np.where(
        rows["group"] == "store", rows["location"], rows["location"].map(lambda x: dc_of.get(x, x))
    )
    want = pd.Series(mean).groupby([at, rows["sku"].to_numpy()]).sum()
    net = world.net
    for (loc, sku), units in want.items():
        assert got[net.location_index[loc], net.sku_index[sku]] == pytest.approx(units)
    assert got.sum() == pytest.approx(mean.sum())


def test_the_same_calendar_is_forecast_once(scenario: Scenario, gbm_file: Path) -> None:
    """Another seed's run reuses the forecast (the calendar does not depend on the truth); a
    promotion moved a week is another calendar, forecast again, and differs where it moved."""
    forecaster = FittedForecaster("gbm", gbm_file)
    forecaster.start(_world(scenario, 0), np.random.default_rng(0))
    first = forecaster.window(-1, 30)
    forecaster.start(_world(scenario, 5), np.random.default_rng(5))
    assert forecaster.window(-1, 30).base is first.base  # the same array: not forecast again
    fresh = FittedForecaster("gbm", gbm_file)
    fresh.start(_world(scenario, 5), np.random.default_rng(5))
    np.testing.assert_array_equal(fresh.window(-1, 30), first)
    promo = scenario.promotions[0]
    week = dt.timedelta(days=7)
    moved = promo.model_copy(update={"start": promo.start + week, "end": promo.end + week})
    later = scenario.model_copy(update={"promotions": (moved, *scenario.promotions[1:])})
    forecaster.start(_world(later, 5), np.random.default_rng(5))
    assert not np.array_equal(forecaster.window(-1, 30), first)


def test_lookups_per_key_equal_a_map_per_row() -> None:
    """Random keys, some missing from the mapping and from the levels, one NaN."""
    rng = np.random.default_rng(3)
    keys = pd.Series(rng.choice([f"K{i}" for i in range(40)], 5000)).astype(object)
    keys[7] = np.nan
    keys = keys.astype("str")
    mapping = {f"K{i}": float(i) / 3 for i in range(0, 40, 2)}
    np.testing.assert_array_equal(
        lookup(keys, mapping), keys.map(mapping).to_numpy(np.float64, na_value=np.nan)
    )
    levels = [f"K{i}" for i in range(5, 30)]
    position = {k: i for i, k in enumerate(levels)}
    np.testing.assert_array_equal(
        category_codes(keys, levels), [position.get(k, -1) for k in keys.astype(str)]
    )
