"""Fuzzed scenarios: validation never crashes, never takes over 2 s, and what it accepts runs."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from promotwin.testing.fuzz import BASE, Mutation, check_mutant, mutant_text, mutants


def test_the_unmutated_scenario_is_accepted_and_runs() -> None:
    assert check_mutant(mutant_text([])).accepted


def test_a_known_bad_mutant_is_refused() -> None:
    swap = Mutation("swap", ("promotions", 0, "start"))
    assert not check_mutant(mutant_text([swap])).accepted
    assert BASE["promotions"][0]["start"] < BASE["promotions"][0]["end"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=mutants())
def test_validate_never_crashes_and_accepted_mutants_conserve_units(
    changes: list[Mutation],
) -> None:
    check_mutant(mutant_text(changes))
