"""Charts of a run (matplotlib, no display needed).

Drawn on a bare ``matplotlib.figure.Figure`` (no pyplot): a notebook's backend and open figures
stay as the user had them, and matplotlib loads only when a chart is drawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from promotwin.twin.ledger import Kind

if TYPE_CHECKING:
    from promotwin.twin.run import RunResult


def _dates(result: RunResult, days: Iterable[int]) -> npt.NDArray[np.datetime64]:
    """The calendar date of each simulation day (planners read dates, not day numbers)."""
    assert result.source is not None, "simulate() records the scenario a run came from"
    offsets = np.fromiter((int(d) for d in days), np.int64).astype("timedelta64[D]")
    return np.datetime64(result.source.start_date, "D") + offsets


def _date_axis(ax: Any, label: str = "date") -> None:
    from matplotlib import dates, ticker

    ax.xaxis.set_major_locator(dates.AutoDateLocator(maxticks=8))
    ax.xaxis.set_major_formatter(dates.DateFormatter("%Y-%m-%d"))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel(label)
    for tick in ax.get_xticklabels():
        tick.set_rotation(30)
        tick.set_horizontalalignment("right")


def promoted_category_chart(
    result: RunResult, path: Path, promo_windows: list[tuple[int, int]]
) -> None:
    """On-hand units of promoted SKUs (stores vs DCs) and their lost sales per day."""
    from matplotlib.figure import Figure

    daily = result.daily
    is_dc = daily["location"].isin(result.dc_ids)
    stock = daily.assign(where=is_dc.map({True: "DCs", False: "stores"}))
    stock = stock.pivot_table(index="day", columns="where", values="promo_on_hand", aggfunc="sum")
    led = result.ledger
    lost = led[(led["kind"] == int(Kind.LOST)) & led["promoted"]].groupby("day")["qty"].sum()
    lost = lost.reindex(stock.index, fill_value=0)
    fig = Figure(figsize=(9, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    when = _dates(result, stock.index)
    for column in stock.columns:
        top.plot(when, stock[column], label=f"on hand at {column} (end of day)")
    top.set_ylabel("units of promoted SKUs")
    top.legend(loc="upper right")
    bottom.bar(when, lost.to_numpy(), color="tab:red", label="lost sales, promoted SKUs")
    bottom.set_ylabel("units lost per day")
    for ax in (top, bottom):
        for start, end in promo_windows:
            first, after = _dates(result, (start, end + 1))
            ax.axvspan(first, after, color="gold", alpha=0.2)
        _date_axis(ax)
    top.set_xlabel("")
    top.set_title(f"{result.scenario} under {result.policy} (seed {result.seed}); promotion shaded")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def comparison_chart(results: list[RunResult], path: Path) -> None:
    """Promoted-SKU lost sales per day, one line per policy."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    for r in results:
        led = r.ledger
        lost = led[(led["kind"] == int(Kind.LOST)) & led["promoted"]].groupby("day")["qty"].sum()
        lost = lost.reindex(range(r.days), fill_value=0)
        ax.plot(_dates(r, lost.index), lost.to_numpy(), label=r.policy)
    _date_axis(ax)
    ax.set_ylabel("lost units per day, promoted SKUs")
    ax.set_title(f"{results[0].scenario}: lost sales of promoted SKUs by policy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
