"""Charts of a run (matplotlib, no display needed).

Drawn on a bare ``matplotlib.figure.Figure`` (no pyplot): a notebook's backend and open figures
stay as the user had them, and matplotlib loads only when a chart is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from promotwin.twin.ledger import Kind

if TYPE_CHECKING:
    from promotwin.twin.run import RunResult


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
    for column in stock.columns:
        top.plot(stock.index, stock[column], label=f"on hand at {column}")
    top.set_ylabel("units of promoted SKUs")
    top.legend(loc="upper right")
    bottom.bar(lost.index, lost.to_numpy(), color="tab:red", label="lost sales, promoted SKUs")
    bottom.set_ylabel("units lost")
    bottom.set_xlabel("day")
    for ax in (top, bottom):
        for start, end in promo_windows:
            ax.axvspan(start, end + 1, color="gold", alpha=0.2)
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
        ax.plot(lost.index, lost.to_numpy(), label=r.policy)
    ax.set_xlabel("day")
    ax.set_ylabel("lost units, promoted SKUs")
    ax.set_title(f"{results[0].scenario}: lost sales of promoted SKUs by policy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
