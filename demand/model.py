"""Promotion demand: baseline x weekday x season x promotion effect, negative-binomial noise.

Demand is kept where it is served from: store rows carry walk-in + pickup demand, DC rows carry
the ecommerce demand of the stores they serve. Every step is vectorised over ``[location, sku]``.

Promotion effect on a promoted cell: ``(1 - depth) ** elasticity * (1 + display_lift)^display *
(1 + feature_lift)^feature``, times ``1 + wave.lift`` on ecommerce during campaign waves.
Cannibalisation: same-category non-promoted SKUs at the same location lose ``cannibalisation`` x
the promoted SKUs' extra units, shared in proportion to their baseline (never below 30% of it).
Halo: complement categories gain ``halo_rate`` x the extra units the same way. After a promotion
its cells dip by ``post_promo_dip``, recovering linearly over ``post_promo_days`` (pantry loading).

Hidden truth (``demand.truth``): the demand that happens may differ from the plan. The ``truth``
view (what the generator samples) uses the true elasticity, the cell deviations of the uplift
(drawn once per run from the ``truth_seed`` stream, the same for every policy and forecaster)
and the unplanned halo; the ``plan`` view is the scenario as the planners wrote it.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from promotwin.scenarios.network import Network
from promotwin.scenarios.schema import HiddenTruth, Promotion, Scenario

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

CANNIBALISATION_FLOOR = 0.3
TRUTH_STREAM = 0x7472  # the hidden-truth draws' own stream, apart from the twin's streams
View = Literal["truth", "plan"]


@dataclass(frozen=True)
class DayDemand:
    """One day's realised demand (units): ``by_location`` holds all of it by the location it is
    served from (store rows walk-in + pickup, DC rows ecommerce); the stores' demand is also
    listed by cell with its pickup part, which is what the twin works on."""

    by_location: IntArray  # [L, S]
    n_dcs: int
    store_cells: IntArray  # flat indices into [stores, S] of the cells with demand, sorted
    store_pickup: IntArray  # pickup units of each listed cell (the rest is walk-in)

    @property
    def ecommerce(self) -> IntArray:  # [DCs, S]
        return self.by_location[: self.n_dcs]

    @functools.cached_property
    def pickup(self) -> IntArray:  # [stores, S]
        out = np.zeros_like(self.by_location[self.n_dcs :])
        out.ravel()[self.store_cells] = self.store_pickup
        return out

    @functools.cached_property
    def walk_in(self) -> IntArray:  # [stores, S]
        return self.by_location[self.n_dcs :] - self.pickup


@dataclass(frozen=True)
class PromotionCells:
    """A promotion resolved onto the network."""

    promotion: Promotion
    start_day: int
    end_day: int  # inclusive
    cells: BoolArray  # [L, S]
    uplift: FloatArray  # [S] multiplier on promoted cells
    waves: tuple[tuple[int, int, float], ...]  # (start_day, end_day, lift) on DC rows


class DemandModel:
    """Expected demand per day and its negative-binomial sampling, for one scenario.

    ``view="truth"`` (the generator): the hidden truth with its draws for ``truth_seed``;
    ``view="plan"``: the scenario as planned (no hidden deviations).
    """

    def __init__(
        self, scenario: Scenario, network: Network, view: View = "truth", truth_seed: int = 0
    ):
        self.scenario = scenario
        self.net = network
        self.view = view
        p = scenario.demand
        self.params = p
        truth = p.truth if view == "truth" else HiddenTruth()
        locs = network.locations
        baseline = network.skus["baseline"].to_numpy(np.float64)
        ecom_share = network.skus["ecommerce_share"].to_numpy(np.float64)
        size = locs["size"].to_numpy(np.float64)
        n_dcs = network.n_dcs
        base = np.outer(size, baseline)  # store rows: walk-in + pickup
        for d in range(n_dcs):
            served = (network.serving_dc == d) & (np.arange(network.n_locations) >= n_dcs)
            base[d] = size[served].sum() * baseline * ecom_share
        self.base: FloatArray = base
        self.pickup_share: FloatArray = locs["pickup_share"].to_numpy(np.float64)[n_dcs:]
        self._cell_pickup_share = np.repeat(self.pickup_share, network.n_skus)  # [stores * S]
        self.category_onehot: FloatArray = np.zeros((network.n_skus, len(network.categories)))
        self.category_onehot[np.arange(network.n_skus), network.sku_category] = 1.0
        self.weekday: FloatArray = np.asarray(p.weekday, dtype=np.float64)
        self.promotions = [self._resolve(pr, truth.elasticity_shift) for pr in scenario.promotions]
        halo = [(src, comps, p.halo_rate) for src, comps in p.halo.items()]
        if truth.unplanned_halo_rate > 0:
            halo += [(s, c, truth.unplanned_halo_rate) for s, c in truth.unplanned_halo.items()]
        self._halo = [
            (network.categories.index(src), [network.categories.index(c) for c in comps], rate)
            for src, comps, rate in halo
        ]
        # the uplift each promotion really has: [S] as resolved, or [L, S] with cell deviations
        rng = np.random.default_rng([truth_seed, TRUTH_STREAM])
        self.uplifts: dict[str, FloatArray] = {
            pc.promotion.id: self._deviated(pc, truth, rng) for pc in self.promotions
        }
        # the locations and SKUs each promotion touches (its effects never leave them): its
        # stores (and DCs), and the SKUs of its categories and of their complements
        self._rows = {
            pc.promotion.id: np.flatnonzero(pc.cells.any(axis=1)) for pc in self.promotions
        }
        self._cols = {pc.promotion.id: self._touched_skus(pc) for pc in self.promotions}

    # -- promotions ---------------------------------------------------------------------------

    def _resolve(self, promo: Promotion, elasticity_shift: float = 0.0) -> PromotionCells:
        net, s = self.net, self.scenario
        skus = net.skus
        sku_mask = skus.index.isin(promo.skus) | skus["category"].isin(promo.categories).to_numpy()
        locs = net.locations
        f = promo.locations
        is_store = (locs["kind"] == "store").to_numpy()
        if f.stores or f.regions or f.clusters:
            in_filter = (
                locs.index.isin(f.stores)
                | locs["region"].isin(f.regions).to_numpy()
                | locs["cluster"].isin(f.clusters).to_numpy()
            ) & is_store
        else:
            in_filter = is_store
        loc_mask = np.zeros(net.n_locations, dtype=bool)
        if {"walk_in", "pickup"} & set(promo.channels):
            loc_mask |= in_filter
        if "ecommerce" in promo.channels:
            dcs_reached = np.unique(net.serving_dc[in_filter])
            loc_mask[dcs_reached] = True
        p = self.params
        elasticity = skus["elasticity"].to_numpy(np.float64) + elasticity_shift
        uplift = (1.0 - promo.depth) ** elasticity
        uplift = (
            uplift * (1 + p.display_lift) ** promo.display * (1 + p.feature_lift) ** promo.feature
        )
        waves = tuple((s.day_of(w.start), s.day_of(w.end), w.lift) for w in promo.ecommerce_waves)
        return PromotionCells(
            promotion=promo,
            start_day=s.day_of(promo.start),
            end_day=s.day_of(promo.end),
            cells=np.outer(loc_mask, sku_mask),
            uplift=uplift * sku_mask,
            waves=waves,
        )

    def _deviated(
        self, pc: PromotionCells, truth: HiddenTruth, rng: np.random.Generator
    ) -> FloatArray:
        """The promotion's true uplift: ``[S]``, or ``[L, S]`` where a deviation applies.

        Every deviation draws its per-SKU noise whether or not it touches this promotion, so
        the draws of one deviation do not depend on which others there are.
        """
        factor: FloatArray | None = None
        locs = self.net.locations
        is_dc = (locs["kind"] == "dc").to_numpy()
        for dev in truth.uplift_deviations:
            noise = np.exp(rng.normal(0.0, dev.sd, self.net.n_skus)) if dev.sd > 0 else 1.0
            if dev.promotions and pc.promotion.id not in dev.promotions:
                continue
            rows = np.ones(self.net.n_locations, dtype=bool)
            if dev.regions:
                rows &= locs["region"].isin(dev.regions).to_numpy()
            if dev.clusters:  # a DC has no cluster: its ecommerce rows are not in any
                rows &= locs["cluster"].isin(dev.clusters).to_numpy() & ~is_dc
            if dev.channels:
                store_ch = bool({"walk_in", "pickup"} & set(dev.channels))
                rows &= np.where(is_dc, "ecommerce" in dev.channels, store_ch)
            if factor is None:
                factor = np.ones_like(self.base)
            factor[rows] *= (1.0 + dev.deviation) * noise
        return pc.uplift if factor is None else pc.uplift * factor

    def _touched_skus(self, pc: PromotionCells) -> IntArray:
        """SKUs a promotion's effects can reach: every SKU of its promoted SKUs' categories
        (uplift, cannibalisation) and of their complement categories (halo)."""
        cat = self.net.sku_category
        touched = set(np.unique(cat[pc.cells.any(axis=0)]).tolist())
        touched |= {c for src, comps, _ in self._halo if src in touched for c in comps}
        return np.flatnonzero(np.isin(cat, sorted(touched)))

    def promotion_multiplier(
        self, day: int, uplifts: dict[str, FloatArray] | None = None
    ) -> FloatArray | None:
        """Promotion effect ``[L, S]`` on ``day`` (None when no promotion touches it).

        ``uplifts`` replaces each promotion's uplift (``[S]`` or ``[L, S]``; used by forecasts
        made with estimates).
        """
        effect = self.promotion_block(day, uplifts)
        if effect is None:
            return None
        rows, cols, block = effect
        mult = np.ones_like(self.base)
        mult[np.ix_(rows, cols)] = block
        return mult

    def promotion_block(
        self, day: int, uplifts: dict[str, FloatArray] | None = None
    ) -> tuple[IntArray, IntArray, FloatArray] | None:
        """The promotion effect where it can differ from 1: rows, columns and ``[rows, cols]``.

        Uplift, waves, dip, cannibalisation and halo all act within the locations that have
        cells of an active promotion and on the SKUs of its categories and their complements,
        so a regional promotion on a big network costs a small block, not an ``[L, S]`` pass.
        """
        active = [
            pc
            for pc in self.promotions
            if pc.start_day <= day <= pc.end_day + self.params.post_promo_days
        ]
        if not active:
            return None
        rows = np.unique(np.concatenate([self._rows[pc.promotion.id] for pc in active]))
        cols = np.unique(np.concatenate([self._cols[pc.promotion.id] for pc in active]))
        dc = slice(0, int(np.searchsorted(rows, self.net.n_dcs)))  # rows are sorted: DCs first
        block = np.ix_(rows, cols)
        base = self.base[block]
        mult = np.ones_like(base)
        promoted = np.zeros(base.shape, dtype=bool)
        for pc in active:
            cells = pc.cells[block]
            if day <= pc.end_day:
                uplift = (self.uplifts if uplifts is None else uplifts)[pc.promotion.id]
                uplift = uplift[cols] if uplift.ndim == 1 else uplift[block]
                mult = np.where(cells, mult * uplift, mult)
                for w_start, w_end, lift in pc.waves:
                    if w_start <= day <= w_end:
                        mult[dc] = np.where(cells[dc], mult[dc] * (1 + lift), mult[dc])
                promoted |= cells
            else:
                k = day - pc.end_day  # 1..post_promo_days
                dip = self.params.post_promo_dip * (1 - (k - 1) / self.params.post_promo_days)
                mult = np.where(cells, mult * (1 - dip), mult)
        if promoted.any():
            mult = self._spill(mult, promoted, base, cols)
        return rows, cols, mult

    def _spill(
        self, mult: FloatArray, promoted: BoolArray, base: FloatArray, cols: IntArray
    ) -> FloatArray:
        """Cannibalisation of same-category SKUs and halo on complements, from the extra units.

        ``mult``, ``promoted`` and ``base`` are the same block of ``[L, S]`` arrays, its columns
        ``cols`` whole categories (so category totals over the block are the full ones).
        """
        onehot = self.category_onehot[cols]
        extra = np.where(promoted, base * np.maximum(mult - 1.0, 0.0), 0.0)
        extra_cat = extra @ onehot  # [rows, K]
        other = np.where(promoted, 0.0, base)
        other_cat = other @ onehot
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = np.where(other_cat > 0, self.params.cannibalisation * extra_cat / other_cat, 0.0)
        factor = np.clip(1.0 - loss, CANNIBALISATION_FLOOR, 1.0)
        for src, comps, rate in self._halo:
            for comp in comps:
                with np.errstate(divide="ignore", invalid="ignore"):
                    gain = np.where(
                        other_cat[:, comp] > 0,
                        rate * extra_cat[:, src] / other_cat[:, comp],
                        0.0,
                    )
                factor[:, comp] *= 1.0 + gain
        return np.where(promoted, mult, mult * factor[:, self.net.sku_category[cols]])

    # -- expected and sampled demand ----------------------------------------------------------

    def date(self, day: int) -> dt.date:
        return self.scenario.start_date + dt.timedelta(days=day)

    def calendar(self, day: int) -> FloatArray:
        """Weekday x season multiplier per SKU ``[S]`` for ``day``."""
        date = self.date(day)
        doy = date.timetuple().tm_yday
        season = np.ones(len(self.net.categories))
        for cat, sea in self.params.seasonality.items():
            k = self.net.categories.index(cat)
            season[k] = 1 + sea.amplitude * np.cos(2 * np.pi * (doy - sea.peak_day) / 365.0)
        return self.weekday[date.weekday()] * season[self.net.sku_category]

    def mean(
        self, day: int, uplifts: dict[str, FloatArray] | None = None, out: FloatArray | None = None
    ) -> FloatArray:
        """Expected demand ``[L, S]`` (units) on ``day``, written into ``out`` if given."""
        mean = np.multiply(self.base, self.calendar(day), out=out)
        effect = self.promotion_block(day, uplifts)
        if effect is not None:
            rows, cols, block = effect
            mean[np.ix_(rows, cols)] *= block
        return mean

    def sample(
        self, day: int, rng: np.random.Generator, mean: FloatArray | None = None
    ) -> DayDemand:
        """Draw one day: negative binomial as a gamma-Poisson mixture, pickup split binomially."""
        mu = self.mean(day) if mean is None else mean
        k = self.params.dispersion
        # gamma x (mu / k), in place where the arrays are this call's own (fresh 8 MB temporaries
        # on the big network cost page faults)
        scale = np.divide(mu, k, out=mu if mean is None else None)
        draws = rng.standard_gamma(k, size=mu.shape)
        units = rng.poisson(np.multiply(draws, scale, out=draws))
        n_dcs = self.net.n_dcs
        store = units[n_dcs:]
        # a binomial of 0 units is 0: only the cells with demand (a third on a typical day on the
        # big network) are split, saving the draw's per-cell cost on the other two thirds
        cells = np.flatnonzero(store > 0)
        if self._cell_pickup_share.size != store.size:  # a caller's mean of another width
            self._cell_pickup_share = np.repeat(self.pickup_share, store.shape[1])
        pickup = rng.binomial(store.ravel()[cells], self._cell_pickup_share[cells])
        return DayDemand(by_location=units, n_dcs=n_dcs, store_cells=cells, store_pickup=pickup)

    def promotion_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "id": [pc.promotion.id for pc in self.promotions],
                "start_day": [pc.start_day for pc in self.promotions],
                "end_day": [pc.end_day for pc in self.promotions],
                "depth": [pc.promotion.depth for pc in self.promotions],
                "planned_uplift": [pc.promotion.planned_uplift for pc in self.promotions],
            }
        )
