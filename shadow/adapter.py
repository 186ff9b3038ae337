"""The ERP adapter protocol, its errors, and credentials (environment or config file only)."""

from __future__ import annotations

import configparser
import datetime as dt
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
    unit_price: float
    delivery_date: dt.date


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

    def write_drafts(self, lines: list[DraftLine], reference: str) -> pd.DataFrame:
        """Create draft purchase documents; return one row per line (erp_model, erp_id, ...)."""
        ...

    def close(self) -> None: ...
