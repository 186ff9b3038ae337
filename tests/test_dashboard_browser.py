"""End to end in a real headless Chromium: move the planner's depth slider, see the KPIs change.

Debian's ``chromium`` through Playwright's Python client (``executable_path``, never a browser
download); the browser may reach 127.0.0.1 only. Skipped, saying why, without /usr/bin/chromium.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from promotwin.testing.dashboards import APP

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does) to run it",
)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP)]
    cmd += ["--server.headless", "true", "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"the dashboard did not start: {err[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    return {"executable_path": CHROMIUM, "args": ARGS}


@pytest.fixture(scope="session")
def base_url() -> str | None:
    return None


def test_depth_slider_changes_the_kpis(server: str, page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import Route, expect

    blocked: list[str] = []

    def only_local(route: Route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_local)
    page.goto(f"{server}/Planner")
    lost = page.get_by_test_id("stMetric").filter(has_text="promotion lost sales")
    expect(lost).to_be_visible(timeout=60_000)
    before = lost.get_by_test_id("stMetricValue").inner_text()
    slider = (
        page.get_by_test_id("stSlider")
        .filter(has_text="Discount depth (%)")
        .locator("input[type=range]")
    )
    expect(slider).to_have_value("25")
    slider.focus()
    page.keyboard.press("ArrowRight")  # one step: one rerun
    expect(slider).to_have_value("26")
    expect(lost.get_by_test_id("stMetricValue")).not_to_have_text(before, timeout=30_000)
    expect(lost.get_by_test_id("stMetricDelta")).to_contain_text("units", timeout=30_000)
    after = lost.get_by_test_id("stMetricValue").inner_text()
    assert int(after.split()[0].replace(",", "")) > int(before.split()[0].replace(",", ""))
    shot = tmp_path / "planner_depth_26.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert not [u for u in blocked if "127.0.0.1" in u]


def test_planner_metric_labels_fit_at_1400_px(server: str, page: Any) -> None:
    """Every headline metric's label is shown whole (no ellipsis) in a 1400 px wide window."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1400, "height": 900})
    page.context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if urlparse(route.request.url).hostname == "127.0.0.1"
            else route.abort()
        ),
    )
    page.goto(f"{server}/Planner")
    labels = page.get_by_test_id("stMetricLabel")
    expect(labels.first).to_be_visible(timeout=60_000)
    expect(labels).to_have_count(5, timeout=30_000)
    cut = labels.evaluate_all(
        """els => els.filter(el => [el, ...el.querySelectorAll('*')].some(
               e => e.scrollWidth > e.clientWidth + 1)).map(el => el.innerText)"""
    )
    assert cut == [], f"truncated at 1400 px: {cut}"
