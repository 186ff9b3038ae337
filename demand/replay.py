"""Replay a sales history exactly instead of generating demand.

The canonical history table: ``date, location, sku, channel, units`` (optional ``price``,
``promo``). ``channel`` is ``walk_in``, ``pickup`` or ``ecommerce``; ecommerce rows may name the
DC that served them or a store (then they count at the store's DC).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from promotwin.demand.model import DayDemand
from promotwin.scenarios.network import Network
from promotwin.scenarios.schema import Scenario

CHANNELS = ("walk_in", "pickup", "ecommerce")
REQUIRED = ("date", "location", "sku", "channel", "units")


class HistoryError(ValueError):
    """A history file that cannot be replayed."""


def read_table(path: str | Path) -> pd.DataFrame:
    """A history table from CSV or Parquet; ``HistoryError`` naming the file if unreadable."""
    path = Path(path)
    if path.is_dir():
        raise HistoryError(f"{path} is a folder: give the history CSV or Parquet file")
    if not path.exists():
        raise HistoryError(f"{path}: history file not found; check the path")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        frame = pd.read_csv(path, encoding="utf-8", dtype={"location": str, "sku": str})
    except UnicodeDecodeError:
        raise HistoryError(f"{path}: not UTF-8 text: save the CSV as UTF-8") from None
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HistoryError(f"{path}: cannot read history ({first})") from None
    if len(frame.columns) == 1 and not set(REQUIRED) <= set(frame.columns):
        header = str(frame.columns[0])
        sep = next((c for c in ";\t|" if c in header), None)
        if sep is not None:
            raise HistoryError(
                f"{path}: the columns are separated by {sep!r}, not commas: save the file "
                "with a comma separator (CSV)"
            )
    return frame


def read_history(path: str | Path) -> pd.DataFrame:
    frame = read_table(path)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise HistoryError(f"{path}: missing column(s) {missing}; need {list(REQUIRED)}")
    return frame


class ReplayDemand:
    """Demand per day taken verbatim from a history table."""

    def __init__(self, history: pd.DataFrame, scenario: Scenario, network: Network):
        self.net = network
        frame = history.copy()
        frame["day"] = (pd.to_datetime(frame["date"]) - pd.Timestamp(scenario.start_date)).dt.days
        loc = frame["location"].astype(str).map(network.location_index)
        sku = frame["sku"].astype(str).map(network.sku_index)
        bad = frame[loc.isna() | sku.isna() | ~frame["channel"].isin(CHANNELS)]
        if len(bad):
            row = bad.iloc[0]
            raise HistoryError(
                f"history row {bad.index[0]}: unknown location/sku/channel "
                f"({row['location']}, {row['sku']}, {row['channel']}); {len(bad)} such row(s). "
                f"Channels are {CHANNELS}; locations and SKUs must exist in the scenario."
            )
        if (frame["units"] < 0).any():
            raise HistoryError("history has negative units: demand must be >= 0")
        loc_idx = loc.to_numpy(np.int64)
        is_ecom = (frame["channel"] == "ecommerce").to_numpy()
        loc_idx = np.where(is_ecom, network.serving_dc[loc_idx], loc_idx)
        frame = frame.assign(loc=loc_idx, sku_idx=sku.to_numpy(np.int64))
        self._days: dict[int, pd.DataFrame] = {
            int(str(day)): frame.iloc[rows] for day, rows in frame.groupby("day").indices.items()
        }

    def sample(self, day: int, rng: np.random.Generator | None = None) -> DayDemand:
        """The recorded demand of ``day`` (``rng`` is ignored: a replay is exact)."""
        n_dcs, n_skus = self.net.n_dcs, self.net.n_skus
        arrays = {c: np.zeros((self.net.n_locations, n_skus), np.int64) for c in CHANNELS}
        group = self._days.get(day)
        if group is not None:
            for channel, g in group.groupby("channel"):
                np.add.at(
                    arrays[str(channel)],
                    (g["loc"].to_numpy(), g["sku_idx"].to_numpy()),
                    g["units"].to_numpy(np.int64),
                )
        by_location = arrays["walk_in"] + arrays["pickup"] + arrays["ecommerce"]
        cells = np.flatnonzero(by_location[n_dcs:] > 0)
        return DayDemand(
            by_location=by_location,
            n_dcs=n_dcs,
            store_cells=cells,
            store_pickup=arrays["pickup"][n_dcs:].ravel()[cells],
        )
