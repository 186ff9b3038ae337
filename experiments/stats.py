"""Paired statistics for common-random-number experiments.

Replication r of every policy sees the same demand and supply draws, so a policy is compared with
the baseline through the per-replication differences ``d_r = policy_r - baseline_r``:

- mean difference with a t interval: ``mean(d) ± t(1-α/2, n-1) · sd(d) / √n``;
- relative change ``mean(policy) / mean(baseline) - 1`` with a delta-method t interval (the
  ratio estimator's linearisation ``e_r = policy_r - R · baseline_r``,
  ``se = sd(e) / (√n · |mean(baseline)|)``);
- optionally a percentile bootstrap over replications (pairs resampled together) for both.

When the half-width is wider than ``precision · |mean(d)|`` a warning says roughly how many
replications would be needed (the smallest n with ``t(n-1) · sd(d) / √n ≤ precision · |mean(d)|``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from promotwin.experiments.kpis import info

NAN = float("nan")
MAX_REPLICATIONS = 1_000_000


@dataclass(frozen=True)
class Paired:
    """One policy against the baseline on one KPI."""

    n: int
    mean_baseline: float
    mean_policy: float
    mean_diff: float
    sd_diff: float
    ci_low: float
    ci_high: float
    half_width: float
    relative: float
    rel_ci_low: float
    rel_ci_high: float
    p_value: float
    replications_needed: float  # for the requested precision; nan = unreachable (no effect)
    precise: bool
    boot_ci_low: float = NAN
    boot_ci_high: float = NAN
    boot_rel_ci_low: float = NAN
    boot_rel_ci_high: float = NAN


def _t(confidence: float, n: int) -> float:
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1))


def replications_needed(sd: float, effect: float, share: float, confidence: float) -> float:
    """Smallest n (≥ 2) whose t half-width ``t(n-1)·sd/√n`` is at most ``share·|effect|``.

    0 spread needs 2; no effect (with spread) can never be resolved: nan.
    """
    if sd == 0:
        return 2.0
    target = share * abs(effect)
    if target == 0:
        return NAN

    def ok(n: int) -> bool:
        return _t(confidence, n) * sd / math.sqrt(n) <= target

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    lo = max(2, math.ceil((z * sd / target) ** 2))  # the normal approximation: a lower bound
    if lo >= MAX_REPLICATIONS:
        return float(MAX_REPLICATIONS)
    if ok(lo):
        return float(lo)
    hi = lo
    while not ok(hi) and hi < MAX_REPLICATIONS:
        hi *= 2
    while hi - lo > 1:  # half-width falls with n: bisect for the smallest n that is enough
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return float(min(hi, MAX_REPLICATIONS))


def paired(
    policy: npt.ArrayLike,
    baseline: npt.ArrayLike,
    confidence: float = 0.95,
    precision: float = 0.25,
    bootstrap: int = 0,
    seed: int = 0,
) -> Paired:
    """Paired comparison of ``policy`` against ``baseline`` (same replications, same order)."""
    y = np.asarray(policy, dtype=float)
    x = np.asarray(baseline, dtype=float)
    if y.shape != x.shape or y.ndim != 1:
        raise ValueError("policy and baseline need one value per replication, in the same order")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 2:
        return _empty(n)
    d = y - x
    mean_x, mean_y, mean_d = float(x.mean()), float(y.mean()), float(d.mean())
    sd = float(d.std(ddof=1))
    t = _t(confidence, n)
    half = t * sd / math.sqrt(n)
    if sd > 0:
        p_value = float(2 * stats.t.sf(abs(mean_d) / (sd / math.sqrt(n)), n - 1))
    else:
        p_value = 1.0 if mean_d == 0 else 0.0
    relative = rel_low = rel_high = NAN
    if mean_x != 0:
        ratio = mean_y / mean_x
        e = y - ratio * x
        rel_half = t * float(e.std(ddof=1)) / (math.sqrt(n) * abs(mean_x))
        relative = ratio - 1
        rel_low, rel_high = relative - rel_half, relative + rel_half
    needed = replications_needed(sd, mean_d, precision, confidence)
    result = Paired(
        n=n,
        mean_baseline=mean_x,
        mean_policy=mean_y,
        mean_diff=mean_d,
        sd_diff=sd,
        ci_low=mean_d - half,
        ci_high=mean_d + half,
        half_width=half,
        relative=relative,
        rel_ci_low=rel_low,
        rel_ci_high=rel_high,
        p_value=p_value,
        replications_needed=needed,
        precise=bool(half <= precision * abs(mean_d)) or sd == 0,
    )
    if bootstrap:
        lo, hi, rlo, rhi = _bootstrap(x, y, confidence, bootstrap, seed)
        result = Paired(
            **{
                **asdict(result),
                "boot_ci_low": lo,
                "boot_ci_high": hi,
                "boot_rel_ci_low": rlo,
                "boot_rel_ci_high": rhi,
            }
        )
    return result


def _empty(n: int) -> Paired:
    """Fewer than two pairs: nothing can be estimated."""
    return Paired(n, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, False)


def _bootstrap(
    x: np.ndarray, y: np.ndarray, confidence: float, resamples: int, seed: int
) -> tuple[float, float, float, float]:
    """Percentile bootstrap over replications: pairs are resampled together."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(resamples, len(x)))
    mx, my = x[idx].mean(axis=1), y[idx].mean(axis=1)
    q = [50 - 50 * confidence, 50 + 50 * confidence]
    lo, hi = np.percentile(my - mx, q)
    rlo = rhi = NAN
    if np.all(mx != 0):
        rlo, rhi = np.percentile(my / mx - 1, q)
    return float(lo), float(hi), float(rlo), float(rhi)


GROUP = ["scenario", "variation"]


def compare(
    results: pd.DataFrame,
    baseline: str,
    kpis: list[str] | None = None,
    confidence: float = 0.95,
    precision: float = 0.25,
    bootstrap: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Every policy against ``baseline`` on every KPI, per scenario and variation.

    ``results`` is the tidy table (scenario, variation, policy, replication, kpi, value).
    """
    if kpis is not None:
        results = results[results["kpi"].isin(kpis)]
    rows = []
    for (scenario, variation, kpi), part in results.groupby([*GROUP, "kpi"], sort=False):
        wide = part.pivot(index="replication", columns="policy", values="value")
        if baseline not in wide:
            continue
        for policy in (p for p in part["policy"].unique() if p != baseline):
            stat = paired(wide[policy], wide[baseline], confidence, precision, bootstrap, seed)
            rows.append(
                {
                    "scenario": scenario,
                    "variation": variation,
                    "kpi": kpi,
                    "policy": policy,
                    "baseline": baseline,
                    **asdict(stat),
                }
            )
    return pd.DataFrame(rows)


def summarise(results: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Mean and t interval of each policy's KPI over replications (for charts, not comparisons)."""
    rows = []
    for keys, part in results.groupby([*GROUP, "policy", "kpi"], sort=False):
        v = part["value"].dropna().to_numpy(dtype=float)
        n = len(v)
        mean = float(v.mean()) if n else NAN
        half = _t(confidence, n) * float(v.std(ddof=1)) / math.sqrt(n) if n >= 2 else NAN
        rows.append(
            dict(zip([*GROUP, "policy", "kpi"], keys, strict=True))
            | {
                "n": n,
                "mean": mean,
                "ci_low": mean - half,
                "ci_high": mean + half,
            }
        )
    return pd.DataFrame(rows)


def precision_warnings(table: pd.DataFrame, precision: float, kpis: list[str]) -> list[str]:
    """One line per imprecise comparison on the reported KPIs: how wide, how many replications."""
    out = []
    rows = table[table["kpi"].isin(kpis) & ~table["precise"].astype(bool)].to_dict("records")
    for row in rows:
        if math.isnan(row["half_width"]):
            continue
        label = info(str(row["kpi"])).label
        where = str(row["scenario"])
        if row["variation"] != "base":
            where += f" / {row['variation']}"
        if row["mean_diff"] == 0:
            width = f"the CI half-width is {row['half_width']:.3g} around a zero effect"
        else:
            share = row["half_width"] / abs(row["mean_diff"])
            width = f"the CI half-width is {share:.0%} of the effect (target ≤ {precision:.0%})"
        if math.isnan(row["replications_needed"]):
            need = "no number of replications will resolve an effect this close to zero"
        else:
            need = f"about {int(row['replications_needed'])} replications would be needed"
        out.append(
            f"{where}: {row['policy']} vs {row['baseline']} on {label}: {width}; "
            f"{need} (now {row['n']})."
        )
    return out
