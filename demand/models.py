"""One protocol for fitted forecast models, and fitting / loading them by kind.

``glm``: the negative-binomial promotion GLM (``demand/fit.py``), its parameters interpretable
and what calibrates the twin. ``gbm``: a global gradient-boosted model (``demand/gbm.py``) on the
promotion features, with a dispersion calibrated on a validation window. Both read the same
canonical history, forecast the same calendar rows (``demand.forecasting.calendar``) and save to
a versioned file that records its kind, so :func:`load_model` needs no flag.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from promotwin.demand.fit import FitOptions
    from promotwin.demand.gbm import GbmOptions

FloatArray = npt.NDArray[np.float64]
KINDS = ("glm", "gbm")


class ForecastModel(Protocol):
    """A fitted model: per calendar row a mean and a negative-binomial ``k``.

    ``predict(rows)``: ``rows`` is a calendar frame as made by ``demand.forecasting.calendar``
    (date, location, sku, group, depth, display, feature, promo, category); returns per row the
    mean units and ``k`` (variance ``m + m**2 / k``), both finite, ``k > 0``.
    """

    period_days: int  # 1 daily, 7 weekly
    history_start: str
    history_end: str
    series: list[tuple[str, str, str]]  # location, sku, group the model can forecast
    sku_category: dict[str, str]
    pickup_share: dict[str, float]  # by location: pickup / (walk-in + pickup)

    @property
    def kind(self) -> str: ...

    def predict(self, rows: pd.DataFrame) -> tuple[FloatArray, FloatArray]: ...

    def save(self, path: str | Path) -> None: ...


def fit_model(
    history: pd.DataFrame,
    kind: str,
    options: FitOptions | GbmOptions | None = None,
    categories: Mapping[str, str] | None = None,
    source: str = "history",
) -> ForecastModel:
    """Fit a ``kind`` ("glm" | "gbm") model to a canonical sales history.

    ``options`` is a ``FitOptions`` (glm) or ``GbmOptions`` (gbm), defaults when ``None``;
    ``categories`` maps SKU -> category where the history has no ``category`` column. A
    ``stockout`` column (on-hand zero at day end) marks censored sales; both kinds treat them
    as lower bounds of demand.
    """
    from promotwin.demand.fit import FitOptions, fit_history
    from promotwin.demand.gbm import GbmOptions, fit_gbm

    if kind == "glm":
        if options is not None and not isinstance(options, FitOptions):
            raise TypeError("the glm model takes FitOptions")
        return fit_history(history, categories, options, source=source)
    if kind == "gbm":
        if options is not None and not isinstance(options, GbmOptions):
            raise TypeError("the gbm model takes GbmOptions")
        return fit_gbm(history, categories, options, source=source)
    raise ValueError(f"unknown model kind {kind!r}: use one of {list(KINDS)}")


def load_model(path: str | Path) -> ForecastModel:
    """Read a model file written by ``save``; the kind comes from the file."""
    from promotwin.demand.fit import FittedModel
    from promotwin.demand.gbm import GbmModel

    path = Path(path)
    try:
        raw: Any = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the model file ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a model file (expected a JSON object)")
    kind = raw.get("kind", "glm")  # files written before gbm existed are GLMs
    if kind == "glm":
        return FittedModel.from_dict(raw)
    if kind == "gbm":
        return GbmModel.from_dict(raw, source=str(path))
    raise ValueError(f"{path}: unknown model kind {kind!r} (this version reads {list(KINDS)})")
