"""What the leadership page shows: a ``twin compare`` output folder, re-read and re-compared
against any of its policies, with the experiments package's own statistics, summary and charts.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from promotwin.experiments.kpis import info
from promotwin.experiments.report import (
    change_phrase,
    cost_breakdown,
    differences_chart,
    summary_sentences,
    sweep_chart,
    tradeoff_chart,
)
from promotwin.experiments.spec import Experiment, parse_spec
from promotwin.experiments.stats import compare, summarise

REQUIRED = ("results.parquet", "manifest.json")


@dataclass(frozen=True)
class LoadedExperiment:
    folder: Path
    name: str
    results: pd.DataFrame
    manifest: dict[str, object]
    experiment: Experiment | None  # None when its spec's scenarios cannot be loaded here
    note: str

    @property
    def policies(self) -> list[str]:
        return list(dict.fromkeys(self.results["policy"]))

    @property
    def baseline(self) -> str:
        return str(self.manifest.get("baseline") or self.policies[0])

    @property
    def confidence(self) -> float:
        if self.experiment is not None:
            return float(self.experiment.spec.statistics.confidence)
        return 0.95


def is_experiment(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED)


def find_experiments(root: Path | str) -> list[Path]:
    """``root`` itself when it is a ``twin compare`` folder, else its sub-folders that are."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(
            f"Folder {root} not found. Give the folder `twin compare --out` wrote, or the "
            "folder that holds several of them."
        )
    if is_experiment(root):
        return [root]
    found = sorted(p for p in root.iterdir() if p.is_dir() and is_experiment(p))
    found += sorted(
        q
        for p in root.iterdir()
        if p.is_dir() and not is_experiment(p)
        for q in p.iterdir()
        if q.is_dir() and is_experiment(q)
    )
    return found


def load_experiment(folder: Path | str) -> LoadedExperiment:
    """Read ``results.parquet`` and ``manifest.json``; rebuild the spec for summary and charts."""
    folder = Path(folder)
    if not is_experiment(folder):
        raise ValueError(
            f"{folder} is not a `twin compare` output folder (it needs results.parquet and "
            "manifest.json). Run `twin compare SPEC --out DIR` first."
        )
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        results = pd.read_parquet(folder / "results.parquet")
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{folder}: the results cannot be read ({exc}); rerun the comparison"
        ) from None
    experiment: Experiment | None = None
    note = ""
    source = str(manifest.get("spec_source", "<spec>"))
    try:
        spec_text = yaml.safe_dump(manifest["spec"], sort_keys=False)
        base = Path(source).parent if Path(source).parent.is_dir() else folder
        experiment = parse_spec(spec_text, source=source, base_dir=base)
    except Exception as exc:  # noqa: BLE001 - the table still works without the spec
        first = str(exc).splitlines()[0]
        note = (
            f"The experiment's spec could not be rebuilt here ({first}), so the plain-words "
            "summary and fresh charts are not available; the charts saved with the results "
            "are shown instead."
        )
    return LoadedExperiment(
        folder, str(manifest.get("experiment", folder.name)), results, manifest, experiment, note
    )


def comparison(exp: LoadedExperiment, baseline: str) -> pd.DataFrame:
    """Paired statistics of every policy against ``baseline`` (``experiments.stats.compare``)."""
    if baseline not in exp.policies:
        raise ValueError(f"{baseline!r} is not one of the policies: {', '.join(exp.policies)}")
    if exp.experiment is not None:
        st = exp.experiment.spec.statistics
        return compare(
            exp.results,
            baseline,
            None,
            st.confidence,
            st.precision,
            st.bootstrap,
            st.bootstrap_seed,
        )
    return compare(exp.results, baseline)


def reported_kpis(exp: LoadedExperiment) -> list[str]:
    if exp.experiment is not None:
        return list(exp.experiment.spec.kpis)
    from promotwin.experiments.kpis import DEFAULT_KPIS

    present = set(exp.results["kpi"])
    return [k for k in DEFAULT_KPIS if k in present]


def kpi_table(exp: LoadedExperiment, baseline: str) -> pd.DataFrame:
    """One row per scenario x variation x KPI x policy: mean with its CI, and the change against
    the baseline with its paired CI (relative for amounts, points for rates)."""
    from promotwin.dashboards.fmt import kpi_label, kpi_value, pct, points

    conf = exp.confidence
    kpis = reported_kpis(exp)
    means = summarise(exp.results[exp.results["kpi"].isin(kpis)], conf)
    table = comparison(exp, baseline)
    table = table[table["kpi"].isin(kpis)]
    rows = []
    for m in means.to_dict("records"):
        kpi = str(m["kpi"])
        row = {
            "scenario": m["scenario"],
            "variation": m["variation"],
            "KPI": kpi_label(kpi),
            "policy": m["policy"],
            "mean": kpi_value(kpi, m["mean"]),
            f"{conf:.0%} CI": f"{kpi_value(kpi, m['ci_low'])} to {kpi_value(kpi, m['ci_high'])}",
            "change vs baseline": "baseline" if m["policy"] == baseline else "–",
            "change CI": "",
            "clear": False,
            "in words": "",
        }
        hit = table[
            (table["scenario"] == m["scenario"])
            & (table["variation"] == m["variation"])
            & (table["kpi"] == kpi)
            & (table["policy"] == m["policy"])
        ]
        if len(hit):
            c = hit.iloc[0]
            if info(kpi).kind == "rate":
                row["change vs baseline"] = points(c["mean_diff"])
                row["change CI"] = f"{points(c['ci_low'])} to {points(c['ci_high'])}"
            else:
                row["change vs baseline"] = pct(c["relative"], signed=True)
                row["change CI"] = (
                    f"{pct(c['rel_ci_low'], signed=True)} to {pct(c['rel_ci_high'], signed=True)}"
                )
            phrase, clear = change_phrase(c.to_dict(), conf)
            row["clear"] = clear
            row["in words"] = phrase
        rows.append(row)
    return pd.DataFrame(rows)


def cost_table(exp: LoadedExperiment) -> pd.DataFrame:
    """Total cost beside its parts, per scenario x variation x policy (mean per run), in the
    scenarios' currency: the parts add up to the total on screen."""
    from promotwin.dashboards.fmt import kpi_label, money
    from promotwin.experiments.kpis import COST_PARTS

    currency = (
        {c.scenario: c.model.currency for c in exp.experiment.cells} if exp.experiment else {}
    )
    rows = []
    for r in cost_breakdown(exp.results).to_dict("records"):
        code = currency.get(str(r["scenario"]), "USD")
        row = {"scenario": r["scenario"], "variation": r["variation"], "policy": r["policy"]}
        for key in (*COST_PARTS, "total_cost"):
            row[kpi_label(key, code)] = money(r[key], currency=code)
        rows.append(row)
    return pd.DataFrame(rows)


def summary(exp: LoadedExperiment, baseline: str) -> list[str]:
    """The report's plain-words sentences, against the chosen baseline."""
    if exp.experiment is None:
        return []
    chosen = dataclasses.replace(exp.experiment, baseline=baseline)
    return summary_sentences(comparison(exp, baseline), chosen)


def charts(exp: LoadedExperiment, baseline: str) -> list[tuple[str, bytes]]:
    """(title, PNG) of the differences, trade-off and depth-sweep charts, drawn by the report's
    own functions; the saved PNGs when the spec cannot be rebuilt."""
    if exp.experiment is None:
        return [
            (p.stem.replace("_", " "), p.read_bytes()) for p in sorted(exp.folder.glob("*.png"))
        ]
    chosen = dataclasses.replace(exp.experiment, baseline=baseline)
    means = summarise(exp.results, exp.confidence)
    table = comparison(exp, baseline)
    out: list[tuple[str, bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in dict.fromkeys(c.scenario for c in chosen.cells):
            d = Path(tmp) / f"differences_{len(out)}.png"
            differences_chart(table, chosen, scenario, d)
            out.append((f"{scenario}: differences against {baseline}", d.read_bytes()))
            t = Path(tmp) / f"tradeoff_{len(out)}.png"
            tradeoff_chart(means, chosen, scenario, t)
            out.append((f"{scenario}: trade-off", t.read_bytes()))
            s = Path(tmp) / f"sweep_{len(out)}.png"
            if sweep_chart(means, chosen, scenario, s):
                out.append((f"{scenario}: KPI against {chosen.sweep_label}", s.read_bytes()))
    return out
