"""Cost parts: the five parts make total cost in the twin's KPIs, the experiment report and the
CLI, all under the names of ``experiments.kpis``, with the scenario's currency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from promotwin.cli.main import app
from promotwin.experiments.kpis import COST_PARTS, KPIS, label
from promotwin.experiments.report import cost_breakdown
from promotwin.policies.heuristics import BaseStockPolicy
from promotwin.testing.scenarios import small_scenario
from promotwin.twin import simulate
from promotwin.twin.ledger import Kind

runner = CliRunner()


def test_parts_make_the_total_and_each_is_its_ledger_sum() -> None:
    result = simulate(small_scenario(), BaseStockPolicy(), seed=2, days=30)
    k = result.kpis
    assert np.isclose(sum(k[p] for p in COST_PARTS), k["total_cost"], rtol=1e-9)
    led = result.ledger

    def cost(kind: Kind) -> float:
        return float(led.loc[led["kind"] == int(kind), "cost"].sum())

    # independently of compute_kpis: the ledger's own lines and the daily end-of-day stock
    assert np.isclose(k["lost_sale_cost"], cost(Kind.LOST))
    assert np.isclose(k["transport_cost"], cost(Kind.DISPATCH))
    assert np.isclose(k["expedite_cost"], cost(Kind.EXPEDITE_RECEIPT))
    assert np.isclose(k["ordering_cost"], cost(Kind.SUPPLIER_RECEIPT))
    assert k["transport_cost"] > 0 and k["lost_sale_cost"] > 0 and k["holding_cost"] > 0
    # every KPI a run reports has one name, shared by every view
    assert set(k) <= set(KPIS), set(k) - set(KPIS)


def test_report_breakdown_sums_per_policy() -> None:
    rows = []
    for policy, parts in (("a", [1.0, 2.0, 3.0, 4.0, 5.0]), ("b", [0.5, 0.0, 7.0, 1.0, 0.25])):
        for rep in range(2):
            values = dict(zip(COST_PARTS, (v * (rep + 1) for v in parts), strict=True))
            values["total_cost"] = sum(values.values())
            rows += [
                {"scenario": "s", "variation": "base", "policy": policy, "kpi": kpi, "value": v}
                for kpi, v in values.items()
            ]
    wide = cost_breakdown(pd.DataFrame(rows))
    assert list(wide.columns[3:]) == [*COST_PARTS, "total_cost"]
    np.testing.assert_allclose(wide[list(COST_PARTS)].sum(axis=1), wide["total_cost"])
    assert wide.loc[wide["policy"] == "a", "holding_cost"].item() == pytest.approx(4.5)


def _scenario_file(tmp_path: Path, currency: str) -> Path:
    from promotwin.scenarios import load_scenario

    raw = load_scenario("steady_network").model_dump(mode="json", exclude_defaults=True)
    raw["currency"] = currency
    path = tmp_path / "steady_eur.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_cli_table_shows_parts_under_total_in_the_scenario_currency(tmp_path: Path) -> None:
    scenario = _scenario_file(tmp_path, "EUR")
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(scenario), "--days", "10", "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    total = next(i for i, line in enumerate(lines) if label("total_cost", "EUR") in line)
    for offset, part in enumerate(COST_PARTS, start=1):
        assert f"  {label(part, 'EUR')}" in lines[total + offset]
    assert "(USD)" not in res.output
    assert '"currency": "EUR"' in (out / "manifest.json").read_text()


def test_bad_currency_is_named_before_any_work(tmp_path: Path) -> None:
    scenario = _scenario_file(tmp_path, "euro")
    res = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "run")])
    assert res.exit_code == 2
    assert "currency" in res.output and "e.g. USD" in res.output
    assert not (tmp_path / "run").exists()
