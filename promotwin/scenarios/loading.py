"""Load and validate scenarios: every problem reported together, each with its field and a fix."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from promotwin.scenarios.generator import expand_synthetic
from promotwin.scenarios.schema import Scenario

LIBRARY = "promotwin.scenarios.library"


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so pydantic reports a bad date with its field."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_HINTS = {
    "extra_forbidden": "remove it or check its spelling",
    "missing": "add this field",
    "greater_than_equal": "raise the value",
    "less_than_equal": "lower the value",
    "greater_than": "raise the value",
    "less_than": "lower the value",
    "date_from_datetime_parsing": "write dates as YYYY-MM-DD",
    "date_parsing": "write dates as YYYY-MM-DD",
    "float_parsing": "give a number",
    "int_parsing": "give a whole number",
    "literal_error": "use one of the allowed values",
}


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``problems`` lists every issue found."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


def library_names() -> list[str]:
    """Names of the built-in scenarios (files in ``scenarios/library``)."""
    files = resources.files(LIBRARY).iterdir()
    return sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml"))


def resolve(name_or_path: str | Path) -> Path:
    """A path to a scenario file, from a path or a built-in scenario name."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if not path.exists():
            raise ScenarioError(str(path), [Problem("file", "not found: check the path")])
        return path
    names = library_names()
    if str(name_or_path) not in names:
        raise ScenarioError(
            str(name_or_path),
            [Problem("name", f"no built-in scenario of that name; valid: {', '.join(names)}")],
        )
    return Path(str(resources.files(LIBRARY).joinpath(f"{name_or_path}.yaml")))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read, validate and expand a scenario; raise ``ScenarioError`` listing every problem."""
    path = resolve(name_or_path)
    return parse_scenario(path.read_text(), source=str(path), base_dir=path.parent)


def parse_scenario(text: str, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "file"
        raise ScenarioError(source, [Problem(where, f"not valid YAML: {exc}")]) from None
    if not isinstance(raw, dict):
        raise ScenarioError(source, [Problem("file", "expected a mapping of scenario fields")])
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(source, [_problem(e) for e in exc.errors()]) from None
    if scenario.synthetic is not None:
        scenario = expand_synthetic(scenario)
    if scenario.demand.history and base_dir is not None:
        history = Path(scenario.demand.history)
        if not history.is_absolute():
            history = base_dir / history
        demand = scenario.demand.model_copy(update={"history": str(history)})
        scenario = scenario.model_copy(update={"demand": demand})
    problems = check_references(scenario)
    if problems:
        raise ScenarioError(source, problems)
    return scenario


def _problem(error: object) -> Problem:
    err = dict(error)  # type: ignore[call-overload]
    where = ".".join(str(p) for p in err["loc"]) or "scenario"
    hint = _HINTS.get(err["type"], "")
    message = err["msg"].removeprefix("Value error, ")
    return Problem(where, f"{message}{'; ' + hint if hint else ''}")


def _duplicates(kind: str, ids: list[str]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for i, x in enumerate(ids):
        if x in seen:
            out.append(Problem(f"{kind}.{i}.id", f"duplicate id {x!r}: ids must be unique"))
        seen.add(x)
    return out


def check_references(s: Scenario) -> list[Problem]:
    """Cross-field checks pydantic cannot do per field: ids exist, dates fit, DCs cover stores."""
    stores = {x.id for x in s.stores}
    dcs = {x.id for x in s.dcs}
    suppliers = {x.id for x in s.suppliers}
    skus = {x.id for x in s.skus}
    categories = {x.category for x in s.skus}
    regions = {x.region for x in s.stores}
    clusters = {x.cluster for x in s.stores}
    locations = stores | dcs
    out: list[Problem] = []
    for kind, items in (("stores", s.stores), ("dcs", s.dcs), ("skus", s.skus)):
        out += _duplicates(kind, [x.id for x in items])
    out += _duplicates("suppliers", [x.id for x in s.suppliers])
    if stores & dcs:
        out.append(Problem("dcs", f"ids used by both a store and a DC: {sorted(stores & dcs)}"))

    served: dict[str, str] = {}
    for i, dc in enumerate(s.dcs):
        for store in dc.serves:
            if store not in stores:
                out.append(Problem(f"dcs.{i}.serves", f"unknown store {store!r}"))
            elif store in served:
                out.append(
                    Problem(f"dcs.{i}.serves", f"store {store!r} already served by {served[store]}")
                )
            served[store] = dc.id
    for store in sorted(stores - served.keys()):
        out.append(Problem("dcs", f"store {store!r} is served by no DC: add it to a DC's `serves`"))

    for i, sku in enumerate(s.skus):
        if sku.supplier not in suppliers:
            out.append(Problem(f"skus.{i}.supplier", f"unknown supplier {sku.supplier!r}"))
        if sku.unit_cost > sku.price:
            out.append(
                Problem(f"skus.{i}.unit_cost", f"cost {sku.unit_cost} exceeds price {sku.price}")
            )
    for i, lane in enumerate(s.lanes):
        for end in ("origin", "destination"):
            if getattr(lane, end) not in locations:
                out.append(Problem(f"lanes.{i}.{end}", f"unknown location {getattr(lane, end)!r}"))
        if lane.origin == lane.destination:
            out.append(Problem(f"lanes.{i}", "origin and destination are the same location"))
    for store, dc_id in served.items():
        if not any(ln.origin == dc_id and ln.destination == store for ln in s.lanes):
            out.append(Problem("lanes", f"no lane from {dc_id} to the store it serves, {store}"))

    for i, p in enumerate(s.promotions):
        at = f"promotions.{i}"
        out += [Problem(f"{at}.skus", f"unknown SKU {x!r}") for x in p.skus if x not in skus]
        out += [
            Problem(f"{at}.categories", f"unknown category {x!r}")
            for x in p.categories
            if x not in categories
        ]
        loc = p.locations
        out += [
            Problem(f"{at}.locations", f"unknown store {x!r}")
            for x in loc.stores
            if x not in stores
        ]
        out += [
            Problem(f"{at}.locations", f"unknown region {x!r}")
            for x in loc.regions
            if x not in regions
        ]
        out += [
            Problem(f"{at}.locations", f"unknown cluster {x!r}")
            for x in loc.clusters
            if x not in clusters
        ]
        if p.start < s.start_date or p.end > s.end_date:
            out.append(
                Problem(
                    at, f"runs {p.start}..{p.end}, outside the horizon {s.start_date}..{s.end_date}"
                )
            )
    for cat in s.demand.seasonality:
        if cat not in categories:
            out.append(Problem(f"demand.seasonality.{cat}", "unknown category"))
    for cat, comps in s.demand.halo.items():
        for c in (cat, *comps):
            if c not in categories:
                out.append(Problem(f"demand.halo.{cat}", f"unknown category {c!r}"))
    for i, d in enumerate(s.disruptions.supplier_delays):
        if d.supplier not in suppliers:
            out.append(Problem(f"disruptions.supplier_delays.{i}.supplier", "unknown supplier"))
    for i, drop in enumerate(s.disruptions.dc_capacity_drops):
        if drop.dc not in dcs:
            out.append(Problem(f"disruptions.dc_capacity_drops.{i}.dc", "unknown DC"))
    if s.warmup_days >= s.horizon_days:
        out.append(Problem("warmup_days", "must be shorter than horizon_days"))
    if s.demand.history and not Path(s.demand.history).exists():
        out.append(Problem("demand.history", f"file not found: {s.demand.history}"))
    return out
