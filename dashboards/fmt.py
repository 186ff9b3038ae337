"""Number formats, colours and plain-words errors shared by every dashboard page.

One place decides how money, percentages and units look, and what colour means what, so the
pages agree: red is always a shortfall or a loss, green a gain, blue the current plan/baseline.
"""

from __future__ import annotations

import math

from promotwin.experiments.kpis import DEFAULT_CURRENCY, info

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
CURRENCY = SYMBOLS[DEFAULT_CURRENCY]
GOOD = "#1a9850"  # gains: more margin, higher fill rate
BAD = "#d73027"  # shortfalls: lost sales, stockouts, margin lost
BASELINE = "#4575b4"  # the current plan / the baseline policy
VARIANT = "#f46d43"  # the variant being tried
SHORTFALL_CMAP = "Reds"  # heatmaps of lost units / stockout days: darker = worse


def _missing(v: float | None) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def symbol(currency: str = DEFAULT_CURRENCY) -> str:
    """``$`` for USD, ``€`` for EUR; other codes as they are, with a space (``CHF 12``)."""
    return SYMBOLS.get(currency, f"{currency} ")


def money(v: float | None, signed: bool = False, currency: str = DEFAULT_CURRENCY) -> str:
    """``$1,234`` / ``$3.87M`` (``CHF 1,234`` for a code without a symbol); ``–`` when missing."""
    if _missing(v):
        return "–"
    assert v is not None
    sign = ("+" if v > 0 else "−" if v < 0 else "") if signed else ("−" if v < 0 else "")
    a = abs(v)
    unit = symbol(currency)
    if a >= 1e6:
        return f"{sign}{unit}{a / 1e6:,.2f}M"
    return f"{sign}{unit}{a:,.0f}"


def pct(v: float | None, signed: bool = False, digits: int = 1) -> str:
    """A share as a percentage: ``82.1%`` (``+3.0%`` when signed)."""
    if _missing(v):
        return "–"
    assert v is not None
    return f"{v:+.{digits}%}" if signed else f"{v:.{digits}%}"


def points(v: float | None) -> str:
    """A change of a rate in percentage points: ``+1.2 pts``."""
    if _missing(v):
        return "–"
    assert v is not None
    return f"{100 * v:+.1f} pts"


def units(v: float | None, signed: bool = False) -> str:
    """``16,795 units``."""
    if _missing(v):
        return "–"
    assert v is not None
    return f"{v:+,.0f} units" if signed else f"{v:,.0f} units"


def count(v: float | None, signed: bool = False) -> str:
    if _missing(v):
        return "–"
    assert v is not None
    return f"{v:+,.0f}" if signed else f"{v:,.0f}"


def kpi_value(kpi: str, v: float | None, currency: str = DEFAULT_CURRENCY) -> str:
    """A KPI as a planner reads it, by its kind (rate, money, units, count)."""
    kind = info(kpi).kind
    if kind == "rate":
        return pct(v)
    if kind == "money":
        return money(v, currency=currency)
    if kind == "units":
        return units(v)
    if kind == "count":
        return count(v)
    return "–" if _missing(v) else f"{v:,.2f}"


def kpi_change(
    kpi: str, new: float | None, old: float | None, currency: str = DEFAULT_CURRENCY
) -> str:
    """The change from ``old`` to ``new`` in the KPI's own terms (points for rates)."""
    if _missing(new) or _missing(old):
        return "–"
    assert new is not None and old is not None
    d = new - old
    kind = info(kpi).kind
    if kind == "rate":
        return points(d)
    if kind == "money":
        return money(d, signed=True, currency=currency)
    if kind == "units":
        return units(d, signed=True)
    return count(d, signed=True)


def kpi_label(kpi: str, currency: str = DEFAULT_CURRENCY) -> str:
    """The KPI's label with its unit: ``lost sales (units)``, ``gross margin ($)``."""
    meta = info(kpi)
    units_of = {"rate": "%", "money": symbol(currency).strip(), "units": "units", "count": "count"}
    unit = units_of.get(meta.kind)
    return f"{meta.label} ({unit})" if unit else meta.label


def plain_error(exc: BaseException) -> str:
    """An exception as one or two plain sentences for a page (never a traceback)."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return f"File not found: {text}. Check the path and try again."
    if isinstance(exc, ValueError):
        return text
    return (
        f"Something went wrong ({type(exc).__name__}: {text}). Try other settings; if it "
        "persists, report it with what you selected."
    )
