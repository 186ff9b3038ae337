"""Post-event analysis of one promotion in a twin run folder: what happened, against the plan,
the hidden truth and the baseline policy on the same demand.

Everything is read from the run folder (``twin run --out``): the ledger (demand = sold + lost,
which the twin knows), the daily records (forecast error of promoted SKUs), the decisions, the
KPIs and ``scenario.yaml`` (the scenario as run, from which the plan's and the truth's expected
demand are recomputed exactly: the demand model is deterministic for a scenario and seed).

Realised uplift of a group of cells = its demand in the promotion window / its expected demand
without any promotion (base x weekday x season). Its interval treats each cell-day as negative
binomial with the scenario's dispersion k at the realised uplift: var = m + m^2 / k, m = u x b.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from promotwin.demand.model import DemandModel, PromotionCells
from promotwin.scenarios import parse_scenario
from promotwin.scenarios.network import Network, compile_network
from promotwin.scenarios.schema import Scenario
from promotwin.twin.ledger import CHANNELS, Kind

Level = Literal["cluster", "region"]
REQUIRED = ("manifest.json", "kpis.json", "daily.parquet", "ledger.parquet", "decisions.parquet")
Z95 = 1.959964  # two-sided 95% normal quantile


class PostEventError(ValueError):
    """The source or the promotion cannot be analysed; the message says why and what to do."""


@dataclass(frozen=True)
class RunFolder:
    """A twin run folder, read once."""

    path: Path
    manifest: dict[str, Any]
    kpis: dict[str, float]
    daily: pd.DataFrame
    ledger: pd.DataFrame
    decisions: pd.DataFrame
    scenario: Scenario

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def days(self) -> int:
        return int(self.manifest["days"])

    @property
    def currency(self) -> str:
        return str(self.manifest.get("currency", self.scenario.currency))


def load_run(path: Path | str) -> RunFolder:
    """Read a ``twin run`` folder; a clear error when it is not one or predates post-event."""
    path = Path(path)
    if not path.is_dir():
        raise PostEventError(f"{path}: no such folder; give a `twin run --out` folder")
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise PostEventError(
            f"{path} is not a twin run folder (missing {', '.join(missing)}); give the folder "
            "`twin run ... --out` wrote"
        )
    if not (path / "scenario.yaml").is_file():
        raise PostEventError(
            f"{path} has no scenario.yaml (written by `twin run` since post-event analysis "
            "came in); run the scenario again with `twin run ... --out`"
        )
    scenario = parse_scenario((path / "scenario.yaml").read_text(encoding="utf-8"))
    ledger = pd.read_parquet(path / "ledger.parquet")
    if len(ledger) and (ledger["sku"] < 0).all():
        raise PostEventError(
            f"{path}: the ledger is in summary detail (no SKU lines); run again with "
            "`--ledger sku` to analyse a promotion by SKU"
        )
    return RunFolder(
        path=path,
        manifest=json.loads((path / "manifest.json").read_text()),
        kpis=json.loads((path / "kpis.json").read_text()),
        daily=pd.read_parquet(path / "daily.parquet"),
        ledger=ledger,
        decisions=pd.read_parquet(path / "decisions.parquet"),
        scenario=scenario,
    )


def find_promotion(scenario: Scenario, promotion_id: str) -> int:
    """Index of ``promotion_id`` in the scenario; a clear error naming the known ones."""
    ids = [p.id for p in scenario.promotions]
    if promotion_id not in ids:
        known = ", ".join(ids) or "none"
        raise PostEventError(
            f"scenario {scenario.name} has no promotion {promotion_id!r}; known: {known}"
        )
    return ids.index(promotion_id)


# -- expected demand by channel ------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """Sums over a run of days, per location x SKU x channel ``[L, S, 3]``: expected demand
    without promotions (``base``) and its square (for the variance), as planned and as true."""

    base: np.ndarray
    base_sq: np.ndarray
    plan: np.ndarray
    truth: np.ndarray


def _by_channel(x: np.ndarray, net: Network, pickup_share: np.ndarray) -> np.ndarray:
    """``[L, S]`` expected demand split into walk-in, pickup (store rows) and ecommerce (DC
    rows): the twin splits a store's units into pickup binomially, so means split linearly."""
    nd = net.n_dcs
    out = np.zeros((*x.shape, len(CHANNELS)))
    out[nd:, :, 0] = x[nd:] * (1.0 - pickup_share[:, None])
    out[nd:, :, 1] = x[nd:] * pickup_share[:, None]
    out[:nd, :, 2] = x[:nd]
    return out


def expected_demand(scenario: Scenario, seed: int, days: range) -> Expected:
    """Expected demand summed over ``days``: no promotion, the plan's, the hidden truth's."""
    net = compile_network(scenario)
    truth = DemandModel(scenario, net, "truth", truth_seed=seed)
    plan = DemandModel(scenario, net, "plan")
    share = truth.pickup_share
    shape = (net.n_locations, net.n_skus, len(CHANNELS))
    sums = {k: np.zeros(shape) for k in ("base", "base_sq", "plan", "truth")}
    for day in days:
        base = _by_channel(truth.base * truth.calendar(day), net, share)
        sums["base"] += base
        sums["base_sq"] += base**2
        sums["plan"] += _by_channel(plan.mean(day), net, share)
        sums["truth"] += _by_channel(truth.mean(day), net, share)
    return Expected(**sums)


def realised_demand(run: RunFolder, net: Network, days: range) -> np.ndarray:
    """Demand (sold + lost) over ``days`` per location x SKU x channel ``[L, S, 3]``; ecommerce
    shipped from a store is counted at the store's DC, where its demand arises."""
    led = run.ledger
    rows = led[
        led["kind"].isin([int(Kind.SALE), int(Kind.LOST)])
        & led["day"].between(days.start, days.stop - 1)
    ]
    loc = rows["location"].to_numpy()
    channel = rows["channel"].to_numpy()
    loc = np.where(channel == 2, net.serving_dc[loc], loc)
    out = np.zeros((net.n_locations, net.n_skus, len(CHANNELS)))
    np.add.at(out, (loc, rows["sku"].to_numpy(), channel), rows["qty"].to_numpy())
    return out


def _groups(net: Network, level: Level) -> np.ndarray:
    """The group of each location: its cluster or region; a DC (ecommerce) is its own group."""
    locs = net.locations
    names = locs[level].astype(str).to_numpy(object) if level in locs else locs.index.to_numpy()
    is_dc = np.arange(net.n_locations) < net.n_dcs
    return np.where(is_dc, "ecommerce via " + locs.index.to_numpy(object), names)


def uplift_table(
    run: RunFolder, pc: PromotionCells, level: Level = "cluster", z: float = Z95
) -> pd.DataFrame:
    """Planned, true and realised uplift per SKU x group x channel over the promotion window,
    the realised one with its interval; ``covers`` says whether the interval holds the truth."""
    net = compile_network(run.scenario)
    window = range(pc.start_day, pc.end_day + 1)
    exp = expected_demand(run.scenario, run.seed, window)
    real = realised_demand(run, net, window)
    cells = np.broadcast_to(pc.cells[:, :, None], real.shape) & (exp.base > 0)
    loc, sku, ch = np.nonzero(cells)
    frame = pd.DataFrame(
        {
            "sku": net.skus.index.to_numpy()[sku],
            "group": _groups(net, level)[loc],
            "channel": np.asarray(CHANNELS, dtype=object)[ch],
            "baseline_units": exp.base[loc, sku, ch],
            "baseline_sq": exp.base_sq[loc, sku, ch],
            "planned_units": exp.plan[loc, sku, ch],
            "true_units": exp.truth[loc, sku, ch],
            "realised_units": real[loc, sku, ch],
        }
    )
    g = frame.groupby(["sku", "group", "channel"], sort=True).sum().reset_index()
    k = run.scenario.demand.dispersion
    u = g["realised_units"] / g["baseline_units"]
    se = np.sqrt(u * g["baseline_units"] + u**2 * g["baseline_sq"] / k) / g["baseline_units"]
    out = pd.DataFrame(
        {
            "sku": g["sku"],
            level: g["group"],
            "channel": g["channel"],
            "baseline_units": g["baseline_units"],
            "planned_uplift": g["planned_units"] / g["baseline_units"],
            "true_uplift": g["true_units"] / g["baseline_units"],
            "realised_units": g["realised_units"],
            "realised_uplift": u,
            "low": np.maximum(u - z * se, 0.0),
            "high": u + z * se,
        }
    )
    out["covers"] = (out["low"] <= out["true_uplift"]) & (out["true_uplift"] <= out["high"])
    out["vs_plan"] = out["realised_uplift"] / out["planned_uplift"] - 1.0
    return out


def group_uplift(table: pd.DataFrame, level: Level, z: float = Z95) -> pd.DataFrame:
    """The uplift table summed over SKUs: realised vs planned per group x channel, the ratio's
    interval from the SKU rows' own variances (independent cells)."""
    t = table.assign(
        planned_units=table["planned_uplift"] * table["baseline_units"],
        true_units=table["true_uplift"] * table["baseline_units"],
        var=((table["high"] - table["realised_uplift"]) / z * table["baseline_units"]) ** 2,
    )
    g = t.groupby([level, "channel"], sort=True)[
        ["baseline_units", "planned_units", "true_units", "realised_units", "var"]
    ].sum()
    g = g.reset_index()
    u = g["realised_units"] / g["baseline_units"]
    se = np.sqrt(g["var"]) / g["baseline_units"]
    return pd.DataFrame(
        {
            level: g[level],
            "channel": g["channel"],
            "planned_uplift": g["planned_units"] / g["baseline_units"],
            "true_uplift": g["true_units"] / g["baseline_units"],
            "realised_uplift": u,
            "low": u - z * se,
            "high": u + z * se,
            "realised_vs_plan": g["realised_units"] / g["planned_units"] - 1.0,
            "true_vs_plan": g["true_units"] / g["planned_units"] - 1.0,
        }
    )


# -- spill-overs: cannibalisation, halo, post-promotion dip -------------------------------------


def spill_table(run: RunFolder, pc: PromotionCells) -> pd.DataFrame:
    """Realised vs planned vs true change in demand against no promotion: cannibalised SKUs
    (same categories, not promoted) and halo SKUs (other categories) at the promotion's
    locations during the window, and the promoted cells in the post-promotion days."""
    scenario, net = run.scenario, compile_network(run.scenario)
    window = range(pc.start_day, pc.end_day + 1)
    after = range(pc.end_day + 1, min(pc.end_day + 1 + scenario.demand.post_promo_days, run.days))
    rows = pc.cells.any(axis=1)
    promoted = pc.cells.any(axis=0)
    cats = net.sku_category
    promo_cats = np.unique(cats[promoted])
    same = np.isin(cats, promo_cats) & ~promoted
    complements = _complements(scenario, [net.categories[c] for c in promo_cats])
    halo = np.isin(cats, [net.categories.index(c) for c in complements]) & ~promoted
    out = []
    for effect, days, mask in (
        ("cannibalisation (same categories, not promoted)", window, np.outer(rows, same)),
        ("halo (complement categories, planned or not)", window, np.outer(rows, halo)),
        ("post-promotion dip (promoted cells)", after, pc.cells),
    ):
        if not len(days) or not mask.any():
            continue
        exp = expected_demand(scenario, run.seed, days)
        real = realised_demand(run, net, days)
        m = mask[:, :, None]
        base = float((exp.base * m).sum())
        out.append(
            {
                "effect": effect,
                "from": scenario.start_date + dt.timedelta(days=days.start),
                "to": scenario.start_date + dt.timedelta(days=days.stop - 1),
                "baseline_units": base,
                "planned_change": float((exp.plan * m).sum()) / base - 1.0,
                "true_change": float((exp.truth * m).sum()) / base - 1.0,
                "realised_change": float((real * m).sum()) / base - 1.0,
            }
        )
    return pd.DataFrame(out)


def _complements(scenario: Scenario, categories: list[str]) -> list[str]:
    """Categories that gain from these: the planned halo and the truth's unplanned one."""
    d = scenario.demand
    found: dict[str, None] = {}
    for src in categories:
        for comp in (*d.halo.get(src, ()), *d.truth.unplanned_halo.get(src, ())):
            found[comp] = None
    return [c for c in found if c not in categories]


# -- forecast, service, margin, governance -------------------------------------------------------


def forecast_by_day(run: RunFolder, pc: PromotionCells) -> pd.DataFrame:
    """WAPE and bias of the forecast for the promoted SKUs, by day of the promotion: did the
    forecast converge, and when (from the run's daily records)."""
    daily = run.daily
    if "promo_abs_error" not in daily:
        raise PostEventError(
            f"{run.path}: daily.parquet has no promoted-SKU forecast columns (an older run); "
            "run it again with `twin run ... --out`"
        )
    part = daily[daily["day"].between(pc.start_day, pc.end_day)]
    by_day = part.groupby("day")[["promo_demand", "promo_forecast", "promo_abs_error"]].sum()
    start = run.scenario.start_date
    demand = by_day["promo_demand"].replace(0, np.nan)
    return pd.DataFrame(
        {
            "date": [start + dt.timedelta(days=int(d)) for d in by_day.index],
            "promotion_day": by_day.index - pc.start_day + 1,
            "demand_units": by_day["promo_demand"].to_numpy(),
            "forecast_units": by_day["promo_forecast"].to_numpy(),
            "wape": (by_day["promo_abs_error"] / demand).to_numpy(),
            "bias": ((by_day["promo_forecast"] - by_day["promo_demand"]) / demand).to_numpy(),
        }
    )


def service_in_window(ledger: pd.DataFrame, pc: PromotionCells) -> dict[str, float]:
    """Promoted cells in the window: demand, sold, lost, fill rate; margin with and without
    the vendor funding (currency)."""
    led = ledger[ledger["day"].between(pc.start_day, pc.end_day) & ledger["promoted"]]
    loc, sku = led["location"].to_numpy(), led["sku"].to_numpy()
    on_promo = pc.cells[loc, sku] if len(led) else np.zeros(0, bool)
    led = led[on_promo]

    def total(kind: Kind, column: str = "qty") -> float:
        return float(led.loc[led["kind"] == int(kind), column].sum())

    sold, lost = total(Kind.SALE), total(Kind.LOST)
    margin = total(Kind.SALE, "value") - total(Kind.SALE, "cost")
    funding = total(Kind.FUNDING, "value")
    return {
        "demand_units": sold + lost,
        "sold_units": sold,
        "lost_units": lost,
        "fill_rate": sold / (sold + lost) if sold + lost else float("nan"),
        "lost_sales_value": total(Kind.LOST, "value"),
        "margin_before_funding": margin,
        "vendor_funding": funding,
        "margin_with_funding": margin + funding,
    }


def daily_service(ledger: pd.DataFrame, pc: PromotionCells, start: dt.date) -> pd.DataFrame:
    """Lost units of the promoted cells per day of the window (for the chart)."""
    led = ledger[
        ledger["day"].between(pc.start_day, pc.end_day)
        & ledger["promoted"]
        & (ledger["kind"] == int(Kind.LOST))
    ]
    keep = pc.cells[led["location"].to_numpy(), led["sku"].to_numpy()] if len(led) else []
    lost = led[np.asarray(keep, bool)].groupby("day")["qty"].sum()
    days = range(pc.start_day, pc.end_day + 1)
    return pd.DataFrame(
        {
            "date": [start + dt.timedelta(days=d) for d in days],
            "lost_units": lost.reindex(list(days), fill_value=0).to_numpy(),
        }
    )


GOVERNANCE_KPIS = (
    "exceptions",
    "exceptions_raised",
    "planner_touches_per_day",
    "decisions_expired",
    "auto_approved_share",
)


def governance_summary(run: RunFolder, pc: PromotionCells) -> dict[str, float]:
    """Plan lines routed to planners in the window (from the decisions), and the run's own
    governance KPIs where it was governed (planner touches, decisions expired)."""
    dec = run.decisions
    window = dec["day"].between(pc.start_day, pc.end_day) if len(dec) else dec.index == 0
    routed = dec[window & (dec["status"] == "routed")] if len(dec) else dec
    out = {"lines_routed_in_window": float(routed["lines"].sum()) if len(routed) else 0.0}
    out |= {k: float(run.kpis[k]) for k in GOVERNANCE_KPIS if k in run.kpis}
    return out


# -- the whole analysis ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PostEvent:
    """One promotion, looked back at."""

    promotion: str
    run: RunFolder
    window: tuple[dt.date, dt.date]
    uplift: pd.DataFrame  # SKU x group x channel
    uplift_by_group: pd.DataFrame  # group x channel
    spill: pd.DataFrame
    forecast: pd.DataFrame  # by day of the promotion
    service: dict[str, float]  # this run, promoted cells in the window
    baseline_service: dict[str, float]  # the baseline policy on the same demand
    baseline_policy: str
    daily_lost: pd.DataFrame  # date, lost_units (this run), baseline_lost_units
    governance: dict[str, float]
    readiness: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # what was analysed: a run folder, or an experiment's arm and replication

    @property
    def run_accuracy(self) -> dict[str, float]:
        """The run's forecast accuracy over the whole run and the promotion window."""
        keys = (
            "forecast_wape",
            "forecast_wape_region_week",
            "forecast_bias",
            "promo_forecast_wape",
            "promo_forecast_wape_region_week",
            "promo_forecast_bias",
        )
        return {k: float(self.run.kpis[k]) for k in keys if k in self.run.kpis}


def readiness_check(
    run: RunFolder, promotion_id: str, service: dict[str, float], days_before: int
) -> dict[str, Any]:
    """What readiness predicted ``days_before`` launch (score, units at risk, its top reasons)
    against the units the promotion really lost."""
    from promotwin.twin.outlook import before_launch, launch_readiness

    scenario = run.scenario
    promo = scenario.promotions[find_promotion(scenario, promotion_id)]
    launch = scenario.day_of(promo.start)
    if launch < days_before:
        return {"note": f"the promotion starts {launch} days in: no snapshot {days_before} before"}
    snap = before_launch(scenario, promotion_id, days_before, run.seed)
    report = launch_readiness(scenario, promotion_id, snap, quantile=0.8)
    return {
        "as_of": snap.date,
        "score": report.score,
        "predicted_units_at_risk": report.short_units,
        "predicted_demand_units": report.demand_units,
        "lost_units": service["lost_units"],
        "demand_units": service["demand_units"],
        "reasons": [r.text for r in report.reasons[:5]],
    }


def analyse(
    source: Path | str,
    promotion_id: str,
    baseline_policy: str | None = None,
    level: Level = "cluster",
    readiness_days_before: int = 7,
    arm: str | None = None,
    replication: int = 0,
    workdir: Path | None = None,
) -> PostEvent:
    """The post-event analysis of ``promotion_id`` in ``source``: a run folder (the baseline
    policy, default order-point, re-run on the same demand), or an experiment folder (``arm``
    and ``replication`` re-run into ``workdir``, the baseline arm on the same seed)."""
    from promotwin.experiments.post_event_sources import open_source

    src = open_source(source, baseline_policy, arm, replication, workdir, promotion_id)
    run = load_run(src.run_folder)
    scenario = run.scenario
    index = find_promotion(scenario, promotion_id)
    net = compile_network(scenario)
    pc = DemandModel(scenario, net, "plan").promotions[index]
    if pc.start_day >= run.days:
        raise PostEventError(
            f"{promotion_id} starts on day {pc.start_day}, after the run's {run.days} days; "
            "run the scenario over its whole horizon"
        )
    pc = PromotionCells(
        pc.promotion, pc.start_day, min(pc.end_day, run.days - 1), pc.cells, pc.uplift, pc.waves
    )
    start = scenario.start_date
    uplift = uplift_table(run, pc, level)
    service = service_in_window(run.ledger, pc)
    base_ledger = src.baseline_ledger(run)
    daily_lost = daily_service(run.ledger, pc, start)
    daily_lost["baseline_lost_units"] = daily_service(base_ledger, pc, start)["lost_units"]
    return PostEvent(
        promotion=promotion_id,
        run=run,
        window=(start + dt.timedelta(days=pc.start_day), start + dt.timedelta(days=pc.end_day)),
        uplift=uplift,
        uplift_by_group=group_uplift(uplift, level),
        spill=spill_table(run, pc),
        forecast=forecast_by_day(run, pc),
        service=service,
        baseline_service=service_in_window(base_ledger, pc),
        baseline_policy=src.baseline_label,
        daily_lost=daily_lost,
        governance=governance_summary(run, pc),
        readiness=readiness_check(run, promotion_id, service, readiness_days_before)
        if readiness_days_before
        else {},
        source=src.description,
    )
