"""``twin fit``, ``twin forecast``, ``twin readiness`` end to end; supplier reliability."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from promotwin.cli.main import app
from promotwin.demand.reliability import calibrate_suppliers, supplier_reliability
from promotwin.demand.synthetic import recovery_scenario, simulate_history

runner = CliRunner()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    sc = recovery_scenario(days=200, stores=4, categories=1, skus_per_category=3, seed=2)
    path = tmp_path_factory.mktemp("hist") / "history.csv"
    h = simulate_history(sc, seed=3)
    h.assign(category=h["sku"].str[:2]).to_csv(path, index=False)
    return path, sc


def test_fit_then_forecast_with_planned_promotions(history: tuple, tmp_path: Path) -> None:
    path, sc = history
    model = tmp_path / "model.json"
    res = runner.invoke(app, ["fit", str(path), "--out", str(model)])
    assert res.exit_code == 0, res.output
    assert "elasticity" in res.output and "cannibalisation" in res.output
    raw = json.loads(model.read_text())
    assert raw["format"] == "demand-model/1"
    promos = tmp_path / "promos.yaml"
    promos.write_text(
        yaml.safe_dump(
            {
                "promotions": [
                    {
                        "id": "NEXT",
                        "skus": [sc.skus[0].id],
                        "start": "2025-07-30",
                        "end": "2025-08-05",
                        "depth": 0.3,
                        "feature": True,
                    }
                ]
            }
        )
    )
    out = tmp_path / "fc.csv"
    res = runner.invoke(
        app,
        ["forecast", str(model), "--promotions", str(promos), "--days", "14", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out)
    assert {"mean", "q05", "q50", "q95", "channel"} <= set(fc.columns)
    assert (fc["q05"] <= fc["q95"]).all()
    promo = fc[(fc["sku"] == sc.skus[0].id) & (fc["promo"] > 0)]["mean"].mean()
    regular = fc[(fc["sku"] == sc.skus[0].id) & (fc["promo"] == 0)]["mean"].mean()
    assert promo > 1.5 * regular


def test_fit_gbm_then_forecast_promotions_lift_it(history: tuple, tmp_path: Path) -> None:
    path, sc = history
    model = tmp_path / "gbm.json"
    res = runner.invoke(app, ["fit", str(path), "--model", "gbm", "--out", str(model)])
    assert res.exit_code == 0, res.output
    assert json.loads(model.read_text())["kind"] == "gbm"
    promos = tmp_path / "promos.yaml"
    deal = {"id": "D", "skus": [sc.skus[0].id], "start": "2025-07-30", "end": "2025-08-05"}
    promos.write_text(yaml.safe_dump({"promotions": [deal | {"depth": 0.4, "display": True}]}))
    out = tmp_path / "fc.csv"
    args = ["forecast", str(model), "--promotions", str(promos), "--days", "14", "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out)
    first = fc[fc["sku"] == sc.skus[0].id]
    assert (
        first[first["promo"] > 0]["mean"].mean() > 1.3 * first[first["promo"] == 0]["mean"].mean()
    )


def test_fit_with_an_unknown_model_kind_exits_2(history: tuple, tmp_path: Path) -> None:
    path, _ = history
    res = runner.invoke(app, ["fit", str(path), "--model", "arima", "--out", str(tmp_path / "m")])
    assert res.exit_code == 2
    assert "glm" in res.output and "gbm" in res.output
    assert not (tmp_path / "m").exists()


def test_bad_history_exits_2_naming_rows(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    pd.DataFrame(
        {
            "date": ["2026-01-05", "2026-01-05"],
            "location": ["S1", "S1"],
            "sku": ["K", "K"],
            "channel": ["walk_in", "walk_in"],
            "units": [3, -1],
        }
    ).to_csv(bad, index=False)
    res = runner.invoke(app, ["fit", str(bad), "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 2
    assert "negative units in row 1" in res.output and "duplicate" in res.output
    assert not (tmp_path / "m.json").exists()


def test_readiness_prints_score_reasons_and_mitigations() -> None:
    res = runner.invoke(app, ["readiness", "appliance_promo", "--promotion", "SUMMER-COOL"])
    assert res.exit_code == 0, res.output
    assert "readiness" in res.output and "/100" in res.output
    assert "short" in res.output and "expedite" in res.output
    bad = runner.invoke(app, ["readiness", "appliance_promo", "--promotion", "NOPE"])
    assert bad.exit_code == 2 and "no promotion 'NOPE'" in bad.output


def _orders(seed: int, n: int = 120) -> tuple[pd.DataFrame, float]:
    rng = np.random.default_rng(seed)
    order = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    lead = rng.poisson(7, n) + 2
    ordered = rng.integers(50, 200, n)
    frame = pd.DataFrame(
        {
            "supplier": "V1",
            "order_date": order,
            "due_date": order + pd.Timedelta(days=10),
            "receipt_date": order + pd.to_timedelta(lead, unit="D"),
            "ordered": ordered,
            "received": rng.binomial(ordered, 0.93),
        }
    )
    on_time = float(stats.poisson.cdf(8, 7))  # P(lead <= 10) with lead = 2 + Poisson(7)
    return frame, on_time


def test_supplier_reliability_intervals_cover_the_truth_at_about_90pct() -> None:
    window = (dt.date(2026, 6, 1), dt.date(2026, 7, 31))
    hits = []
    for seed in range(40):
        orders, on_time = _orders(seed)
        table = supplier_reliability(orders, [window])
        assert set(table["window"]) == {"promotion", "regular"}
        for r in table.itertuples():
            hits += [r.fill_low <= 0.93 <= r.fill_high, r.on_time_low <= on_time <= r.on_time_high]
    assert 0.80 <= np.mean(hits) <= 0.97


def test_supplier_reliability_feeds_the_scenario_and_checks_its_input() -> None:
    orders, _ = _orders(0, n=400)
    table = supplier_reliability(orders)
    sc = calibrate_suppliers(recovery_scenario(days=30), table, window="regular")
    assert sc.suppliers[0].lead_time.mean == pytest.approx(9.0, abs=0.6)
    assert sc.suppliers[0].fill_rate == pytest.approx(0.93, abs=0.01)
    with pytest.raises(ValueError, match="missing column"):
        supplier_reliability(orders.drop(columns="received"))
    with pytest.raises(ValueError, match="received <= ordered"):
        supplier_reliability(orders.assign(received=orders["ordered"] + 1))
