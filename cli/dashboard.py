"""``twin dashboard``: start the Streamlit app, bound to 127.0.0.1, usage statistics off.

The CLI does not import the dashboards: ``twin dashboard`` replaces itself with
``python -m streamlit run <app.py>``, the stores and result folders passed in the environment.
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated

import typer

ENV = {
    "experiments": "PROMOTWIN_EXPERIMENTS",
    "store": "PROMOTWIN_STORE",
    "shadow_store": "PROMOTWIN_SHADOW_STORE",
}


def app_path() -> Path:
    """``dashboards/app.py`` of the installed package (found without importing it)."""
    spec = find_spec("promotwin.dashboards")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the dashboards package is missing: reinstall promotwin")
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def command(
    port: int | None = None, address: str = "127.0.0.1", python: str = sys.executable
) -> list[str]:
    """The ``streamlit run`` command line: headless, local only, no usage statistics."""
    cmd = [python, "-m", "streamlit", "run", str(app_path())]
    cmd += ["--server.headless", "true", "--server.address", address]
    cmd += ["--browser.gatherUsageStats", "false"]
    cmd += ["--client.toolbarMode", "minimal"]  # no "Deploy" item: this is a local tool
    if port is not None:
        cmd += ["--server.port", str(port)]
    return cmd


def check_sources(experiments: Path | None, store: str | None, shadow_store: Path | None) -> None:
    """Refuse, before the server starts, what the pages could only show as an error later."""
    from promotwin.cli.outputs import OutputError, check_store

    if experiments is not None and not experiments.is_dir():
        what = "a file" if experiments.exists() else "not there"
        raise OutputError(
            f"--experiments {experiments} is {what}: give a `twin compare` output folder "
            "or a folder of them"
        )
    if store is not None:
        check_store(store, create=False)
    if shadow_store is not None:
        check_store(shadow_store, "--shadow-store", create=False)


def register(app: typer.Typer) -> None:
    """Add ``dashboard`` to the ``twin`` app."""
    from promotwin.cli.common import console, user_errors

    @app.command()
    @user_errors
    def dashboard(
        port: Annotated[
            int | None, typer.Option(help="port to serve on (default: Streamlit's 8501)")
        ] = None,
        experiments: Annotated[
            Path | None,
            typer.Option(help="a `twin compare` output folder, or a folder of them"),
        ] = None,
        store: Annotated[
            str | None, typer.Option(help="approval store (SQLite file or SQLAlchemy URL)")
        ] = None,
        shadow_store: Annotated[
            Path | None, typer.Option(help="shadow run store written by `twin shadow`")
        ] = None,
    ) -> None:
        """Start the dashboards (planner, leadership, shadow, exceptions & audit) on 127.0.0.1."""
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"--port must be between 1 and 65535, not {port}")
        check_sources(experiments, store, shadow_store)
        env = dict(os.environ)
        for key, value in (
            ("experiments", experiments),
            ("store", store),
            ("shadow_store", shadow_store),
        ):
            if value is not None:
                env[ENV[key]] = str(value)
        cmd = command(port)
        console.print(
            f"Promotwin dashboard on http://127.0.0.1:{port or 8501} (Ctrl+C to stop)",
            highlight=False,
        )
        sys.stdout.flush()
        # become the server (not its parent), so a stop signal reaches Streamlit itself
        os.execve(cmd[0], cmd, env)
