"""The demand model against hand-computed effects, sampling moments, and exact replay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from promotwin.demand.model import DemandModel
from promotwin.policies.heuristics import BaseStockPolicy
from promotwin.scenarios import compile_network
from promotwin.testing.scenarios import small_scenario
from promotwin.twin import simulate
from promotwin.twin.ledger import Kind


@pytest.fixture
def model(appliance) -> DemandModel:  # type: ignore[no-untyped-def]
    return DemandModel(appliance, compile_network(appliance), view="plan")  # the formula


def _promo(model: DemandModel):  # type: ignore[no-untyped-def]
    return model.promotions[0]


def test_promoted_uplift_is_the_formula(model: DemandModel) -> None:
    pc = _promo(model)
    p, promo = model.params, pc.promotion
    day = pc.start_day + 1  # not an ecommerce wave day
    ratio = model.mean(day) / (model.base * model.calendar(day))
    net = model.net
    store = net.n_dcs  # first store; the promotion covers every store
    for sku in promo.skus[:5]:
        k = net.sku_index[sku]
        e = net.skus["elasticity"].iloc[k]
        by_hand = (1 - promo.depth) ** e * (1 + p.display_lift) * (1 + p.feature_lift)
        assert np.isclose(ratio[store, k], by_hand), sku


def test_ecommerce_wave_adds_its_lift(model: DemandModel) -> None:
    pc = _promo(model)
    w_start, _, lift = pc.waves[0]
    k = model.net.sku_index[pc.promotion.skus[0]]
    on_wave = model.mean(w_start) / (model.base * model.calendar(w_start))
    off_wave = model.mean(w_start - 1) / (model.base * model.calendar(w_start - 1))
    assert np.isclose(on_wave[0, k], off_wave[0, k] * (1 + lift))  # DC row = ecommerce
    assert np.isclose(on_wave[model.net.n_dcs, k], off_wave[model.net.n_dcs, k])  # store: no wave


def test_cannibalisation_and_halo_by_hand(model: DemandModel) -> None:
    pc = _promo(model)
    p, net = model.params, model.net
    day = pc.start_day + 1
    store = net.n_dcs + 3
    base = model.base[store]
    promoted = pc.cells[store]
    mult = np.where(promoted, pc.uplift, 1.0)
    cat = net.skus["category"].to_numpy()
    ratio = model.mean(day)[store] / (base * model.calendar(day))
    for category in ("cooling", "kitchen"):
        in_cat = cat == category
        extra = (base * (mult - 1))[in_cat & promoted].sum()
        others = base[in_cat & ~promoted].sum()
        factor = max(1 - p.cannibalisation * extra / others, 0.3)
        assert np.allclose(ratio[in_cat & ~promoted], factor), category
        assert factor < 1  # cannibalised SKUs lose demand
    extra_cooling = (base * (mult - 1))[(cat == "cooling") & promoted].sum()
    acc = cat == "accessories"
    gain = 1 + p.halo_rate * extra_cooling / base[acc].sum()
    assert np.allclose(ratio[acc], gain) and gain > 1
    floor = cat == "floorcare"
    assert np.allclose(ratio[floor], 1.0)  # unrelated category untouched


def test_post_promotion_dip(model: DemandModel) -> None:
    pc = _promo(model)
    p = model.params
    k = model.net.sku_index[pc.promotion.skus[0]]
    store = model.net.n_dcs
    for offset in (1, p.post_promo_days // 2, p.post_promo_days):
        day = pc.end_day + offset
        ratio = model.mean(day)[store, k] / (model.base[store, k] * model.calendar(day)[k])
        assert np.isclose(ratio, 1 - p.post_promo_dip * (1 - (offset - 1) / p.post_promo_days))
    day = pc.end_day + p.post_promo_days + 1
    assert model.promotion_multiplier(day) is None


def test_negative_binomial_moments(model: DemandModel) -> None:
    """sample() draws mean mu and variance mu + mu^2/k; pickup is a binomial share of it."""
    rng = np.random.default_rng(0)
    k, mu = model.params.dispersion, 2.5
    mean = np.full((model.net.n_locations, 2000), mu)
    day = model.sample(0, [rng], mean)
    units = (day.walk_in + day.pickup).ravel()
    n = len(units)
    assert abs(units.mean() - mu) < 4 * np.sqrt((mu + mu**2 / k) / n)
    assert abs(units.var() / (mu + mu**2 / k) - 1) < 0.05
    share = day.pickup.sum(axis=1) / (day.walk_in + day.pickup).sum(axis=1)
    assert np.allclose(share, model.pickup_share, atol=0.03)
    nd = model.net.n_dcs
    assert np.array_equal(day.by_location[nd:], day.walk_in + day.pickup)
    assert np.array_equal(day.by_location[:nd], day.ecommerce)


def test_pickup_split_of_sparse_demand(model: DemandModel) -> None:
    """Most cells sell nothing on a day: the pickup share still holds over the cells that do."""
    rng = np.random.default_rng(1)
    mean = np.full((model.net.n_locations, 20_000), 0.2)
    day = model.sample(0, [rng], mean)
    total = day.walk_in + day.pickup
    assert (total == 0).mean() > 0.8 and (day.pickup <= total).all() and (day.walk_in >= 0).all()
    share = day.pickup.sum(axis=1) / total.sum(axis=1)
    n = total.sum(axis=1)
    p = model.pickup_share
    assert (np.abs(share - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-12).all()


def test_realised_uplift_matches_model_within_sampling_error(appliance) -> None:  # type: ignore[no-untyped-def]
    """Demand in the ledger (sold + lost) against the model's mean, promoted cells, promo window."""
    result = simulate(appliance, BaseStockPolicy(), 5, days=50)
    model = DemandModel(appliance, compile_network(appliance), truth_seed=5)  # the run's truth
    pc = model.promotions[0]
    led = result.ledger
    window = led["day"].between(pc.start_day, min(pc.end_day, 49))
    demand = led[window & led["kind"].isin([int(Kind.SALE), int(Kind.LOST)]) & led["promoted"]]
    realised = demand["qty"].sum()
    expected = sum(
        model.mean(d)[pc.cells].sum() for d in range(pc.start_day, min(pc.end_day, 49) + 1)
    )
    variance = sum(
        (lambda m: (m + m**2 / model.params.dispersion).sum())(model.mean(d)[pc.cells])
        for d in range(pc.start_day, min(pc.end_day, 49) + 1)
    )
    assert abs(realised - expected) < 4 * np.sqrt(variance), (realised, expected)


def test_replay_reproduces_history_exactly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    scenario = small_scenario(horizon_days=20)
    net = compile_network(scenario)
    rng = np.random.default_rng(9)
    rows = []
    for day in range(20):
        date = pd.Timestamp(scenario.start_date) + pd.Timedelta(days=day)
        for store in net.locations.index[net.n_dcs :]:
            for sku in net.skus.index[:4]:
                rows.append((date.date(), store, sku, "walk_in", int(rng.integers(0, 6))))
                rows.append((date.date(), store, sku, "pickup", int(rng.integers(0, 2))))
        rows.append((date.date(), net.locations.index[0], net.skus.index[0], "ecommerce", 3))
    history = pd.DataFrame(rows, columns=["date", "location", "sku", "channel", "units"])
    history.to_csv(tmp_path / "history.csv", index=False)
    raw = yaml.safe_load(scenario.model_dump_json())
    raw["demand"]["history"] = "history.csv"
    (tmp_path / "replay.yaml").write_text(yaml.safe_dump(raw))
    from promotwin.scenarios import load_scenario

    replayed = load_scenario(tmp_path / "replay.yaml")
    result = simulate(replayed, BaseStockPolicy(), seed=1)
    led = result.ledger[result.ledger["kind"].isin([int(Kind.SALE), int(Kind.LOST)])]
    got = led.groupby(["day", "channel"])["qty"].sum()
    history["day"] = (pd.to_datetime(history["date"]) - pd.Timestamp(scenario.start_date)).dt.days
    history["channel"] = history["channel"].map({"walk_in": 0, "pickup": 1, "ecommerce": 2})
    want = history.groupby(["day", "channel"])["units"].sum()
    pd.testing.assert_series_equal(got, want[want > 0], check_names=False, check_index_type=False)
    # per cell too: walk-in demand of each store x SKU on each day
    walk = led[led["channel"] == 0].groupby(["day", "location", "sku"])["qty"].sum()
    locs = {x: i for i, x in enumerate(net.locations.index)}
    skus = {x: i for i, x in enumerate(net.skus.index)}
    h = history[history["channel"] == 0]
    h = h.assign(location=h["location"].map(locs), sku=h["sku"].map(skus))
    want_cells = h.groupby(["day", "location", "sku"])["units"].sum()
    pd.testing.assert_series_equal(
        walk,
        want_cells[want_cells > 0],
        check_names=False,
        check_dtype=False,
        check_index_type=False,
    )
    # a different seed replays the very same demand
    again = simulate(replayed, BaseStockPolicy(), seed=2).kpis["demand_units"]
    assert again == result.kpis["demand_units"]
