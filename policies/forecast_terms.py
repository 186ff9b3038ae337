"""Per-date terms of a forecast that base-stock covers sum over: the variance of each store
cell's daily demand and the echelon sums (a DC's own demand plus its stores'), mean and variance.

A forecast provider that knows a date's row stays the same from tick to tick (the twin's does)
computes each date's terms once, when the date enters the window, and hands them over in the
snapshot (``PlanningSnapshot.forecast_terms``); without them, a policy computes them itself.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from promotwin.arrays import BoolArray, FloatArray, IntArray


def serving_matrix(serving_dc: IntArray, n_dcs: int) -> FloatArray:
    """``[D, N]`` 0/1 matrix: which DC replenishes each of N locations (``serving_dc`` lists
    their DCs; pass the stores' part for a ``[D, stores]`` matrix)."""
    a = np.zeros((n_dcs, len(serving_dc)))
    a[serving_dc, np.arange(len(serving_dc))] = 1.0
    return a


def nb_variance(mean: FloatArray, dispersion: float, out: FloatArray | None = None) -> FloatArray:
    """Negative-binomial variance ``mean + mean**2 / k`` (into ``out`` if given)."""
    out = np.empty_like(mean) if out is None else out
    np.multiply(mean, mean, out=out)
    np.divide(out, dispersion, out=out)
    return np.add(mean, out, out=out)


@dataclass(frozen=True)
class ForecastDay:
    """Terms of one forecast date (read-only arrays)."""

    store_var: FloatArray  # [stores, S] variance of each store cell's daily demand
    echelon_mean: FloatArray  # [D, S] the DC's row + the rows of the stores it replenishes
    echelon_var: FloatArray  # [D, S]


def forecast_day(row: FloatArray, n_dcs: int, assign: FloatArray, dispersion: float) -> ForecastDay:
    """The terms of one date's forecast row ``[L, S]``."""
    stores = row[n_dcs:]
    var = nb_variance(stores, dispersion)
    day = ForecastDay(
        store_var=var,
        echelon_mean=row[:n_dcs] + assign @ stores,
        echelon_var=nb_variance(row[:n_dcs], dispersion) + assign @ var,
    )
    for a in (day.store_var, day.echelon_mean, day.echelon_var):
        a.flags.writeable = False
    return day


@dataclass(frozen=True)
class ForecastTerms:
    """The terms of every date of a forecast window, and what they were computed from: a
    snapshot keeps them only while its ``forecast_mean``, dispersion and serving DCs are these
    very objects (a what-if that replaces any of them drops the terms).

    ``days`` is worked out on first use (a policy that reads no terms, order-point, costs
    none): use it while the window is current, in the tick that handed it over."""

    mean: FloatArray  # the [H, L, S] window the terms belong to
    dispersion: float
    serving_dc: IntArray
    rolling: RollingTerms = field(repr=False, compare=False)
    first_date: int = 0  # the date of the window's first row

    @functools.cached_property
    def days(self) -> tuple[ForecastDay, ...]:
        """One per window row."""
        return self.rolling.days(self.first_date, self.mean)

    def fits(self, mean: FloatArray, dispersion: float, serving_dc: IntArray) -> bool:
        return mean is self.mean and dispersion == self.dispersion and serving_dc is self.serving_dc


class RollingTerms:
    """A rolling window's terms, each date's computed once: for a provider whose rows for a
    date do not change while the date is in the window (the twin's forecast)."""

    def __init__(
        self,
        serving_dc: IntArray,
        n_dcs: int,
        dispersion: float,
        dc_replenished: BoolArray | None = None,
    ):
        self.serving_dc = serving_dc
        self.n_dcs = n_dcs
        self.dispersion = dispersion
        self.assign = serving_matrix(serving_dc[n_dcs:], n_dcs)
        if dc_replenished is not None:  # a store only suppliers replenish is in no echelon
            self.assign[:, ~np.asarray(dc_replenished[n_dcs:], bool)] = 0.0
        self._days: dict[int, ForecastDay] = {}

    def window(self, first_date: int, mean: FloatArray) -> ForecastTerms:
        """Terms of ``mean`` (rows for days ``first_date..first_date+H-1``), computed when
        first read."""
        h = len(mean)
        for d in [d for d in self._days if not first_date <= d < first_date + h]:
            del self._days[d]  # left the window (a snapshot still holding it keeps it intact)
        return ForecastTerms(mean, self.dispersion, self.serving_dc, self, first_date)

    def days(self, first_date: int, mean: FloatArray) -> tuple[ForecastDay, ...]:
        """The terms of each row of ``mean``: kept ones, the others computed now."""
        days = []
        for j in range(len(mean)):
            day = self._days.get(first_date + j)
            if day is None:
                day = forecast_day(mean[j], self.n_dcs, self.assign, self.dispersion)
                self._days[first_date + j] = day
            days.append(day)
        return tuple(days)
