"""Simulated planners (twin only): a few people working the exception queues each day.

Each simulated day they take up to ``capacity_per_day`` open exceptions that are at least
``response_delay_days`` old, highest priority and value at risk first, and approve each with
probability ``approve_share`` (otherwise reject it). What they do not reach expires.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from promotwin.workflow.config import Planners
from promotwin.workflow.store import Store, exceptions


class SimulatedPlanners:
    def __init__(self, config: Planners):
        self.config = config
        self.rng: np.random.Generator | None = None

    def start(self, run_seed: int) -> None:
        """A fresh random stream for a run (same config and run seed, same decisions)."""
        self.rng = np.random.default_rng([self.config.seed, run_seed])

    def act(self, store: Store, run_id: str, day: int, run_seed: int = 0) -> int:
        """Handle today's share of the queue; returns the number of exceptions touched."""
        cfg = self.config
        if self.rng is None:
            self.start(run_seed)
        assert self.rng is not None
        if cfg.capacity_per_day == 0:
            return 0
        e = exceptions.c
        with store.begin() as conn:
            ids = (
                conn.execute(
                    select(e.id)
                    .where(
                        (e.run_id == run_id)
                        & (e.status == "open")
                        & (e.created_day + cfg.response_delay_days <= day)
                    )
                    .order_by(e.priority.desc(), e.value_at_risk.desc(), e.id)
                    .limit(cfg.capacity_per_day)
                )
                .scalars()
                .all()
            )
            approve = self.rng.random(len(ids)) < cfg.approve_share
            decisions = [
                (int(i), "approved" if ok else "rejected", f"planner-{n % cfg.count + 1}")
                for n, (i, ok) in enumerate(zip(ids, approve, strict=True))
            ]
            done = store.decide_many(conn, decisions, day, note="simulated planner")
        return len(done)
