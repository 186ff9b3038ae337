"""Policies by name, for the CLI and experiments."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promotwin.policies.contract import Policy

# Each factory imports its policy when called, so listing the names (``twin --help``, spec
# validation) loads neither the policies' numerics nor the optimizer's Pyomo.


def _order_point() -> Policy:
    from promotwin.policies.heuristics import OrderPointPolicy

    return OrderPointPolicy()


def _base_stock() -> Policy:
    from promotwin.policies.heuristics import BaseStockPolicy

    return BaseStockPolicy()


def _base_stock_expedite() -> Policy:
    from promotwin.policies.heuristics import BaseStockPolicy

    return BaseStockPolicy(name="base-stock-expedite", expedite=True)


def _static_forecast() -> Policy:
    from promotwin.policies.heuristics import StaticForecastPolicy

    return StaticForecastPolicy()


def _optimizer() -> Policy:
    from promotwin.policies.optimizer import OptimizerPolicy

    return OptimizerPolicy()


POLICIES: dict[str, Callable[[], Policy]] = {
    "order-point": _order_point,
    "base-stock": _base_stock,
    "base-stock-expedite": _base_stock_expedite,
    "static-forecast": _static_forecast,
    "optimizer": _optimizer,
}


class UnknownPolicyError(ValueError):
    pass


def make_policy(name: str) -> Policy:
    """A fresh policy instance (policies may keep state across days of one run)."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise UnknownPolicyError(f"unknown policy {name!r}; valid: {', '.join(POLICIES)}") from None
    return factory()
