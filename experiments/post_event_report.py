"""The post-event report: tables as CSV, charts as PNG and one self-contained ``report.html``
(charts embedded as data URIs), for one promotion of one twin run."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from promotwin.experiments.post_event import PostEvent

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1180px;margin:2em auto;
padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.summary{background:#f3f7fb;border-left:4px solid #2b6cb0;padding:.6em 1.2em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{padding:.25em .6em;border-bottom:1px solid #e5e5e5;text-align:right}
th:first-child,td:first-child{text-align:left}.muted{color:#777}img{max-width:100%}
"""
CHANNEL_WORDS = {"walk_in": "walk-in", "pickup": "pickup in store", "ecommerce": "ecommerce"}


def _pct(v: float, signed: bool = False) -> str:
    if v != v:
        return "–"
    return f"{v:+.1%}" if signed else f"{v:.1%}"


def _num(v: float) -> str:
    return "–" if v != v else f"{v:,.0f}"


def _money(v: float, currency: str) -> str:
    return "–" if v != v else f"{v:,.0f} {currency}"


def _times(v: float) -> str:
    return "–" if v != v else f"×{v:.2f}"


def _share_or_count(kpi: str, v: float) -> str:
    return _pct(v) if kpi.endswith("_share") else f"{v:,.1f}".removesuffix(".0")


def _plural(n: float, word: str) -> str:
    return f"{n:,.0f} {word}" + ("" if round(n) == 1 else "s")


def _date_axis(ax: Any) -> None:
    from matplotlib import dates

    ax.xaxis.set_major_locator(dates.AutoDateLocator(maxticks=8))
    ax.xaxis.set_major_formatter(dates.DateFormatter("%Y-%m-%d"))
    for tick in ax.get_xticklabels():
        tick.set_rotation(30)
        tick.set_horizontalalignment("right")


def uplift_figure(pe: PostEvent, level: str) -> Figure:
    """Realised uplift per group x channel with its 95% interval, the plan and the truth."""
    from matplotlib.figure import Figure

    g = pe.uplift_by_group
    labels = [
        f"{row[level]} · {CHANNEL_WORDS.get(str(row['channel']), row['channel'])}"
        for row in g.to_dict("records")
    ]
    fig = Figure(figsize=(9, 0.45 * len(g) + 1.6))
    ax = fig.subplots()
    y = range(len(g))
    u = g["realised_uplift"].to_numpy()
    err = [u - g["low"].to_numpy(), g["high"].to_numpy() - u]
    ax.errorbar(u, y, xerr=err, fmt="o", color="#d73027", capsize=3, label="realised (95% CI)")
    ax.plot(g["planned_uplift"], y, "s", color="#4575b4", label="planned")
    if g["true_uplift"].notna().any():
        ax.plot(g["true_uplift"], y, "x", color="#1a9850", label="true (twin's hidden truth)")
    ax.set_yticks(list(y), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("uplift (× expected demand without the promotion)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def forecast_figure(pe: PostEvent) -> Figure:
    """Forecast WAPE and bias of the promoted SKUs by date of the promotion."""
    from matplotlib import ticker
    from matplotlib.figure import Figure

    f = pe.forecast
    fig = Figure(figsize=(9, 3.4))
    ax = fig.subplots()
    when = pd.to_datetime(f["date"])
    ax.plot(when, f["wape"], "o-", color="#d73027", label="WAPE")
    ax.plot(when, f["bias"], "s--", color="#4575b4", label="bias (+ over-forecast)")
    ax.axhline(0, color="#999", lw=0.8)
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("share of demand (%)")
    ax.set_xlabel("date (promoted SKUs, location × SKU × day forecast)")
    _date_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lost_figure(pe: PostEvent) -> Figure:
    """Lost units of the promoted cells per day: this run against the baseline policy."""
    from matplotlib import ticker
    from matplotlib.figure import Figure

    d = pe.daily_lost
    fig = Figure(figsize=(9, 3.4))
    ax = fig.subplots()
    when = pd.to_datetime(d["date"])
    ax.plot(
        when,
        d["lost_units"],
        "o-",
        color="#d73027",
        label=f"this run ({pe.run.manifest['policy']})",
    )
    ax.plot(
        when,
        d["baseline_lost_units"],
        "s--",
        color="#4575b4",
        label=f"{pe.baseline_policy}, same demand",
    )
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel("lost sales (units per day)")
    ax.set_xlabel("date")
    ax.set_ylim(bottom=0)
    _date_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _table(frame: pd.DataFrame, formats: dict[str, Any]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in formats)
    rows = []
    for r in frame.to_dict("records"):
        cells = "".join(f"<td>{html.escape(f(r[c]))}</td>" for c, f in formats.items())
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def summary_sentences(pe: PostEvent, level: str) -> list[str]:
    """The report's lead: uplift against plan, service against the baseline, the forecast."""
    out = []
    g = pe.uplift_by_group
    worst = g.iloc[(g["realised_vs_plan"]).abs().argmax()] if len(g) else None
    if worst is not None:
        out.append(
            f"Largest miss against plan: {worst[level]} · "
            f"{CHANNEL_WORDS.get(str(worst['channel']), worst['channel'])} sold "
            f"{_pct(float(worst['realised_vs_plan']), True)} against the planned uplift "
            f"(realised ×{worst['realised_uplift']:.2f}, 95% CI ×{worst['low']:.2f} to "
            f"×{worst['high']:.2f}; planned ×{worst['planned_uplift']:.2f})."
        )
    s, b = pe.service, pe.baseline_service
    out.append(
        f"Promotion fill rate {_pct(s['fill_rate'])} with {_plural(s['lost_units'], 'lost unit')}"
        f"; {pe.baseline_policy} on the same demand: {_pct(b['fill_rate'])}, "
        f"{_plural(b['lost_units'], 'lost unit')} (stockout reduction "
        f"{_num(b['lost_units'] - s['lost_units'])} units)."
    )
    f = pe.forecast.dropna(subset=["wape"])
    if len(f):
        first, last = f.iloc[0], f.iloc[-1]
        out.append(
            f"Forecast WAPE of the promoted SKUs went from {_pct(float(first['wape']))} on "
            f"{first['date']} to {_pct(float(last['wape']))} on {last['date']} "
            f"(bias {_pct(float(first['bias']), True)} → {_pct(float(last['bias']), True)})."
        )
    return out


ACCURACY_ROWS = (
    ("forecast_wape", "WAPE, location × SKU × day", "the whole run, every SKU"),
    ("forecast_wape_region_week", "WAPE, SKU × region × week", "the whole run, every SKU"),
    ("forecast_bias", "bias (+ over-forecast)", "the whole run, every SKU"),
    ("promo_forecast_wape", "WAPE, location × SKU × day", "promoted SKUs, promotion window"),
    (
        "promo_forecast_wape_region_week",
        "WAPE, SKU × region × week",
        "promoted SKUs, promotion window",
    ),
    ("promo_forecast_bias", "bias (+ over-forecast)", "promoted SKUs, promotion window"),
)
ACCURACY_NOTE = (
    "Location × SKU × day counts every shelf's daily miss, which daily noise at one store "
    "dominates; SKU × region × week sums a week's units per SKU and region first: the level "
    "planners judge a forecast at."
)


def accuracy_rows(pe: PostEvent) -> pd.DataFrame:
    """The run's forecast accuracy at both levels, over the whole run and the promotion."""
    acc = pe.run_accuracy
    return pd.DataFrame(
        [
            {"over": over, "measure": name, "value": acc[key], "signed": "bias" in key}
            for key, name, over in ACCURACY_ROWS
            if key in acc
        ]
    )


def accuracy_section(pe: PostEvent) -> list[str]:
    rows = accuracy_rows(pe)
    if not len(rows):
        return []
    rows = rows.assign(
        value=[_pct(v, s) for v, s in zip(rows["value"], rows["signed"], strict=True)]
    )
    return [
        "<h2>Forecast accuracy: the whole run and the promotion</h2>",
        f"<p class='muted'>{html.escape(ACCURACY_NOTE)}</p>",
        _table(rows, {"over": str, "measure": str, "value": str}),
    ]


def write_post_event(pe: PostEvent, out: Path, level: str = "cluster") -> Path:
    """CSV tables, PNG charts and ``report.html`` in ``out`` (created)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    currency = pe.run.currency
    pe.uplift.to_csv(out / "uplift_by_sku.csv", index=False)
    pe.uplift_by_group.to_csv(out / f"uplift_by_{level}.csv", index=False)
    pe.spill.to_csv(out / "spill_overs.csv", index=False)
    pe.forecast.to_csv(out / "forecast_by_day.csv", index=False)
    pe.daily_lost.to_csv(out / "lost_by_day.csv", index=False)
    charts = []
    for name, fig, alt in (
        ("uplift.png", uplift_figure(pe, level), "uplift by group"),
        ("forecast_by_day.png", forecast_figure(pe), "forecast error by day"),
        ("lost_by_day.png", lost_figure(pe), "lost sales by day"),
    ):
        fig.savefig(out / name, dpi=110)
        charts.append((out / name, alt))
    s, b = pe.service, pe.baseline_service
    service = pd.DataFrame(
        [
            {"measure": "demand (units)", "run": s["demand_units"], "base": b["demand_units"]},
            {"measure": "lost sales (units)", "run": s["lost_units"], "base": b["lost_units"]},
            {"measure": "fill rate", "run": s["fill_rate"], "base": b["fill_rate"]},
            {
                "measure": f"margin before vendor funding ({currency})",
                "run": s["margin_before_funding"],
                "base": b["margin_before_funding"],
            },
            {
                "measure": f"vendor funding ({currency})",
                "run": s["vendor_funding"],
                "base": b["vendor_funding"],
            },
            {
                "measure": f"margin with vendor funding ({currency})",
                "run": s["margin_with_funding"],
                "base": b["margin_with_funding"],
            },
        ]
    )

    def cell(v: Any) -> str:
        return _pct(v) if isinstance(v, float) and abs(v) <= 1 and v != int(v) else _num(v)

    policy = str(pe.run.manifest["policy"])
    first, last = pe.window
    body = [
        f"<h1>{html.escape(pe.promotion)}: post-event report</h1>",
        f"<p class='muted'>Run {html.escape(str(pe.run.manifest.get('run_id')))} of "
        f"{html.escape(pe.run.scenario.name)} under {html.escape(policy)}, seed {pe.run.seed}; "
        f"promotion {first} to {last} ({_plural((last - first).days + 1, 'day')}). "
        f"Money in {html.escape(currency)}.</p>",
        f"<p class='muted'>Analysed: {html.escape(pe.source)}.</p>" if pe.source else "",
        '<div class="summary"><h3>In plain words</h3><ul>',
        *(f"<li>{html.escape(x)}</li>" for x in summary_sentences(pe, level)),
        "</ul></div>",
        f"<h2>Uplift: planned vs realised by {html.escape(level)} and channel</h2>",
        "<p class='muted'>Uplift = demand (sold + lost) in the window / expected demand without "
        "the promotion. Interval: 95%, negative-binomial noise at the realised uplift. "
        "‘true’ is the twin's hidden truth (demand.truth).</p>",
        _table(
            pe.uplift_by_group,
            {
                level: str,
                "channel": lambda c: CHANNEL_WORDS.get(str(c), str(c)),
                "planned_uplift": _times,
                "realised_uplift": _times,
                "low": _times,
                "high": _times,
                "realised_vs_plan": lambda v: _pct(v, True),
                "true_uplift": _times,
            },
        ),
        _img(*charts[0]),
        "<p class='muted'>Per SKU: uplift_by_sku.csv.</p>",
        f"<h2>Service and margin: {html.escape(policy)} against "
        f"{html.escape(pe.baseline_policy)} on the same demand</h2>",
        _table(service, {"measure": str, "run": cell, "base": cell}).replace(
            "<th>run</th><th>base</th>",
            f"<th>{html.escape(policy)}</th><th>{html.escape(pe.baseline_policy)}</th>",
        ),
        _img(*charts[2]),
        "<h2>Forecast of the promoted SKUs by day of the promotion</h2>",
        _table(
            pe.forecast,
            {
                "date": str,
                "promotion_day": lambda d: f"{int(d)}",
                "demand_units": _num,
                "forecast_units": _num,
                "wape": _pct,
                "bias": lambda v: _pct(v, True),
            },
        ),
        _img(*charts[1]),
        *accuracy_section(pe),
        "<h2>Cannibalisation, halo and the post-promotion dip</h2>",
        _table(
            pe.spill,
            {
                "effect": str,
                "from": str,
                "to": str,
                "baseline_units": _num,
                "planned_change": lambda v: _pct(v, True),
                "realised_change": lambda v: _pct(v, True),
                "true_change": lambda v: _pct(v, True),
            },
        )
        if len(pe.spill)
        else "<p>No SKUs to measure.</p>",
        "<h2>Planner productivity</h2>",
        "<ul>"
        + "".join(
            f"<li>{html.escape(k.replace('_', ' '))}: {_share_or_count(k, v)}</li>"
            for k, v in pe.governance.items()
            if not math.isnan(v)
        )
        + "</ul>",
    ]
    r = pe.readiness
    if r.get("score") is not None:
        body += [
            "<h2>Readiness: predicted before launch vs what happened</h2>",
            f"<p>As of {r['as_of']}: readiness {r['score']:.0f}/100, "
            f"{_num(r['predicted_units_at_risk'])} of {_num(r['predicted_demand_units'])} units "
            f"at risk (at the 80th percentile of demand). Happened: "
            f"{_plural(r['lost_units'], 'unit')} lost of {_num(r['demand_units'])}.</p>",
            "<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in r["reasons"]) + "</ul>",
        ]
    elif r.get("note"):
        body.append(f"<p class='muted'>Readiness: {html.escape(r['note'])}</p>")
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(pe.promotion)} post-event</title><style>{_CSS}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
