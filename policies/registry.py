"""Policies by name, for the CLI and experiments."""

from __future__ import annotations

from collections.abc import Callable

from promotwin.policies.contract import Policy
from promotwin.policies.heuristics import BaseStockPolicy, OrderPointPolicy, StaticForecastPolicy


def _optimizer() -> Policy:
    from promotwin.policies.optimizer import OptimizerPolicy

    return OptimizerPolicy()


POLICIES: dict[str, Callable[[], Policy]] = {
    "order-point": OrderPointPolicy,
    "base-stock": BaseStockPolicy,
    "static-forecast": StaticForecastPolicy,
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
