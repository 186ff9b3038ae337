"""Forecasts for a shadow snapshot from a fitted model (``demand.models``) on the ERP's sales.

``--forecast average`` (the default) keeps the trailing average; ``glm`` / ``gbm`` load the
model file given (``--model``) or fit one on the ERP's sales history and save it there, then
forecast the snapshot's horizon: store rows from store series, a DC's rows from the ecommerce
series of the locations it serves (as ``demand.forecaster.FittedForecaster`` does in the twin).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from promotwin.policies.contract import FloatArray, IntArray

FORECASTS = ("average", "glm", "gbm")


@dataclass(frozen=True)
class ModelForecast:
    mean: FloatArray  # [H, L, S] units per day, day as_of + 1 .. as_of + H
    dispersion: float  # negative-binomial k pooled over the rows (variance m + m**2 / k)
    model_file: str
    fitted: bool  # fitted in this run (else loaded)


def model_forecast(
    kind: str,
    model_file: Path,
    history: pd.DataFrame,
    categories: dict[str, str],
    as_of: dt.date,
    horizon: int,
    locations: list[str],
    skus: list[str],
    serving_dc: IntArray,
) -> ModelForecast:
    """Load ``model_file`` (or fit a ``kind`` model on ``history`` and save it there), then
    forecast ``horizon`` days after ``as_of`` onto the snapshot's locations and SKUs."""
    from promotwin.demand.forecasting import calendar, predict
    from promotwin.demand.models import fit_model, load_model

    fitted = not model_file.exists()
    if fitted:
        if not len(history):
            raise ValueError(f"--forecast {kind}: the ERP has no sales history to fit on")
        model = fit_model(history, kind, categories=categories, source="the ERP's sales")
        model_file.parent.mkdir(parents=True, exist_ok=True)
        model.save(model_file)
    else:
        model = load_model(model_file)
        if model.kind != kind:
            raise ValueError(
                f"--model {model_file} is a {model.kind} model: use --forecast {model.kind}"
            )
    if model.period_days != 1:
        raise ValueError(
            f"--model {model_file}: fitted on {model.period_days}-day periods, not days"
        )
    rows = calendar(model, as_of + dt.timedelta(days=1), horizon)
    mean, k = predict(model, rows)
    li = {x: i for i, x in enumerate(locations)}
    si = {x: i for i, x in enumerate(skus)}
    l_idx = rows["location"].astype(str).map(li)
    s_idx = rows["sku"].astype(str).map(si)
    ok = (l_idx.notna() & s_idx.notna()).to_numpy()
    loc = l_idx[ok].to_numpy(np.int64)
    ecommerce = (rows["group"] != "store").to_numpy()[ok]
    loc = np.where(ecommerce, serving_dc[loc], loc)  # ecommerce is served from the DC's stock
    day = (rows["date"] - pd.Timestamp(as_of + dt.timedelta(days=1))).dt.days.to_numpy()[ok]
    out = np.zeros((horizon, len(locations), len(skus)))
    np.add.at(out, (day, loc, s_idx[ok].to_numpy(np.int64)), mean[ok])
    m, kk = mean[ok], k[ok]
    dispersion = float((m**2).sum() / max((m**2 / kk).sum(), 1e-12)) if len(m) else 1e6
    return ModelForecast(out, dispersion, str(model_file), fitted)
