"""Array type aliases, the one "unlimited" quantity, and reusable work buffers: shared by every
layer (it imports numpy only, so the layering of DESIGN.md is unaffected)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ObjArray = npt.NDArray[np.object_]

#: Units per day at or above which a capacity or throughput counts as unlimited (the optimizer
#: builds no row for it; execution does not cut to it).
UNLIMITED = 1e8


class WorkBuffers:
    """Work arrays for one day's step, kept from day to day by name: a fresh 8 MB temporary
    costs more in page faults (the kernel zeroing new memory) than the arithmetic done in it.
    A buffer's contents are whatever the last user left: write before reading."""

    def __init__(self) -> None:
        self._arrays: dict[str, npt.NDArray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type = np.float64) -> npt.NDArray:
        buf = self._arrays.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._arrays[name] = np.empty(shape, dtype)
        return buf
