"""Seeded golden outputs for the built-in scenarios: any change in behaviour shows up here.

KPIs are compared number by number; the ledger and the decisions (every line the run wrote) are
compared by digest: a sha256 of the frame sorted by every column, floats rounded to 6 decimals
(so a change in summation order is not a change in behaviour, a changed unit or cost is).

After an intended change, regenerate with ``PROMOTWIN_UPDATE_GOLDEN=1 pytest tests/test_golden.py``
and explain the new numbers in the commit.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from promotwin.policies.optimizer import OptimizerPolicy
from promotwin.policies.registry import make_policy
from promotwin.scenarios import load_scenario
from promotwin.twin import RunResult, simulate

GOLDEN = Path(__file__).parent / "golden"
DIGESTS = GOLDEN / "digests.json"
CASES = [
    ("appliance_promo", "order-point", 45),
    ("appliance_promo", "base-stock", 45),
    ("appliance_promo", "static-forecast", 45),
    ("steady_network", "base-stock", 60),
]
# The optimizer under a limit that does not depend on the clock: a short run of small LPs that
# never reach their (generous) time limit, so the plans are the same on a busy machine.
OPTIMIZER_CASE = ("appliance_promo", "optimizer", 14)
OPTIMIZER_TIME_LIMIT = 1e6  # seconds per solve: never reached here (each solve takes < 0.5 s)


@cache
def _run(scenario: str, policy: str, days: int) -> RunResult:
    chosen = (
        OptimizerPolicy(time_limit=OPTIMIZER_TIME_LIMIT)
        if policy == "optimizer"
        else make_policy(policy)
    )
    return simulate(load_scenario(scenario), chosen, seed=1, days=days)


def frame_digest(frame: pd.DataFrame) -> str:
    """sha256 of a frame's rows sorted by every column (floats rounded to 6 decimals)."""
    rounded = frame.round(6)
    ordered = rounded.sort_values(list(rounded.columns), kind="stable", ignore_index=True)
    text = ordered.to_csv(index=False, float_format="%.6f", lineterminator="\n")
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("scenario", "policy", "days"), CASES)
def test_golden_kpis(scenario: str, policy: str, days: int) -> None:
    kpis = _run(scenario, policy, days).kpis
    path = GOLDEN / f"{scenario}__{policy}.json"
    if os.environ.get("PROMOTWIN_UPDATE_GOLDEN"):
        path.write_text(json.dumps(kpis, indent=2, sort_keys=True) + "\n")
    expected = json.loads(path.read_text())
    assert expected.keys() == kpis.keys()
    for key, value in expected.items():
        got = kpis[key]
        assert (math.isnan(value) and math.isnan(got)) or math.isclose(
            got, value, rel_tol=1e-9, abs_tol=1e-9
        ), key


@pytest.mark.parametrize(("scenario", "policy", "days"), [*CASES, OPTIMIZER_CASE])
def test_golden_ledger_and_decisions(scenario: str, policy: str, days: int) -> None:
    result = _run(scenario, policy, days)
    got = {"ledger": frame_digest(result.ledger), "decisions": frame_digest(result.decisions)}
    case = f"{scenario}__{policy}__{days}"
    stored = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
    if os.environ.get("PROMOTWIN_UPDATE_GOLDEN"):
        stored[case] = got
        DIGESTS.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    assert stored[case] == got, f"{case}: the run's lines changed (see the module docstring)"
    # the digests see the lines, not only their totals: a run has some of each
    assert len(result.ledger) and len(result.decisions)


def test_digest_sees_one_unit() -> None:
    """One unit more on one ledger line changes the digest (the digest can fail)."""
    ledger = _run(*CASES[0]).ledger
    changed = ledger.copy()
    changed.loc[changed.index[len(changed) // 2], "qty"] += 1
    assert frame_digest(changed) != frame_digest(ledger)
    assert frame_digest(ledger.sample(frac=1.0, random_state=0)) == frame_digest(ledger)
