"""The compiled network: DataFrames keyed by id plus integer index maps for the numpy hot path.

Locations are ordered DCs first, then stores, so arrays ``[location, sku]`` slice as
``[:n_dcs]`` (DCs) and ``[n_dcs:]`` (stores).

Direct-store delivery: a store's ``supplied_by`` is ``dc``, ``supplier`` or ``both``. A store
supplied by suppliers only still has a ``dc`` (its home DC: the first DC of its region, else the
first DC), which fulfils its area's ecommerce and groups it in reports; that DC never
replenishes it (``dc_replenished`` is False) and plans no stock for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pandas as pd

from promotwin.scenarios.schema import Scenario

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Network:
    locations: pd.DataFrame  # index id; kind, region, cluster, dc, pickup, ship_from_store, ...
    skus: pd.DataFrame  # index id; category, price, unit_cost, holding_rate, supplier, ...
    suppliers: pd.DataFrame  # index id; lead_mean, lead_sd, lead_min, lead_dist, fill_rate, ...
    lanes: pd.DataFrame  # origin, destination (ids), o, d (indices), transit_days, cost, capacity
    n_dcs: int

    @cached_property  # read several times a day by the twin's hot path: len() of a frame
    def n_locations(self) -> int:
        return len(self.locations)

    @cached_property
    def n_skus(self) -> int:
        return len(self.skus)

    @property
    def n_stores(self) -> int:
        return self.n_locations - self.n_dcs

    @cached_property
    def location_index(self) -> dict[str, int]:
        return {x: i for i, x in enumerate(self.locations.index)}

    @cached_property
    def sku_index(self) -> dict[str, int]:
        return {x: i for i, x in enumerate(self.skus.index)}

    @cached_property
    def supplier_index(self) -> dict[str, int]:
        return {x: i for i, x in enumerate(self.suppliers.index)}

    @cached_property
    def serving_dc(self) -> IntArray:
        """DC index serving each location (a DC serves itself)."""
        return self.locations["dc"].to_numpy(np.int64)

    @cached_property
    def sku_supplier(self) -> IntArray:
        return self.skus["supplier_idx"].to_numpy(np.int64)

    @cached_property
    def sku_category(self) -> IntArray:
        return self.skus["category_idx"].to_numpy(np.int64)

    @cached_property
    def categories(self) -> list[str]:
        return list(pd.unique(self.skus["category"]))

    @cached_property
    def price(self) -> FloatArray:
        return self.skus["price"].to_numpy(np.float64)

    @cached_property
    def unit_cost(self) -> FloatArray:
        return self.skus["unit_cost"].to_numpy(np.float64)

    @cached_property
    def holding_cost_per_day(self) -> FloatArray:
        """Currency per unit per day."""
        return (
            self.skus["unit_cost"].to_numpy(np.float64)
            * self.skus["holding_rate"].to_numpy(np.float64)
            / 365.0
        )

    @cached_property
    def direct(self) -> BoolArray:
        """``[L]`` stores that suppliers deliver to directly (``supplied_by`` supplier or both)."""
        stores = np.arange(self.n_locations) >= self.n_dcs
        return self.locations["supplied_by"].isin(("supplier", "both")).to_numpy() & stores

    @cached_property
    def dc_replenished(self) -> BoolArray:
        """``[L]`` stores their DC replenishes (``supplied_by`` dc or both); False for DCs."""
        stores = np.arange(self.n_locations) >= self.n_dcs
        return self.locations["supplied_by"].isin(("dc", "both")).to_numpy() & stores

    @property
    def has_direct(self) -> bool:
        return bool(self.direct.any())

    @cached_property
    def store_lane(self) -> pd.DataFrame:
        """The DC->store replenishment lane of each store, indexed by store location index."""
        lanes = self.lanes
        mask = (lanes["o"].to_numpy() == self.serving_dc[lanes["d"].to_numpy()]) & (
            lanes["d"].to_numpy() >= self.n_dcs
        )
        return lanes[mask].set_index("d").sort_index()


def compile_network(s: Scenario) -> Network:
    """Turn a validated scenario into DataFrames and index maps."""
    dc_of = {store: d for d, dc in enumerate(s.dcs) for store in dc.serves}
    for st in s.stores:  # a store only suppliers replenish: its home DC (see the docstring)
        if st.id not in dc_of:
            regional = [d for d, dc in enumerate(s.dcs) if dc.region == st.region]
            dc_of[st.id] = regional[0] if regional else 0
    rows = [
        {
            "id": dc.id,
            "kind": "dc",
            "region": dc.region,
            "cluster": "dc",
            "dc": d,
            "size": 0.0,
            "pickup_share": 0.0,
            "ship_from_store": False,
            "throughput": dc.throughput,
            "supplied_by": "supplier",
        }
        for d, dc in enumerate(s.dcs)
    ]
    rows += [
        {
            "id": st.id,
            "kind": "store",
            "region": st.region,
            "cluster": st.cluster,
            "dc": dc_of[st.id],
            "size": st.size,
            "pickup_share": st.pickup_share if "pickup" in st.channels else 0.0,
            "ship_from_store": "ship_from_store" in st.channels,
            "throughput": np.inf,
            "supplied_by": st.supplied_by,
        }
        for st in s.stores
    ]
    locations = pd.DataFrame(rows).set_index("id")
    sup_index = {v.id: i for i, v in enumerate(s.suppliers)}
    suppliers = pd.DataFrame(
        [
            {
                "id": v.id,
                "lead_dist": v.lead_time.distribution,
                "lead_mean": v.lead_time.mean,
                "lead_sd": v.lead_time.sd,
                "lead_min": v.lead_time.min,
                "fill_rate": v.fill_rate,
                "capacity": v.capacity,
                "moq": v.moq,
                "expedite_lead_time": v.expedite_lead_time,
                "order_cost": v.order_cost,
            }
            for v in s.suppliers
        ]
    ).set_index("id")
    categories = list(dict.fromkeys(k.category for k in s.skus))
    cat_index = {c: i for i, c in enumerate(categories)}
    default_e = s.demand.elasticity
    skus = pd.DataFrame(
        [
            {
                "id": k.id,
                "category": k.category,
                "category_idx": cat_index[k.category],
                "price": k.price,
                "unit_cost": k.unit_cost,
                "holding_rate": k.holding_rate,
                "supplier": k.supplier,
                "supplier_idx": sup_index[k.supplier],
                "baseline": k.baseline,
                "ecommerce_share": k.ecommerce_share,
                "elasticity": default_e if k.elasticity is None else k.elasticity,
            }
            for k in s.skus
        ]
    ).set_index("id")
    loc_index = {x: i for i, x in enumerate(locations.index)}
    lanes = pd.DataFrame(
        [
            {
                "origin": ln.origin,
                "destination": ln.destination,
                "o": loc_index[ln.origin],
                "d": loc_index[ln.destination],
                "transit_days": ln.transit_days,
                "cost_per_unit": ln.cost_per_unit,
                "capacity": ln.capacity,
            }
            for ln in s.lanes
        ],
        columns=["origin", "destination", "o", "d", "transit_days", "cost_per_unit", "capacity"],
    )
    return Network(locations, skus, suppliers, lanes, n_dcs=len(s.dcs))
