"""Importing the library is cheap: the twin, the policy registry and the ``twin`` command load
none of the heavy libraries, which are imported inside the functions that use them.

Checked on ``sys.modules`` in a fresh interpreter (deterministic); the timings themselves are in
``benchmarks/bench_import.py``, not in the suite.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

HEAVY = ("pyomo", "statsmodels", "dask", "distributed", "streamlit", "sqlalchemy", "matplotlib")
CHEAP = ("promotwin.twin", "promotwin.policies.registry", "promotwin.cli.main")


def _loaded_after(statement: str) -> set[str]:
    """Top-level packages in ``sys.modules`` of a fresh interpreter after ``statement``."""
    report = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    code = f"{statement}\n{report}"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", CHEAP)
def test_importing_loads_no_heavy_library(module: str) -> None:
    assert _loaded_after(f"import {module}") & set(HEAVY) == set()


def test_the_check_sees_a_heavy_import() -> None:
    # the probe itself must be able to fail: the approval store is built on SQLAlchemy
    assert "sqlalchemy" in _loaded_after("import promotwin.workflow.store")


def test_twin_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "promotwin.cli.main", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for command in ("run", "demo", "scenarios", "compare", "governance", "shadow", "readiness"):
        assert command in done.stdout


@pytest.mark.parametrize("package", ["promotwin.scenarios", "promotwin.workflow"])
def test_lazy_package_exports_resolve(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        home = importlib.import_module(value.__module__)
        assert getattr(home, name) is value
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        module.nonexistent  # noqa: B018
