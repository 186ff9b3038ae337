"""A second seeded Tryton, laid out the way a retailer that buys direct might have it.

Independent of the first fixture's assumptions (``promotwin.testing.tryton.seed``):

- ``CENTRAL`` (Tryton's default warehouse renamed) provisions ``SHOP-1`` and ``SHOP-3`` (their
  storage zones have a provisioning location in it); ``SHOP-3`` also has purchase order points
  of its own (supplied by both); ``SHOP-2`` buys from suppliers itself (no provisioning
  location, purchase order points, a planner purchase confirmed today); ``OVERFLOW`` holds stock
  but neither sells, buys nor provisions anyone (an ambiguous warehouse);
- ``SHOP-2`` has no done customer moves at all: its sales are confirmed sale orders not yet
  shipped (on hand 35 of ``P-01``, 18 promised: the ERP sees 17 available);
- ``P-05`` has cost price 0 but a supplier price list; ``P-06`` has cost 0 and no supplier;
- ``P-03`` shipped from CENTRAL to SHOP-1 today, in transit (Tryton's transit location);
- the ERP's own order-point run (``stock.supply``) over every warehouse.

Everything put in is returned (``DirectSeeded``), keyed by ERP codes, for tests to compare with.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from promotwin.testing.tryton import _company, _create, _server_side, _warehouses, run_supply

WAREHOUSES = ("CENTRAL", "SHOP-1", "SHOP-2", "SHOP-3", "OVERFLOW")
PROVISIONED = {"SHOP-1": "CENTRAL", "SHOP-3": "CENTRAL"}  # store -> warehouse that provisions it
TRANSIT_DAYS = 2
SUPPLIERS = {"SUPPLY-X": 4, "SUPPLY-Y": 6}  # code -> lead time, days
# code, list price, cost price, supplier (None: none), supplier price list unit price
PRODUCTS = (
    ("P-01", "12", "7", "SUPPLY-X", "7.10"),
    ("P-02", "9", "5", "SUPPLY-Y", "5.20"),
    ("P-03", "20", "11", "SUPPLY-X", "11.50"),
    ("P-04", "6", "3", "SUPPLY-Y", "3.10"),
    ("P-05", "15", "0", "SUPPLY-X", "8.40"),
    ("P-06", "4", "0", None, None),
)
ON_HAND = {  # physical units at the end of today, per warehouse, in PRODUCTS order
    "CENTRAL": (120, 80, 60, 150, 40, 30),
    "SHOP-1": (10, 6, 4, 12, 3, 2),
    "SHOP-2": (35, 8, 5, 20, 6, 3),
    "SHOP-3": (9, 7, 2, 10, 1, 0),
    "OVERFLOW": (50, 0, 0, 0, 0, 0),
}
DONE_SALE_DAYS = (0, 2, 5, 9, 14, 21)  # days ago with done customer moves
DONE_SALES = {"SHOP-1": (2, 1, 1, 3, 1, 1), "SHOP-3": (1, 1, 1, 2, 0, 0)}  # units per sale day
# confirmed, unshipped sale orders: warehouse, days ago (sale date), {product: units}
SALE_ORDERS = (
    ("SHOP-2", 10, {"P-01": 5, "P-02": 2, "P-04": 6}),
    ("SHOP-2", 5, {"P-01": 6, "P-02": 2, "P-04": 5}),
    ("SHOP-2", 1, {"P-01": 7, "P-02": 2, "P-04": 7}),
    ("SHOP-1", 0, {"P-01": 3}),
)
# purchase order points (min, target) per warehouse and product
ORDER_POINTS = {
    "CENTRAL": {
        "P-01": (100, 250),
        "P-02": (60, 150),
        "P-03": (40, 120),
        "P-04": (100, 250),
        "P-05": (50, 120),
        "P-06": (20, 60),
    },
    "SHOP-2": {"P-01": (25, 60), "P-02": (10, 30), "P-04": (15, 40), "P-05": (5, 15)},
    "SHOP-3": {"P-01": (8, 20), "P-02": (5, 15)},
}
# internal shipments shipped today, in transit: from, to, product, units (arrive in TRANSIT_DAYS)
IN_TRANSIT = (("CENTRAL", "SHOP-1", "P-03", 10),)
# planner purchases confirmed today: warehouse, product, supplier, units
PLANNER_PURCHASES = (("CENTRAL", "P-03", "SUPPLY-X", 50), ("SHOP-2", "P-02", "SUPPLY-Y", 12))


@dataclass
class DirectSeeded:
    """What the second seed put into the ERP, keyed by ERP codes."""

    today: dt.date
    ids: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> code -> ERP id
    on_hand: dict[tuple[str, str], int] = field(default_factory=dict)  # physical units
    promised: dict[tuple[str, str], int] = field(default_factory=dict)  # confirmed, unshipped
    sold_moves: dict[tuple[str, str], int] = field(default_factory=dict)  # done, 28 days
    ordered: dict[tuple[str, str], int] = field(default_factory=dict)  # sale lines, 28 days
    unit_cost: dict[str, float] = field(default_factory=dict)  # cost price, else price list
    supplier_of: dict[str, str | None] = field(default_factory=dict)
    purchases: list[dict[str, Any]] = field(default_factory=list)  # planner purchases today
    in_transit: dict[tuple[str, str], int] = field(default_factory=dict)  # (to, product) -> units


def seed_direct(cfg: Any, today: dt.date | None = None) -> DirectSeeded:
    """Fill a freshly activated database (``cfg`` is a proteus config on it)."""
    today = today or dt.date.today()
    out = DirectSeeded(today=today)
    company = _company(cfg, "Corner Shops Ltd")
    unit = cfg.get_proxy("product.uom").search([("name", "=", "Unit")], 0, 1, None, cfg.context)[0]
    loc = cfg.get_proxy("stock.location")
    customer_loc = loc.search([("type", "=", "customer")], 0, 1, None, cfg.context)[0]

    wh_ids, storage = _warehouses(cfg, WAREHOUSES)
    for store, dc in PROVISIONED.items():
        loc.write([storage[store]], {"provisioning_location": storage[dc]}, cfg.context)
    _create(
        cfg,
        "stock.location.lead_time",
        [
            {
                "warehouse_from": wh_ids[dc],
                "warehouse_to": wh_ids[store],
                "lead_time": dt.timedelta(days=TRANSIT_DAYS),
            }
            for store, dc in PROVISIONED.items()
        ],
    )
    out.ids["location"] = dict(wh_ids)

    supplier_ids = dict(
        zip(
            SUPPLIERS,
            _create(
                cfg,
                "party.party",
                [
                    {"name": f"{s} Wholesale", "code": s, "addresses": [("create", [{}])]}
                    for s in SUPPLIERS
                ],
            ),
            strict=True,
        )
    )
    (customer,) = _create(
        cfg,
        "party.party",
        [{"name": "Counter sales", "code": "COUNTER", "addresses": [("create", [{}])]}],
    )
    out.ids["supplier"] = supplier_ids
    (category,) = _create(cfg, "product.category", [{"name": "Corner shop"}])
    template_ids = _create(
        cfg,
        "product.template",
        [
            {
                "name": f"Item {code}",
                "code": code,
                "type": "goods",
                "default_uom": unit,
                "purchase_uom": unit,
                "sale_uom": unit,
                "list_price": Decimal(price),
                "purchasable": True,
                "salable": True,
                "categories": [("add", [category])],
                "products": [("create", [{"cost_price": Decimal(cost)}])],
            }
            for code, price, cost, _, _ in PRODUCTS
        ],
    )
    found = cfg.get_proxy("product.product").search_read(
        [("template", "in", template_ids)], 0, None, None, ["code"], cfg.context
    )
    product_ids = {r["code"]: r["id"] for r in found}
    out.ids["product"] = product_ids
    template_of = dict(zip([p[0] for p in PRODUCTS], template_ids, strict=True))
    for code, _, cost, supplier, list_price in PRODUCTS:
        out.supplier_of[code] = supplier
        out.unit_cost[code] = float(cost) or float(list_price or 0)
    _create(
        cfg,
        "purchase.product_supplier",
        [
            {
                "template": template_of[code],
                "product": product_ids[code],
                "party": supplier_ids[supplier],
                "lead_time": dt.timedelta(days=SUPPLIERS[supplier]),
                "prices": [("create", [{"quantity": 0.0, "unit_price": Decimal(list_price)}])],
            }
            for code, _, _, supplier, list_price in PRODUCTS
            if supplier is not None and list_price is not None
        ],
    )

    # physical stock: an opening count 35 days ago, then the done customer moves
    sale_moves = []
    codes = [p[0] for p in PRODUCTS]
    opening: dict[str, list[dict[str, Any]]] = {}
    for wh in WAREHOUSES:
        rates = DONE_SALES.get(wh, (0,) * len(codes))
        lines = []
        for i, code in enumerate(codes):
            sold = rates[i] * len(DONE_SALE_DAYS)
            out.on_hand[(wh, code)] = ON_HAND[wh][i]
            if sold:
                out.sold_moves[(wh, code)] = sold
            shipped = sum(q for o, _, c, q in IN_TRANSIT if (o, c) == (wh, code))
            opening_qty = ON_HAND[wh][i] + sold + shipped
            lines.append({"product": product_ids[code], "quantity": float(opening_qty)})
            for ago in DONE_SALE_DAYS if rates[i] else ():
                day = today - dt.timedelta(days=ago)
                sale_moves.append(
                    {
                        "product": product_ids[code],
                        "unit": unit,
                        "quantity": float(rates[i]),
                        "from_location": storage[wh],
                        "to_location": customer_loc,
                        "planned_date": day,
                        "effective_date": day,
                        "unit_price": Decimal(PRODUCTS[i][1]),
                        "currency": cfg.context.get("currency") or 1,
                        "company": company,
                    }
                )
        opening[wh] = lines
    inventories = _create(
        cfg,
        "stock.inventory",
        [
            {
                "location": storage[wh],
                "date": today - dt.timedelta(days=35),
                "company": company,
                "lines": [("create", opening[wh])],
            }
            for wh in WAREHOUSES
        ],
    )
    cfg.get_proxy("stock.inventory").confirm(inventories, cfg.context)
    _server_side(cfg, "stock.move", "do", _create(cfg, "stock.move", sale_moves))

    _ship_internal(cfg, out, wh_ids)
    _sale_orders(cfg, out, customer, wh_ids)
    _planner_purchases(cfg, out, supplier_ids, wh_ids)
    _create(
        cfg,
        "stock.order_point",
        [
            {
                "type": "purchase",
                "product": product_ids[code],
                "location": wh_ids[wh],
                "min_quantity": float(lo),
                "target_quantity": float(hi),
                "company": company,
            }
            for wh, points in ORDER_POINTS.items()
            for code, (lo, hi) in points.items()
        ],
    )
    run_supply(cfg, [wh_ids[wh] for wh in WAREHOUSES])
    return out


def _ship_internal(cfg: Any, out: DirectSeeded, wh_ids: dict[str, int]) -> None:
    """Internal shipments between warehouses, shipped today (through Tryton's transit location)
    and not yet received."""
    from proteus import Model

    Location, Product = Model.get("stock.location"), Model.get("product.product")
    for origin, destination, code, qty in IN_TRANSIT:
        shipment = Model.get("stock.shipment.internal")()
        shipment.from_location = Location(wh_ids[origin]).storage_location
        shipment.to_location = Location(wh_ids[destination]).storage_location
        shipment.planned_start_date = out.today
        shipment.planned_date = out.today + dt.timedelta(days=TRANSIT_DAYS)
        move = shipment.moves.new()
        move.product = Product(out.ids["product"][code])
        move.quantity = qty
        move.from_location = shipment.from_location
        move.to_location = shipment.to_location  # Tryton splits it through transit on wait
        shipment.save()
        for button in ("wait", "assign_force", "pack", "ship"):
            shipment.click(button)
        out.in_transit[(destination, code)] = qty


def _sale_orders(cfg: Any, out: DirectSeeded, customer: int, wh_ids: dict[str, int]) -> None:
    """Confirmed sale orders, dated in the past, none shipped."""
    from proteus import Model

    Sale, Product = Model.get("sale.sale"), Model.get("product.product")
    for wh, ago, lines in SALE_ORDERS:
        sale = Sale()
        sale.party = Model.get("party.party")(customer)
        sale.warehouse = Model.get("stock.location")(wh_ids[wh])
        sale.invoice_method = "manual"
        sale.sale_date = out.today - dt.timedelta(days=ago)
        for code, qty in lines.items():
            line = sale.lines.new()
            line.product = Product(out.ids["product"][code])
            line.quantity = qty
            out.promised[(wh, code)] = out.promised.get((wh, code), 0) + qty
            out.ordered[(wh, code)] = out.ordered.get((wh, code), 0) + qty
        sale.click("quote")
        sale.click("confirm")


def _planner_purchases(
    cfg: Any, out: DirectSeeded, supplier_ids: dict[str, int], wh_ids: dict[str, int]
) -> None:
    """Purchases a planner confirmed today (one to the DC, one straight to a shop)."""
    from proteus import Model

    Purchase, Product = Model.get("purchase.purchase"), Model.get("product.product")
    for wh, code, supplier, qty in PLANNER_PURCHASES:
        purchase = Purchase()
        purchase.party = Model.get("party.party")(supplier_ids[supplier])
        purchase.warehouse = Model.get("stock.location")(wh_ids[wh])
        purchase.invoice_method = "manual"
        purchase.purchase_date = out.today
        line = purchase.lines.new()
        line.product = Product(out.ids["product"][code])  # by attribute: planned date is set
        line.quantity = qty
        line.unit_price = Decimal(str(out.unit_cost[code]))
        purchase.click("quote")
        purchase.click("confirm")
        out.purchases.append(
            {
                "warehouse": wh,
                "product": code,
                "supplier": supplier,
                "qty": qty,
                "due": out.today + dt.timedelta(days=SUPPLIERS[supplier]),
            }
        )
