"""Dominick's Finer Foods orange juice: real weekly store x brand sales with prices and promotions.

The data ships in Debian's ``r-cran-bayesm`` package (``data/orangeJuice.rda``; package licence
GPL-2+; the data comes from the James M. Kilts Center, University of Chicago Booth School of
Business, for academic use). ``make data`` fetches it into ``data/external/`` (git-ignored); it
is never committed. 83 stores x 11 brands, weeks 40-160 (June 1990 - October 1992).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

RDA = Path("usr/lib/R/site-library/bayesm/data/orangeJuice.rda")
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
TPR_WINDOW_WEEKS = 13
TPR_DEPTH = 0.05


class DataUnavailable(FileNotFoundError):
    """The Dominick's file is not on this machine (run ``make data``)."""


def find_orange_juice(directory: str | Path | None = None) -> Path:
    """Path to ``orangeJuice.rda`` under ``directory`` / ``$PROMOTWIN_DATA_DIR`` / data/external."""
    candidates = [directory, os.environ.get("PROMOTWIN_DATA_DIR"), DEFAULT_DIR]
    for c in candidates:
        if not c:
            continue
        base = Path(c)
        for p in (base / RDA, base / "orangeJuice.rda", base):
            if p.is_file():
                return p
    raise DataUnavailable(
        "Dominick's orange juice data not found: run `make data` (apt-get download r-cran-bayesm "
        f"into {DEFAULT_DIR}) or set PROMOTWIN_DATA_DIR"
    )


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

    file = Path(path) if path is not None and Path(path).is_file() else find_orange_juice(path)
    raw = rdata.read_rda(str(file))["orangeJuice"]
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
    # promoted: a deal, a feature ad, or a temporary price cut (>= 5% under the 13-week high)
    recent_high = frame.groupby(["location", "sku"])["price"].transform(
        lambda s: s.rolling(TPR_WINDOW_WEEKS, center=True, min_periods=1).max()
    )
    cut = frame["price"] <= (1 - TPR_DEPTH) * recent_high
    frame["promo"] = ((frame["display"] > 0) | (frame["feature"] > 0) | cut).astype(int)
    return frame
