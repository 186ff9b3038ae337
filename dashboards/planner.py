"""What the planner page shows for one promotion setting, computed without Streamlit.

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
- **Readiness** (:func:`policies.readiness.readiness`) on the snapshot the same run
  hands its policy ``days_before`` launch, with the measured mitigations.

One twin run serves both the projection and the readiness snapshot, so a change of depth costs
one short simulation (about 1 s for the appliance scenario).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml
from pydantic import ValidationError

from promotwin.demand.model import DemandModel
from promotwin.policies.contract import Plan, PlanningSnapshot, Policy
from promotwin.policies.readiness import SHIFT_DAYS, ReadinessReport, readiness
from promotwin.policies.registry import make_policy
from promotwin.scenarios.network import Network, compile_network
from promotwin.scenarios.schema import Promotion, Scenario
from promotwin.twin import simulate
from promotwin.twin.ledger import CHANNELS, Kind

FloatArray = npt.NDArray[np.float64]
Z90 = 1.6448536269514722  # two-sided 90% interval
SWEEP_DEPTHS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
KPI_KEYS = (
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
    readiness: ReadinessReport | None
    readiness_note: str
    seconds: float


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


def variant_name(scenario: Scenario, promotion_id: str, settings: PromoSettings) -> str:
    return f"{scenario.name}-{promotion_id.lower()}-{round(settings.depth * 100)}pct"


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
    promoted_sku = cells.any(axis=0)
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
    up = up.drop(columns=["low_units", "high_units"])

    cats = net.skus["category"].to_numpy()
    promoted_cats = set(cats[promoted_sku])
    spill_rows = []
    for cat in dict.fromkeys(cats):
        other = (cats == cat) & ~promoted_sku
        if not other.any():
            continue
        before = float(base_total[:, other].sum())
        after = float(in_promo["mid"][:, other].sum())
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
    spill = pd.DataFrame(spill_rows)
    promoted_units = float(np.where(cells, in_promo["mid"], 0.0).sum())
    lows, highs = sorted((margin["low"], margin["high"]))
    return Outlook(
        uplift=up,
        spill=spill,
        margin=margin["mid"],
        margin_low=min(lows, margin["mid"]),
        margin_high=max(highs, margin["mid"]),
        margin_before_funding=margin["mid"] - funding,
        vendor_funding=funding,
        promoted_units=promoted_units,
        extra_units=promoted_units - float(np.where(cells, base_total, 0.0).sum()),
        window_days=tail - first + 1,
    )


# -- one twin run: projection and the readiness snapshot ----------------------------------------


@dataclass
class _Capture:
    """Runs ``inner`` unchanged; keeps the snapshot of day ``as_of`` with a horizon long enough
    to reach the end of the promotion (the forecast's random streams do not depend on it)."""

    inner: Policy
    as_of: int
    horizon_days: int
    name: str
    snapshot: PlanningSnapshot | None = None

    def decide(self, s: PlanningSnapshot) -> Plan:
        if s.day == self.as_of:
            self.snapshot = dataclasses.replace(s, forecast_mean=s.forecast_mean.copy())
        h = self.inner.horizon_days
        if s.horizon > h:
            s = dataclasses.replace(s, forecast_mean=s.forecast_mean[:h])
        return self.inner.decide(s)


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
) -> PlannerResult:
    """Everything the planner page shows for ``settings`` (see the module docstring)."""
    import time

    t0 = time.perf_counter()
    s = variant(scenario, promotion_id, settings)
    net = compile_network(s)
    start, end = s.day_of(settings.start), s.day_of(settings.end)
    days = min(s.horizon_days, end + s.demand.post_promo_days + 1)
    as_of = max(0, start - max(days_before, 1))
    inner = make_policy(policy)
    capture = _Capture(
        inner, as_of, max(inner.horizon_days, end - as_of + 1 + max(SHIFT_DAYS)), inner.name
    )
    run = simulate(s, capture, seed=seed, days=days)
    led = run.ledger
    window = (led["day"] >= start) & (led["day"] <= end)
    lost = led[window & (led["kind"] == int(Kind.LOST))]
    lost_parts = []
    for code, channel in enumerate(CHANNELS):
        per_loc = lost[lost["channel"] == code].groupby("location")["qty"].sum()
        part = _by_location(per_loc, net).rename(columns={"value": channel})
        lost_parts.append(part.set_index(["by", "group"]))
    lost_table = pd.concat(lost_parts, axis=1).reset_index()
    daily = run.daily
    in_window = daily[(daily["day"] >= start) & (daily["day"] <= end)]
    out_days = in_window.groupby("location", sort=False)["stockout_cells"].sum()
    out_days.index = out_days.index.map(net.location_index)
    stockouts = _by_location(out_days, net).rename(columns={"value": "stockout_days"})

    report: ReadinessReport | None = None
    note = ""
    if capture.snapshot is None:
        note = "The promotion starts too early to assess readiness before launch."
    else:
        snap = capture.snapshot
        report = readiness(
            snap,
            promotion_id,
            quantile,
            uplift_log_sd=s.demand.forecast_error,
            elasticity=net.skus["elasticity"].to_numpy(np.float64),
            depth=settings.depth,
        )
        note = f"as of {snap.date} (day {snap.day}, {start - snap.day} days before launch)"
    kpis = {k: float(run.kpis.get(k, np.nan)) for k in KPI_KEYS}
    if report is not None:
        kpis["readiness"] = report.score
    return PlannerResult(
        scenario=s.name,
        promotion=promotion_id,
        settings=settings,
        policy=policy,
        seed=seed,
        run_id=run.run_id,
        days=days,
        kpis=kpis,
        outlook=outlook(s, promotion_id, net),
        lost=lost_table,
        stockout_days=stockouts,
        readiness=report,
        readiness_note=note,
        seconds=time.perf_counter() - t0,
    )


# -- comparisons and exports --------------------------------------------------------------------


def headline(r: PlannerResult) -> dict[str, float]:
    """The numbers the page leads with (KPIs of the run plus the expected outlook)."""
    o = r.outlook
    return {
        **r.kpis,
        "expected_extra_units": o.extra_units,
        "expected_margin": o.margin,
        "expected_vendor_funding": o.vendor_funding,
    }


HEADLINE_LABELS: dict[str, tuple[str, str]] = {  # key -> (label, kind for formats)
    "readiness": ("readiness score (0-100)", "score"),
    "promo_fill_rate": ("promotion fill rate", "rate"),
    "fill_rate": ("fill rate", "rate"),
    "promo_lost_sales_units": ("promotion lost sales", "units"),
    "lost_sales_units": ("lost sales", "units"),
    "lost_sales_value": ("lost sales value", "money"),
    "stockout_days": ("stockout location-SKU-days", "count"),
    "revenue": ("revenue", "money"),
    "gross_margin": ("gross margin (simulated)", "money"),
    "vendor_funding": ("vendor funding (simulated)", "money"),
    "expedite_cost": ("expedite cost", "money"),
    "total_cost": ("total cost", "money"),
    "expected_extra_units": ("extra units from the promotion (expected)", "units"),
    "expected_margin": ("incremental margin (expected)", "money"),
    "expected_vendor_funding": ("vendor funding (expected)", "money"),
}


def side_by_side(current: PlannerResult, variant_: PlannerResult) -> pd.DataFrame:
    """One row per headline number: the current plan, this variant and the change."""
    a, b = headline(current), headline(variant_)
    rows = [
        {
            "key": key,
            "measure": label,
            "kind": kind,
            "current": a.get(key, np.nan),
            "variant": b.get(key, np.nan),
            "change": b.get(key, np.nan) - a.get(key, np.nan),
        }
        for key, (label, kind) in HEADLINE_LABELS.items()
    ]
    return pd.DataFrame(rows)


def sweep(
    scenario: Scenario,
    promotion_id: str,
    settings: PromoSettings,
    depths: Sequence[float] = SWEEP_DEPTHS,
    policy: str = "base-stock",
    seed: int = 0,
    days_before: int = 7,
    quantile: float = 0.8,
    progress: Callable[[int, int], None] | None = None,
    run: Callable[..., PlannerResult] | None = None,
) -> pd.DataFrame:
    """Headline numbers against discount depth, every other setting as given (same seed)."""
    run = run or project
    rows = []
    for i, d in enumerate(depths):
        r = run(
            scenario,
            promotion_id,
            dataclasses.replace(settings, depth=float(d)),
            policy,
            seed,
            days_before,
            quantile,
        )
        rows.append({"depth": float(d), **headline(r)})
        if progress is not None:
            progress(i + 1, len(depths))
    return pd.DataFrame(rows)


def results_csv(current: PlannerResult, variant_: PlannerResult) -> str:
    """The comparison, uplift, spill-over and stockout tables as one tidy CSV."""
    out: list[dict[str, Any]] = []
    meta = {
        "scenario": variant_.scenario,
        "promotion": variant_.promotion,
        "policy": variant_.policy,
        "seed": variant_.seed,
        "run_id": variant_.run_id,
        "depth": variant_.settings.depth,
        "current_depth": current.settings.depth,
    }
    for r in side_by_side(current, variant_).itertuples(index=False):
        for col in ("current", "variant"):
            out.append(
                meta | {"table": "headline", "row": r.key, "column": col, "value": getattr(r, col)}
            )
    for r in variant_.outlook.uplift.itertuples(index=False):
        for col in ("baseline_units", "expected_units", "uplift", "low", "high"):
            out.append(
                meta
                | {
                    "table": f"uplift_by_{r.by}",
                    "row": f"{r.group}/{r.channel}",
                    "column": col,
                    "value": getattr(r, col),
                }
            )
    for r in variant_.lost.itertuples(index=False):
        for ch in CHANNELS:
            out.append(
                meta
                | {
                    "table": f"lost_units_by_{r.by}",
                    "row": r.group,
                    "column": ch,
                    "value": getattr(r, ch),
                }
            )
    for r in variant_.outlook.spill.itertuples(index=False):
        out.append(
            meta
            | {
                "table": "spill_over",
                "row": r.category,
                "column": "change_units",
                "value": r.change_units,
            }
        )
    buf = io.StringIO()
    pd.DataFrame(out).to_csv(buf, index=False)
    return buf.getvalue()


def heat_table(frame: pd.DataFrame, by: str, value_cols: Sequence[str]) -> pd.DataFrame:
    """Rows of one grouping (``region`` or ``cluster``) indexed by group, for a heatmap."""
    part = frame[frame["by"] == by].set_index("group")[list(value_cols)]
    part.index.name = by
    return part
