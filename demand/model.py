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
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from promotwin.scenarios.network import Network
from promotwin.scenarios.schema import HiddenTruth, Promotion, Scenario, UpliftDeviation

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

CANNIBALISATION_FLOOR = 0.3
CALENDAR_DAYS_KEPT = 128  # more than a forecast window: a day's calendar is reused when drawn
TRUTH_STREAM = 0x7472  # the hidden-truth draws' own stream, apart from the twin's streams
View = Literal["truth", "plan"]
Columns = slice | IntArray  # one SKU group's columns of ``[L, S]``


def group_streams(
    seq: np.random.SeedSequence, groups: Sequence[str], *keys: str
) -> list[np.random.Generator]:
    """One generator per SKU group (category), spawned from ``seq``, ``keys`` (e.g. a
    promotion's id) and the group's name.

    A group's draws depend on the seed and the group alone, never on which other groups the
    network has: a shard holding some categories draws exactly what the whole network draws
    for them (``experiments.shards``)."""
    words = [w for k in keys for w in _name_words(k)]
    return [
        np.random.default_rng(
            np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, *words, *_name_words(g)))
        )
        for g in groups
    ]


def _name_words(name: str) -> tuple[int, int]:
    """A name as two 32-bit words of its SHA-256 (stable across runs and machines)."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:8], "little")


def _group_columns(sku_group: IntArray, n_groups: int) -> list[Columns]:
    """Each group's columns, as a slice where they are contiguous (a view, no copy)."""
    out: list[Columns] = []
    for g in range(n_groups):
        cols = np.flatnonzero(sku_group == g)
        contiguous = cols.size > 0 and cols[-1] - cols[0] + 1 == cols.size
        out.append(slice(int(cols[0]), int(cols[-1]) + 1) if contiguous else cols)
    return out


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
        # the SKU groups that draw from streams of their own (see group_streams): categories
        self.groups: list[str] = list(network.categories)
        self.group_columns = _group_columns(network.sku_category, len(self.groups))
        # the draws run group by group over the columns sorted by group (contiguous blocks);
        # no reordering where the categories' SKUs come in order already
        order = np.argsort(network.sku_category, kind="stable")
        self._sku_order = None if np.array_equal(order, np.arange(order.size)) else order
        self._sku_unorder = np.argsort(order)
        ends = np.cumsum(np.bincount(network.sku_category, minlength=len(self.groups)))
        self._group_bounds = list(zip([0, *ends[:-1].tolist()], ends.tolist(), strict=True))
        self._gamma = np.empty(0)  # the gamma draws' buffer, reused every day
        self._ordered = np.empty(0)  # mu / k with the columns in group order, reused
        self._group_major_index: dict[int, npt.NDArray[np.int32] | IntArray] = {}
        self._calendars: dict[int, FloatArray] = {}
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
        truth_seq = np.random.SeedSequence([truth_seed, TRUTH_STREAM])
        self.uplifts: dict[str, FloatArray] = {
            pc.promotion.id: self._deviated(pc, truth, truth_seq) for pc in self.promotions
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
        self, pc: PromotionCells, truth: HiddenTruth, seq: np.random.SeedSequence
    ) -> FloatArray:
        """The promotion's true uplift: ``[S]``, or ``[L, S]`` where a deviation applies.

        A deviation's per-SKU noise is drawn per category from a stream of that deviation,
        promotion and category (``group_streams``): it does not depend on which other
        deviations, promotions or categories there are.
        """
        factor: FloatArray | None = None
        locs = self.net.locations
        is_dc = (locs["kind"] == "dc").to_numpy()
        for dev in truth.uplift_deviations:
            if dev.promotions and pc.promotion.id not in dev.promotions:
                continue
            noise = self._deviation_noise(dev, pc.promotion.id, seq) if dev.sd > 0 else 1.0
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

    def _deviation_noise(
        self, dev: UpliftDeviation, promotion_id: str, seq: np.random.SeedSequence
    ) -> FloatArray:
        """Log-normal noise ``[S]`` of one deviation on one promotion. The deviation is named by
        what it says, not by its place in the list, which a shard's scenario changes (its list
        of promotions too: a shard keeps only its own)."""
        key = dev.model_dump_json(exclude={"promotions"})
        noise = np.empty(self.net.n_skus)
        streams = group_streams(seq, self.groups, key, promotion_id)
        for cols, rng in zip(self.group_columns, streams, strict=True):
            noise[cols] = rng.normal(0.0, dev.sd, noise[cols].shape)
        return np.exp(noise)

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
        """Weekday x season multiplier per SKU ``[S]`` for ``day`` (read-only: each day's is
        kept a while, since the twin asks for it twice, to forecast and to draw the day)."""
        if day in self._calendars:
            return self._calendars[day]
        if len(self._calendars) >= CALENDAR_DAYS_KEPT:
            del self._calendars[next(iter(self._calendars))]  # the oldest
        out = self._calendars[day] = self._calendar(day)
        out.flags.writeable = False
        return out

    def _calendar(self, day: int) -> FloatArray:
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

    def streams(self, seq: np.random.SeedSequence) -> list[np.random.Generator]:
        """The demand draws' generators for ``sample``: one per SKU group (``self.groups``)."""
        return group_streams(seq, self.groups)

    def sample(
        self,
        day: int,
        streams: Sequence[np.random.Generator],
        mean: FloatArray | None = None,
    ) -> DayDemand:
        """Draw one day: negative binomial as a gamma-Poisson mixture, pickup split binomially.

        ``streams``: one generator per SKU group (``streams()``), each drawing its group's
        cells in row-major order, so a group's demand depends on its own stream alone; or one
        generator for all columns (a caller's ``mean`` of another width)."""
        mu = self.mean(day) if mean is None else mean
        k = self.params.dispersion
        # gamma x (mu / k), in place where the arrays are this call's own (fresh 8 MB temporaries
        # on the big network cost page faults)
        scale = np.divide(mu, k, out=mu if mean is None else None)
        units, cells, pickup = self._draw(scale, k, streams, len(streams) == 1)
        n_dcs = self.net.n_dcs
        return DayDemand(by_location=units, n_dcs=n_dcs, store_cells=cells, store_pickup=pickup)

    def _draw(
        self, scale: FloatArray, k: float, streams: Sequence[np.random.Generator], whole: bool
    ) -> tuple[IntArray, IntArray, IntArray]:
        """Gamma-Poisson units ``[L, S]`` for the scale ``mu / k``, then the stores' pickup
        split: each group's block of ``[L, its SKUs]`` drawn in row-major order from its own
        stream (``whole``: one block). Returns the units, the store cells with demand (sorted
        flat indices into ``[stores, S]``) and their pickup units.

        The draws land group-major (group after group, each block row-major: every write a
        contiguous copy) and are put in ``[L, S]`` order by one gather at the end."""
        n_rows, width = scale.shape
        n_dcs = self.net.n_dcs
        n_stores = n_rows - n_dcs
        bounds = [(0, width)] if whole else self._group_bounds
        if not whole and self._sku_order is not None:  # the groups' columns side by side
            if self._ordered.shape != scale.shape:
                self._ordered = np.empty_like(scale)
            scale = np.take(scale, self._sku_order, axis=1, out=self._ordered)
        widest = max(b - a for a, b in bounds)
        if self._gamma.size < n_rows * widest:
            self._gamma = np.empty(n_rows * widest)
        units = np.empty(n_rows * width, np.int64)
        # each group's pickup units at its block's own cells: only the cells with demand are
        # written and read, so the buffer is never cleared
        pickup = np.empty(n_stores * width, np.int64)
        for (a, b), rng in zip(bounds, streams, strict=True):
            block = scale[:, a:b]
            draws = rng.standard_gamma(k, out=self._gamma[: block.size].reshape(block.shape))
            drawn = rng.poisson(np.multiply(draws, block, out=draws)).ravel()
            units[n_rows * a : n_rows * b] = drawn
            # a binomial of 0 units is 0: only the cells with demand (a third on a typical day
            # on the big network) are split, saving the draw's per-cell cost on the others
            store = drawn[n_dcs * (b - a) :]
            cells = np.flatnonzero(store > 0)
            share = self.pickup_share[cells // (b - a)]
            pickup[n_stores * a + cells] = rng.binomial(store[cells], share)
        if len(bounds) > 1:
            units = units[self._group_major(n_rows)]
        units = units.reshape(n_rows, width)
        cells = np.flatnonzero(units[n_dcs:] > 0)
        at = cells if len(bounds) == 1 else self._group_major(n_stores)[cells]
        return units, cells, pickup[at]

    def _group_major(self, n_rows: int) -> npt.NDArray[np.int32] | IntArray:
        """The group-major position (see ``_draw``) of each flat ``[n_rows, S]`` cell."""
        if n_rows not in self._group_major_index:
            start = np.asarray([a for a, _ in self._group_bounds])[self.net.sku_category]  # [S]
            group_width = np.diff([0, *(b for _, b in self._group_bounds)])
            within = self._sku_unorder - start  # [S] the SKU's column within its group's block
            rows = np.arange(n_rows)[:, None]
            index = n_rows * start + rows * group_width[self.net.sku_category] + within
            dtype = np.int32 if index.size < 2**31 else np.int64
            self._group_major_index[n_rows] = index.astype(dtype).ravel()
        return self._group_major_index[n_rows]

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
