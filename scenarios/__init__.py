"""Scenario schema, loading, the synthetic generator and the built-in library."""

from promotwin.scenarios.loading import (
    Problem,
    ScenarioError,
    library_names,
    load_scenario,
    parse_scenario,
)
from promotwin.scenarios.network import Network, compile_network
from promotwin.scenarios.schema import Scenario

__all__ = [
    "Network",
    "Problem",
    "Scenario",
    "ScenarioError",
    "compile_network",
    "library_names",
    "load_scenario",
    "parse_scenario",
]
