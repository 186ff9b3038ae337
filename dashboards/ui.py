"""Streamlit glue shared by the pages: cached loaders, settings from the environment, and plain
error messages instead of tracebacks. Only the pages import this module."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from promotwin.dashboards import fmt
from promotwin.scenarios import Scenario, library_names, load_scenario
from promotwin.twin.outlook import PlannerResult, PromoSettings, project

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


@st.cache_data(show_spinner=False, max_entries=128)
def _project(
    ref: str,
    mtime: float,
    promotion: str,
    depth: float,
    start: dt.date,
    end: dt.date,
    channels: tuple[str, ...],
    display: bool,
    feature: bool,
    ecommerce_cap: float | None,
    policy: str,
    seed: int,
    days_before: int,
    quantile: float,
    forecast: str,
    model: str | None,
) -> PlannerResult:
    settings = PromoSettings(depth, start, end, channels, display, feature, ecommerce_cap)
    return project(
        scenario(ref), promotion, settings, policy, seed, days_before, quantile, forecast, model
    )


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
) -> PlannerResult:
    """:func:`promotwin.twin.outlook.project`, cached per setting and forecaster."""
    path = Path(ref)
    mtime = path.stat().st_mtime if path.suffix in (".yaml", ".yml") and path.is_file() else 0.0
    s = settings
    return _project(
        ref,
        mtime,
        promotion,
        round(s.depth, 4),
        s.start,
        s.end,
        tuple(s.channels),
        s.display,
        s.feature,
        s.ecommerce_cap,
        policy,
        seed,
        days_before,
        quantile,
        forecast,
        model,
    )
