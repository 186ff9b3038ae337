"""Strict JSON for every file the project writes: no ``NaN`` or ``Infinity``.

Python's ``json`` writes those by default, and they are not JSON: other readers (browsers,
``jq``, PostgreSQL) refuse the file. A value that is not a finite number is written as ``null``
(no value), and ``allow_nan=False`` makes anything missed an error instead of a bad file.
"""

from __future__ import annotations

import json
import math
from typing import IO, Any


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (also numpy's) replaced by ``None``, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if type(obj).__module__ == "numpy" and hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return finite(obj.item())
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(finite(obj), allow_nan=False, **kwargs)


def dump(obj: Any, fp: IO[str], **kwargs: Any) -> None:
    json.dump(finite(obj), fp, allow_nan=False, **kwargs)
