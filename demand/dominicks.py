"""Real weekly retail sales with prices and promotions, from the datasets of R's bayesm.

- Dominick's Finer Foods orange juice (``orangeJuice.rda``): 83 stores x 11 brands, weeks
  40-160 (June 1990 - October 1992), prices, deals and feature ads.
- Dominick's canned tuna (``tuna.rda``): the chain's weekly sales of 7 brands, 338 weeks, log
  prices and a display measure (the share of stores with the brand on display); no feature ads.
- Cheese (``cheese.rda``, IRI scanner data): one sliced-cheese brand's weekly volume at 88
  retailers (52-68 weeks each), price and the share of volume on display.

The files ship in Debian's ``r-cran-bayesm`` package (package licence GPL-2+; Dominick's data
from the James M. Kilts Center, University of Chicago Booth School of Business, for academic
use). ``make data`` fetches it into ``data/external/`` (git-ignored); it is never committed.
All three load into the canonical history format with one promotion rule: a display, a feature
ad, or a temporary price cut (>= 5% under the series' 13-week high).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

RDA_DIR = Path("usr/lib/R/site-library/bayesm/data")
RDA = RDA_DIR / "orangeJuice.rda"
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "data" / "external" / "bayesm"  # repo root
WEEK_ONE = pd.Timestamp("1989-09-14")  # Dominick's week 1 starts Thursday 14 September 1989
BRANDS = (
    "tropicana_premium_64",
    "tropicana_premium_96",
    "florida_natural_64",
    "tropicana_64",
    "minute_maid_64",
    "minute_maid_96",
    "citrus_hill_64",
    "tree_fresh_64",
    "florida_gold_64",
    "dominicks_64",
    "dominicks_128",
)
CATEGORY = "orange_juice"
TUNA_BRANDS = (
    "star_kist_6oz",
    "chicken_of_the_sea_6oz",
    "bumble_bee_solid_6oz",
    "bumble_bee_chunk_6oz",
    "geisha_6oz",
    "bumble_bee_large",
    "hh_chunk_lite_6oz",
)
TPR_WINDOW_WEEKS = 13
TPR_DEPTH = 0.05
# tuna and cheese measure display as a share (of stores, of volume); a week counts as on
# display when at least a quarter is (both measures are bimodal: most weeks near 0 or near 1)
DISPLAY_SHARE = 0.25
CHEESE_START = pd.Timestamp("1990-01-01")  # cheese has no dates: its weeks are counted from here


class DataUnavailable(FileNotFoundError):
    """The Dominick's file is not on this machine (run ``make data``)."""


def find_bayesm(name: str, directory: str | Path | None = None) -> Path:
    """Path to bayesm's ``<name>.rda`` under ``directory`` / ``$PROMOTWIN_DATA_DIR`` /
    data/external (``directory`` may also be the file itself)."""
    candidates = [directory, os.environ.get("PROMOTWIN_DATA_DIR"), DEFAULT_DIR]
    for c in candidates:
        if not c:
            continue
        base = Path(c)
        for p in (base / RDA_DIR / f"{name}.rda", base / f"{name}.rda"):
            if p.is_file():
                return p
        if base.is_file() and base.name == f"{name}.rda":
            return base
    raise DataUnavailable(
        f"bayesm's {name} data not found: run `make data` (apt-get download r-cran-bayesm "
        f"into {DEFAULT_DIR}) or set PROMOTWIN_DATA_DIR"
    )


def find_orange_juice(directory: str | Path | None = None) -> Path:
    """Path to ``orangeJuice.rda`` under ``directory`` / ``$PROMOTWIN_DATA_DIR`` / data/external."""
    if directory is not None and Path(directory).is_file():
        return Path(directory)
    return find_bayesm("orangeJuice", directory)


def _read(name: str, path: str | Path | None) -> pd.DataFrame:
    import rdata

    return pd.DataFrame(rdata.read_rda(str(find_bayesm(name, path)))[name]).reset_index(drop=True)


def mark_promotions(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (sorted by location, SKU, date) with ``promo``: a display, a feature ad, or a
    temporary price cut (>= 5% under the series' 13-week high)."""
    recent_high = frame.groupby(["location", "sku"])["price"].transform(
        lambda s: s.rolling(TPR_WINDOW_WEEKS, center=True, min_periods=1).max()
    )
    cut = frame["price"] <= (1 - TPR_DEPTH) * recent_high
    promo = (frame["display"] > 0) | (frame["feature"] > 0) | cut
    return frame.assign(promo=promo.astype(int))


def load_orange_juice(
    path: str | Path | None = None, stores: Collection[int] | None = None
) -> pd.DataFrame:
    """The data in the canonical history format, one row per store x brand x week.

    ``date`` is the week's first day, ``location`` ``store<N>``, ``sku`` the brand, ``channel``
    walk_in, ``units`` round(exp(logmove)), ``price`` the brand's price (dollars per ounce),
    ``display`` the in-store deal flag, ``feature`` the feature-ad flag, ``category``, and
    ``promo``: a deal, a feature ad or a temporary price cut (>= 5% under the 13-week high).
    """
    import rdata

    raw = rdata.read_rda(str(find_orange_juice(path)))["orangeJuice"]
    yx = pd.DataFrame(raw["yx"]).reset_index(drop=True)
    if stores is not None:
        yx = yx[yx["store"].isin(list(stores))]
    brand = yx["brand"].to_numpy(np.int64)
    prices = yx[[f"price{b}" for b in range(1, 12)]].to_numpy(np.float64)
    own = prices[np.arange(len(yx)), brand - 1]
    frame = pd.DataFrame(
        {
            "date": WEEK_ONE + pd.to_timedelta((yx["week"].to_numpy(np.int64) - 1) * 7, unit="D"),
            "location": "store" + yx["store"].astype(int).astype(str).to_numpy(),
            "sku": np.asarray(BRANDS, dtype=object)[brand - 1],
            "channel": "walk_in",
            "units": np.rint(np.exp(yx["logmove"].to_numpy(np.float64))).astype(np.int64),
            "price": own,
            "display": yx["deal"].astype(int).to_numpy(),
            "feature": yx["feat"].astype(float).round().astype(int).to_numpy(),
            "category": CATEGORY,
        }
    ).sort_values(["location", "sku", "date"], ignore_index=True)
    return mark_promotions(frame)


def load_tuna(path: str | Path | None = None) -> pd.DataFrame:
    """Dominick's canned tuna in the canonical history format: one row per brand x week at one
    location (``dominicks``, the chain), ``units`` the week's movement, ``price`` exp(log
    price), ``display`` the display share >= ``DISPLAY_SHARE``, no feature ads, ``category``
    tuna, and ``promo`` (see the module docstring)."""
    raw = _read("tuna", path)
    weeks = raw["WEEK"].to_numpy(np.int64)
    parts = [
        pd.DataFrame(
            {
                "date": WEEK_ONE + pd.to_timedelta((weeks - 1) * 7, unit="D"),
                "location": "dominicks",
                "sku": brand,
                "channel": "walk_in",
                "units": raw[f"MOVE{b}"].to_numpy(np.int64),
                "price": np.exp(raw[f"LPRICE{b}"].to_numpy(np.float64)),
                "display": (raw[f"NSALE{b}"].to_numpy(np.float64) >= DISPLAY_SHARE).astype(int),
                "feature": 0,
                "category": "tuna",
            }
        )
        for b, brand in enumerate(TUNA_BRANDS, start=1)
    ]
    frame = pd.concat(parts).sort_values(["location", "sku", "date"], ignore_index=True)
    return mark_promotions(frame)


def load_cheese(path: str | Path | None = None) -> pd.DataFrame:
    """The cheese data in the canonical history format: one row per retailer x week, one SKU
    (``sliced_cheese``), ``display`` the display share >= ``DISPLAY_SHARE``, no feature ads.

    The file has no week column; its rows run week by week (every retailer once a week, in
    the same order), so a retailer's n-th row is its n-th week from ``CHEESE_START``."""
    raw = _read("cheese", path)
    week = raw.groupby("RETAILER", sort=False).cumcount().to_numpy(np.int64)
    frame = pd.DataFrame(
        {
            "date": CHEESE_START + pd.to_timedelta(week * 7, unit="D"),
            "location": raw["RETAILER"].astype(str).to_numpy(),
            "sku": "sliced_cheese",
            "channel": "walk_in",
            "units": raw["VOLUME"].to_numpy(np.int64),
            "price": raw["PRICE"].to_numpy(np.float64),
            "display": (raw["DISP"].to_numpy(np.float64) >= DISPLAY_SHARE).astype(int),
            "feature": 0,
            "category": "cheese",
        }
    ).sort_values(["location", "sku", "date"], ignore_index=True)
    return mark_promotions(frame)
