"""Seeded golden KPIs for the built-in scenarios: any change in behaviour shows up here.

After an intended change, regenerate with ``PROMOTWIN_UPDATE_GOLDEN=1 pytest tests/test_golden.py``
and explain the new numbers in the commit.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from promotwin.policies.registry import make_policy
from promotwin.scenarios import load_scenario
from promotwin.twin import simulate

GOLDEN = Path(__file__).parent / "golden"
CASES = [
    ("appliance_promo", "order-point", 45),
    ("appliance_promo", "base-stock", 45),
    ("appliance_promo", "static-forecast", 45),
    ("steady_network", "base-stock", 60),
]


@pytest.mark.parametrize(("scenario", "policy", "days"), CASES)
def test_golden_kpis(scenario: str, policy: str, days: int) -> None:
    kpis = simulate(load_scenario(scenario), make_policy(policy), seed=1, days=days).kpis
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
