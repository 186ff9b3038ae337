"""Integer allocation: cut quantities down to a limit per group, keeping every unit that fits."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from promotwin.arrays import IntArray


def cut_to_limit(qty: npt.ArrayLike, group: npt.ArrayLike, limit: npt.ArrayLike) -> IntArray:
    """Scale ``qty`` down so each group's total is at most ``limit[group]`` (largest remainder).

    Groups within their limit are untouched. Over-limit groups get ``floor(qty * ratio)`` per line,
    then the units still free under the limit go one each to the lines with the largest
    fractional parts (ties to the earlier line), so small lines are not all rounded to zero.
    """
    q = np.asarray(qty, dtype=np.int64)
    g = np.asarray(group, dtype=np.int64)
    if not len(q):
        return q.copy()
    limit = np.asarray(limit)
    if limit.ndim == 1 and len(limit) > g.max() + 1:  # groups past the last line's are unused
        limit = limit[: g.max() + 1]
    cap = np.floor(np.asarray(limit, dtype=np.float64))
    if q.sum() <= cap.min(initial=np.inf):  # no group can be over its limit: nothing to count
        return q.copy()
    total = np.bincount(g, q, minlength=len(cap))
    over = total > cap
    if not over.any():  # checked per group first: often no group is over its limit
        return q.copy()
    line_over = over[g]
    # Only the lines of over-limit groups change, so only they are sorted (a day's plan can have
    # a million lines and a handful of short groups); the others keep their quantity.
    out = q.copy()
    sel = np.flatnonzero(line_over)
    q, g = q[sel], g[sel]
    exact = q * (cap[g] / np.maximum(total[g], 1))
    base = np.floor(exact).astype(np.int64)
    spare = (cap - np.bincount(g, base, minlength=len(cap))).astype(np.int64)
    frac = exact - base
    out[sel] = base
    # Only lines with a fractional part can get a unit, and in their group they rank ahead of the
    # lines without one, so only they are ranked: by group, largest fraction, then line order
    # (lexsort is stable). Short DCs can put most of a day's lines in over-limit groups.
    part = np.flatnonzero(frac > 0)
    g = g[part]
    order = np.lexsort((-frac[part], g))
    sorted_group = g[order]
    rank = np.empty(len(part), np.int64)
    rank[order] = np.arange(len(part)) - np.searchsorted(sorted_group, sorted_group)
    out[sel[part]] += rank < spare[g]
    return out
