"""Scenario validation under fuzzing, thousands of mutants.

    python benchmarks/fuzz_scenarios.py [--examples 3000] [--seed 0]

Each mutant (fields dropped, duplicated, retyped, extreme numbers, swapped dates, unknown
references; see ``promotwin.testing.fuzz``) must be accepted or refused with a ScenarioError
within 2 s, and every accepted one must simulate 30 days with units conserved. Reports the
share accepted and validation time per mutant, CPU and wall, as a ratio to validating the
unmutated scenario in the same run (the baseline).
"""

from __future__ import annotations

import argparse
import time

from hypothesis import HealthCheck, given, seed, settings

from promotwin.scenarios import parse_scenario
from promotwin.testing.fuzz import Mutation, check_mutant, mutant_text, mutants


def baseline(n: int) -> tuple[float, float]:
    """Wall and CPU seconds per validation of the unmutated scenario."""
    text = mutant_text([])
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        parse_scenario(text)
    return (time.perf_counter() - w0) / n, (time.process_time() - c0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    base_wall, base_cpu = baseline(200)
    stats = {"accepted": 0, "refused": 0, "validate_s": 0.0, "max_s": 0.0}
    w0, c0 = time.perf_counter(), time.process_time()

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @seed(args.seed)
    @given(changes=mutants())
    def fuzz(changes: list[Mutation]) -> None:
        outcome = check_mutant(mutant_text(changes))
        stats["accepted" if outcome.accepted else "refused"] += 1
        stats["validate_s"] += outcome.validate_s
        stats["max_s"] = max(stats["max_s"], outcome.validate_s)

    fuzz()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    n = stats["accepted"] + stats["refused"]
    per = stats["validate_s"] / n
    print(
        f"{n} mutants: {stats['accepted']} accepted and simulated 30 days with units conserved, "
        f"{stats['refused']} refused with a ScenarioError, none crashed"
    )
    print(
        f"validation per mutant {per * 1e3:.1f} ms CPU (max {stats['max_s'] * 1e3:.0f} ms, "
        f"limit 2000 ms) = {per / base_cpu:.2f} x the unmutated scenario's "
        f"{base_cpu * 1e3:.1f} ms CPU ({base_wall * 1e3:.1f} ms wall)"
    )
    print(f"whole run: {wall:.1f} s wall, {cpu:.1f} s CPU (simulations included)")


if __name__ == "__main__":
    main()
