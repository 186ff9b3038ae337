"""``simulate(scenario, policy, seed) -> RunResult`` and writing a run's outputs."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import promotwin
from promotwin import strict_json
from promotwin.demand.forecaster import Forecaster
from promotwin.demand.replay import read_history
from promotwin.policies.contract import Policy
from promotwin.scenarios.schema import Scenario
from promotwin.twin.charts import promoted_category_chart
from promotwin.twin.kpis import compute_kpis
from promotwin.twin.ledger import Detail
from promotwin.twin.model import Twin
from promotwin.workflow.governance import Governance, RunGovernance


@dataclass
class RunResult:
    run_id: str
    scenario: str
    scenario_hash: str
    policy: str
    seed: int
    days: int
    forecaster: str
    model_file: str | None
    kpis: dict[str, float]
    daily: pd.DataFrame
    ledger: pd.DataFrame
    decisions: pd.DataFrame
    timings: dict[str, float]
    promoted_skus: list[str] = field(default_factory=list)
    dc_ids: list[str] = field(default_factory=list)
    promo_windows: list[tuple[int, int]] = field(default_factory=list)
    audit: dict[str, Any] | None = None  # governed runs: the audit head after the run
    forecast_notes: tuple[str, ...] = ()  # what the forecaster sensed in-season, in words
    currency: str = "USD"  # the scenario's: every money KPI is in it
    source: Scenario | None = None  # the scenario as run (written beside the outputs)

    def manifest(self) -> dict[str, Any]:
        governed = {} if self.audit is None else {"audit": self.audit}
        return {
            "run_id": self.run_id,
            "scenario": self.scenario,
            "scenario_hash": self.scenario_hash,
            "policy": self.policy,
            "forecaster": self.forecaster,
            "model_file": self.model_file,
            "forecast_notes": list(self.forecast_notes),
            "seed": self.seed,
            "days": self.days,
            "currency": self.currency,
            "version": promotwin.__version__,
            "timings_s": self.timings,
            **governed,
        }


def simulate(
    scenario: Scenario,
    policy: Policy,
    seed: int = 0,
    days: int | None = None,
    governance: Governance | None = None,
    ledger_detail: Detail | None = None,
    progress: Callable[[int, int], None] | None = None,
    forecaster: Forecaster | None = None,
) -> RunResult:
    """Run the twin; same scenario, policy, forecaster and seed give identical results
    (``forecaster`` None: the oracle, an upper bound)."""
    t0 = time.perf_counter()
    history = read_history(scenario.demand.history) if scenario.demand.history else None
    twin = Twin(scenario, policy, seed, governance, days, ledger_detail, history, forecaster)
    s_hash = scenario.content_hash()
    key = f"{s_hash}|{policy.name}|{seed}|{twin.days}|{promotwin.__version__}"
    if forecaster is not None:  # the oracle's runs keep the ids they had before forecasters
        key += f"|{twin.forecast.name}|{_file_hash(twin.forecast.model_file)}"
    governed = twin.governance if isinstance(twin.governance, RunGovernance) else None
    if governed is not None:  # the run id also traces the governance config
        key += f"|{governed.fingerprint()}"
        governed.begin_run(hashlib.sha256(key.encode()).hexdigest()[:12])
    t1 = time.perf_counter()
    twin.run(progress)
    t2 = time.perf_counter()
    net = twin.net
    daily = daily_frame(twin.daily, list(net.locations.index))
    ledger = twin.ledger.frame()
    decisions = _decisions_frame(twin.decisions)
    routed = (decisions["status"] == "routed") & (decisions["day"] >= scenario.warmup_days)
    exceptions = int(decisions.loc[routed, "lines"].sum())  # after warm-up, like every KPI
    kpis = compute_kpis(ledger, daily, exceptions, scenario.warmup_days)
    kpis.update({k: float(np.round(v, 6)) for k, v in twin.forecast_score.kpis().items()})
    kpis.update(twin.run_forecast_score.kpis())
    if governed is not None:
        kpis.update(governed.kpis(twin.days, scenario.warmup_days))
    t3 = time.perf_counter()
    return RunResult(
        run_id=hashlib.sha256(key.encode()).hexdigest()[:12],
        scenario=scenario.name,
        scenario_hash=s_hash,
        policy=policy.name,
        seed=seed,
        days=twin.days,
        forecaster=twin.forecast.name,
        model_file=twin.forecast.model_file,
        kpis=kpis,
        daily=daily,
        ledger=ledger,
        decisions=decisions,
        timings={"setup": t1 - t0, "simulate": t2 - t1, "kpis": t3 - t2},
        promoted_skus=list(net.skus.index[twin.promo_skus]),
        dc_ids=list(net.locations.index[: net.n_dcs]),
        promo_windows=[(pc.start_day, pc.end_day) for pc in twin.model.promotions],
        audit=governed.audit_anchor() if governed is not None else None,
        forecast_notes=twin.forecast.notes(),
        currency=scenario.currency,
        source=scenario,
    )


def _file_hash(path: str | None) -> str:
    """The model file's content, so a refit under the same name is another run."""
    if path is None:
        return "-"
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def daily_frame(records: list[dict[str, Any]], location_ids: list[str]) -> pd.DataFrame:
    if not records:
        return pd.DataFrame()
    n_loc = len(location_ids)
    cols = {
        k: np.concatenate([np.atleast_1d(r[k]) for r in records]) for k in records[0] if k != "day"
    }
    days = np.repeat([r["day"] for r in records], n_loc)
    locs = np.tile(np.asarray(location_ids, dtype=object), len(records))
    return pd.DataFrame({"day": days, "location": locs, **cols})


def _decisions_frame(parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    columns = ["day", "kind", "origin", "destination", "sku", "proposed", "executed", "value"]
    columns += ["confidence", "lines", "reason", "status"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.DataFrame({c: np.concatenate([p[c] for p in parts]) for c in columns})


def write_outputs(result: RunResult, out: Path) -> None:
    """Write every output into a temporary folder, then move it in place: never half-written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        (tmp / "manifest.json").write_text(strict_json.dumps(result.manifest(), indent=2) + "\n")
        (tmp / "kpis.json").write_text(strict_json.dumps(result.kpis, indent=2) + "\n")
        result.daily.to_parquet(tmp / "daily.parquet", index=False)
        result.ledger.to_parquet(tmp / "ledger.parquet", index=False)
        result.decisions.to_parquet(tmp / "decisions.parquet", index=False)
        promoted_category_chart(result, tmp / "promoted_category.png", result.promo_windows)
        if result.source is not None:  # what post-event analysis re-reads (plan and truth)
            from promotwin.twin.outlook import variant_yaml

            (tmp / "scenario.yaml").write_text(variant_yaml(result.source), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
