"""Integer allocation: cut quantities down to a limit per group, keeping every unit that fits."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def cut_to_limit(qty: npt.ArrayLike, group: npt.ArrayLike, limit: npt.ArrayLike) -> IntArray:
    """Scale ``qty`` down so each group's total is at most ``limit[group]`` (largest remainder).

    Groups within their limit are untouched. Over-limit groups get ``floor(qty * ratio)`` per line,
    then the units still free under the limit go one each to the lines with the largest
    fractional parts (ties to the earlier line), so small lines are not all rounded to zero.
    """
    q = np.asarray(qty, dtype=np.int64)
    g = np.asarray(group, dtype=np.int64)
    cap = np.floor(np.asarray(limit, dtype=np.float64))
    if not len(q):
        return q.copy()
    total = np.bincount(g, q, minlength=len(cap))
    over = total > cap
    if not over[g].any():
        return q.copy()
    ratio = np.where(over, cap / np.maximum(total, 1), 1.0)
    exact = q * ratio[g]
    base = np.floor(exact).astype(np.int64)
    spare = (np.where(over, cap, total) - np.bincount(g, base, minlength=len(cap))).astype(np.int64)
    frac = exact - base
    order = np.lexsort((np.arange(len(q)), -frac, g))
    first_of_group = np.searchsorted(g[order], np.arange(len(cap)))
    rank = np.empty(len(q), np.int64)
    rank[order] = np.arange(len(q)) - first_of_group[g[order]]
    bonus = (rank < spare[g]) & (frac > 0) & over[g]
    return base + bonus
