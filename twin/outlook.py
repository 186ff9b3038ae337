"""What a promotion setting leads to, computed from the scenario and one twin run.

For a scenario and one of its promotions with changed settings (depth, dates, channels,
display/feature, ecommerce wave cap) and a policy:

- **Outlook** (expected, from the scenario's demand model): uplift of the promoted SKUs per
  channel and region/cluster with a 90% interval from the planners' uplift error (the log-normal
  sd ``demand.forecast_error`` the twin's forecasts carry, shared by the whole promotion),
  cannibalisation and halo on the other SKUs, and the incremental margin with and without vendor
  funding, over the promotion and its post-promotion dip, against the same calendar without it.
- **Projection** (one twin run under the policy, from the scenario start to the end of the
  dip, same seed for every setting): KPIs, lost units and stockout days by region, cluster
  and channel during the promotion.
- **Readiness** (:func:`promotwin.policies.readiness.readiness`) on the snapshot the same run
  hands its policy ``days_before`` launch, with the measured mitigations.

One twin run serves both the projection and the readiness snapshot, so a change of depth costs
one short simulation (about 1 s for the appliance scenario). The planner page and
``twin readiness`` both call this module.

Re-simulation (the planner page): with a :class:`PlannerCache`, the first run of a (scenario,
promotion, policy, seed, run length) keeps the plans its policy made each day. Until the
promotion can first affect a decision (its start, earlier or later setting, minus the policy's
forecast horizon) the twin's state does not depend on the promotion's settings, so a later run
with other settings replays those plans instead of asking the policy (no solves) and hands over
to the policy from that day. Runs differ from a full run only through what the policy remembers
from the replayed days (the optimizer's warm start; see :data:`REPLAYABLE`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from promotwin.demand.forecaster import make_forecaster
from promotwin.demand.model import DemandModel
from promotwin.policies.contract import (
    BoolArray,
    FloatArray,
    Plan,
    PlanningSnapshot,
    Policy,
    RunContext,
    start_run,
)
from promotwin.policies.readiness import SHIFT_DAYS, ReadinessReport, readiness
from promotwin.policies.registry import make_policy
from promotwin.scenarios.network import Network, compile_network
from promotwin.scenarios.schema import Promotion, Scenario
from promotwin.twin.ledger import CHANNELS, Kind
from promotwin.twin.run import simulate

Z90 = 1.6448536269514722  # two-sided 90% interval
PROJECTION_KPIS = (
    "promo_fill_rate",
    "fill_rate",
    "promo_lost_sales_units",
    "lost_sales_units",
    "lost_sales_value",
    "stockout_days",
    "revenue",
    "gross_margin",
    "vendor_funding",
    "expedite_cost",
    "total_cost",
)


@dataclass(frozen=True)
class PromoSettings:
    """The levers a planner moves on one promotion."""

    depth: float
    start: dt.date
    end: dt.date
    channels: tuple[str, ...]
    display: bool
    feature: bool
    ecommerce_cap: float | None = None  # highest ecommerce campaign-wave lift kept (share)

    @classmethod
    def of(cls, p: Promotion) -> PromoSettings:
        return cls(p.depth, p.start, p.end, tuple(p.channels), p.display, p.feature, None)


@dataclass(frozen=True)
class Outlook:
    uplift: pd.DataFrame  # by, group, channel, baseline_units, expected_units, uplift, low, high
    spill: pd.DataFrame  # category, role, without_units, with_units, change_units, change_share
    margin: float  # incremental expected margin incl. vendor funding, currency
    margin_low: float
    margin_high: float
    margin_before_funding: float
    vendor_funding: float  # expected funding earned, currency
    promoted_units: float  # expected units of the promoted SKUs during the promotion
    extra_units: float  # of which extra over the calendar without the promotion
    window_days: int


@dataclass(frozen=True)
class PlannerResult:
    scenario: str
    promotion: str
    settings: PromoSettings
    policy: str
    seed: int
    run_id: str
    days: int
    kpis: dict[str, float]
    outlook: Outlook
    lost: pd.DataFrame  # by, group, walk_in, pickup, ecommerce (units lost during the promotion)
    stockout_days: pd.DataFrame  # by, group, stockout_days (location-SKU-days in the promotion)
    readiness: ReadinessReport
    readiness_note: str  # when the readiness snapshot was taken
    seconds: float
    replayed_days: int = 0  # leading days whose plans came from a traced run (no policy call)


# -- scenario variants --------------------------------------------------------------------------


def find_promotion(scenario: Scenario, promotion_id: str) -> Promotion:
    for p in scenario.promotions:
        if p.id == promotion_id:
            return p
    known = ", ".join(p.id for p in scenario.promotions) or "none"
    raise ValueError(f"scenario {scenario.name} has no promotion {promotion_id!r}; known: {known}")


def variant(scenario: Scenario, promotion_id: str, settings: PromoSettings) -> Scenario:
    """``scenario`` with the promotion's settings replaced (validated like a scenario file)."""
    p = find_promotion(scenario, promotion_id)
    if not settings.channels:
        raise ValueError("Pick at least one channel for the promotion.")
    if not 0 <= settings.depth < 1:
        raise ValueError(f"Depth must be between 0% and 99%, not {settings.depth:.0%}.")
    if not scenario.start_date <= settings.start <= settings.end <= scenario.end_date:
        raise ValueError(
            f"The promotion must run between {scenario.start_date} and {scenario.end_date}, "
            f"start before end; got {settings.start} to {settings.end}."
        )
    data = p.model_dump()
    waves = [w.model_dump() for w in p.ecommerce_waves]
    if settings.ecommerce_cap is not None:
        for w in waves:
            w["lift"] = min(w["lift"], settings.ecommerce_cap)
    data.update(
        depth=settings.depth,
        start=settings.start,
        end=settings.end,
        channels=settings.channels,
        display=settings.display,
        feature=settings.feature,
        ecommerce_waves=waves,
    )
    try:
        new = Promotion.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        raise ValueError(f"These promotion settings are not valid: {problems}") from None
    promos = tuple(new if x.id == promotion_id else x for x in scenario.promotions)
    return scenario.model_copy(update={"promotions": promos})


def without(scenario: Scenario, promotion_id: str) -> Scenario:
    """The same calendar without the promotion (what its uplift and margin are measured from)."""
    find_promotion(scenario, promotion_id)
    promos = tuple(x for x in scenario.promotions if x.id != promotion_id)
    return scenario.model_copy(update={"promotions": promos})


def variant_yaml(scenario: Scenario, name: str | None = None) -> str:
    """The scenario as a YAML file ``twin run`` and ``scenarios validate`` accept."""
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    data.pop("synthetic", None)  # a loaded synthetic scenario is already expanded
    data["name"] = name or scenario.name
    for key in ("stores", "dcs", "skus", "suppliers", "lanes"):  # keep the network explicit
        data[key] = [
            x.model_dump(mode="json", exclude_defaults=True) for x in getattr(scenario, key)
        ]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# -- expected outlook ---------------------------------------------------------------------------


def _store_channel_matrix(net: Network) -> tuple[FloatArray, pd.DataFrame]:
    """``M [L, rows]`` mapping location demand onto store x channel rows, and the rows' labels.

    Store rows split walk-in / pickup by the store's pickup share; a DC row (ecommerce of the
    stores it serves) splits by the stores' sizes, exactly as the demand model builds it.
    """
    locs = net.locations
    nd = net.n_dcs
    stores = locs.iloc[nd:]
    n_st = len(stores)
    size = stores["size"].to_numpy(np.float64)
    pickup = stores["pickup_share"].to_numpy(np.float64)
    dc = net.serving_dc[nd:]
    m = np.zeros((net.n_locations, 3 * n_st))
    idx = np.arange(n_st)
    m[nd + idx, idx] = 1 - pickup
    m[nd + idx, n_st + idx] = pickup
    served = np.bincount(dc, weights=size, minlength=nd)
    m[dc, 2 * n_st + idx] = size / served[dc]
    rows = pd.DataFrame(
        {
            "store": np.tile(stores.index.to_numpy(), 3),
            "region": np.tile(stores["region"].to_numpy(), 3),
            "cluster": np.tile(stores["cluster"].to_numpy(), 3),
            "channel": np.repeat(list(CHANNELS), n_st),
        }
    )
    return m, rows


def _uplifts(model: DemandModel, promotion_id: str, factor: float) -> dict[str, FloatArray]:
    """Every promotion's true uplift, this one's extra units scaled by ``factor`` (the same
    form as the planners' estimate error in :class:`demand.forecast.RollingForecast`).
    """
    out = {}
    for pc in model.promotions:
        u = pc.uplift
        if pc.promotion.id == promotion_id:
            u = np.where(u > 0, 1.0 + np.maximum(u - 1.0, 0.0) * factor, 0.0) + np.where(
                u > 0, np.minimum(u - 1.0, 0.0), 0.0
            )
        out[pc.promotion.id] = u
    return out


def outlook(scenario: Scenario, promotion_id: str, net: Network | None = None) -> Outlook:
    """Expected uplift, cannibalisation/halo and incremental margin of the promotion."""
    net = net or compile_network(scenario)
    with_model = DemandModel(scenario, net)
    base_model = DemandModel(without(scenario, promotion_id), net)
    pc = next(x for x in with_model.promotions if x.promotion.id == promotion_id)
    promo = pc.promotion
    first, last = pc.start_day, pc.end_day
    tail = min(last + scenario.demand.post_promo_days, scenario.horizon_days - 1)
    sigma = scenario.demand.forecast_error
    factors = {"mid": 1.0, "low": float(np.exp(-Z90 * sigma)), "high": float(np.exp(Z90 * sigma))}
    cells = pc.cells
    promoted_sku = np.asarray(cells.any(axis=0), bool)
    margin_unit = net.price - net.unit_cost
    promo_unit = net.price * (1 - promo.depth) - net.unit_cost

    in_promo: dict[str, FloatArray] = {}  # units over the promotion days [L, S]
    margin: dict[str, float] = {}
    funding = 0.0
    base_total = np.zeros_like(with_model.base)
    base_margin = 0.0
    for day in range(first, tail + 1):
        b = base_model.mean(day)
        base_margin += float((b * margin_unit).sum())
        if day <= last:
            base_total += b
    for key, f in factors.items():
        total = np.zeros_like(with_model.base)
        m = 0.0
        for day in range(first, tail + 1):
            mean = with_model.mean(day, _uplifts(with_model, promotion_id, f))
            if day <= last:
                total += mean
                on = np.where(cells, mean, 0.0)
                m += float((on * (promo_unit + promo.vendor_funding)).sum())
                m += float((np.where(cells, 0.0, mean) * margin_unit).sum())
                if key == "mid":
                    funding += float(on.sum() * promo.vendor_funding)
            else:
                m += float((mean * margin_unit).sum())
        in_promo[key] = total
        margin[key] = m - base_margin

    promoted_units = float(np.where(cells, in_promo["mid"], 0.0).sum())
    lows, highs = sorted((margin["low"], margin["high"]))
    return Outlook(
        uplift=_uplift_table(net, promoted_sku, base_total, in_promo),
        spill=_spill_table(scenario, net, promoted_sku, base_total, in_promo["mid"]),
        margin=margin["mid"],
        margin_low=min(lows, margin["mid"]),
        margin_high=max(highs, margin["mid"]),
        margin_before_funding=margin["mid"] - funding,
        vendor_funding=funding,
        promoted_units=promoted_units,
        extra_units=promoted_units - float(np.where(cells, base_total, 0.0).sum()),
        window_days=tail - first + 1,
    )


def _uplift_table(
    net: Network, promoted_sku: BoolArray, base_total: FloatArray, in_promo: dict[str, FloatArray]
) -> pd.DataFrame:
    """Units of the promoted SKUs over the promotion without it and with it (mid, low, high of
    the 90% interval), per region / cluster x channel, and the uplift they imply."""
    mat, rows = _store_channel_matrix(net)
    rows = rows.copy()

    def to_rows(v: FloatArray) -> FloatArray:
        return (np.where(promoted_sku[None, :], v, 0.0).T @ mat).sum(axis=0)

    rows["baseline_units"] = to_rows(base_total)
    rows["expected_units"] = to_rows(in_promo["mid"])
    rows["low_units"] = to_rows(in_promo["low"])
    rows["high_units"] = to_rows(in_promo["high"])
    parts = []
    for by in ("region", "cluster"):
        g = rows.groupby([by, "channel"], sort=False)[
            ["baseline_units", "expected_units", "low_units", "high_units"]
        ].sum()
        g = g.reset_index().rename(columns={by: "group"})
        g.insert(0, "by", by)
        parts.append(g)
    up = pd.concat(parts, ignore_index=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        for col, src in (
            ("uplift", "expected_units"),
            ("low", "low_units"),
            ("high", "high_units"),
        ):
            up[col] = np.where(up["baseline_units"] > 0, up[src] / up["baseline_units"] - 1, np.nan)
    return up.drop(columns=["low_units", "high_units"])


def _spill_table(
    scenario: Scenario,
    net: Network,
    promoted_sku: BoolArray,
    base_total: FloatArray,
    with_total: FloatArray,
) -> pd.DataFrame:
    """Units of every other SKU category over the promotion without and with it: cannibalised
    (same category), complement (halo) or untouched."""
    cats = net.skus["category"].to_numpy()
    promoted_cats = set(cats[promoted_sku])
    spill_rows = []
    for cat in dict.fromkeys(cats):
        other = (cats == cat) & ~promoted_sku
        if not other.any():
            continue
        before = float(base_total[:, other].sum())
        after = float(with_total[:, other].sum())
        role = "same category (cannibalised)" if cat in promoted_cats else "other category"
        if cat in {c for src in promoted_cats for c in scenario.demand.halo.get(src, ())}:
            role = "complement (halo)"
        spill_rows.append(
            {
                "category": cat,
                "role": role,
                "without_units": before,
                "with_units": after,
                "change_units": after - before,
                "change_share": (after - before) / before if before else np.nan,
            }
        )
    return pd.DataFrame(spill_rows)


# -- the snapshot before launch ------------------------------------------------------------------


@dataclass
class SnapshotRecorder:
    """A policy that runs ``inner`` unchanged and keeps the snapshot it is handed on day
    ``as_of``, ``horizon_days`` long (the inner policy sees its own horizon; the forecast's
    random streams do not depend on the length, so the run is the plain run)."""

    inner: Policy
    as_of: int
    horizon_days: int
    name: str = field(init=False)
    snapshot: PlanningSnapshot | None = None

    def __post_init__(self) -> None:
        self.name = self.inner.name  # the run id names the policy that decides

    def start(self, context: RunContext) -> None:
        """A run begins: forget the recorded snapshot and start the inner policy's run too."""
        self.snapshot = None
        start_run(self.inner, context)

    def observe(self, s: PlanningSnapshot) -> None:
        """Keep ``s`` if it is the day to record (without asking the inner policy)."""
        if s.day == self.as_of:
            self.snapshot = dataclasses.replace(s, forecast_mean=s.forecast_mean.copy())

    def decide(self, s: PlanningSnapshot) -> Plan:
        self.observe(s)
        h = self.inner.horizon_days
        if s.horizon > h:
            s = dataclasses.replace(s, forecast_mean=s.forecast_mean[:h])
        return self.inner.decide(s)

    def recorded(self) -> PlanningSnapshot:
        """The snapshot of day ``as_of`` (the run must have reached that day)."""
        if self.snapshot is None:
            raise RuntimeError(f"the run ended before day {self.as_of}: no snapshot recorded")
        return self.snapshot


def launch_recorder(
    scenario: Scenario, promotion_id: str, policy: Policy, days_before: int
) -> SnapshotRecorder:
    """Records the snapshot ``days_before`` launch (at least one day), with a horizon that
    reaches the promotion's end and every "move start" mitigation."""
    promo = find_promotion(scenario, promotion_id)
    start, end = scenario.day_of(promo.start), scenario.day_of(promo.end)
    as_of = max(0, start - max(days_before, 1))
    horizon = max(policy.horizon_days, end - as_of + 1 + max(SHIFT_DAYS))
    return SnapshotRecorder(policy, as_of, horizon)


def before_launch(
    scenario: Scenario,
    promotion_id: str,
    days_before: int = 7,
    seed: int = 0,
    policy: str = "base-stock",
) -> PlanningSnapshot:
    """The snapshot the twin hands ``policy`` ``days_before`` launch; the twin runs only to
    that day (through :func:`simulate`, so replayed history and the run's set-up apply)."""
    recorder = launch_recorder(scenario, promotion_id, make_policy(policy), days_before)
    simulate(scenario, recorder, seed=seed, days=recorder.as_of + 1)
    return recorder.recorded()


# -- re-simulation from the day the promotion first matters -------------------------------------

# policies whose decision on a day depends on a promotion only through the forecast window
# (``horizon_days`` ahead): base-stock is stateless across days (replayed runs are identical);
# the optimizer keeps a warm-start basis, so its first live tick starts from a crash basis and
# may pick another optimum of the same LP (replayed runs are within a tolerance, tested)
REPLAYABLE = frozenset({"base-stock", "optimizer"})


@dataclass(frozen=True)
class PlanTrace:
    """The plans a full run's policy made each day, and the promotion start it ran with."""

    plans: dict[int, Plan]
    promotion_start: int  # day index


@dataclass
class TracingPolicy:
    """Runs ``inner`` (a :class:`SnapshotRecorder`) and keeps each day's plan."""

    inner: SnapshotRecorder
    name: str = field(init=False)
    horizon_days: int = field(init=False)
    plans: dict[int, Plan] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = self.inner.name
        self.horizon_days = self.inner.horizon_days

    def start(self, context: RunContext) -> None:
        self.plans = {}
        self.inner.start(context)

    def decide(self, s: PlanningSnapshot) -> Plan:
        plan = self.inner.decide(s)
        self.plans[s.day] = plan
        return plan


@dataclass
class ReplayPolicy:
    """The traced plans on days before ``live_from``, then ``inner`` decides."""

    inner: SnapshotRecorder
    trace: PlanTrace
    live_from: int  # first day the promotion's settings can change a decision
    name: str = field(init=False)
    horizon_days: int = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.inner.name
        self.horizon_days = self.inner.horizon_days

    def start(self, context: RunContext) -> None:
        self.inner.start(context)

    def decide(self, s: PlanningSnapshot) -> Plan:
        if s.day < self.live_from:
            self.inner.observe(s)
            return self.trace.plans[s.day]
        return self.inner.decide(s)


TraceKey = tuple[str, str, str, int, int, int, str]


@dataclass
class PlannerCache:
    """Plan traces and results of :func:`project`, least recently used dropped first.

    Results are keyed by (scenario hash, promotion, settings, policy, seed, days before launch,
    quantile, forecaster); traces by (scenario hash, promotion, policy, seed, run length, days
    before, forecaster).
    """

    max_results: int = 128
    max_traces: int = 16
    results: OrderedDict[tuple[object, ...], PlannerResult] = field(default_factory=OrderedDict)
    traces: OrderedDict[TraceKey, PlanTrace] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # page sessions

    def result(self, key: tuple[object, ...]) -> PlannerResult | None:
        with self._lock:
            found = self.results.get(key)
            if found is not None:
                self.results.move_to_end(key)
            return found

    def keep_result(self, key: tuple[object, ...], result: PlannerResult) -> None:
        with self._lock:
            self.results[key] = result
            while len(self.results) > self.max_results:
                self.results.popitem(last=False)

    def trace(self, key: TraceKey) -> PlanTrace | None:
        with self._lock:
            found = self.traces.get(key)
            if found is not None:
                self.traces.move_to_end(key)
            return found

    def keep_trace(self, key: TraceKey, trace: PlanTrace) -> None:
        with self._lock:
            self.traces[key] = trace
            while len(self.traces) > self.max_traces:
                self.traces.popitem(last=False)


def launch_readiness(
    scenario: Scenario,
    promotion_id: str,
    snapshot: PlanningSnapshot,
    quantile: float = 0.8,
    net: Network | None = None,
) -> ReadinessReport:
    """:func:`readiness` of the promotion on ``snapshot`` with the scenario's uplift error, the
    SKUs' elasticities and the promotion's depth (which enable "limit depth")."""
    net = net or compile_network(scenario)
    return readiness(
        snapshot,
        promotion_id,
        quantile,
        uplift_log_sd=scenario.demand.forecast_error,
        elasticity=net.skus["elasticity"].to_numpy(np.float64),
        depth=find_promotion(scenario, promotion_id).depth,
    )


# -- one twin run: projection and the readiness snapshot ----------------------------------------


def _by_location(values: pd.Series, net: Network) -> pd.DataFrame:
    """Sum a per-location series by region and by cluster (a DC's ecommerce is its own row)."""
    locs = net.locations
    is_dc = (locs["kind"] != "store").to_numpy()
    ids = locs.index.to_numpy()
    region = np.where(is_dc, ids, locs["region"].to_numpy())
    cluster = np.where(is_dc, ids, locs["cluster"].to_numpy())
    frame = values.reindex(range(net.n_locations), fill_value=0)
    parts = []
    for by, labels in (("region", region), ("cluster", cluster)):
        g = frame.groupby(labels, sort=False).sum()
        parts.append(pd.DataFrame({"by": by, "group": g.index, "value": g.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def project(
    scenario: Scenario,
    promotion_id: str,
    settings: PromoSettings,
    policy: str = "base-stock",
    seed: int = 0,
    days_before: int = 7,
    quantile: float = 0.8,
    forecast: str = "oracle",
    model: str | None = None,
    cache: PlannerCache | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PlannerResult:
    """Everything the planner page shows for ``settings`` (see the module docstring).

    ``forecast``: the forecaster the policy plans on, ``NAME[+sensing]`` (``model``: the fitted
    model file a learned one needs). ``cache``: reuse an identical request's result, and
    re-simulate from the day the promotion first matters when a run of the same scenario,
    promotion, policy, forecaster and seed is traced. ``progress(day, days)`` is called after
    each simulated day.
    """
    t0 = time.perf_counter()
    scenario_hash = scenario.content_hash()
    planned_on = _planned_on(forecast, model)
    result_key = (
        scenario_hash,
        promotion_id,
        settings,
        policy,
        seed,
        days_before,
        quantile,
        planned_on,
    )
    if cache is not None and (found := cache.result(result_key)) is not None:
        return found
    name, _, sensing = forecast.partition("+")
    # the oracle as the twin's default (None), so its runs keep their run ids
    forecaster = (
        None if forecast == "oracle" else make_forecaster(name, model, sensing == "sensing")
    )
    s = variant(scenario, promotion_id, settings)
    net = compile_network(s)
    start, end = s.day_of(settings.start), s.day_of(settings.end)
    days = min(s.horizon_days, end + s.demand.post_promo_days + 1)
    recorder = launch_recorder(s, promotion_id, make_policy(policy), days_before)
    trace_key: TraceKey = (scenario_hash, promotion_id, policy, seed, days, days_before, planned_on)
    trace = cache.trace(trace_key) if cache is not None and policy in REPLAYABLE else None
    runner: Policy = recorder
    if trace is not None:
        live_from = min(trace.promotion_start, start) - recorder.inner.horizon_days
        runner = ReplayPolicy(recorder, trace, live_from)
    elif cache is not None and policy in REPLAYABLE:
        runner = TracingPolicy(recorder)
    run = simulate(s, runner, seed=seed, days=days, progress=progress, forecaster=forecaster)
    replayed = max(0, min(runner.live_from, days)) if isinstance(runner, ReplayPolicy) else 0
    if isinstance(runner, TracingPolicy) and cache is not None:
        cache.keep_trace(trace_key, PlanTrace(runner.plans, start))
    lost = _lost_units(run.ledger, net, start, end)
    stockouts = _stockout_days(run.daily, net, start, end)
    snap = recorder.recorded()
    report = launch_readiness(s, promotion_id, snap, quantile, net)
    kpis = {k: float(run.kpis.get(k, np.nan)) for k in PROJECTION_KPIS}
    kpis["readiness"] = report.score
    result = PlannerResult(
        scenario=s.name,
        promotion=promotion_id,
        settings=settings,
        policy=policy,
        seed=seed,
        run_id=run.run_id,
        days=days,
        kpis=kpis,
        outlook=outlook(s, promotion_id, net),
        lost=lost,
        stockout_days=stockouts,
        readiness=report,
        readiness_note=f"as of {snap.date} (day {snap.day}, {start - snap.day} days before launch)",
        seconds=time.perf_counter() - t0,
        replayed_days=replayed,
    )
    if cache is not None:
        cache.keep_result(result_key, result)
    return result


def _planned_on(forecast: str, model: str | None) -> str:
    """The forecaster as a cache key: a refitted model file is another forecaster."""
    if model is None:
        return forecast
    path = Path(model)
    return f"{forecast}:{path.resolve()}:{path.stat().st_mtime_ns if path.is_file() else ''}"


def _lost_units(ledger: pd.DataFrame, net: Network, start: int, end: int) -> pd.DataFrame:
    """Units lost during the promotion per channel, by region and by cluster."""
    window = (ledger["day"] >= start) & (ledger["day"] <= end)
    lost = ledger[window & (ledger["kind"] == int(Kind.LOST))]
    parts = []
    for code, channel in enumerate(CHANNELS):
        per_loc = lost[lost["channel"] == code].groupby("location")["qty"].sum()
        part = _by_location(per_loc, net).rename(columns={"value": channel})
        parts.append(part.set_index(["by", "group"]))
    return pd.concat(parts, axis=1).reset_index()


def _stockout_days(daily: pd.DataFrame, net: Network, start: int, end: int) -> pd.DataFrame:
    """Stockout location-SKU-days during the promotion, by region and by cluster."""
    in_window = daily[(daily["day"] >= start) & (daily["day"] <= end)]
    out_days = in_window.groupby("location", sort=False)["stockout_cells"].sum()
    out_days.index = out_days.index.map(net.location_index)
    return _by_location(out_days, net).rename(columns={"value": "stockout_days"})
