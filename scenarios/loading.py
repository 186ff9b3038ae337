"""Load and validate scenarios: every problem reported together, each with its field and a fix."""

from __future__ import annotations

from pathlib import Path

from promotwin.scenarios import config_files
from promotwin.scenarios.config_files import ConfigError, Problem, parse_yaml_model
from promotwin.scenarios.generator import expand_synthetic
from promotwin.scenarios.schema import Scenario

LIBRARY = "promotwin.scenarios.library"


class ScenarioError(ConfigError):
    """A scenario file that cannot be used; ``problems`` lists every issue found."""


def library_names() -> list[str]:
    """Names of the built-in scenarios (files in ``scenarios/library``)."""
    return config_files.library_names(LIBRARY)


def resolve(name_or_path: str | Path) -> Path:
    """A path to a scenario file, from a path or a built-in scenario name."""
    return config_files.resolve(name_or_path, LIBRARY, ScenarioError, "scenario")


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read, validate and expand a scenario; raise ``ScenarioError`` listing every problem."""
    path = resolve(name_or_path)
    return parse_scenario(path.read_text(), source=str(path), base_dir=path.parent)


def parse_scenario(text: str, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    scenario = parse_yaml_model(text, Scenario, source, ScenarioError, "scenario")
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
