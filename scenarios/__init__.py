"""Scenario schema, loading, the synthetic generator and the built-in library."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promotwin.scenarios.loading import (
        Problem,
        ScenarioError,
        library_names,
        load_scenario,
        parse_scenario,
    )
    from promotwin.scenarios.network import Network, compile_network
    from promotwin.scenarios.schema import Scenario

# The names load on first use (PEP 562), so reading the schema or a config file does not
# import the network's pandas.
_HOME = {
    "Network": "network",
    "Problem": "loading",
    "Scenario": "schema",
    "ScenarioError": "loading",
    "compile_network": "network",
    "library_names": "loading",
    "load_scenario": "loading",
    "parse_scenario": "loading",
}
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


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
