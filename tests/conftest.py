"""Fixtures shared by the tests (the helpers themselves live in ``promotwin.testing``)."""

from __future__ import annotations

import pytest

from promotwin.scenarios import Scenario


@pytest.fixture
def appliance() -> Scenario:
    from promotwin.scenarios import load_scenario

    return load_scenario("appliance_promo")
