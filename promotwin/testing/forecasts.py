"""Forecasters for tests: the plan without estimation error, so what sensing should learn is
known exactly (the true multiplier of a cluster is 1 + its hidden deviation)."""

from __future__ import annotations

import numpy as np

from promotwin.arrays import BoolArray, FloatArray
from promotwin.demand.model import DemandModel


class ExactPlan:
    """The planners' forecast without estimation error: the scenario as planned."""

    name = "plan"
    model_file = None
    senses = False

    def start(self, world: DemandModel, rng: np.random.Generator) -> None:
        self.plan = DemandModel(world.scenario, world.net, view="plan")

    def window(self, day: int, horizon: int) -> FloatArray:
        return np.stack([self.plan.mean(d) for d in range(day + 1, day + 1 + horizon)])

    def today(self, day: int) -> FloatArray:
        return self.plan.mean(day)

    @property
    def dispersion(self) -> float:
        return self.plan.params.dispersion

    def uplift_log_sd(self) -> float:
        return 0.3

    def observe(self, day: int, sales: FloatArray, stocked_out: BoolArray) -> None:
        pass

    def notes(self) -> tuple[str, ...]:
        return ()

    def cell_notes(self) -> tuple[None, tuple[str, ...]]:
        return None, ()
