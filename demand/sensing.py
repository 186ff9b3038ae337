"""In-season demand sensing: a multiplier on a prior forecast, learnt from the sales of a
running promotion, per promotion x SKU x segment (a store row's region/cluster, a DC row's
region's ecommerce).

The multiplier of a group is a product of three gamma-distributed factors, each with prior mean
1, fitted to the promotion's sales so far (a Poisson log-linear model with conjugate priors):

    theta[sku, segment] = sku_factor[sku] * segment_factor[segment] * residual[sku, segment]

Pooling is what makes it fast: a segment's factor learns from every promoted SKU of the
segment, so a cluster that outsells the plan by 50% shows it after a day of sales, where a
multiplier per SKU x segment alone (a handful of units a day) needed two weeks to get there.
The SKU factor learns the forecaster's own error on a SKU's uplift from every segment. The
prior of the SKU and residual factors has the forecaster's own uplift uncertainty ``s`` (shape
= rate = ``1 / (exp(s^2) - 1)``, so the factor's log has about sd ``s``); the segment factor's
is weak (``SEGMENT_LOG_SD``): a hidden deviation of a region or cluster is exactly what the
forecaster does not know. A cell-day with prior forecast ``mu`` and sales ``y`` counts with
weight ``w = 1 / (1 + theta mu / k)``, discounting a negative-binomial count to the information
of a Poisson one.

Censoring: a cell-day that sold all its stock says only "demand was at least the sales ``s``".
Leaving such cell-days out biases the multiplier down (the cells that sell out are the ones
that outsold). They count instead with the expected demand given "at least ``s``" under the
current multiplier, ``E[D | D >= s] = m (1 - F'(s - 2)) / (1 - F(s - 1))`` (``F`` the NB(k, m)
cdf, ``F'`` that of NB(k + 1) at the same ``p``, from ``d p_k(d) = m p_{k+1}(d - 1)``), and
this is an EM algorithm, not one step: every day all the censored cell-days since launch are
imputed again under the new multipliers (an imputation made with a multiplier still near 1 on
the first day would otherwise keep pulling it down for the rest of the promotion).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from promotwin.demand.forecaster import Forecaster
from promotwin.demand.model import BoolArray, DemandModel, FloatArray, IntArray

NOTE_MIN_CHANGE = 0.1  # a segment's sensed uplift is worth a note when it moved >= 10%
SEGMENT_LOG_SD = 1.0  # a region/cluster may be off the plan by a factor of e either way
EM_ITERATIONS = 4  # per day, warm-started from yesterday's fit (it converges over the days)
SWEEPS = 3  # coordinate-ascent sweeps over the three factors per EM iteration


def at_least(sold: FloatArray, mean: FloatArray, k: float) -> FloatArray:
    """``E[D | D >= sold]`` for ``D ~ NB(mean, k)`` (units), elementwise."""
    p = k / (k + np.maximum(mean, 1e-12))
    tail = stats.nbinom.sf(sold - 1, k, p)  # P(D >= sold)
    above = mean * stats.nbinom.sf(sold - 2, k + 1, p)  # E[D; D >= sold]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(tail > 1e-12, above / tail, sold)
    return np.maximum(out, sold)


def strength(log_sd: float) -> float:
    """Gamma shape = rate of a mean-1 factor whose log has about sd ``log_sd``."""
    return 1.0 / math.expm1(log_sd * log_sd)


class SalesSoFar:
    """The promoted cell-days observed since launch: group, sales, prior mean, censored."""

    def __init__(self) -> None:
        self.group: IntArray = np.zeros(0, np.int64)
        self.sales: FloatArray = np.zeros(0)
        self.prior: FloatArray = np.zeros(0)
        self.censored: BoolArray = np.zeros(0, bool)

    def add(self, group: IntArray, sales: FloatArray, prior: FloatArray, cens: BoolArray) -> None:
        """One day's cell-days (a promotion lasts weeks: appending arrays a day is cheap)."""
        self.group = np.concatenate([self.group, group])
        self.sales = np.concatenate([self.sales, sales])
        self.prior = np.concatenate([self.prior, prior])
        self.censored = np.concatenate([self.censored, cens])


class SensingForecaster:
    """``prior`` with a sensed multiplier on the cells of running and upcoming promotions."""

    senses = True

    def __init__(self, prior: Forecaster):
        self.prior = prior
        self.name = f"{prior.name}+sensing"
        self.model_file = prior.model_file
        self._world: DemandModel | None = None
        self._group: dict[str, IntArray] = {}  # promotion id -> [L, S] group (-1: not promoted)
        self._labels: list[tuple[str, int, str]] = []  # (promotion, sku, segment) per group
        self._sku_of: IntArray = np.zeros(0, np.int64)  # group -> (promotion, SKU) factor
        self._segment_of: IntArray = np.zeros(0, np.int64)  # group -> (promotion, segment)
        self._factors: tuple[FloatArray, FloatArray, FloatArray] = (np.ones(0),) * 3
        self._strength = (1.0, 1.0, 1.0)  # SKU, segment, residual prior strengths
        self.sales = SalesSoFar()  # the promoted cell-days observed this run (read-only)
        self._volume: FloatArray = np.zeros(0)  # prior units per group so far (note weights)
        self._tomorrow: tuple[int, FloatArray] | None = None

    def start(self, world: DemandModel, rng: np.random.Generator) -> None:
        self.prior.start(world, rng)
        self._world = world
        net = world.net
        locs = net.locations
        segment = np.where(
            (locs["kind"] == "dc").to_numpy(),
            locs["region"].to_numpy(str) + " ecommerce",
            locs["cluster"].to_numpy(str) + " cluster, " + locs["region"].to_numpy(str),
        )
        segments, seg_of_row = np.unique(segment, return_inverse=True)
        self._group, self._labels = {}, []
        for pc in world.promotions:
            rows, skus = np.nonzero(pc.cells)
            key = seg_of_row[rows] * net.n_skus + skus
            uniq, inverse = np.unique(key, return_inverse=True)
            group = np.full(pc.cells.shape, -1, np.int64)
            group[rows, skus] = len(self._labels) + inverse
            self._group[pc.promotion.id] = group
            self._labels += [
                (pc.promotion.id, int(k % net.n_skus), str(segments[k // net.n_skus])) for k in uniq
            ]
        self._sku_of = _factor_index([(p, s) for p, s, _ in self._labels])
        self._segment_of = _factor_index([(p, seg) for p, _, seg in self._labels])
        n = len(self._labels)
        self._factors = (
            np.ones(int(self._sku_of.max(initial=-1)) + 1),
            np.ones(int(self._segment_of.max(initial=-1)) + 1),
            np.ones(n),
        )
        s = strength(self.prior.uplift_log_sd())
        self._strength = (s, strength(SEGMENT_LOG_SD), s)
        self.sales = SalesSoFar()
        self._volume = np.zeros(n)
        self._tomorrow = None

    @property
    def groups(self) -> list[tuple[str, int, str]]:
        """(promotion id, SKU index, segment) of each group, in the order of ``multiplier``."""
        return list(self._labels)

    @property
    def multiplier(self) -> FloatArray:
        """The posterior multiplier of each group."""
        sku, segment, residual = self._factors
        return sku[self._sku_of] * segment[self._segment_of] * residual

    def _running(self, first: int, last: int) -> list[tuple[int, int, str]]:
        """Promotions with days in ``first .. last``: (first day, last day, id), clipped."""
        if self._world is None:
            raise RuntimeError("start() the forecaster first")
        return [
            (max(pc.start_day, first), min(pc.end_day, last), pc.promotion.id)
            for pc in self._world.promotions
            if pc.start_day <= last and pc.end_day >= first
        ]

    def _sensed(self, first: int, prior: FloatArray) -> FloatArray:
        """``prior`` (days ``first ..``) times the multipliers on promoted cells."""
        running = self._running(first, first + len(prior) - 1)
        if not running or not len(self.sales.group):
            return prior
        out = prior.copy()
        theta = self.multiplier
        for a, b, pid in running:
            group = self._group[pid]
            on = group >= 0
            out[a - first : b - first + 1, on] *= theta[group[on]]
        return out

    def window(self, day: int, horizon: int) -> FloatArray:
        out = self._sensed(day + 1, self.prior.window(day, horizon))
        self._tomorrow = (day + 1, out[0].copy())
        return out

    def today(self, day: int) -> FloatArray:
        if self._tomorrow is not None and self._tomorrow[0] == day:
            return self._tomorrow[1]
        return self._sensed(day, self.prior.today(day)[None])[0]

    @property
    def dispersion(self) -> float:
        return self.prior.dispersion

    def uplift_log_sd(self) -> float:
        return self.prior.uplift_log_sd()

    def observe(self, day: int, sales: FloatArray, stocked_out: BoolArray) -> None:
        running = self._running(day, day)
        if not running:
            return
        mu = self.prior.today(day)
        for _, _, pid in running:
            group = self._group[pid]
            on = group >= 0
            g = group[on]
            self.sales.add(g, sales[on].astype(np.float64), mu[on], stocked_out[on])
            self._volume += np.bincount(g, mu[on], minlength=len(self._volume))
        for _ in range(EM_ITERATIONS):
            self._fit(self._expected_sales())

    def _expected_sales(self) -> FloatArray:
        """E-step: each cell-day's demand, the censored ones imputed under today's fit."""
        obs = self.sales
        y = obs.sales.copy()
        cens = obs.censored
        if cens.any():
            mean = self.multiplier[obs.group[cens]] * obs.prior[cens]
            y[cens] = at_least(obs.sales[cens], mean, self.prior.dispersion)
        return y

    def _fit(self, demand: FloatArray) -> None:
        """M-step: the three factors' posterior means by coordinate ascent (warm-started)."""
        obs, n = self.sales, len(self._labels)
        w = 1.0 / (1.0 + self.multiplier[obs.group] * obs.prior / self.prior.dispersion)
        units = np.bincount(obs.group, w * demand, minlength=n).astype(np.float64)
        exposure = np.bincount(obs.group, w * obs.prior, minlength=n).astype(np.float64)
        sku, segment, residual = self._factors
        c_sku, c_seg, c_res = self._strength
        for _ in range(SWEEPS):
            by_segment = exposure * sku[self._sku_of] * residual
            segment = _update(c_seg, self._segment_of, units, by_segment, len(segment))
            by_sku = exposure * segment[self._segment_of] * residual
            sku = _update(c_sku, self._sku_of, units, by_sku, len(sku))
            residual = (c_res + units) / (
                c_res + exposure * sku[self._sku_of] * segment[self._segment_of]
            )
        self._factors = (sku, segment, residual)

    def segment_uplift(self) -> dict[tuple[str, str], float]:
        """Sensed multiplier per promotion x segment: its groups' multipliers weighted by their
        prior forecast so far (1 where nothing sold yet)."""
        out: dict[tuple[str, str], list[float]] = {}
        theta = self.multiplier
        for (pid, _, seg), m, v in zip(self._labels, theta, self._volume, strict=True):
            acc = out.setdefault((pid, seg), [0.0, 0.0])
            acc[0] += m * v
            acc[1] += v
        return {key: (a / b if b > 0 else 1.0) for key, (a, b) in out.items()}

    def _moved(self) -> list[tuple[tuple[str, str], float]]:
        """The segments that moved at least ``NOTE_MIN_CHANGE``, the largest move first."""
        moved = [
            (key, m) for key, m in self.segment_uplift().items() if abs(m - 1) >= NOTE_MIN_CHANGE
        ]
        return sorted(moved, key=lambda item: (-abs(item[1] - 1), item[0]))

    def notes(self) -> tuple[str, ...]:
        """ "sensed uplift +38% in urban cluster, North since launch (SUMMER-COOL)" per segment
        that moved at least 10%, the largest move first."""
        return tuple(
            f"sensed uplift {m - 1:+.0%} in {seg} since launch ({pid})"
            for (pid, seg), m in self._moved()
        )

    def cell_notes(self) -> tuple[IntArray | None, tuple[str, ...]]:
        """Each promoted cell's note: an index into ``notes()`` (-1: none) ``[L, S]``."""
        moved = self._moved()
        if not moved or self._world is None:
            return None, ()
        number = {key: i for i, (key, _) in enumerate(moved)}
        note_of_group = np.array(
            [number.get((pid, seg), -1) for pid, _, seg in self._labels], dtype=np.int64
        )
        cells = np.full(self._world.base.shape, -1, np.int64)
        for group in self._group.values():
            on = group >= 0
            noted = np.where(on, note_of_group[np.maximum(group, 0)], -1)
            np.copyto(cells, noted, where=noted >= 0)
        return cells, self.notes()


def _factor_index(keys: list[tuple[str, object]]) -> IntArray:
    """Each group's index into the factor its key names (keys in first-seen order)."""
    index: dict[tuple[str, object], int] = {}
    return np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)


def _update(
    c: float, factor_of: IntArray, units: FloatArray, exposure: FloatArray, n: int
) -> FloatArray:
    """A gamma(c, c) factor's ``n`` posterior means given its groups' units and exposure (the
    other factors' product times the prior forecast)."""
    return (c + np.bincount(factor_of, units, minlength=n)) / (
        c + np.bincount(factor_of, exposure, minlength=n)
    )
