"""The fitted GLM's result types and their strict-JSON file: options, estimates with intervals,
one category's fit and the whole model (see ``demand/fit.py`` for the model itself)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from promotwin.demand.glm_design import Design, FloatArray, series_key

FORMAT = "demand-model/1"


def _strict(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


@dataclass(frozen=True)
class FitOptions:
    """How to fit. ``post_promo_periods`` defaults to 7 days (daily) or 1 week (weekly data)."""

    post_promo_periods: int | None = None
    fill_zeros: bool = True  # a missing date/location/sku row means zero sales, no promotion
    seasonality: bool | None = None  # None: fit it when the history spans >= 300 days
    ci_level: float = 0.90
    max_refits: int = 12
    tol: float = 1e-5
    # forecast refinements (the twin-facing parameters stay precision-weighted summaries):
    series_effects: bool = True  # shrunk location x SKU x channel-group baselines
    sku_lifts: bool = True  # display/feature lift per SKU, shrunk to the category mean
    cross_price: bool = False  # per-SKU slope on the other SKUs' mean log(1 - depth)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and ``ci_level`` interval."""

    value: float
    se: float
    low: float
    high: float

    @classmethod
    def wald(cls, value: float, se: float, level: float) -> Estimate:
        z = float(stats.norm.ppf(0.5 + level / 2))
        return cls(float(value), float(se), float(value - z * se), float(value + z * se))

    def map(self, f: Any) -> Estimate:
        """Transform value and bounds by a monotone increasing ``f`` (se by the delta method)."""
        v = float(f(self.value))
        eps = 1e-6
        slope = (float(f(self.value + eps)) - float(f(self.value - eps))) / (2 * eps)
        return Estimate(v, abs(slope) * self.se, float(f(self.low)), float(f(self.high)))

    @classmethod
    def from_json(cls, raw: Mapping[str, float | None]) -> Estimate:
        """From the saved form, where ``None`` stands for not estimated."""
        return cls(**{k: float("nan") if v is None else float(v) for k, v in raw.items()})

    def covers(self, truth: float) -> bool:
        return self.low <= truth <= self.high


@dataclass
class CategoryFit:
    """One category's GLM: parameter names, estimates, covariance and the NB alpha."""

    category: str
    columns: list[str]
    coef: list[float]
    cov: list[list[float]]
    alpha: float
    n_obs: int
    refits: int
    converged: bool
    skus: list[str]
    locations: list[str]
    seasonal: bool
    sku_lifts: bool = False
    cross_price: bool = False
    # "location|sku|group" -> [log effect, its posterior variance] (shrunk random effect)
    series_effect: dict[str, list[float]] = field(default_factory=dict)

    def design(self, weekday: bool) -> Design:
        return Design(
            self.locations, self.skus, weekday, self.seasonal, self.sku_lifts, self.cross_price
        )

    def series_terms(self, rows: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
        """Each row's series effect and its variance (0 for series without one)."""
        if not self.series_effect:
            return np.zeros(len(rows)), np.zeros(len(rows))
        key = series_key(rows)
        u = key.map({k: v[0] for k, v in self.series_effect.items()}).fillna(0.0)
        v = key.map({k: v[1] for k, v in self.series_effect.items()}).fillna(0.0)
        return np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)

    def param(self, name: str) -> tuple[float, float] | None:
        if name not in self.columns:
            return None
        i = self.columns.index(name)
        return self.coef[i], math.sqrt(max(self.cov[i][i], 0.0))


@dataclass
class FittedModel:
    """Everything the forecast and the twin need; ``save``/``load`` as JSON."""

    period_days: int
    post_promo_periods: int
    ci_level: float
    history_start: str
    history_end: str
    categories: dict[str, CategoryFit]
    sku_category: dict[str, str]
    elasticity: dict[str, Estimate]  # pooled (shrunk) per SKU
    elasticity_raw: dict[str, Estimate]  # per-SKU GLM estimate, where identified
    category_elasticity: dict[str, dict[str, float]]  # mean, se, tau
    display_lift: Estimate
    feature_lift: Estimate
    cannibalisation: Estimate
    post_promo_dip: Estimate
    dispersion: float  # NB k = 1 / alpha, pooled
    weekday: list[float]  # 7 multipliers, mean 1 (all 1 for weekly data)
    pickup_share: dict[str, float]  # by location: pickup / (walk-in + pickup)
    last_promo: dict[str, str]  # "location|sku" -> last promoted date in the history
    series: list[tuple[str, str, str]] = field(default_factory=list)  # location, sku, group
    # per-SKU display/feature log-lift, shrunk: "display[sku]" / "feature[sku]" -> Estimate
    sku_lift: dict[str, Estimate] = field(default_factory=dict)
    source: str = ""
    notes: list[str] = field(default_factory=list)

    # -- persistence --------------------------------------------------------------------------

    kind: ClassVar[str] = "glm"

    def predict(self, rows: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
        """Predictive mean and NB ``k`` of each calendar row (see ``demand/glm_predict.py``)."""
        # imported here: the prediction code needs these types, not the other way round
        from promotwin.demand.glm_predict import predict_glm

        return predict_glm(self, rows)

    def to_dict(self) -> dict[str, Any]:
        """The model as plain data; a value that was not estimated (NaN) becomes ``None``."""
        return {"format": FORMAT, "kind": self.kind, **_strict(asdict(self))}

    def save(self, path: str | Path) -> None:
        """Strict JSON (never ``NaN``/``Infinity``, which other JSON readers reject)."""
        text = json.dumps(self.to_dict(), indent=1, sort_keys=False, allow_nan=False)
        Path(path).write_text(text + "\n")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FittedModel:
        if raw.get("format") != FORMAT:
            raise ValueError(
                f"not a fitted demand model (format {raw.get('format')!r}, need {FORMAT})"
            )
        d = {k: v for k, v in raw.items() if k not in ("format", "kind")}
        est = ("display_lift", "feature_lift", "cannibalisation", "post_promo_dip")
        for k in est:
            d[k] = Estimate.from_json(d[k])
        for k in ("elasticity", "elasticity_raw", "sku_lift"):
            d[k] = {s: Estimate.from_json(e) for s, e in d.get(k, {}).items()}
        d["categories"] = {c: CategoryFit(**v) for c, v in d["categories"].items()}
        d["series"] = [tuple(x) for x in d.get("series", [])]
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> FittedModel:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the fitted model ({exc})") from None
        return cls.from_dict(raw)

    def summary(self) -> pd.DataFrame:
        """One row per parameter: value, se, interval."""
        rows = [
            ("display_lift", "", self.display_lift),
            ("feature_lift", "", self.feature_lift),
            ("cannibalisation", "", self.cannibalisation),
            ("post_promo_dip", "", self.post_promo_dip),
        ]
        rows += [("elasticity", s, e) for s, e in self.elasticity.items()]
        return pd.DataFrame(
            [(n, s, e.value, e.se, e.low, e.high) for n, s, e in rows],
            columns=["parameter", "sku", "value", "se", "low", "high"],
        )
