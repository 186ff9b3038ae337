"""Run small dense linear algebra on one BLAS thread.

The GLM refits solve many small least-squares problems; on a loaded machine a multi-threaded
OpenBLAS oversubscribes the cores and runs them 5-10x slower than one thread (measured here:
0.5 s vs 3-6 s per fit). Without ``threadpoolctl`` in the environment, this calls the thread
setter of the OpenBLAS that numpy bundles, when it can be found; otherwise it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_GETTERS = (
    "scipy_openblas_get_num_threads64_",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
)


@functools.cache
def _openblas() -> tuple[ctypes._CFuncPtr, ctypes._CFuncPtr] | None:  # type: ignore[name-defined]
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(libs.glob("libscipy_openblas*.so*")) + sorted(libs.glob("libopenblas*.so*")):
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        setter = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        if setter is not None and getter is not None:
            setter.argtypes = [ctypes.c_int]
            getter.restype = ctypes.c_int
            return setter, getter
    return None


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """Limit numpy's OpenBLAS to one thread inside the block (restored afterwards)."""
    fns = _openblas()
    if fns is None:
        yield
        return
    setter, getter = fns
    before = int(getter())
    setter(1)
    try:
        yield
    finally:
        setter(before)
