"""The ERP adapter protocol, its errors, and credentials (environment or config file only)."""

from __future__ import annotations

import configparser
import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd

from promotwin.shadow.erpdata import ErpActions, ErpState


class ErpError(Exception):
    """Base of the ERP faults a shadow run records (the message never holds credentials)."""

    transient = False


class ErpUnavailable(ErpError):
    """The ERP cannot be reached (down, connection refused or reset): worth retrying."""

    transient = True


class ErpTimeout(ErpUnavailable):
    """The ERP answered too slowly."""


class ErpLoginRefused(ErpError):
    """Wrong user or password, or the account is locked: retrying will not help."""


class ErpDataError(ErpError):
    """The ERP answered with something that cannot be used (a server-side error)."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)

    def __repr__(self) -> str:  # never print the password
        return f"Credentials(user={self.user!r}, password=***)"


ENV_USER = "TWIN_ERP_USER"
ENV_PASSWORD = "TWIN_ERP_PASSWORD"  # noqa: S105 - the variable's name, not a password
ENV_CONFIG = "TWIN_ERP_CONFIG"


def load_credentials(config_file: str | Path | None = None) -> Credentials | None:
    """Credentials from ``TWIN_ERP_USER``/``TWIN_ERP_PASSWORD``, else a config file.

    The config file (``--credentials`` or ``TWIN_ERP_CONFIG``) is INI with an ``[erp]`` section
    holding ``user`` and ``password``. Returns None when neither is set.
    """
    if os.environ.get(ENV_PASSWORD):
        return Credentials(os.environ.get(ENV_USER, "admin"), os.environ[ENV_PASSWORD])
    path = config_file or os.environ.get(ENV_CONFIG)
    if not path:
        return None
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(path):
        raise ValueError(f"credentials file {path} not found or unreadable")
    if not parser.has_section("erp") or not parser.has_option("erp", "password"):
        raise ValueError(f"credentials file {path}: needs an [erp] section with user and password")
    return Credentials(parser.get("erp", "user", fallback="admin"), parser.get("erp", "password"))


@dataclass(frozen=True)
class DraftLine:
    """One governance-approved purchase to write as a *draft* document in the ERP."""

    supplier: str  # ERP id
    destination: str  # ERP id of the warehouse
    product: str  # ERP id
    qty: float
    unit_price: float  # the supplier's price (its price list), else the unit cost
    delivery_date: dt.date  # the planned delivery the run computed


@dataclass(frozen=True)
class DraftOrder:
    """The lines of one draft purchase (one supplier, warehouse and delivery date), and its
    idempotency key: a digest of what is ordered, so the same recommendation is written once
    however often it is sent (the key goes in a field the ERP keeps, and is looked up first)."""

    supplier: str
    destination: str
    delivery_date: dt.date
    lines: tuple[DraftLine, ...]

    @property
    def key(self) -> str:
        h = hashlib.sha256(f"{self.supplier}|{self.destination}|{self.delivery_date}".encode())
        for x in sorted(self.lines, key=lambda x: (x.product, x.qty)):
            h.update(f"|{x.product}:{x.qty:g}@{x.unit_price:.4f}".encode())
        return f"promotwin-{h.hexdigest()[:20]}"


def draft_orders(lines: list[DraftLine]) -> list[DraftOrder]:
    """Lines grouped into draft purchases by (supplier, warehouse, delivery date), sorted."""
    groups: dict[tuple[str, str, dt.date], list[DraftLine]] = {}
    for x in lines:
        groups.setdefault((x.supplier, x.destination, x.delivery_date), []).append(x)
    return [DraftOrder(s, d, day, tuple(g)) for (s, d, day), g in sorted(groups.items())]


@runtime_checkable
class ErpAdapter(Protocol):
    """Reads an ERP into canonical tables; writes only draft purchases, and only on request."""

    name: str  # what runs record as the source (never credentials)

    def read_state(self, as_of: dt.date | None = None, history_days: int = 28) -> ErpState:
        """The ERP at the end of ``as_of`` (None: the adapter's latest, e.g. today)."""
        ...

    def read_actions(self, start: dt.date, end: dt.date) -> ErpActions: ...

    def read_sales(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Sales (``erpdata.STATE_TABLES['sales']`` columns) between two dates, inclusive."""
        ...

    def find_draft(self, key: str) -> str | None:
        """The ERP id of the draft written with idempotency ``key``, None if there is none
        (a read: safe to retry)."""
        ...

    def create_draft(self, order: DraftOrder, description: str) -> str:
        """Create one draft purchase carrying ``order.key``; return its ERP id. Called once:
        it is not idempotent, so neither the adapter nor its transport may retry it."""
        ...

    def close(self) -> None: ...
