"""The experiment report: plain-words summary, paired-statistics tables, PNG charts, one HTML file.

``report.html`` embeds its charts as data URIs and its styles inline, so it opens anywhere
(e-mail, a file share, no network). The PNGs are also written next to it.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

import promotwin
from promotwin.experiments.kpis import COST_PARTS, info
from promotwin.experiments.kpis import label as kpi_label
from promotwin.experiments.spec import Experiment
from promotwin.experiments.stats import compare, precision_warnings, summarise


def _pct(v: float, signed: bool = False) -> str:
    """A share as a percentage: whole numbers from 10%, one decimal below."""
    digits = 0 if abs(v) >= 0.095 else 1
    return f"{v:+.{digits}%}" if signed else f"{v:.{digits}%}"


def _num(v: float, signed: bool = False) -> str:
    if v != v:
        return "–"
    digits = 0 if abs(v) >= 100 else (1 if abs(v) >= 10 else 2)
    return f"{v:+,.{digits}f}" if signed else f"{v:,.{digits}f}"


def fmt_value(kpi: str, v: float) -> str:
    """A KPI value as a planner reads it: rates as percentages, amounts with separators."""
    if v != v:
        return "–"
    return f"{v:.1%}" if info(kpi).kind == "rate" else _num(v)


def _range(lo: float, hi: float, fmt: Any) -> str:
    """``51–64%`` when both ends have the same sign (shown without it), else ``−5% to +3%``."""
    if lo >= 0 or hi <= 0:
        a, b = (fmt(v) for v in sorted((abs(lo), abs(hi))))
        if a.endswith("%") and b.endswith("%"):
            a = a[:-1]  # 51–64%, as people write it
        return f"{a}–{b}"
    return f"{fmt(lo, True)} to {fmt(hi, True)}"


def change_phrase(row: Mapping[Any, Any], confidence: float) -> tuple[str, bool]:
    """How a policy moved one KPI against the baseline, and whether the CI excludes no change."""
    kpi = str(row["kpi"])
    label = info(kpi).label
    cl = f"{confidence:.0%} CI"
    d, lo, hi = row["mean_diff"], row["ci_low"], row["ci_high"]
    if row["n"] < 2 or d != d:
        return f"could not be compared on {label} (fewer than 2 replications with a value)", False
    if row["sd_diff"] == 0 and d == 0:
        return f"matched it exactly on {label} in every replication", False
    clear = bool(lo > 0 or hi < 0)
    verb = "raised" if d > 0 else "cut"
    if info(kpi).kind == "rate":
        pts = lambda v, s=False: f"{100 * v:+.1f}" if s else f"{100 * v:.1f}"  # noqa: E731
        if clear:
            return (
                f"{verb} {label} by {100 * abs(d):.1f} points ({cl} {_range(lo, hi, pts)}) "
                f"to {row['mean_policy']:.1%}",
                True,
            )
        return (
            f"did not clearly change {label} ({pts(d, True)} points, {cl} {_range(lo, hi, pts)})",
            False,
        )
    rel, rlo, rhi = row["relative"], row["rel_ci_low"], row["rel_ci_high"]
    if rel != rel:  # baseline mean is zero: absolute terms
        if clear:
            return f"{verb} {label} by {_num(abs(d))} ({cl} {_range(lo, hi, _num)})", True
        return (
            f"did not clearly change {label} ({_num(d, True)}, {cl} {_range(lo, hi, _num)})",
            False,
        )
    if clear:
        return f"{verb} {label} by {_pct(abs(rel))} ({cl} {_range(rlo, rhi, _pct)})", True
    return (
        f"did not clearly change {label} ({_pct(rel, True)}, {cl} {_range(rlo, rhi, _pct)})",
        False,
    )


def _tradeoff_phrase(row: Mapping[Any, Any], confidence: float) -> str:
    kpi = str(row["kpi"])
    label = info(kpi).label
    phrase, clear = change_phrase(row, confidence)
    if not clear:
        return f", with no clear change in {label}"
    if info(kpi).kind == "rate":
        return f", and {phrase}"
    rel = row["relative"]
    if rel != rel:
        return f", and {phrase}"
    direction = "higher" if rel > 0 else "lower"
    rng = _range(row["rel_ci_low"], row["rel_ci_high"], _pct)
    return f" at {_pct(abs(rel))} {direction} {label} ({confidence:.0%} CI {rng})"


def summary_sentences(table: pd.DataFrame, experiment: Experiment) -> list[str]:
    """A plain sentence per policy (and scenario / variation): headline KPI, then its trade-off."""
    spec = experiment.spec
    conf = spec.statistics.confidence
    several = len(experiment.cells) > 1
    out = []
    for cell in experiment.cells:
        part = table[(table["scenario"] == cell.scenario) & (table["variation"] == cell.variation)]
        for policy in (label for label, _ in experiment.policies if label != experiment.baseline):
            rows = {r["kpi"]: r for r in part[part["policy"] == policy].to_dict("records")}
            if spec.headline not in rows:
                continue
            head = rows[spec.headline]
            phrase, _ = change_phrase(head, conf)
            text = f"{policy} {phrase} against {experiment.baseline}"
            if spec.tradeoff in rows and spec.tradeoff != spec.headline:
                text += _tradeoff_phrase(rows[spec.tradeoff], conf)
            text += "."
            if not head["precise"] and not math.isnan(head["replications_needed"]):
                text += (
                    f" (Imprecise: about {int(head['replications_needed'])} replications would "
                    f"pin this down; {int(head['n'])} were run.)"
                )
            if several:
                where = (
                    cell.scenario
                    if cell.variation == "base"
                    else f"{cell.scenario}, {cell.variation}"
                )
                text = f"{where}: {text}"
            out.append(text)
    return out


# ---------------------------------------------------------------- charts


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


# The charts draw on a bare matplotlib Figure (no pyplot, no backend switch): a notebook user's
# backend and open figures stay as they were, and matplotlib loads only when a chart is drawn.


def compact(v: float) -> str:
    """An axis amount short enough not to run into its neighbours: 850, 12k, 1.25M; never "-0"."""
    a = abs(v)
    if a >= 1e6:
        text = f"{v / 1e6:,.2f}".rstrip("0").rstrip(".") + "M"
    elif a >= 1e4:
        text = f"{v / 1e3:,.0f}k"
    else:
        text = f"{v:,.0f}"
    return "0" if text in ("-0", "0") else text


def _format_axis(axis: Any, kpi: str) -> None:
    """Percent for rates; whole amounts, at most 5 ticks and compact labels for the rest (a
    panel whose values are all 0 gets the single tick 0, not "0 0 0 -0")."""
    from matplotlib import ticker

    kind = info(kpi).kind
    if kind == "rate":
        axis.set_major_formatter(ticker.PercentFormatter(1.0))
    elif kind in ("money", "units", "count"):
        axis.set_major_locator(ticker.MaxNLocator(nbins=5, integer=True, min_n_ticks=1))
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: compact(v)))


def _policies(experiment: Experiment) -> list[str]:
    return [label for label, _ in experiment.policies]


def kpi_by_policy_chart(
    means: pd.DataFrame, experiment: Experiment, scenario: str, path: Path
) -> None:
    """Each reported KPI: the mean per policy with its CI, one marker series per variation."""
    from matplotlib.figure import Figure

    kpis = list(experiment.spec.kpis)
    cols = min(4, len(kpis))
    rows = math.ceil(len(kpis) / cols)
    fig = Figure(figsize=(3.6 * cols, 3.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    policies = _policies(experiment)
    variations = [c.variation for c in experiment.cells if c.scenario == scenario]
    width = 0.7 / max(len(variations), 1)
    for ax, kpi in zip(axes.flat, kpis, strict=False):
        for j, variation in enumerate(variations):
            m = (
                means[
                    (means["scenario"] == scenario)
                    & (means["variation"] == variation)
                    & (means["kpi"] == kpi)
                ]
                .set_index("policy")
                .reindex(policies)
            )
            x = [i - 0.35 + width * (j + 0.5) for i in range(len(policies))]
            err = [m["mean"] - m["ci_low"], m["ci_high"] - m["mean"]]
            ax.errorbar(x, m["mean"], yerr=err, fmt="o", capsize=3, label=variation)
        ax.set_title(info(kpi).label, fontsize=9)
        ax.set_xticks(range(len(policies)), policies, rotation=30, ha="right", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        _format_axis(ax.yaxis, kpi)
    for ax in list(axes.flat)[len(kpis) :]:
        ax.set_visible(False)
    if len(variations) > 1:
        axes.flat[0].legend(fontsize=7)
    conf = experiment.spec.statistics.confidence
    fig.suptitle(f"{scenario}: KPI by policy (mean, {conf:.0%} CI over replications)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def differences_chart(
    table: pd.DataFrame, experiment: Experiment, scenario: str, path: Path
) -> None:
    """Forest plot of the paired CIs against the baseline: relative change (%) of amounts on the
    left, change of rates in percentage points on the right."""
    from matplotlib.figure import Figure

    part = table[(table["scenario"] == scenario) & table["kpi"].isin(experiment.spec.kpis)]
    part = part[part["n"] >= 2]
    is_rate = part["kpi"].map(lambda k: info(str(k)).kind == "rate").astype(bool)
    panels = [
        (
            part[~is_rate & part["relative"].notna()],
            "relative",
            "rel_ci_low",
            "rel_ci_high",
            f"change against {experiment.baseline} (%)",
        ),
        (
            part[is_rate],
            "mean_diff",
            "ci_low",
            "ci_high",
            f"change against {experiment.baseline} (percentage points)",
        ),
    ]
    panels = [p for p in panels if not p[0].empty]
    policies = [p for p in _policies(experiment) if p != experiment.baseline]
    n_rows = max((len(p[0].groupby(["variation", "kpi"])) for p in panels), default=1)
    fig = Figure(figsize=(6.2 * max(len(panels), 1), 0.45 * max(n_rows, 4) + 1.4))
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False)
    for ax, (data, mid, low, high, xlabel) in zip(axes.flat, panels, strict=False):
        groups = list(data.groupby(["variation", "kpi"], sort=False))
        for i, (_, g) in enumerate(groups):
            g = g.set_index("policy")
            for j, policy in enumerate(policies):
                if policy not in g.index:
                    continue
                row = g.loc[policy]
                y = i + (j - (len(policies) - 1) / 2) * 0.18
                m, lo, hi = 100 * row[mid], 100 * row[low], 100 * row[high]
                ax.errorbar(
                    m,
                    y,
                    xerr=[[m - lo], [hi - m]],
                    fmt="o",
                    color=f"C{j}",
                    capsize=3,
                    label=policy if i == 0 else None,
                )
        labels = [info(str(k)).label + ("" if v == "base" else f" [{v}]") for (v, k), _ in groups]
        ax.set_yticks(range(len(groups)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="grey", lw=1)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    conf = experiment.spec.statistics.confidence
    fig.suptitle(
        f"{scenario}: paired differences against {experiment.baseline} ({conf:.0%} CI)", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def tradeoff_chart(means: pd.DataFrame, experiment: Experiment, scenario: str, path: Path) -> None:
    """Inventory (the trade-off KPI) against fill rate and against the headline KPI, per policy."""
    from matplotlib.figure import Figure

    spec = experiment.spec
    x_kpi = spec.tradeoff
    ys = ["fill_rate", spec.headline if spec.headline != "fill_rate" else "lost_sales_units"]
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    part = means[means["scenario"] == scenario]
    variations = list(dict.fromkeys(part["variation"]))
    markers = "osD^vP*X"
    currency = next((c.model.currency for c in experiment.cells if c.scenario == scenario), "USD")
    for ax, y_kpi in zip(axes, ys, strict=True):
        for j, policy in enumerate(_policies(experiment)):
            for k, variation in enumerate(variations):
                sel = part[(part["policy"] == policy) & (part["variation"] == variation)]
                mx = sel[sel["kpi"] == x_kpi]
                my = sel[sel["kpi"] == y_kpi]
                if mx.empty or my.empty:
                    continue
                mx, my = mx.iloc[0], my.iloc[0]
                ax.errorbar(
                    mx["mean"],
                    my["mean"],
                    xerr=[[mx["mean"] - mx["ci_low"]], [mx["ci_high"] - mx["mean"]]],
                    yerr=[[my["mean"] - my["ci_low"]], [my["ci_high"] - my["mean"]]],
                    fmt=markers[k % len(markers)],
                    color=f"C{j}",
                    capsize=3,
                    label=policy if k == 0 else None,
                )
        ax.set_xlabel(kpi_label(x_kpi, currency))
        ax.set_ylabel(kpi_label(y_kpi, currency))
        _format_axis(ax.xaxis, x_kpi)
        _format_axis(ax.yaxis, y_kpi)
        ax.grid(alpha=0.3)
    axes[0].legend(title="policy (colour)", fontsize=8, title_fontsize=8)
    if len(variations) > 1:  # which marker is which variation
        from matplotlib.lines import Line2D

        shapes = [
            Line2D([], [], marker=markers[k % len(markers)], color="#555", ls="none", label=v)
            for k, v in enumerate(variations)
        ]
        axes[1].legend(handles=shapes, title="variation (marker)", fontsize=8, title_fontsize=8)
    title = f"{scenario}: trade-off (mean and CI per policy"
    title += "; marker shape = variation)" if len(variations) > 1 else ")"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def sweep_chart(means: pd.DataFrame, experiment: Experiment, scenario: str, path: Path) -> bool:
    """KPI against the swept parameter (e.g. discount depth): a line per policy, with CI band."""
    from matplotlib import ticker
    from matplotlib.figure import Figure

    cells = [c for c in experiment.cells if c.scenario == scenario]
    if experiment.sweep_parameter is None or not all(
        isinstance(c.value, int | float) and not isinstance(c.value, bool) for c in cells
    ):
        return False
    value = {c.variation: float(c.value) for c in cells}
    spec = experiment.spec
    kpis = list(dict.fromkeys([spec.headline, "fill_rate", spec.tradeoff, "total_cost"]))
    fig = Figure(figsize=(3.9 * len(kpis), 3.6))
    axes = fig.subplots(1, len(kpis), squeeze=False)
    part = means[means["scenario"] == scenario].assign(x=lambda f: f["variation"].map(value))
    for ax, kpi in zip(axes.flat, kpis, strict=True):
        for j, policy in enumerate(_policies(experiment)):
            m = part[(part["policy"] == policy) & (part["kpi"] == kpi)].sort_values("x")
            ax.plot(m["x"], m["mean"], "o-", color=f"C{j}", label=policy)
            ax.fill_between(m["x"], m["ci_low"], m["ci_high"], color=f"C{j}", alpha=0.15)
        ax.set_title(info(kpi).label, fontsize=9)
        ax.set_xlabel(experiment.sweep_label or "")
        if experiment.sweep_parameter == "promotions.*.depth":
            ax.xaxis.set_major_formatter(ticker.PercentFormatter(1.0))
        _format_axis(ax.yaxis, kpi)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{scenario}: KPI against {experiment.sweep_label}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


# ---------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1180px;margin:2em auto;
padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.summary{background:#f3f7fb;border-left:4px solid #2b6cb0;padding:.6em 1.2em}
.warn{background:#fff8e6;border-left:4px solid #d69e2e;padding:.4em 1.2em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{padding:.25em .6em;border-bottom:1px solid #e5e5e5;text-align:right}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}
.clear{font-weight:600}.muted{color:#777}img{max-width:100%;margin:.5em 0}
"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _row_cells(row: Mapping[Any, Any], conf: float, bootstrap: bool) -> list[str]:
    kpi = str(row["kpi"])
    rate = info(kpi).kind == "rate"
    if rate:
        diff = f"{100 * row['mean_diff']:+.2f} pts"
        ci = f"{100 * row['ci_low']:+.2f} to {100 * row['ci_high']:+.2f}"
    else:
        diff = _num(row["mean_diff"], True)
        ci = f"{_num(row['ci_low'], True)} to {_num(row['ci_high'], True)}"
    rel = "–" if row["relative"] != row["relative"] else _pct(row["relative"], True)
    rel_ci = (
        "–"
        if row["rel_ci_low"] != row["rel_ci_low"]
        else f"{_pct(row['rel_ci_low'], True)} to {_pct(row['rel_ci_high'], True)}"
    )
    if row["sd_diff"] == 0:
        status = "exact"
    elif row["precise"]:
        status = "ok"
    elif row["replications_needed"] != row["replications_needed"]:
        status = "⚠ no effect to resolve"
    else:
        status = f"⚠ needs ≈{int(row['replications_needed'])}"
    cells = [
        info(kpi).label,
        str(row["policy"]),
        fmt_value(kpi, row["mean_baseline"]),
        fmt_value(kpi, row["mean_policy"]),
        diff,
        ci,
        rel,
        rel_ci,
    ]
    if bootstrap:
        if rate:
            cells.append(f"{100 * row['boot_ci_low']:+.2f} to {100 * row['boot_ci_high']:+.2f}")
        else:
            cells.append(f"{_num(row['boot_ci_low'], True)} to {_num(row['boot_ci_high'], True)}")
    cells += [str(int(row["n"])), f"{row['p_value']:.3g}", status]
    return cells


def _table_html(part: pd.DataFrame, experiment: Experiment) -> str:
    conf = experiment.spec.statistics.confidence
    boot = experiment.spec.statistics.bootstrap > 0
    head = ["KPI", "policy", experiment.baseline, "policy mean", "difference", f"{conf:.0%} CI"]
    head += ["relative", f"{conf:.0%} CI (relative)"]
    if boot:
        head.append(f"bootstrap {conf:.0%} CI")
    head += ["n", "p", "precision"]
    lines = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    order = {k: i for i, k in enumerate(experiment.spec.kpis)}
    part = part.assign(_o=part["kpi"].map(order)).sort_values(["_o", "policy"], kind="stable")
    for row in part.to_dict("records"):
        clear = row["ci_low"] > 0 or row["ci_high"] < 0
        cls = ' class="clear"' if clear else ""
        lines.append(
            f"<tr{cls}>"
            + "".join(f"<td>{html.escape(c)}</td>" for c in _row_cells(row, conf, boot))
            + "</tr>"
        )
    lines.append("</table>")
    return "\n".join(lines)


def cost_breakdown(results: pd.DataFrame) -> pd.DataFrame:
    """Mean total cost and its parts per scenario x variation x policy (over replications):
    one column per part, in ``COST_PARTS`` order, then ``total_cost``; the parts sum to it."""
    keys = ["scenario", "variation", "policy"]
    part = results[results["kpi"].isin([*COST_PARTS, "total_cost"])]
    wide = part.pivot_table(index=keys, columns="kpi", values="value", aggfunc="mean", sort=False)
    return wide.reindex(columns=[*COST_PARTS, "total_cost"]).reset_index()


def _cost_html(breakdown: pd.DataFrame, currency: str) -> str:
    """The cost parts beside their total, one row per policy, mean over replications."""
    columns = [*COST_PARTS, "total_cost"]
    head = ["policy", *(kpi_label(c, currency) for c in columns)]
    lines = [
        f"<h3>Total cost and its parts ({html.escape(currency)}, mean per run)</h3>",
        "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>",
    ]
    for row in breakdown.to_dict("records"):
        cells = [str(row["policy"]), *(_num(row[c]) for c in columns)]
        lines.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    lines.append(
        "<p class='muted'>Holding is charged on end-of-day stock (after the day's dispatch); "
        "the cost of goods is not a cost part (it is in gross margin).</p>"
    )
    return "\n".join(lines)


def write_report(experiment: Experiment, results: pd.DataFrame, out: Path) -> Path:
    """Statistics (``statistics.csv``), charts (``*.png``) and ``report.html`` in ``out``."""
    out = Path(out)
    spec = experiment.spec
    st = spec.statistics
    table = compare(
        results,
        experiment.baseline,
        None,
        st.confidence,
        st.precision,
        st.bootstrap,
        st.bootstrap_seed,
    )
    table.to_csv(out / "statistics.csv", index=False)
    means = summarise(results, st.confidence)
    sentences = summary_sentences(table, experiment)
    warnings = precision_warnings(table, st.precision, list(spec.kpis))
    breakdown = cost_breakdown(results)

    charts: list[Path] = []
    for scenario in dict.fromkeys(c.scenario for c in experiment.cells):
        slug = _slug(scenario)
        for name, draw in (
            (f"kpi_by_policy_{slug}.png", kpi_by_policy_chart),
            (f"differences_{slug}.png", lambda m, e, s, p: differences_chart(table, e, s, p)),
            (f"tradeoff_{slug}.png", tradeoff_chart),
        ):
            draw(means, experiment, scenario, out / name)
            charts.append(out / name)
        if sweep_chart(means, experiment, scenario, out / f"sweep_{slug}.png"):
            charts.append(out / f"sweep_{slug}.png")

    n_runs = int(
        results[["scenario", "variation", "policy", "replication"]].drop_duplicates().shape[0]
    )
    body = [
        f"<h1>{html.escape(spec.name)}: policies against {html.escape(experiment.baseline)}</h1>",
        f"<p>{html.escape(spec.description)}</p>" if spec.description else "",
        '<div class="summary"><h3>In plain words</h3><ul>',
        *(f"<li>{html.escape(s)}</li>" for s in sentences),
        "</ul></div>",
    ]
    if warnings:
        body += ['<div class="warn"><h3>Precision warnings</h3><ul>']
        body += [f"<li>{html.escape(w)}</li>" for w in warnings]
        body += ["</ul></div>"]
    body.append(
        "<p class='muted'>"
        f"{n_runs} runs: {len(experiment.cells)} scenario×variation cell(s) × "
        f"{len(experiment.policies)} policies × {spec.replications} replications, "
        f"common random numbers (replication r of every policy uses the same seed; base seed "
        f"{spec.base_seed}). Differences are paired per replication; {st.confidence:.0%} t "
        "intervals (relative change: delta method)"
        + (f"; percentile bootstrap with {st.bootstrap} resamples" if st.bootstrap else "")
        + f". A comparison is flagged when its CI half-width exceeds {st.precision:.0%} of the "
        "effect. Bold rows: the CI excludes no change.</p>"
    )
    for cell in experiment.cells:
        part = table[
            (table["scenario"] == cell.scenario)
            & (table["variation"] == cell.variation)
            & table["kpi"].isin(spec.kpis)
        ]
        title = cell.scenario if cell.variation == "base" else f"{cell.scenario} — {cell.variation}"
        body += [f"<h2>{html.escape(title)}</h2>", _table_html(part, experiment)]
        costs = breakdown[
            (breakdown["scenario"] == cell.scenario) & (breakdown["variation"] == cell.variation)
        ]
        if len(costs):
            body.append(_cost_html(costs, cell.model.currency))
    body.append("<h2>Charts</h2>")
    body += [_img(p) for p in charts]
    body.append(
        "<p class='muted'>"
        f"promotwin {html.escape(promotwin.__version__)}; spec {html.escape(experiment.source)} "
        f"(sha256 {experiment.spec_hash}). Every run's id and seed: manifest.json; every KPI of "
        "every run: results.parquet; all KPIs compared: statistics.csv.</p>"
    )
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(spec.name)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    path = out / "report.html"
    tmp = out / ".report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
