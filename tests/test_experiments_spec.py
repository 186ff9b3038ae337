"""Experiment specs: built-in library, variations applied to the scenario, every problem listed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from promotwin.cli.main import app
from promotwin.experiments.spec import (
    SpecError,
    apply_changes,
    library_names,
    load_spec,
    parse_spec,
)
from promotwin.policies.registry import make_policy
from promotwin.scenarios import load_scenario


@pytest.mark.parametrize("name", library_names())
def test_builtin_specs_are_valid(name: str) -> None:
    """Every built-in spec loads and every policy it names can be made: a broken optimizer
    fails here, it is never skipped."""
    experiment = load_spec(name)
    assert experiment.cells and len(experiment.policies) >= 2
    for _label, registered in experiment.policies:
        assert make_policy(registered).name == registered


def _library_text(name: str) -> str:
    from importlib import resources

    return resources.files("promotwin.experiments.library").joinpath(f"{name}.yaml").read_text()


def test_library_has_the_leadership_question() -> None:
    raw = yaml.safe_load(_library_text("appliance_policies"))
    assert raw["scenarios"] == ["appliance_promo"]
    assert set(raw["policies"]) == {"order-point", "static-forecast", "base-stock", "optimizer"}
    assert raw["baseline"] == "order-point"


def test_sweep_sets_every_promotion_depth() -> None:
    experiment = load_spec("appliance_depth_sweep")
    depths = [{p.depth for p in c.model.promotions} for c in experiment.cells]
    assert depths == [{0.1}, {0.2}, {0.3}, {0.4}]
    assert experiment.sweep_parameter == "promotions.*.depth"
    assert [c.value for c in experiment.cells] == [0.1, 0.2, 0.3, 0.4]


def test_changes_by_id_index_and_nested_model() -> None:
    base = load_scenario("appliance_promo")
    ids = [s.id for s in base.suppliers]
    changed = apply_changes(
        base,
        {
            f"suppliers.{ids[0]}.lead_time.sd": 4.5,
            "suppliers.1.fill_rate": 0.8,
            "demand.seasonality.cooling.amplitude": 0.5,
            "forecast_error": 0.1,
        },
    )
    assert changed.suppliers[0].lead_time.sd == 4.5
    assert changed.suppliers[1].fill_rate == 0.8
    assert changed.demand.seasonality["cooling"].amplitude == 0.5
    assert changed.demand.forecast_error == 0.1
    unchanged = [s for s in changed.suppliers[2:]]
    assert unchanged == list(base.suppliers[2:])
    assert base.suppliers[0].lead_time.sd != 4.5  # the library scenario itself is untouched


def test_bad_changes_are_all_reported() -> None:
    base = load_scenario("appliance_promo")
    fixed = next(s.id for s in base.suppliers if s.lead_time.distribution == "fixed")
    with pytest.raises(SpecError) as info:
        apply_changes(
            base,
            {
                "depth": 1.5,
                "promotions.*.dpeth": 0.2,
                "suppliers.NOPE.fill_rate": 0.5,
                f"suppliers.{fixed}.lead_time.sd": 2.0,
            },
        )
    text = str(info.value)
    assert "depth" in text and "less than 1" in text
    assert "no field 'dpeth'" in text
    assert "no item 'NOPE'" in text
    # the first three fail on their own; the ineffective sd is checked once the rest apply
    assert len(info.value.problems) == 3
    with pytest.raises(SpecError, match="has no effect"):
        apply_changes(base, {f"suppliers.{fixed}.lead_time.sd": 2.0})


BAD_SPEC = {
    "name": "bad",
    "scenarios": ["appliance_promo", "no_such_scenario"],
    "policies": ["order-point", "base-stok", "base-stock"],
    "replications": 1,
    "kpis": ["fill_rate", "happiness"],
}


def test_bad_spec_lists_every_schema_problem() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(yaml.safe_dump(BAD_SPEC))
    text = str(info.value)
    for needle in ("base-stok", "replications", "happiness"):
        assert needle in text
    assert len(info.value.problems) == 3


def test_bad_references_listed_together() -> None:
    raw = {
        "name": "bad-refs",
        "scenarios": ["appliance_promo", "no_such_scenario"],
        "policies": ["order-point", "base-stock"],
        "replications": 2,
        "days": 10,
        "variations": [{"name": "deep", "set": {"depth": 0.9, "promotions.*.colour": "red"}}],
    }
    with pytest.raises(SpecError) as info:
        parse_spec(yaml.safe_dump(raw))
    wheres = [p.where for p in info.value.problems]
    assert "scenarios.1" in wheres  # unknown scenario
    assert "days" in wheres  # 10 days are all warm-up
    assert any("colour" in p.message for p in info.value.problems)


def test_cli_bad_spec_exit_2_and_nothing_written(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(BAD_SPEC))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["compare", str(spec), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "3 problem(s)" in text and "base-stok" in text and "happiness" in text
    assert not out.exists()


def test_cli_rejects_workers_with_scheduler(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "steady_lead_time",
            "--out",
            str(tmp_path / "o"),
            "--workers",
            "2",
            "--scheduler",
            "tcp://127.0.0.1:1",
        ],
    )
    assert result.exit_code == 2 and "not both" in result.output
    assert not (tmp_path / "o").exists()
