"""The experiment spec: scenarios x variations x policies x replications, validated up front.

A spec is YAML, checked like a scenario: every problem is listed together with its field and a fix.
Parameter variations are written as paths into the scenario (``promotions.*.depth``,
``suppliers.CoolAir.lead_time.sd``) or as one of the short ``ALIASES`` (``depth``); a path segment
into a list is ``*`` (every item), an index, or an item's ``id``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from promotwin.demand.forecaster import ForecasterError, make_forecaster
from promotwin.experiments.kpis import DEFAULT_KPIS, KPIS
from promotwin.policies.registry import POLICIES, make_policy
from promotwin.scenarios import config_files
from promotwin.scenarios.config_files import (
    ConfigError,
    Problem,
    parse_yaml_model,
    problem_from_pydantic,
)
from promotwin.scenarios.loading import (
    ScenarioError,
    check_references,
    load_scenario,
)
from promotwin.scenarios.schema import Scenario

LIBRARY = "promotwin.experiments.library"

ALIASES: dict[str, str] = {
    "depth": "promotions.*.depth",
    "lead_time_sd": "suppliers.*.lead_time.sd",
    "lead_time_mean": "suppliers.*.lead_time.mean",
    "supplier_fill_rate": "suppliers.*.fill_rate",
    "dc_throughput": "dcs.*.throughput",
    "forecast_error": "demand.forecast_error",
}
LABELS: dict[str, str] = {
    "promotions.*.depth": "discount depth",
    "suppliers.*.lead_time.sd": "supplier lead-time sd (days)",
    "suppliers.*.lead_time.mean": "supplier lead time (days)",
    "suppliers.*.fill_rate": "supplier fill rate",
    "dcs.*.throughput": "DC throughput (units/day)",
    "demand.forecast_error": "forecast error (log sd)",
}


class SpecError(ConfigError):
    """An experiment spec that cannot be run; ``problems`` lists every issue found."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PolicyEntry(_Strict):
    """A policy under its own label (e.g. the same policy twice, for a CRN check), optionally
    with its own forecaster (``forecast``, ``model`` file, ``sensing``; default the oracle)."""

    label: str
    policy: str
    forecast: str = "oracle"
    model: str | None = None
    sensing: bool = False

    @field_validator("policy")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in POLICIES:
            raise ValueError(f"unknown policy {value!r}; use one of: {', '.join(POLICIES)}")
        return value


class Variation(_Strict):
    name: str
    set: dict[str, Any] = Field(description="scenario field path (or alias) -> value")


class Sweep(_Strict):
    """One parameter over several values; each value becomes a variation."""

    parameter: str
    values: Annotated[tuple[Any, ...], Field(min_length=1)]


class Statistics(_Strict):
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    bootstrap: Annotated[int, Field(ge=0, le=100_000)] = Field(
        0, description="bootstrap resamples as a second CI (0 = t-based only)"
    )
    bootstrap_seed: int = 0
    precision: Annotated[float, Field(gt=0, le=1)] = Field(
        0.25, description="warn when the CI half-width exceeds this share of the effect"
    )


class ExperimentSpec(_Strict):
    name: str
    description: str = ""
    scenarios: Annotated[tuple[str, ...], Field(min_length=1)] = Field(
        description="built-in scenario names or YAML paths (relative to the spec file)"
    )
    policies: Annotated[tuple[str | PolicyEntry, ...], Field(min_length=2)]
    baseline: str | None = Field(None, description="policy label to compare against; default first")
    replications: Annotated[int, Field(ge=2, le=10_000)]
    base_seed: Annotated[int, Field(ge=0)] = 0
    days: Annotated[int, Field(ge=1)] | None = Field(None, description="simulate fewer days")
    variations: tuple[Variation, ...] = ()
    sweep: Sweep | None = None
    kpis: Annotated[tuple[str, ...], Field(min_length=1)] = DEFAULT_KPIS
    headline: str = Field("promo_lost_sales_units", description="KPI the summary leads with")
    tradeoff: str = Field("avg_inventory_value", description="KPI the summary weighs it against")
    statistics: Statistics = Statistics()

    @field_validator("policies")
    @classmethod
    def _known_policies(cls, value: tuple[str | PolicyEntry, ...]) -> tuple[str | PolicyEntry, ...]:
        unknown = [p for p in value if isinstance(p, str) and p not in POLICIES]
        if unknown:
            raise ValueError(
                f"unknown policy {', '.join(map(repr, unknown))}; use one of: {', '.join(POLICIES)}"
            )
        return value

    @field_validator("kpis")
    @classmethod
    def _known_kpis(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in value if k not in KPIS]
        if unknown:
            raise ValueError(
                f"unknown KPI {', '.join(map(repr, unknown))}; valid: {', '.join(KPIS)}"
            )
        return value

    @field_validator("headline", "tradeoff")
    @classmethod
    def _known_kpi(cls, value: str) -> str:
        if value not in KPIS:
            raise ValueError(f"unknown KPI {value!r}; valid: {', '.join(KPIS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        labels = policy_labels(self)
        problems = []
        if len(set(labels)) != len(labels):
            problems.append(
                "a policy is listed twice: give the copy its own label "
                "({label: base-stock-copy, policy: base-stock})"
            )
        if self.baseline is not None and self.baseline not in labels:
            problems.append(f"baseline {self.baseline!r} is not one of the policies {labels}")
        if self.sweep is not None and self.variations:
            problems.append("give either `variations` or `sweep`, not both")
        names = [v.name for v in self.variations]
        if len(set(names)) != len(names):
            problems.append("variation names must be unique")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _model_path(model: str | None, base_dir: Path | None) -> str | None:
    """A model file named in a spec, relative to the spec's folder."""
    if model is None or base_dir is None or Path(model).is_absolute():
        return model
    return str(base_dir / model)


def forecaster_of(experiment: Experiment, label: str) -> tuple[str, str | None, bool]:
    """(forecast, model file, sensing) of a policy label; the oracle unless the entry says."""
    for p in experiment.spec.policies:
        if isinstance(p, PolicyEntry) and p.label == label:
            base = Path(experiment.source).parent if experiment.source != "<spec>" else None
            return p.forecast, _model_path(p.model, base), p.sensing
    return "oracle", None, False


def policy_labels(spec: ExperimentSpec) -> list[str]:
    return [p if isinstance(p, str) else p.label for p in spec.policies]


@dataclass(frozen=True)
class Cell:
    """One scenario under one variation: what every policy and replication is run on."""

    scenario: str
    variation: str
    value: Any  # the sweep value, or None
    model: Scenario


@dataclass(frozen=True)
class Experiment:
    """A validated spec with its scenarios loaded and variations applied."""

    spec: ExperimentSpec
    source: str
    spec_hash: str
    cells: tuple[Cell, ...]
    policies: tuple[tuple[str, str], ...]  # (label, registry name)
    baseline: str
    sweep_parameter: str | None  # full path of the swept parameter

    @property
    def sweep_label(self) -> str | None:
        if self.sweep_parameter is None:
            return None
        return LABELS.get(self.sweep_parameter, self.sweep_parameter)


def library_names() -> list[str]:
    """Names of the built-in experiment specs (files in ``experiments/library``)."""
    return config_files.library_names(LIBRARY)


def resolve_spec(name_or_path: str | Path) -> Path:
    return config_files.resolve(name_or_path, LIBRARY, SpecError, "experiment")


def load_spec(name_or_path: str | Path) -> Experiment:
    """Read and validate a spec, load its scenarios, apply its variations; else ``SpecError``."""
    path = resolve_spec(name_or_path)
    text = config_files.read_text(path, SpecError, "experiment")
    return parse_spec(text, source=str(path), base_dir=path.parent)


def parse_spec(text: str, source: str = "<spec>", base_dir: Path | None = None) -> Experiment:
    spec = parse_yaml_model(text, ExperimentSpec, source, SpecError, "experiment")

    problems: list[Problem] = []
    policies = tuple((p, p) if isinstance(p, str) else (p.label, p.policy) for p in spec.policies)
    for i, entry in enumerate(spec.policies):
        if isinstance(entry, PolicyEntry):
            try:
                make_forecaster(entry.forecast, _model_path(entry.model, base_dir), entry.sensing)
            except ForecasterError as exc:
                problems.append(Problem(f"policies.{i}", str(exc)))
    for i, (_, name) in enumerate(policies):
        try:
            make_policy(name)
        except Exception as exc:  # a policy that cannot even be built cannot run
            problems.append(
                Problem(
                    f"policies.{i}",
                    f"{name} cannot be loaded ({type(exc).__name__}: {exc}): "
                    "fix it or leave it out",
                )
            )

    scenarios: dict[str, Scenario] = {}
    for i, ref in enumerate(spec.scenarios):
        try:
            scenario = _load_scenario(ref, base_dir)
        except ScenarioError as exc:
            problems += [Problem(f"scenarios.{i}", f"{ref}: {p}") for p in exc.problems]
            continue
        if scenario.name in scenarios:
            problems.append(Problem(f"scenarios.{i}", f"scenario {scenario.name!r} listed twice"))
        if spec.days is not None and spec.days <= scenario.warmup_days:
            problems.append(
                Problem(
                    "days",
                    f"{spec.days} days leave nothing after {scenario.name}'s "
                    f"{scenario.warmup_days}-day warm-up: raise days",
                )
            )
        if spec.days is not None and spec.days > scenario.horizon_days:
            problems.append(
                Problem(
                    "days", f"{scenario.name} has only {scenario.horizon_days} days: lower days"
                )
            )
        scenarios[scenario.name] = scenario

    variations, sweep_path = _variations(spec)
    cells: list[Cell] = []
    for name, scenario in scenarios.items():
        for where, label, value, changes in variations:
            try:
                model = apply_changes(scenario, changes, where)
            except SpecError as exc:
                problems += [
                    Problem(p.where, f"{p.message} (scenario {name})") for p in exc.problems
                ]
                continue
            cells.append(Cell(name, label, value, model))
    if problems:
        raise SpecError(source, _unique(problems))
    labels = [label for label, _ in policies]
    return Experiment(
        spec=spec,
        source=source,
        spec_hash=hashlib.sha256(text.encode()).hexdigest()[:16],
        cells=tuple(cells),
        policies=policies,
        baseline=spec.baseline or labels[0],
        sweep_parameter=sweep_path,
    )


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    return [p for p in problems if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]


def _load_scenario(ref: str, base_dir: Path | None) -> Scenario:
    path = Path(ref)
    if base_dir is not None and not path.is_absolute() and (base_dir / path).exists():
        return load_scenario(base_dir / path)
    return load_scenario(ref)


def _variations(
    spec: ExperimentSpec,
) -> tuple[list[tuple[str, str, Any, dict[str, Any]]], str | None]:
    """(where, name, sweep value, changes) per variation; a spec without any has one, "base"."""
    if spec.sweep is not None:
        path = ALIASES.get(spec.sweep.parameter, spec.sweep.parameter)
        short = spec.sweep.parameter
        return [
            (f"sweep.values.{i}", f"{short}={v}", v, {path: v})
            for i, v in enumerate(spec.sweep.values)
        ], path
    if not spec.variations:
        return [("variations", "base", None, {})], None
    return [
        (f"variations.{i}.set", v.name, None, dict(v.set)) for i, v in enumerate(spec.variations)
    ], None


def apply_changes(scenario: Scenario, changes: Mapping[str, Any], where: str = "set") -> Scenario:
    """A copy of ``scenario`` with each ``path: value`` applied; changed models are revalidated."""
    problems: list[Problem] = []
    out = scenario
    for key, value in changes.items():
        path = ALIASES.get(key, key)
        try:
            out = _set(out, path.split("."), value, f"{where}.{key}")
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(where, problems)
    problems += [Problem(f"{where}: {p.where}", p.message) for p in check_references(out)]
    problems += _ineffective(scenario, out, where)
    if problems:
        raise SpecError(where, problems)
    return out


def _ineffective(before: Scenario, after: Scenario, where: str) -> list[Problem]:
    """Changes that validate but would silently do nothing."""
    out = []
    for old, new in zip(before.suppliers, after.suppliers, strict=True):
        if new.lead_time.sd != old.lead_time.sd and new.lead_time.distribution != "lognormal":
            out.append(
                Problem(
                    where,
                    f"supplier {new.id}: lead_time.sd has no effect with a "
                    f"{new.lead_time.distribution} lead time: also set "
                    f"suppliers.{new.id}.lead_time.distribution to lognormal",
                )
            )
    return out


def _set(obj: Any, parts: list[str], value: Any, where: str) -> Any:
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    if isinstance(obj, BaseModel):
        fields = type(obj).model_fields
        if head not in fields:
            raise SpecError(
                where, [Problem(where, f"no field {head!r} here; valid: {', '.join(fields)}")]
            )
        child = _set(getattr(obj, head), rest, value, where)
        try:
            return type(obj).model_validate({**dict(obj), head: child})
        except ValidationError as exc:
            raise SpecError(
                where,
                [Problem(where, problem_from_pydantic(e).message) for e in exc.errors()],
            ) from None
    if isinstance(obj, tuple):
        picked: list[int]
        if head == "*":
            picked = list(range(len(obj)))
        elif head.isdigit():
            picked = [int(head)] if int(head) < len(obj) else []
        else:
            picked = [i for i, item in enumerate(obj) if getattr(item, "id", None) == head]
        if not picked:
            ids = [str(getattr(x, "id", i)) for i, x in enumerate(obj)]
            raise SpecError(
                where,
                [Problem(where, f"no item {head!r}: use *, an index or an id ({', '.join(ids)})")],
            )
        items = list(obj)
        for i in picked:
            items[i] = _set(items[i], rest, value, where)
        return tuple(items)
    if isinstance(obj, dict):
        if head not in obj:
            raise SpecError(
                where, [Problem(where, f"no key {head!r}; present: {', '.join(map(str, obj))}")]
            )
        return {**obj, head: _set(obj[head], rest, value, where)}
    raise SpecError(where, [Problem(where, f"{head!r} goes inside a {type(obj).__name__}")])
