"""Load and validate scenarios: every problem reported together, each with its field and a fix."""

from __future__ import annotations

import math
from dataclasses import dataclass
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


# Measured with synthetic networks of 100-600 stores x 1000 SKUs, base-stock, 20-40 days
# (peak RSS of `simulate`): ~700 bytes per location x SKU cell plus ~8 per cell-day of ledger,
# ~2 microseconds per cell-day; building the network costs ~100 microseconds per store or SKU.
BASE_BYTES = 200 * 2**20
BYTES_PER_CELL = 700
BYTES_PER_CELL_DAY = 8
SECONDS_PER_CELL_DAY = 2e-6
SECONDS_PER_ITEM = 1e-4
DEFAULT_MAX_MEMORY = 8 * 2**30


@dataclass(frozen=True)
class SizeEstimate:
    """What simulating a network will take, estimated from its size before anything is built."""

    cells: int
    days: int
    memory_bytes: float
    seconds: float

    def __str__(self) -> str:
        return (
            f"{self.cells:,} location x SKU cells over {self.days} days need about "
            f"{format_bytes(self.memory_bytes)} of memory and {self.seconds:,.0f} s"
        )


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def parse_size(text: str) -> int:
    """Bytes from ``8G``, ``512M``, ``2T`` or a plain number of bytes; ``ValueError`` if not."""
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in units else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"--max-memory {text!r}: give a size such as 8G, 512M or 2T")
    return int(value * units[unit])


def estimate_size(locations: int, skus: int, days: int) -> SizeEstimate:
    cells = locations * skus
    memory = BASE_BYTES + cells * (BYTES_PER_CELL + BYTES_PER_CELL_DAY * days)
    seconds = cells * days * SECONDS_PER_CELL_DAY + (locations + skus) * SECONDS_PER_ITEM
    return SizeEstimate(cells, days, float(memory), seconds)


def check_size(scenario: Scenario, source: str, max_memory: int | None) -> None:
    """Refuse a network whose estimated memory is above ``max_memory`` bytes, before building."""
    limit = DEFAULT_MAX_MEMORY if max_memory is None else max_memory
    spec = scenario.synthetic
    if spec is not None:
        where, locations, skus = "synthetic", spec.stores + spec.dcs, spec.skus
    else:
        where, locations, skus = (
            "stores",
            len(scenario.stores) + len(scenario.dcs),
            len(scenario.skus),
        )
    estimate = estimate_size(locations, skus, scenario.horizon_days)
    if estimate.memory_bytes > limit:
        raise ScenarioError(
            source,
            [
                Problem(
                    where,
                    f"too large: {estimate}, above the limit of {format_bytes(limit)}; "
                    "make the network smaller, or raise the limit with --max-memory",
                )
            ],
        )


def load_scenario(name_or_path: str | Path, max_memory: int | None = None) -> Scenario:
    """Read, validate and expand a scenario; raise ``ScenarioError`` listing every problem.

    ``max_memory`` (bytes, default ``DEFAULT_MAX_MEMORY``) bounds the estimated memory of a run.
    """
    path = resolve(name_or_path)
    text = config_files.read_text(path, ScenarioError, "scenario")
    return parse_scenario(text, source=str(path), base_dir=path.parent, max_memory=max_memory)


def parse_scenario(
    text: str,
    source: str = "<scenario>",
    base_dir: Path | None = None,
    max_memory: int | None = None,
) -> Scenario:
    scenario = parse_yaml_model(text, Scenario, source, ScenarioError, "scenario")
    check_size(scenario, source, max_memory)
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
    out += _duplicates("promotions", [x.id for x in s.promotions])
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
    out += check_supply(s, served)

    for i, sku in enumerate(s.skus):
        if sku.supplier not in suppliers:
            out.append(Problem(f"skus.{i}.supplier", f"unknown supplier {sku.supplier!r}"))
        if sku.unit_cost > sku.price:
            out.append(
                Problem(f"skus.{i}.unit_cost", f"cost {sku.unit_cost} exceeds price {sku.price}")
            )
    lanes_seen: dict[tuple[str, str], int] = {}
    for i, lane in enumerate(s.lanes):
        pair = (lane.origin, lane.destination)
        if pair in lanes_seen:
            out.append(
                Problem(
                    f"lanes.{i}",
                    f"duplicate lane {lane.origin} -> {lane.destination} (also lanes."
                    f"{lanes_seen[pair]}): keep one lane per origin and destination",
                )
            )
        lanes_seen.setdefault(pair, i)
        for end in ("origin", "destination"):
            if getattr(lane, end) not in locations:
                out.append(Problem(f"lanes.{i}.{end}", f"unknown location {getattr(lane, end)!r}"))
        if lane.origin == lane.destination:
            out.append(Problem(f"lanes.{i}", "origin and destination are the same location"))
    for store, dc_id in served.items():
        if (dc_id, store) not in lanes_seen:
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
    out += check_magnitudes(s)
    if s.warmup_days >= s.horizon_days:
        out.append(Problem("warmup_days", "must be shorter than horizon_days"))
    if s.demand.history and not Path(s.demand.history).exists():
        out.append(Problem("demand.history", f"file not found: {s.demand.history}"))
    return out


def check_supply(s: Scenario, served: dict[str, str]) -> list[Problem]:
    """Each store's ``supplied_by`` against the DCs' ``serves``: a store its DC replenishes
    (``dc``, ``both``) is served by one; a direct-only store (``supplier``) by none."""
    out = []
    for i, st in enumerate(s.stores):
        dc = served.get(st.id)
        if st.supplied_by == "supplier" and dc is not None:
            out.append(
                Problem(
                    f"stores.{i}.supplied_by",
                    f"store {st.id!r} is supplied by suppliers only, but DC {dc!r} serves it: "
                    f"remove it from {dc}'s `serves`, or set `supplied_by: both`",
                )
            )
        elif st.supplied_by != "supplier" and dc is None:
            out.append(
                Problem(
                    "dcs" if st.supplied_by == "dc" else f"stores.{i}.supplied_by",
                    f"store {st.id!r} is served by no DC: add it to a DC's `serves`, or set "
                    "`supplied_by: supplier` for direct-store delivery",
                )
            )
    return out


MAX_CELL_UNITS = 1e15  # far above any real stock, far below 64-bit overflow (9.2e18)


def check_magnitudes(s: Scenario) -> list[Problem]:
    """Peak demand and opening stock of one cell must fit the twin's 64-bit unit counts.

    Peak daily demand of a store x SKU ~ baseline x size x top weekday factor x seasonality x
    promotion multiplier ((1 - depth)^elasticity x display/feature lift x ecommerce wave lift);
    opening stock is that many days of baseline, at a DC summed over the stores it serves.
    Computed in logs so an absurd input cannot overflow the check itself.
    """
    if not s.skus or not s.stores:
        return []
    d = s.demand
    log_day = (
        math.log(max(k.baseline for k in s.skus) or 1.0)
        + math.log(max(x.size for x in s.stores))
        + math.log(max(d.weekday))
        + math.log(1 + max((x.amplitude for x in d.seasonality.values()), default=0.0))
    )
    promo = 0.0
    elasticity = min([d.elasticity] + [k.elasticity for k in s.skus if k.elasticity is not None])
    for p in s.promotions:
        lift = math.log(1 + d.display_lift + d.feature_lift)
        wave = max((w.lift for w in p.ecommerce_waves), default=0.0)
        promo = max(promo, elasticity * math.log1p(-p.depth) + lift + math.log1p(wave))
    out = []
    peak = log_day + promo
    if peak > math.log(MAX_CELL_UNITS):
        out.append(
            Problem(
                "skus",
                f"peak daily demand of one store x SKU is about 10^{peak / math.log(10):.0f} "
                "units, beyond what the twin can count: check baseline, store size, weekday "
                "factors, elasticity and promotion depth",
            )
        )
    stores = len(s.stores)
    days = max(s.initial_inventory.store_days, s.initial_inventory.dc_days * stores)
    if days > 0 and log_day + math.log(days) > math.log(MAX_CELL_UNITS):
        out.append(
            Problem(
                "initial_inventory",
                "opening stock of one location x SKU would exceed 10^15 units: lower "
                "store_days / dc_days or the SKUs' baseline",
            )
        )
    return out
