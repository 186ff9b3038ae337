"""Run small dense linear algebra on one BLAS thread.

The GLM refits solve many small least-squares problems; on a loaded machine a multi-threaded
OpenBLAS oversubscribes the cores and runs them 5-10x slower than one thread (measured here:
0.5 s vs 3-6 s per fit).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from threadpoolctl import threadpool_limits


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (restored afterwards)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield
