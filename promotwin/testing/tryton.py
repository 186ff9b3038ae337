"""A real Tryton 8.2 for the shadow tests: provisioning, seeding and an RPC server.

Module activation (~25 s) runs once per session into a temporary folder; the seeded database
is kept as a template file and each test works on a copy (a copy is milliseconds). "Today" is
the system clock, so the seed is relative to the day the session starts.

The seed is a small, realistic retail network: two DC warehouses (``DC-N`` is Tryton's default
warehouse renamed), two store warehouses provisioned from them, three suppliers with different
lead times, ``n_products`` products in four categories, 28 days of sales (stock moves to
customers: walk-in at stores, ecommerce from the DCs), open confirmed purchases, confirmed sales,
purchase order points at the DCs, and the ERP's own ``stock.supply`` run (purchase requests).
Everything the seed puts in is also returned (``Seeded``) so tests can compare against it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar

ADMIN_PASSWORD = "shadow-test-Adm1n"  # throwaway credential of a throwaway test database
MODULES = ("stock", "purchase", "sale", "stock_supply", "purchase_request")
SeedT = TypeVar("SeedT")
# an activated, unseeded database (e.g. a previous session's tryton/db/blank.sqlite) to copy
# instead of activating the modules again; only valid for the same trytond module versions
ENV_ACTIVATED = "TWIN_TRYTON_ACTIVATED"
CHUNK = 50  # raw create() per call: one big call overflows SQLite's parser


def tryton_available() -> str | None:
    """None when trytond and proteus import, else the reason they do not."""
    try:
        import proteus  # noqa: F401
        import trytond  # noqa: F401
    except ImportError as exc:
        return f"Tryton is not installed ({exc}); pip install 'promotwin[erp]'"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, port: int) -> Path:
    """A trytond config on SQLite in ``folder/db`` listening on 127.0.0.1:``port``."""
    (folder / "db").mkdir(parents=True, exist_ok=True)
    conf = folder / f"trytond-{port}.conf"
    conf.write_text(
        f"[database]\nuri = sqlite://\npath = {folder / 'db'}\n"
        f"[web]\nlisten = 127.0.0.1:{port}\n"
        "[session]\nmax_attempt = 3\n"
    )
    return conf


def trytond_bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def activate(folder: Path, database: str, conf: Path) -> float:
    """Create ``database`` and activate the modules; returns the seconds it took."""
    (folder / "db" / f"{database}.sqlite").touch()
    passfile = folder / "adminpass"
    passfile.write_text(ADMIN_PASSWORD)
    env = {**os.environ, "TRYTONPASSFILE": str(passfile)}
    t0 = time.perf_counter()
    subprocess.run(
        [trytond_bin("trytond-admin"), "-c", str(conf), "-d", database]
        + ["--email", "admin@example.com", "-u", *MODULES, "--activate-dependencies"],
        env=env,
        check=True,
        capture_output=True,
        timeout=900,  # 25-30 s idle; > 300 s when the shared machine is loaded (load 20)
    )
    return time.perf_counter() - t0


def copy_file_database(source: Path, target: Path) -> None:
    """Copy an SQLite database consistently, WAL pages included (``sqlite3`` backup)."""
    target.unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def copy_database(folder: Path, template: str, name: str) -> str:
    """Copy a database file consistently (trytond runs SQLite in WAL mode: a plain file copy
    could miss committed pages still in the ``-wal`` file)."""
    copy_file_database(folder / "db" / f"{template}.sqlite", folder / "db" / f"{name}.sqlite")
    return name


def dump_database(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (sorted): the whole ERP database, for before/after comparisons."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        con.close()


# -- the seed ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedSpec:
    n_products: int = 24
    history_days: int = 28
    dcs: tuple[str, ...] = ("DC-N", "DC-S")
    stores: tuple[tuple[str, str, int], ...] = (("ST-1", "DC-N", 1), ("ST-2", "DC-S", 2))
    suppliers: tuple[tuple[str, int], ...] = (("SUP-A", 3), ("SUP-B", 5), ("SUP-C", 7))
    categories: tuple[str, ...] = ("Grocery", "Beverages", "Household", "Electronics")
    sale_days: tuple[int, ...] = (0, 1, 3, 6, 9, 13, 20, 27)  # days ago with sales
    with_supply_run: bool = True
    sales_orders: bool = True


@dataclass
class Seeded:
    """What the seed put into the ERP, keyed by ERP codes."""

    today: dt.date
    spec: SeedSpec
    products: list[dict[str, Any]] = field(default_factory=list)  # code, category, price, cost
    on_hand: dict[tuple[str, str], int] = field(default_factory=dict)  # (location, sku) -> units
    sold: dict[tuple[str, str], int] = field(default_factory=dict)  # units over history_days
    open_orders: list[dict[str, Any]] = field(default_factory=list)  # dc, sku, supplier, qty, due
    order_points: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    lead_time: dict[str, int] = field(default_factory=dict)  # sku -> supplier lead days
    supplier_of: dict[str, str] = field(default_factory=dict)  # sku -> supplier code
    transit: dict[str, int] = field(default_factory=dict)  # store -> days from its DC
    open_sales: dict[tuple[str, str], int] = field(default_factory=dict)
    ids: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> code -> ERP id


def _chunks(rows: list[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _create(cfg: Any, model: str, rows: list[dict[str, Any]]) -> list[int]:
    proxy = cfg.get_proxy(model)
    ids: list[int] = []
    for part in _chunks(rows):
        ids += list(proxy.create(part, cfg.context))
    return ids


def seed(cfg: Any, spec: SeedSpec | None = None, today: dt.date | None = None) -> Seeded:
    """Fill a freshly activated database (``cfg`` is a proteus config on it)."""
    from proteus import Model

    spec = spec or SeedSpec()
    today = today or dt.date.today()
    out = Seeded(today=today, spec=spec)

    company = _company(cfg, "Promotwin Retail")

    unit = cfg.get_proxy("product.uom").search([("name", "=", "Unit")], 0, 1, None, cfg.context)[0]
    loc = cfg.get_proxy("stock.location")
    customer_loc = loc.search([("type", "=", "customer")], 0, 1, None, cfg.context)[0]

    wh_ids, storage = _warehouses(cfg, (*spec.dcs, *(s[0] for s in spec.stores)))
    for store, dc, days in spec.stores:
        loc.write([storage[store]], {"provisioning_location": storage[dc]}, cfg.context)
        out.transit[store] = days
    _create(
        cfg,
        "stock.location.lead_time",
        [
            {
                "warehouse_from": wh_ids[dc],
                "warehouse_to": wh_ids[store],
                "lead_time": dt.timedelta(days=days),
            }
            for store, dc, days in spec.stores
        ],
    )
    out.ids["location"] = dict(wh_ids)

    # parties
    supplier_ids = dict(
        zip(
            [s for s, _ in spec.suppliers],
            _create(
                cfg,
                "party.party",
                [
                    {"name": f"Supplier {s}", "code": s, "addresses": [("create", [{}])]}
                    for s, _ in spec.suppliers
                ],
            ),
            strict=True,
        )
    )
    (customer,) = _create(
        cfg,
        "party.party",
        [{"name": "Walk-in customers", "code": "CUST", "addresses": [("create", [{}])]}],
    )
    out.ids["supplier"] = supplier_ids

    # catalogue
    cat_ids = _create(cfg, "product.category", [{"name": c} for c in spec.categories])
    rows = []
    for i in range(spec.n_products):
        code = f"SKU-{i + 1:04d}"
        price = Decimal(8 + 3 * (i % 9))
        cost = (price * Decimal("0.6")).quantize(Decimal("0.01"))
        cat = spec.categories[i % len(spec.categories)]
        out.products.append(
            {"code": code, "category": cat, "price": float(price), "cost": float(cost)}
        )
        rows.append(
            {
                "name": f"Product {i + 1}",
                "code": code,
                "type": "goods",
                "default_uom": unit,
                "purchase_uom": unit,
                "sale_uom": unit,
                "list_price": price,
                "purchasable": True,
                "salable": True,
                "categories": [("add", [cat_ids[i % len(cat_ids)]])],
                "products": [("create", [{"cost_price": cost}])],
            }
        )
    template_ids = _create(cfg, "product.template", rows)
    prod = cfg.get_proxy("product.product")
    found = prod.search_read(
        [("template", "in", template_ids)], 0, None, None, ["code"], cfg.context
    )
    product_ids = {r["code"]: r["id"] for r in found}
    out.ids["product"] = product_ids
    sku_codes = [p["code"] for p in out.products]
    template_of = dict(zip(sku_codes, template_ids, strict=True))

    ps_rows = []
    for i, sku in enumerate(sku_codes):
        sup, lead = spec.suppliers[i % len(spec.suppliers)]
        out.supplier_of[sku], out.lead_time[sku] = sup, lead
        ps_rows.append(
            {
                "template": template_of[sku],
                "product": product_ids[sku],
                "party": supplier_ids[sup],
                "lead_time": dt.timedelta(days=lead),
            }
        )
    _create(cfg, "purchase.product_supplier", ps_rows)

    # stock: an opening count, then 28 days of sales, so on hand = opening - sold
    locations = (*spec.dcs, *(s[0] for s in spec.stores))
    opening: dict[tuple[str, str], int] = {}
    sales_moves = []
    for li, lc in enumerate(locations):
        for i, sku in enumerate(sku_codes):
            is_dc = lc in spec.dcs
            rate = (1 + (i + li) % 4) * (1 if is_dc else 2)  # units per sale day
            days_with_sales = [today - dt.timedelta(days=d) for d in spec.sale_days]
            sold = rate * len(days_with_sales)
            out.sold[(lc, sku)] = sold
            on_hand = (5 if is_dc else 2) + (15 if is_dc else 5) * ((i * 3 + li) % 5)
            out.on_hand[(lc, sku)] = on_hand
            opening[(lc, sku)] = on_hand + sold
            for day in days_with_sales:
                sales_moves.append(
                    {
                        "product": product_ids[sku],
                        "unit": unit,
                        "quantity": float(rate),
                        "from_location": storage[lc],
                        "to_location": customer_loc,
                        "planned_date": day,
                        "effective_date": day,
                        "unit_price": Decimal(str(out.products[i]["price"])),
                        "currency": cfg.context.get("currency") or 1,
                        "company": company,
                    }
                )
    inv = cfg.get_proxy("stock.inventory")
    inventories = _create(
        cfg,
        "stock.inventory",
        [
            {
                "location": storage[lc],
                "date": today - dt.timedelta(days=35),
                "company": company,
                "lines": [
                    (
                        "create",
                        [
                            {"product": product_ids[sku], "quantity": float(opening[(lc, sku)])}
                            for sku in sku_codes
                        ],
                    )
                ],
            }
            for lc in locations
        ],
    )
    inv.confirm(inventories, cfg.context)
    move_ids = _create(cfg, "stock.move", sales_moves)
    _server_side(cfg, "stock.move", "do", move_ids)

    # open purchases: one per supplier, to both DCs, confirmed (incoming moves with planned dates)
    Purchase = Model.get("purchase.purchase")
    Product = Model.get("product.product")
    for vi, (sup, lead) in enumerate(spec.suppliers):
        for di, dc in enumerate(spec.dcs):
            purchase = Purchase()
            purchase.party = Model.get("party.party")(supplier_ids[sup])
            purchase.warehouse = Model.get("stock.location")(wh_ids[dc])
            purchase.invoice_method = "manual"
            purchase.purchase_date = today - dt.timedelta(days=1)
            skus = [s for s in sku_codes if out.supplier_of[s] == sup][di::2][:3]
            for k, sku in enumerate(skus):
                line = purchase.lines.new()
                line.product = Product(product_ids[sku])
                qty = 20 + 10 * k + 5 * vi
                line.quantity = qty
                line.unit_price = Decimal(str(out.products[sku_codes.index(sku)]["cost"]))
                out.open_orders.append(
                    {
                        "dc": dc,
                        "sku": sku,
                        "supplier": sup,
                        "qty": qty,
                        "due": purchase.purchase_date + dt.timedelta(days=lead),
                    }
                )
            purchase.click("quote")
            purchase.click("confirm")

    # confirmed sales at the stores (outgoing, not shipped yet)
    if spec.sales_orders:
        Sale = Model.get("sale.sale")
        party = Model.get("party.party")(customer)
        for si, (store, _, _) in enumerate(spec.stores):
            sale = Sale()
            sale.party = party
            sale.warehouse = Model.get("stock.location")(wh_ids[store])
            sale.invoice_method = "manual"
            for k in range(2):
                sku = sku_codes[si + 2 * k]
                line = sale.lines.new()
                line.product = Product(product_ids[sku])
                line.quantity = 2 + k
                out.open_sales[(store, sku)] = 2 + k
            sale.click("quote")
            sale.click("confirm")

    # the ERP's own replenishment: purchase order points at the DCs
    op_rows = []
    for dc in spec.dcs:
        for i, sku in enumerate(sku_codes):
            lo = 30 + 10 * (i % 6)
            out.order_points[(dc, sku)] = (lo, lo + 60)
            op_rows.append(
                {
                    "type": "purchase",
                    "product": product_ids[sku],
                    "location": wh_ids[dc],
                    "min_quantity": float(lo),
                    "target_quantity": float(lo + 60),
                    "company": company,
                }
            )
    _create(cfg, "stock.order_point", op_rows)
    if spec.with_supply_run:
        run_supply(cfg, list(wh_ids[dc] for dc in spec.dcs))
    return out


def _company(cfg: Any, name: str) -> int:
    """A company in US dollars; the user's context is refreshed to work in it."""
    from proteus import Model, Wizard

    currency = Model.get("currency.currency")(name="US Dollar", symbol="$", code="USD")
    currency.save()
    company_party = Model.get("party.party")(name=name)
    company_party.save()
    wiz = Wizard("company.company.config")
    wiz.execute("company")
    wiz.form.party = company_party
    wiz.form.currency = currency
    wiz.execute("add")
    cfg._context = Model.get("res.user").get_preferences(True, {})
    return int(cfg.context["company"])


def _warehouses(cfg: Any, codes: tuple[str, ...]) -> tuple[dict[str, int], dict[str, int]]:
    """Warehouses by code (Tryton's default one renamed to the first), and their storage zones."""
    loc = cfg.get_proxy("stock.location")
    default_wh = loc.search([("type", "=", "warehouse")], 0, 1, None, cfg.context)[0]
    wh_ids: dict[str, int] = {}
    storage: dict[str, int] = {}
    for i, code in enumerate(codes):
        if i == 0:
            loc.write([default_wh], {"code": code, "name": f"{code} warehouse"}, cfg.context)
            wh_ids[code] = default_wh
            storage[code] = loc.read([default_wh], ["storage_location"], cfg.context)[0][
                "storage_location"
            ]
            continue
        zones = _create(
            cfg,
            "stock.location",
            [
                {"name": f"{code} {z}", "type": "storage", "code": f"{code}-{z[:3].upper()}"}
                for z in ("Input", "Output", "Storage")
            ]
            + [{"name": f"{code} Lost", "type": "lost_found"}],
        )
        (wh,) = _create(
            cfg,
            "stock.location",
            [
                {
                    "name": f"{code} warehouse",
                    "code": code,
                    "type": "warehouse",
                    "input_location": zones[0],
                    "output_location": zones[1],
                    "storage_location": zones[2],
                    "lost_found_location": zones[3],
                }
            ],
        )
        loc.write(zones[:3], {"parent": wh}, cfg.context)
        wh_ids[code], storage[code] = wh, zones[2]
    return wh_ids, storage


def _server_side(cfg: Any, model: str, method: str, ids: list[int]) -> None:
    """Call a model method inside trytond (in-process), bypassing RPC button access rules.

    History seeding only: a POS integration writes done moves; ``stock.move.do`` is no RPC button.
    """
    from trytond.pool import Pool
    from trytond.transaction import Transaction

    ctx = {**cfg.context, "_skip_warnings": True}
    with Transaction().start(cfg.database_name, cfg.user, context=ctx):
        klass = Pool(cfg.database_name).get(model)
        getattr(klass, method)(klass.browse(ids))


def run_supply(cfg: Any, warehouses: list[int]) -> None:
    """The ERP's order-point run (``stock.supply``) over the given warehouses."""
    from proteus import Model, Wizard

    with cfg.set_context(_skip_warnings=True):
        wiz = Wizard("stock.supply")
        wiz.form.warehouses.extend([Model.get("stock.location")(w) for w in warehouses])
        wiz.execute("create_")


# -- a trytond server for the RPC path --------------------------------------------------------


@dataclass
class Server:
    conf: Path
    port: int
    databases: tuple[str, ...]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 180.0) -> None:
        log = self.conf.with_suffix(".log").open("ab")
        self.process = subprocess.Popen(
            [trytond_bin("trytond"), "-c", str(self.conf), "-d", *self.databases],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"trytond exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"trytond did not listen on 127.0.0.1:{self.port} in {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


# -- session provisioning (cached: module activation runs once per test session) -------------


@dataclass
class Provisioned(Generic[SeedT]):
    folder: Path
    conf: Path
    template: str
    seeded: SeedT
    activation_s: float
    seed_s: float
    copies: int = 0

    def copy(self, prefix: str = "t") -> str:
        self.copies += 1
        return copy_database(self.folder, self.template, f"{prefix}{self.copies}")

    def path(self, database: str) -> Path:
        return self.folder / "db" / f"{database}.sqlite"

    def url(self, database: str) -> str:
        return f"trytond://{database}?config={self.conf}"


BLANK = "blank"  # the activated, unseeded database every seeded template is copied from
_ACTIVATED: dict[str, tuple[Path, Path, float] | str] = {}
_PROVISIONED: dict[str, Provisioned[Any] | str] = {}


def _activated(base: Path) -> tuple[Path, Path, float] | str:
    """Activate the modules into ``base/tryton/db/blank.sqlite`` once (folder, config, seconds);
    a str is a skip reason."""
    key = str(base)
    if key in _ACTIVATED:
        return _ACTIVATED[key]
    reason = tryton_available()
    if reason:
        _ACTIVATED[key] = reason
        return reason
    folder = base / "tryton"
    conf = write_config(folder, free_port())
    reuse = os.environ.get(ENV_ACTIVATED)
    kept = cache_dir() / f"blank-{_module_key()}.sqlite"
    if not (reuse and Path(reuse).is_file()) and kept.is_file():
        reuse = str(kept)
    if reuse and Path(reuse).is_file():  # activated before by the same trytond: a copy is ms
        t0 = time.perf_counter()
        copy_file_database(Path(reuse), folder / "db" / f"{BLANK}.sqlite")
        _ACTIVATED[key] = (folder, conf, time.perf_counter() - t0)
        return _ACTIVATED[key]
    try:
        _ACTIVATED[key] = (folder, conf, activate(folder, BLANK, conf))
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        tail = getattr(exc, "stderr", b"") or b""
        _ACTIVATED[key] = f"cannot provision Tryton ({exc}): {tail[-400:].decode(errors='replace')}"
        return _ACTIVATED[key]
    _keep(folder / "db" / f"{BLANK}.sqlite", kept)
    return _ACTIVATED[key]


# -- a cache across test sessions: activation (~25 s) and seeding (~7 s each) run once per
# trytond version, seed code and day ("today" is the system clock, so a seed is a day's) -------

ENV_CACHE = "TWIN_TRYTON_CACHE"  # folder of the cache; "off" turns it off


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "promotwin" / "tryton")


def _cache_on() -> bool:
    return os.environ.get(ENV_CACHE, "").lower() != "off"


def _module_key() -> str:
    """The installed trytond and module versions: another version needs another activation."""
    from importlib import metadata

    names = ["trytond", *(f"trytond_{m}" for m in MODULES)]
    versions = []
    for n in names:
        try:
            versions.append(f"{n}={metadata.version(n)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{n}=?")
    return hashlib.sha256(";".join(versions).encode()).hexdigest()[:12]


def _seed_key(template: str, seeder: Callable[[Any], Any]) -> str:
    """Module versions, the template's name, today and the source of the seeding code."""
    h = hashlib.sha256(f"{_module_key()}|{template}|{dt.date.today()}".encode())
    for module in {__name__, seeder.__module__}:
        source = getattr(sys.modules.get(module), "__file__", None)
        h.update(Path(source).read_bytes() if source else module.encode())
    return h.hexdigest()[:16]


def _keep(database: Path, target: Path, seeded: Any = None) -> None:
    """Keep a copy of ``database`` (and the seed's record) in the cache, written whole or not
    at all (another session may be reading the cache at the same time)."""
    if not _cache_on():
        return
    with contextlib.suppress(OSError, pickle.PicklingError, TypeError, AttributeError):
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.partial")
        copy_file_database(database, partial)
        if seeded is not None:
            tmp = target.with_suffix(f".{os.getpid()}.pickle-partial")
            tmp.write_bytes(pickle.dumps(seeded))
            tmp.replace(target.with_suffix(".pickle"))
        partial.replace(target)


def _kept_seed(database: Path, source: Path) -> Any:
    """The seed's record from the cache, its database copied to ``database``; None if absent."""
    record = source.with_suffix(".pickle")
    if not (_cache_on() and source.is_file() and record.is_file()):
        return None
    try:
        seeded = pickle.loads(record.read_bytes())  # noqa: S301 - this user's own test cache
    except (OSError, pickle.UnpicklingError, AttributeError, EOFError):
        return None
    copy_file_database(source, database)
    return seeded


def provision_with(
    base: Path, template: str, seeder: Callable[[Any], SeedT]
) -> Provisioned[SeedT] | str:
    """A template database ``template`` seeded by ``seeder(cfg)`` from the activated one, once
    per ``base`` folder; a str is a skip reason."""
    key = f"{base}#{template}"
    if key not in _PROVISIONED:
        activated = _activated(base)
        if isinstance(activated, str):
            return activated
        folder, conf, activation = activated
        from proteus import config

        database = folder / "db" / f"{template}.sqlite"
        kept = cache_dir() / f"{template}-{_seed_key(template, seeder)}.sqlite"
        t0 = time.perf_counter()
        seeded = _kept_seed(database, kept)
        if seeded is None:
            copy_database(folder, BLANK, template)
            seeded = seeder(config.set_trytond(template, config_file=str(conf)))
            _keep(database, kept, seeded)
        _PROVISIONED[key] = Provisioned(
            folder, conf, template, seeded, activation, time.perf_counter() - t0
        )
    return _PROVISIONED[key]


def provision(base: Path) -> Provisioned[Seeded] | str:
    """The first ERP (``seed``): activate + seed a template database once per ``base``."""
    return provision_with(base, "template", seed)
