"""Mutated scenarios for the validation fuzz test and benchmark.

A valid scenario (as a plain dict) is mutated a few times: fields dropped, list items
duplicated, values retyped, extreme numbers, dates swapped, references pointed at ids that do
not exist. ``check_mutant`` then demands what validation promises: ``parse_scenario`` either
accepts or raises ``ScenarioError`` (nothing else), within a time limit, and every accepted
mutant simulates 30 days with units conserved.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml
from hypothesis import strategies as st

from promotwin.scenarios import ScenarioError, parse_scenario

BASE: dict[str, Any] = {
    "name": "fuzz",
    "start_date": "2026-03-02",
    "horizon_days": 40,
    "warmup_days": 3,
    "stores": [
        {"id": "S1", "region": "North", "channels": ["walk_in", "pickup", "ship_from_store"]},
        {"id": "S2", "region": "South", "cluster": "urban"},
    ],
    "dcs": [{"id": "DC1", "region": "North", "throughput": 1000, "serves": ["S1", "S2"]}],
    "suppliers": [
        {"id": "V1", "lead_time": {"distribution": "poisson", "mean": 4, "min": 2}},
        {"id": "V2", "fill_rate": 0.9, "moq": 5},
    ],
    "lanes": [
        {"origin": "DC1", "destination": "S1"},
        {"origin": "DC1", "destination": "S2", "transit_days": 2},
    ],
    "skus": [
        {
            "id": "K1",
            "category": "fans",
            "price": 20,
            "unit_cost": 12,
            "supplier": "V1",
            "baseline": 2,
        },
        {
            "id": "K2",
            "category": "fans",
            "price": 30,
            "unit_cost": 15,
            "supplier": "V2",
            "baseline": 1,
            "elasticity": -1.5,
        },
        {
            "id": "K3",
            "category": "cables",
            "price": 5,
            "unit_cost": 2,
            "supplier": "V1",
            "baseline": 4,
        },
    ],
    "demand": {"halo": {"fans": ["cables"]}, "seasonality": {"fans": {"amplitude": 0.2}}},
    "promotions": [
        {
            "id": "P1",
            "categories": ["fans"],
            "start": "2026-03-10",
            "end": "2026-03-20",
            "depth": 0.2,
            "ecommerce_waves": [{"start": "2026-03-12", "end": "2026-03-14"}],
        },
        {
            "id": "P2",
            "skus": ["K3"],
            "locations": {"regions": ["South"]},
            "start": "2026-03-15",
            "end": "2026-03-18",
            "depth": 0.1,
            "display": True,
        },
    ],
    "disruptions": {
        "supplier_delays": [
            {"supplier": "V1", "start": "2026-03-05", "end": "2026-03-09", "extra_days": 3}
        ],
        "dc_capacity_drops": [
            {"dc": "DC1", "start": "2026-03-11", "end": "2026-03-13", "factor": 0.5}
        ],
    },
}

EXTREMES: list[Any] = [0, -1, 1, 0.5, 1e308, -1e308, float("inf"), float("nan"), 2**63, 10**12]
RETYPES: list[Any] = ["text", "", None, True, [], {}, [1, 2], {"a": 1}, "2026-13-45"]
UNKNOWN_ID = "ZZ-UNKNOWN"
REFERENCES = ("supplier", "origin", "destination", "dc", "serves", "skus", "categories")


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``node`` (dict keys and list indices)."""
    out: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        out.append((*prefix, key))
        if isinstance(value, dict | list):
            out += paths(value, (*prefix, key))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


@dataclass(frozen=True)
class Mutation:
    kind: str
    path: tuple[Any, ...]
    value: Any = None

    def apply(self, doc: dict[str, Any]) -> None:
        try:
            parent = _parent(doc, self.path)
            key = self.path[-1]
            parent[key]
        except (KeyError, IndexError, TypeError):
            return  # an earlier mutation removed or retyped this path
        if not isinstance(parent, dict | list):
            return  # retyped to text: indexing it would pick a character
        if self.kind == "drop":
            del parent[key]
        elif self.kind == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif self.kind == "swap" and isinstance(parent, dict):
            if "start" in parent and "end" in parent:
                parent["start"], parent["end"] = parent["end"], parent["start"]
        elif self.kind == "unknown":
            parent[key] = [UNKNOWN_ID] if isinstance(parent[key], list) else UNKNOWN_ID
        else:  # "set": retype or an extreme number
            parent[key] = self.value


ALL_PATHS = paths(BASE)
DATE_PARENTS = [p for p in ALL_PATHS if p[-1] == "start"]
REFERENCE_PATHS = [p for p in ALL_PATHS if p[-1] in REFERENCES]


def mutations() -> st.SearchStrategy[Mutation]:
    at = st.sampled_from(ALL_PATHS)
    return st.one_of(
        st.builds(Mutation, st.just("drop"), at),
        st.builds(Mutation, st.just("duplicate"), at),
        st.builds(Mutation, st.just("set"), at, st.sampled_from(RETYPES)),
        st.builds(Mutation, st.just("set"), at, st.sampled_from(EXTREMES)),
        st.builds(Mutation, st.just("swap"), st.sampled_from(DATE_PARENTS)),
        st.builds(Mutation, st.just("unknown"), st.sampled_from(REFERENCE_PATHS)),
    )


def mutants() -> st.SearchStrategy[list[Mutation]]:
    return st.lists(mutations(), min_size=1, max_size=4)


def mutant_text(changes: list[Mutation]) -> str:
    doc = copy.deepcopy(BASE)
    for change in changes:
        change.apply(doc)
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    validate_s: float  # CPU seconds


def check_mutant(text: str, max_validate_s: float = 2.0, days: int = 30) -> Outcome:
    """Validate ``text``; if accepted, simulate and check conservation. Raises AssertionError.

    The time limit is on CPU seconds: on a machine shared with other jobs, wall time measures
    the neighbours (the benchmark saw 43 ms wall for 6 ms CPU per validation)."""
    from promotwin.policies.heuristics import BaseStockPolicy
    from promotwin.testing.scenarios import ledger_stock
    from promotwin.twin.model import Twin

    t0 = time.process_time()
    try:
        scenario = parse_scenario(text)
    except ScenarioError as exc:
        elapsed = time.process_time() - t0
        assert exc.problems, "a ScenarioError lists its problems"
        assert elapsed < max_validate_s, f"validation took {elapsed:.2f} s"
        return Outcome(False, elapsed)
    elapsed = time.process_time() - t0
    assert elapsed < max_validate_s, f"validation took {elapsed:.2f} s"
    twin = Twin(scenario, BaseStockPolicy(), 0, days=min(days, scenario.horizon_days))
    twin.run()
    ledger = twin.ledger.frame()
    stock = ledger_stock(ledger, twin.net.n_locations, twin.net.n_skus)
    np.testing.assert_array_equal(stock, twin.on_hand)
    assert (twin.on_hand >= 0).all()
    for d in twin.daily:
        assert d["sold"].sum() + d["lost"].sum() == d["demand"].sum()
    return Outcome(True, elapsed)
