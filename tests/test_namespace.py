"""One import namespace: the repository's folders install only as ``promotwin.<name>``, so a
user's own ``policies.py`` or ``cli/`` next to their notebook changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BARE = [
    "scenarios",
    "demand",
    "policies",
    "optimization",
    "workflow",
    "twin",
    "shadow",
    "experiments",
    "dashboards",
    "cli",
]


def _python(cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    # `-c` puts the working directory first on sys.path, as a notebook or a script does
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_stray_modules_in_the_working_directory_change_nothing(tmp_path: Path) -> None:
    for name in ("policies", "twin", "cli", "scenarios"):
        (tmp_path / f"{name}.py").write_text(f"raise ImportError('the user\\'s own {name}.py')\n")
    code = (
        "from promotwin.policies.registry import make_policy\n"
        "from promotwin.scenarios import load_scenario\n"
        "from promotwin.twin import simulate\n"
        "import promotwin.cli.main\n"
        "r = simulate(load_scenario('steady_network'), make_policy('base-stock'), seed=1, days=5)\n"
        "print(len(r.ledger) > 0)\n"
    )
    done = _python(tmp_path, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


@pytest.mark.parametrize("name", BARE)
def test_no_bare_package_is_installed(tmp_path: Path, name: str) -> None:
    done = _python(tmp_path, f"import {name}")
    assert done.returncode != 0
    assert "ModuleNotFoundError" in done.stderr
