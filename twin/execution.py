"""Execution: carrying out approved plan lines within the network's physical limits, and booking
the shipments that land. Plain functions on arrays: the stock arrays they are given are updated
in place, the shipments to schedule are returned (the caller owns the clock).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from promotwin.arrays import UNLIMITED
from promotwin.policies.allocation import cut_to_limit
from promotwin.policies.contract import (
    ActionKind,
    BoolArray,
    FloatArray,
    InboundShipment,
    IntArray,
    Plan,
)
from promotwin.scenarios.network import Network
from promotwin.twin.ledger import Kind, Ledger

CONCENTRATION = 50.0  # beta concentration of a supplier's daily fill fraction
# action kinds as plain ints: compared once per route or plan on every day
PURCHASE, EXPEDITE = int(ActionKind.PURCHASE), int(ActionKind.EXPEDITE)
SHIPMENT = int(ActionKind.SHIPMENT)


class PlanError(ValueError):
    """A policy proposed an action the network cannot carry out (a policy bug)."""


@dataclass
class Shipment:
    """Units in flight: from a supplier (``origin`` = supplier index) or between locations."""

    kind: str
    origin: int
    destination: int
    planned_day: int
    sku: IntArray
    qty: IntArray  # ordered / dispatched units
    delivered: IntArray  # units that will arrive (supplier short-shipments already taken off)
    premium: FloatArray  # extra cost per unit (expedite)
    order_cost: float = 0.0

    @functools.cached_property
    def inbound(self) -> InboundShipment:
        """What a policy sees of it (made once: it is in every snapshot until it lands)."""
        return InboundShipment(
            self.kind, self.origin, self.destination, self.planned_day, self.sku, self.qty
        )


Scheduled = tuple[Shipment, int]  # a shipment and the days until it lands


@dataclass
class Stock:
    """The network's units per ``[location, sku]`` cell: on hand and in the two pipelines."""

    on_hand: IntArray
    in_transit: IntArray  # dispatched between locations, not yet arrived
    on_order: IntArray  # ordered from suppliers, not yet arrived


@dataclass(frozen=True)
class SupplierOutcomes:
    """What each supplier will do with an order placed on a day, drawn before the run starts so
    every policy sees the same outcomes (common random numbers)."""

    lead_days: IntArray  # [V, days] lead time of an order placed that day
    fill_fraction: FloatArray  # [V, days] share of the ordered units delivered
    fill_rounding: FloatArray  # [days, S] rounding noise of a line's delivered units


def draw_supplier_outcomes(
    suppliers: pd.DataFrame,
    n_days: int,
    n_skus: int,
    lead_rng: np.random.Generator,
    fill_rng: np.random.Generator,
    rounding: Sequence[tuple[slice | IntArray, np.random.Generator]],
) -> SupplierOutcomes:
    """Lead time and fill fraction per supplier x order day; rounding noise per day x SKU, each
    SKU group's columns from its own stream (``rounding``: columns and generator per group)."""
    mean = suppliers["lead_mean"].to_numpy()[:, None]
    sd = suppliers["lead_sd"].to_numpy()[:, None]
    shape = (len(suppliers), n_days)
    dist = suppliers["lead_dist"].to_numpy()[:, None]
    sigma2 = np.log1p((sd / mean) ** 2)
    lognormal = lead_rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2), shape)
    poisson = lead_rng.poisson(np.broadcast_to(mean, shape))
    lead = np.where(dist == "fixed", mean, np.where(dist == "poisson", poisson, lognormal))
    lead_days = np.maximum(np.rint(lead), suppliers["lead_min"].to_numpy()[:, None])
    fill = suppliers["fill_rate"].to_numpy()[:, None]
    a, b = fill * CONCENTRATION, (1 - fill) * CONCENTRATION
    beta = fill_rng.beta(np.maximum(a, 1e-9), np.maximum(b, 1e-9), shape)
    fill_rounding = np.empty((n_days, n_skus))
    for cols, rng in rounding:
        block = fill_rounding[:, cols]
        fill_rounding[:, cols] = rng.random(block.shape)
    return SupplierOutcomes(
        lead_days=lead_days.astype(np.int64),
        fill_fraction=np.where(fill >= 1, 1.0, beta),
        fill_rounding=fill_rounding,
    )


Lanes = dict[tuple[int, int], tuple[int, float, float]]  # (o, d) -> transit days, cost, capacity


def lane_map(lanes: pd.DataFrame) -> Lanes:
    """The network's lanes by (origin, destination) location index."""
    return {
        (int(o), int(d)): (int(t), float(c), float(cap))
        for o, d, t, c, cap in zip(
            lanes["o"],
            lanes["d"],
            lanes["transit_days"],
            lanes["cost_per_unit"],
            lanes["capacity"],
            strict=True,
        )
    }


@dataclass(frozen=True)
class Groups:
    """Lines grouped by an integer key: group ``g`` is lines ``order[starts[g]:starts[g + 1]]``
    (``order`` None: the lines already come grouped, each group one run in line order)."""

    order: IntArray | None
    starts: IntArray  # [G + 1]
    keys: IntArray  # [G]

    def lines(self, a: npt.NDArray) -> npt.NDArray:
        """``a`` (one value per line) in grouped order."""
        return a if self.order is None else a[self.order]

    def first_lines(self) -> IntArray:
        """The first line of each group."""
        head = self.starts[:-1]
        return head if self.order is None else self.order[head]

    def of_line(self) -> IntArray:
        """The group of each line, in line order."""
        group = np.repeat(np.arange(len(self.keys)), np.diff(self.starts))
        if self.order is None:
            return group
        out = np.empty_like(group)
        out[self.order] = group
        return out


def group_lines(key: IntArray) -> Groups:
    """Group lines by ``key``. A policy usually adds a store's lines together, so the keys come
    in runs: when no key has two runs, the runs are the groups and nothing is sorted."""
    n = len(key)
    first = np.empty(n, bool)
    first[:1] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    run_keys = key[starts]
    if len(np.unique(run_keys)) == len(starts):
        return Groups(None, np.append(starts, n), run_keys)
    # some key has several runs: sort the runs (not the lines) by key, stably, so each group's
    # lines stay in line order, and merge neighbouring runs of one key
    lengths = np.diff(np.append(starts, n))
    by_key = np.argsort(run_keys, kind="stable")
    sorted_keys, sorted_lengths = run_keys[by_key], lengths[by_key]
    new_starts = np.cumsum(sorted_lengths) - sorted_lengths
    order = np.arange(n) + np.repeat(starts[by_key] - new_starts, sorted_lengths)
    head = np.empty(len(sorted_keys), bool)
    head[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=head[1:])
    return Groups(order, np.append(new_starts[head], n), sorted_keys[head])


@dataclass(frozen=True)
class SupplierTerms:
    """The suppliers' columns execution reads, as arrays (read from the frame once a run, not
    once per order day)."""

    moq: FloatArray  # [V] units per line
    capacity: FloatArray  # [V] units per day
    lead_mean: FloatArray  # [V] days
    expedite_lead_time: IntArray  # [V] days
    order_cost: FloatArray  # [V] currency per order

    @classmethod
    def of(cls, suppliers: pd.DataFrame) -> SupplierTerms:
        return cls(
            moq=suppliers["moq"].to_numpy(),
            capacity=suppliers["capacity"].to_numpy(),
            lead_mean=suppliers["lead_mean"].to_numpy(),
            expedite_lead_time=suppliers["expedite_lead_time"].to_numpy(),
            order_cost=suppliers["order_cost"].to_numpy(),
        )


@dataclass(frozen=True)
class Limits:
    """What execution checks a plan against: the network, its lanes, the suppliers' terms and
    drawn outcomes, and the outbound throughput of each location today (units)."""

    net: Network
    lanes: Lanes
    suppliers: SupplierOutcomes
    expedite_premium: FloatArray  # [S] extra currency per expedited unit
    throughput: FloatArray  # [L] units a day today (DCs' disruptions applied)
    supplier_delay: IntArray  # [V] extra lead days today (disruptions)
    terms: SupplierTerms


def execute(
    day: int, plan: Plan, limits: Limits, stock: Stock, ledger: Ledger
) -> tuple[IntArray, list[Scheduled]]:
    """Carry out approved lines within stock, capacity and MOQ: the units done per line and the
    shipments to schedule. Takes dispatched units off ``stock.on_hand`` and adds every line
    carried out to its pipeline."""
    executed = np.zeros(len(plan), np.int64)
    scheduled: list[Scheduled] = []
    if not len(plan):
        return executed, scheduled
    supply = (plan.kind == PURCHASE) | (plan.kind == EXPEDITE)
    n_supply = int(np.count_nonzero(supply))
    if n_supply:
        executed[supply], orders = place_orders(day, plan.select(supply), limits, stock.on_order)
        scheduled += orders
    if n_supply < len(plan):
        executed[~supply], sent = dispatch(day, plan.select(~supply), limits, stock, ledger)
        scheduled += sent
    return executed, scheduled


def place_orders(
    day: int, plan: Plan, limits: Limits, on_order: IntArray
) -> tuple[IntArray, list[Scheduled]]:
    """Purchase orders and expedites: raised to the supplier's MOQ, cut to its capacity; one
    shipment per kind x supplier x destination (a DC, or a store it delivers to directly: the
    same lead time, fill, capacity and MOQ), delivering what the supplier's drawn fill allows."""
    net = limits.net
    if (plan.destination >= net.n_dcs).any() and not _buys_direct(net, plan.destination).all():
        bad = plan.destination[~_buys_direct(net, plan.destination)]
        raise PlanError(
            f"{plan.policy}: purchase orders must go to a DC (locations 0..{net.n_dcs - 1}) or "
            f"to a store supplied directly; {net.locations.index[int(bad[0])]} is not"
        )
    if (plan.origin != net.sku_supplier[plan.sku]).any():
        raise PlanError(f"{plan.policy}: a purchase names a supplier that does not supply the SKU")
    terms = limits.terms
    qty = np.maximum(plan.qty, terms.moq[plan.origin]).astype(np.int64)
    qty = cut_to_limit(qty, plan.origin, terms.capacity)
    lead_mean, expedite_lt, order_cost = terms.lead_mean, terms.expedite_lead_time, terms.order_cost
    outcomes = limits.suppliers
    day_idx = min(day, outcomes.lead_days.shape[1] - 1)
    # what each line's supplier will deliver (the day's fill fraction, rounding noise per SKU)
    fill = outcomes.fill_fraction[plan.origin, day_idx]
    rounding = outcomes.fill_rounding[day_idx, plan.sku]
    delivered = np.minimum(np.floor(qty * fill + rounding), qty).astype(np.int64)
    placed = qty > 0
    np.add.at(on_order, (plan.destination[placed], plan.sku[placed]), qty[placed])
    # one order per kind x supplier x destination (a DC, or a store supplied directly)
    key = (plan.kind * len(order_cost) + plan.origin) * net.n_locations + plan.destination
    groups = group_lines(key[placed])
    by_order = groups.lines(np.flatnonzero(placed))
    scheduled: list[Scheduled] = []
    for a, b in zip(groups.starts[:-1], groups.starts[1:], strict=True):
        lines = by_order[a:b]
        first = lines[0]
        v, d = int(plan.origin[first]), int(plan.destination[first])
        expedite = plan.kind[first] == EXPEDITE
        if expedite:
            lead = planned = int(expedite_lt[v])
        else:
            lead = int(outcomes.lead_days[v, day_idx]) + int(limits.supplier_delay[v])
            planned = int(round(lead_mean[v]))
        sku = plan.sku[lines]
        shipment = Shipment(
            kind="expedite" if expedite else "purchase",
            origin=v,
            destination=d,
            planned_day=day + planned,
            sku=sku,
            qty=qty[lines],
            delivered=delivered[lines],
            premium=limits.expedite_premium[sku] if expedite else np.zeros(len(sku)),
            order_cost=float(order_cost[v]),
        )
        scheduled.append((shipment, lead))
    return qty, scheduled


def _buys_direct(net: Network, destination: IntArray) -> BoolArray:
    """Which destinations may receive purchase orders: DCs and stores supplied directly."""
    return (destination < net.n_dcs) | net.direct[destination]


def dispatch(
    day: int, plan: Plan, limits: Limits, stock: Stock, ledger: Ledger
) -> tuple[IntArray, list[Scheduled]]:
    """Shipments and transfers: limited by origin stock, outbound throughput and lane capacity;
    one shipment per route."""
    net, lane = limits.net, limits.lanes
    n_loc, n_sku = net.n_locations, net.n_skus
    # one group per (origin, destination) route, checked once each, not once per line
    groups = group_lines(plan.origin * n_loc + plan.destination)
    routes = [divmod(k, n_loc) for k in groups.keys.tolist()]
    missing = [r for r in routes if r not in lane]
    if missing:
        names = net.locations.index
        shown = ", ".join(f"{names[o]}->{names[d]}" for o, d in missing[:5])
        raise PlanError(f"{plan.policy}: no lane for {shown}")
    flat = plan.origin * n_sku + plan.sku
    qty = cut_to_limit(plan.qty, flat, stock.on_hand.ravel())
    qty = cut_to_limit(qty, plan.origin, np.minimum(limits.throughput, UNLIMITED))
    caps = np.array([lane[r][2] for r in routes])
    # lanes are rarely full: when the day's units fit the smallest lane, no line is cut
    fits = qty.sum() <= caps.min()
    executed = qty if fits else cut_to_limit(qty, groups.of_line(), caps)
    # whole units summed in floating point are exact; only the origins' rows can move
    moved = np.bincount(flat, executed).astype(np.int64)
    stock.on_hand.ravel()[: len(moved)] -= moved
    # the executed lines by route, gathered once: each shipment takes slices (views)
    sent = groups.lines(executed) > 0
    if not sent.any():
        return executed, []
    if groups.order is None and sent.all():  # the usual day: every line as it came
        bounds = groups.starts  # each route's lines all sent
        sku_all, q_all, dest = plan.sku, executed, plan.destination
        first_kind = plan.kind[groups.first_lines()]
    else:
        bounds = np.zeros(len(routes) + 1, np.int64)
        np.cumsum(np.add.reduceat(sent, groups.starts[:-1], dtype=np.int64), out=bounds[1:])
        line = np.flatnonzero(sent) if groups.order is None else groups.order[sent]
        sku_all, q_all, dest = plan.sku[line], executed[line], plan.destination[line]
        first_kind = plan.kind[line[np.minimum(bounds[:-1], len(line) - 1)]]
    value_all = q_all * net.unit_cost[sku_all]
    lane_cost = np.array([lane[r][1] for r in routes])
    cost_all = q_all * np.repeat(lane_cost, np.diff(bounds))
    premium = np.zeros(len(q_all))
    np.add.at(stock.in_transit.ravel(), dest * n_sku + sku_all, q_all)
    origins, destinations = np.divmod(groups.keys, n_loc)
    ledger.shipments(
        day, Kind.DISPATCH, origins, destinations, bounds, sku_all, q_all, value_all, cost_all
    )
    # a route carries one kind (a DC->store lane ships, every other lane transfers)
    shipping = (first_kind == SHIPMENT).tolist()
    scheduled: list[Scheduled] = []
    edges = bounds.tolist()
    for g, (o, d) in enumerate(routes):
        a, b = edges[g], edges[g + 1]
        if a == b:
            continue
        transit = lane[(o, d)][0]
        kind = "shipment" if shipping[g] else "transfer"
        sku, q = sku_all[a:b], q_all[a:b]
        shipment = Shipment(kind, o, d, day + transit, sku, q, q, premium[a:b])
        scheduled.append((shipment, transit))
    return executed, scheduled


RECEIPTS = (  # shipment kinds -> the ledger kind of their receipt, and their pipeline
    (("purchase",), Kind.SUPPLIER_RECEIPT, "on_order"),
    (("expedite",), Kind.EXPEDITE_RECEIPT, "on_order"),
    (("shipment", "transfer"), Kind.RECEIPT, "in_transit"),
)


def receive(
    day: int, landed: list[Shipment], stock: Stock, unit_cost: FloatArray, ledger: Ledger
) -> None:
    """Book the shipments that landed at the start of ``day``: stock, the pipeline they leave
    (on order or in transit) and the ledger, one vectorised step per kind of receipt."""
    for kinds, kind, pipeline in RECEIPTS:
        group = [s for s in landed if s.kind in kinds]
        if group:
            book_receipts(
                day, group, kind, stock.on_hand, getattr(stock, pipeline), unit_cost, ledger
            )


def book_receipts(
    day: int,
    group: list[Shipment],
    kind: Kind,
    on_hand: IntArray,
    pipeline: IntArray,
    unit_cost: FloatArray,
    ledger: Ledger,
) -> None:
    """One kind of receipt: delivered units onto ``on_hand``, ordered units off ``pipeline``."""
    n_sku = on_hand.shape[1]
    sizes = np.array([len(s.sku) for s in group])
    bounds = np.zeros(len(group) + 1, np.int64)
    np.cumsum(sizes, out=bounds[1:])
    sku = np.concatenate([s.sku for s in group])
    qty = np.concatenate([s.qty for s in group])
    whole = all(s.delivered is s.qty for s in group)  # moves between locations lose nothing
    delivered = qty if whole else np.concatenate([s.delivered for s in group])
    where = np.array([s.destination for s in group])
    flat = np.repeat(where, sizes) * n_sku + sku
    np.add.at(on_hand.ravel(), flat, delivered)
    np.add.at(pipeline.ravel(), flat, -qty)
    value = delivered * unit_cost[sku]
    if kind == Kind.RECEIPT:
        origin = np.array([s.origin for s in group])
        ledger.shipments(day, kind, where, origin, bounds, sku, delivered, value, 0 * value)
        return
    nobody = np.full(len(group), -1)
    per_line = np.repeat([s.order_cost / len(s.sku) for s in group], sizes)
    cost = delivered * np.concatenate([s.premium for s in group]) + per_line
    ledger.shipments(day, kind, where, nobody, bounds, sku, delivered, value, cost)
    zero = 0 * value
    ledger.shipments(day, Kind.SHORT, where, nobody, bounds, sku, qty - delivered, zero, zero)
