"""The oracle forecast: the demand generator's own mean, hidden truth included, with the
planners' estimation error on the uplift (log-normal per promotion x SKU, own seed stream). It
knows what no retailer knows (the true uplift of every cell): an upper bound, not a forecaster.

Rolling: the ``[H, L, S]`` window slides one day per tick inside a ``2H`` buffer, so each tick
computes one new day and the window is a zero-copy contiguous view; the row before the window
(the forecast for the tick's own day, for the forecast-error KPIs) is kept too.
"""

from __future__ import annotations

import numpy as np

from promotwin.demand.model import DemandModel, FloatArray, group_streams


class RollingForecast:
    def __init__(
        self,
        model: DemandModel,
        horizon: int,
        rng: np.random.Generator | None,
        uplifts: dict[str, FloatArray] | None = None,
    ):
        """``uplifts``: estimates drawn before (by another window length); else drawn from
        ``rng`` now."""
        self.model = model
        self.horizon = max(1, horizon)
        if uplifts is None:
            if rng is None:
                raise ValueError(
                    "RollingForecast needs the uplift estimates or a stream to draw them"
                )
            uplifts = self._estimates(model, rng)
        self.uplifts = uplifts
        shape = (2 * self.horizon, *model.base.shape)
        self._buf = np.empty(shape, dtype=np.float64)
        self._start = 0
        self._first_day = 0
        self._filled = False

    @staticmethod
    def _estimates(model: DemandModel, rng: np.random.Generator) -> dict[str, FloatArray]:
        """Each promotion's estimated uplift: the error of a promotion's SKUs drawn per category
        from a stream of the promotion and the category (a shard draws what the whole network
        draws for its SKUs)."""
        sigma = model.params.forecast_error
        seq = rng.bit_generator.seed_seq
        if not isinstance(seq, np.random.SeedSequence):
            raise TypeError("the forecast stream must be seeded from a numpy SeedSequence")
        uplifts: dict[str, FloatArray] = {}
        for pc in model.promotions:
            error = _uplift_error(model, pc.promotion.id, sigma, seq) if sigma > 0 else 1.0
            true = model.uplifts[pc.promotion.id]  # [S], or [L, S] with hidden cell deviations
            # the estimate errs on the extra units, never turning an uplift into a drop
            uplifts[pc.promotion.id] = np.where(
                true > 0, 1.0 + np.maximum(true - 1.0, 0.0) * error, 0.0
            ) + np.where(true > 0, np.minimum(true - 1.0, 0.0), 0.0)
        return uplifts

    def day_mean(self, day: int, out: FloatArray | None = None) -> FloatArray:
        return self.model.mean(day, self.uplifts, out)

    def window(self, day: int) -> FloatArray:
        """Forecast ``[H, L, S]`` for days ``day+1 .. day+H`` (a view; do not modify)."""
        first, h = day + 1, self.horizon
        if self._filled and first == self._first_day + 1:
            if self._start + h >= len(self._buf):  # no room to slide: keep the last h days
                self._buf[:h] = self._buf[self._start : self._start + h]
                self._start = 0
            self._start += 1
            self.day_mean(first + h - 1, out=self._buf[self._start + h - 1])
        elif not (self._filled and first == self._first_day):
            for i in range(h):
                self.day_mean(first + i, out=self._buf[i])
            self._start, self._filled = 0, True
        self._first_day = first
        return self._buf[self._start : self._start + h]

    def today(self, day: int) -> FloatArray:
        """The forecast for ``day`` itself, made the day before (the row just before the window
        of ``window(day)``, or a row of the current window; computed if neither holds it)."""
        if self._filled and self._first_day == day + 1 and self._start > 0:
            return self._buf[self._start - 1]
        if self._filled and self._first_day <= day < self._first_day + self.horizon:
            return self._buf[self._start + day - self._first_day]
        return self.day_mean(day)


def _uplift_error(
    model: DemandModel, promotion_id: str, sigma: float, seq: np.random.SeedSequence
) -> FloatArray:
    """Log-normal error ``[S]`` of one promotion's uplift estimate, per category's stream."""
    log_error = np.empty(model.net.n_skus)
    streams = group_streams(seq, model.groups, "uplift-error", promotion_id)
    for cols, stream in zip(model.group_columns, streams, strict=True):
        log_error[cols] = stream.normal(0.0, sigma, log_error[cols].shape)
    return np.exp(log_error)
