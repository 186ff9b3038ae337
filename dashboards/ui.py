"""Streamlit glue shared by the pages: cached loaders, settings from the environment, and plain
error messages instead of tracebacks. Only the pages import this module."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from promotwin.dashboards import fmt
from promotwin.scenarios import Scenario, library_names, load_scenario
from promotwin.twin.outlook import PlannerCache, PlannerResult, PromoSettings, project

ENV_EXPERIMENTS = "PROMOTWIN_EXPERIMENTS"  # a `twin compare` folder, or a folder of them
ENV_STORE = "PROMOTWIN_STORE"  # the approval store (governance)
ENV_SHADOW_STORE = "PROMOTWIN_SHADOW_STORE"  # the shadow run store
DEFAULT_SCENARIO = "appliance_promo"


def setting(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


@contextmanager
def plain_errors() -> Iterator[None]:
    """Show any error as plain words with what to do, and stop the page there."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - users see a sentence, never a traceback
        st.error(fmt.plain_error(exc))
        st.stop()


@st.cache_data(show_spinner=False)
def library() -> list[str]:
    return library_names()


@st.cache_resource(show_spinner=False, max_entries=16)
def _scenario(ref: str, mtime: float) -> Scenario:
    return load_scenario(ref)


def scenario(ref: str) -> Scenario:
    """A built-in scenario or a YAML file (reloaded when the file changes)."""
    path = Path(ref)
    mtime = path.stat().st_mtime if path.suffix in (".yaml", ".yml") and path.is_file() else 0.0
    return _scenario(ref, mtime)


@st.cache_resource(show_spinner=False)
def planner_cache() -> PlannerCache:
    """Results and plan traces shared by the planner's sessions (re-simulation from the day
    the promotion first matters; see :mod:`promotwin.twin.outlook`)."""
    return PlannerCache()


def planned(
    ref: str,
    promotion: str,
    settings: PromoSettings,
    policy: str,
    seed: int,
    days_before: int,
    quantile: float,
    forecast: str = "oracle",
    model: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PlannerResult:
    """:func:`promotwin.twin.outlook.project`, cached per setting and forecaster by the planner
    cache (not ``st.cache_data``: ``progress`` updates a bar the page owns);
    ``progress(day, days)`` while it simulates."""
    return project(
        scenario(ref),
        promotion,
        settings,
        policy,
        seed,
        days_before,
        quantile,
        forecast,
        model,
        cache=planner_cache(),
        progress=progress,
    )
