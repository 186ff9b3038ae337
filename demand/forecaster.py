"""The forecast seam between the twin and whatever forecasts demand.

A ``Forecaster`` has a run lifecycle like a policy: ``start()`` at the start of each run forgets
everything learnt in-season; each day the twin asks for ``window(day, horizon)`` (the mean
``[H, L, S]`` for days ``day+1 .. day+H``, read-only) and ``today(day)`` (the forecast of ``day``
made the day before, for the forecast-error KPIs), and tells it what sold (``observe``).

Built in: ``oracle`` (the generator's own mean: an upper bound, never a result to publish),
``plan`` (the planners' own forecast: the scenario as planned, none of the hidden truth),
``glm`` (a fitted model file forecasting the scenario's calendar with the planned promotions),
and ``+sensing`` on top of any of them (``demand/sensing.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from promotwin.demand.forecast import RollingForecast
from promotwin.demand.model import BoolArray, DemandModel, FloatArray, IntArray

if TYPE_CHECKING:
    import pandas as pd

    from promotwin.demand.models import ForecastModel

FORECASTERS = ("oracle", "plan", "glm", "gbm")
MIN_LOG_SD = 0.05  # a prior never claims to know an uplift better than +-5%
CALENDAR_PAD_DAYS = 60  # forecast this far past the horizon (a policy's window runs past it)


class ForecasterError(ValueError):
    """A forecaster cannot be built as asked (bad name, missing or unusable model file)."""


class Forecaster(Protocol):
    name: str  # e.g. "glm+sensing"
    model_file: str | None
    senses: bool  # wants ``observe()`` each day (the twin builds the sales arrays only then)

    def start(self, world: DemandModel, rng: np.random.Generator) -> None:
        """Start a run. ``world`` is the twin's demand model: a learned forecaster reads only
        its scenario, network and promotion cells (what a planner knows); the oracle also
        reads its mean. ``rng`` is the run's forecast stream."""
        ...

    def window(self, day: int, horizon: int) -> FloatArray:
        """Mean demand ``[H, L, S]`` (units) for days ``day+1 .. day+H`` (do not modify)."""
        ...

    def today(self, day: int) -> FloatArray:
        """The forecast ``[L, S]`` of ``day`` made the day before."""
        ...

    @property
    def dispersion(self) -> float:
        """Negative-binomial k of the forecast error: variance = mu + mu**2 / k."""
        ...

    def uplift_log_sd(self) -> float:
        """The sd of the log of the promotion uplift this forecaster assumes (its uncertainty)."""
        ...

    def observe(self, day: int, sales: FloatArray, stocked_out: BoolArray) -> None:
        """``day``'s units sold ``[L, S]``; on ``stocked_out`` cells (all their stock sold, on
        hand zero) demand was censored: it was at least ``sales``."""
        ...

    def notes(self) -> tuple[str, ...]:
        """What the forecaster has learnt in-season, in words a planner reads."""
        ...

    def cell_notes(self) -> tuple[IntArray | None, tuple[str, ...]]:
        """Which of ``notes()`` explains each cell's forecast: ``[L, S]`` indices (-1: none),
        or None when nothing was learnt; the notes, the largest change first."""
        ...


class OracleForecaster:
    """Today's twin forecast: the generator's own mean (hidden truth included) with the
    planners' log-normal error on the uplift. An upper bound: no retailer has it."""

    name = "oracle"
    model_file: str | None = None
    senses = False

    def __init__(self) -> None:
        self._rolling: RollingForecast | None = None

    def start(self, world: DemandModel, rng: np.random.Generator) -> None:
        """Draw the run's uplift estimates (a window of one day until a horizon is asked for)."""
        self._rolling = RollingForecast(world, 1, rng)

    def _forecast(self, horizon: int | None = None) -> RollingForecast:
        r = self._rolling
        if r is None:
            raise RuntimeError("start() the forecaster before asking for forecasts")
        if horizon is not None and r.horizon != max(1, horizon):
            r = self._rolling = RollingForecast(r.model, horizon, None, r.uplifts)
        return r

    def window(self, day: int, horizon: int) -> FloatArray:
        return self._forecast(horizon).window(day)

    def today(self, day: int) -> FloatArray:
        return self._forecast().today(day)

    @property
    def dispersion(self) -> float:
        return self._forecast().model.params.dispersion

    def uplift_log_sd(self) -> float:
        return max(self._forecast().model.params.forecast_error, MIN_LOG_SD)

    def observe(self, day: int, sales: FloatArray, stocked_out: BoolArray) -> None:
        """The oracle knows the mean already: nothing to learn."""

    def notes(self) -> tuple[str, ...]:
        return ()

    def cell_notes(self) -> tuple[IntArray | None, tuple[str, ...]]:
        return None, ()


class PlanForecaster(OracleForecaster):
    """The planners' forecast: the scenario's plan (its elasticities and lifts, none of the
    hidden truth) with their estimation error on the uplift, drawn as the oracle draws it."""

    name = "plan"

    def start(self, world: DemandModel, rng: np.random.Generator) -> None:
        plan = DemandModel(world.scenario, world.net, view="plan")
        self._rolling = RollingForecast(plan, 1, rng)


def _uplift_log_sd(model: ForecastModel, promoted: pd.DataFrame, k: FloatArray) -> float:
    """How uncertain the model's promoted means are (log sd), for the sensing prior's strength.

    GLM: the parameters' share of the predictive variance, ``exp(s^2) = (1 + 1/k') /
    (1 + alpha)`` (see demand/forecasting.py). gbm has no parameter covariance: its calibrated
    k' on promoted rows is taken whole, ``exp(s^2) = 1 + 1/k'`` — a weaker prior, so sensing
    moves faster than it would with the GLM's narrower one."""
    from promotwin.demand.fit import FittedModel

    if isinstance(model, FittedModel):
        alpha = promoted["category"].map({c: cf.alpha for c, cf in model.categories.items()})
        s2 = np.log((1 + 1 / k) / (1 + alpha.to_numpy(np.float64)))
    else:
        s2 = np.log1p(1 / k)
    return math.sqrt(max(float(np.mean(s2)), 0.0))


class FittedForecaster:
    """A fitted model file (``twin fit``) forecasting the scenario's whole calendar once per run,
    the planned promotions in it (depth, display, feature as the plan says)."""

    senses = False

    def __init__(self, kind: str, model_file: str | Path):
        from promotwin.demand.models import load_model

        path = Path(model_file)
        if not path.exists():
            raise ForecasterError(f"--model {path}: file not found; fit one with `twin fit`")
        try:
            self._model = load_model(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ForecasterError(f"--model {path}: not a fitted model file ({exc})") from None
        if self._model.kind != kind:
            raise ForecasterError(
                f"--model {path} is a {self._model.kind} model: use --forecast {self._model.kind}"
            )
        if self._model.period_days != 1:
            raise ForecasterError(
                f"--model {path}: fitted on {self._model.period_days}-day periods; the twin "
                "forecasts days: fit on a daily history (`twin history`)"
            )
        self.name = kind
        self.model_file: str | None = str(path)
        self._mean: FloatArray | None = None
        self._k = 1e6
        self._log_sd = MIN_LOG_SD
        self._world: DemandModel | None = None
        self._calendar: tuple[object, ...] | None = None  # what self._mean forecasts

    def start(self, world: DemandModel, rng: np.random.Generator) -> None:
        """Forecast the run's calendar now, so the dispersion is known before the first day.
        A calendar the last run already forecast (the same dates, promotions and network:
        the next seed or policy of a benchmark) is not forecast again: it would be the same."""
        key = _calendar_key(world)
        if key != self._calendar:
            self._calendar, self._mean = key, None
        self._world = world
        self._forecast(world.scenario.horizon_days + CALENDAR_PAD_DAYS)

    def _forecast(self, days: int) -> FloatArray:
        """Mean ``[days, L, S]`` from the scenario's first day, made once per run."""
        if self._mean is not None and len(self._mean) >= days:  # the usual case
            return self._mean
        if self._world is None:
            raise RuntimeError("start() the forecaster before asking for forecasts")
        from promotwin.demand.forecasting import calendar, predict, store_info

        scenario, net = self._world.scenario, self._world.net
        model = self._model
        try:
            rows = calendar(
                model, scenario.start_date, days, scenario.promotions, store_info(scenario)
            )
            mean, k = predict(model, rows)
        except ValueError as exc:
            raise ForecasterError(f"--model {self.model_file}: {exc}") from None
        if not (np.isfinite(mean).all() and np.isfinite(k).all()):
            bad = sorted(set(rows.loc[~np.isfinite(mean), "sku"]))[:5]
            raise ForecasterError(
                f"--model {self.model_file}: non-finite forecasts for SKU(s) {bad}; refit"
            )
        l_idx, s_idx = _cell_of_rows(rows, self._world)
        ok = (l_idx >= 0) & (s_idx >= 0)
        day = (rows["date"] - np.datetime64(scenario.start_date)).dt.days.to_numpy()
        out = np.zeros((days, net.n_locations, net.n_skus))
        np.add.at(out, (day[ok], l_idx[ok], s_idx[ok]), mean[ok])
        m, kk = mean[ok], k[ok]
        self._k = float((m**2).sum() / max((m**2 / kk).sum(), 1e-12))
        promo = (rows["promo"] > 0).to_numpy() & ok
        if promo.any():
            self._log_sd = max(_uplift_log_sd(model, rows[promo], k[promo]), MIN_LOG_SD)
        self._mean = out
        return out

    def window(self, day: int, horizon: int) -> FloatArray:
        full = self._forecast(self._world_days() + horizon + 1)
        return full[day + 1 : day + 1 + horizon]

    def today(self, day: int) -> FloatArray:
        return self._forecast(max(self._world_days(), day + 1))[day]

    def _world_days(self) -> int:
        if self._world is None:
            raise RuntimeError("start() the forecaster first")
        return self._world.scenario.horizon_days

    @property
    def dispersion(self) -> float:
        return self._k

    def uplift_log_sd(self) -> float:
        return self._log_sd

    def observe(self, day: int, sales: FloatArray, stocked_out: BoolArray) -> None:
        """A fitted model is fixed for the season: sensing wraps it to learn in-season."""

    def notes(self) -> tuple[str, ...]:
        return ()

    def cell_notes(self) -> tuple[IntArray | None, tuple[str, ...]]:
        return None, ()


def _calendar_key(world: DemandModel) -> tuple[object, ...]:
    """What a fitted model's calendar forecast depends on: the dates, the planned promotions,
    the stores' regions and clusters and the network's cells (not the truth, not the seed)."""
    sc, net = world.scenario, world.net
    return (
        sc.start_date,
        sc.horizon_days,
        sc.promotions,
        tuple(sc.stores),
        tuple(sc.dcs),
        tuple(net.locations.index),
        tuple(net.skus.index),
    )


def _cell_of_rows(rows: pd.DataFrame, world: DemandModel) -> tuple[IntArray, IntArray]:
    """Each calendar row's location and SKU index in the twin's ``[L, S]`` (-1: not in the
    network). Ecommerce rows recorded at a store go to the DC that serves it. Looked up per
    distinct id, not per row (a calendar has ~400k rows and a few thousand ids)."""
    import pandas as pd

    net = world.net
    serving = {
        s: str(net.locations.index[net.serving_dc[i]])
        for i, s in enumerate(net.locations.index)
        if i >= net.n_dcs
    }
    loc_code, locs = pd.factorize(rows["location"])
    ecom = (rows["group"] != "store").to_numpy()
    at_store = np.array([net.location_index.get(str(x), -1) for x in locs], dtype=np.int64)
    at_dc = np.array(
        [net.location_index.get(serving.get(str(x), str(x)), -1) for x in locs], dtype=np.int64
    )
    l_idx = np.where(ecom, at_dc[loc_code], at_store[loc_code])
    sku_code, skus = pd.factorize(rows["sku"])
    s_idx = np.array([net.sku_index.get(str(x), -1) for x in skus], dtype=np.int64)[sku_code]
    return l_idx, s_idx


def make_forecaster(
    name: str, model_file: str | Path | None = None, sensing: bool = False
) -> Forecaster:
    """A fresh forecaster by name (``oracle``, ``glm``, ``gbm``), optionally with sensing."""
    if name not in FORECASTERS:
        raise ForecasterError(f"unknown forecaster {name!r}; valid: {', '.join(FORECASTERS)}")
    base: Forecaster
    if name == "oracle":
        if model_file is not None:
            raise ForecasterError("--model applies to a learned forecaster (glm, gbm), not oracle")
        base = OracleForecaster()
    elif name == "plan":
        if model_file is not None:
            raise ForecasterError("--model applies to a learned forecaster (glm, gbm), not plan")
        base = PlanForecaster()
    else:
        if model_file is None:
            raise ForecasterError(
                f"--forecast {name} needs --model FILE: fit one with `twin history` then `twin fit`"
            )
        base = FittedForecaster(name, model_file)
    if not sensing:
        return base
    from promotwin.demand.sensing import SensingForecaster

    return SensingForecaster(base)


@dataclass
class PromotionForecastScore:
    """Forecast error over the promotion window on the promoted SKUs, at the level the policy
    reads (SKU x location x day) and the level planners read (SKU x region x week)."""

    days: set[int]
    skus: IntArray  # the promoted SKUs
    region_of_row: IntArray  # [L] region index of each location
    n_regions: int
    first_day: int
    abs_error: float = 0.0
    forecast: float = 0.0
    demand: float = 0.0
    weeks: dict[int, tuple[FloatArray, FloatArray]] = field(default_factory=dict)

    @classmethod
    def for_model(cls, model: DemandModel, warmup_days: int) -> PromotionForecastScore:
        days = {
            d
            for pc in model.promotions
            for d in range(max(pc.start_day, warmup_days), pc.end_day + 1)
        }
        skus = np.zeros(model.net.n_skus, bool)
        for pc in model.promotions:
            skus |= pc.cells.any(axis=0)
        regions, region_of_row = np.unique(
            model.net.locations["region"].to_numpy(str), return_inverse=True
        )
        first = min((pc.start_day for pc in model.promotions), default=0)
        return cls(days, np.flatnonzero(skus), region_of_row, len(regions), first)

    def add(
        self, day: int, forecast: FloatArray, demand: Sequence[np.ndarray] | np.ndarray
    ) -> None:
        if day not in self.days:
            return
        f = forecast[:, self.skus]
        d = np.asarray(demand)[:, self.skus].astype(np.float64)
        self.abs_error += float(np.abs(f - d).sum())
        self.forecast += float(f.sum())
        self.demand += float(d.sum())
        week = (day - self.first_day) // 7
        if week not in self.weeks:
            zero = np.zeros((self.n_regions, len(self.skus)))
            self.weeks[week] = (zero, zero.copy())
        wf, wd = self.weeks[week]
        np.add.at(wf, self.region_of_row, f)
        np.add.at(wd, self.region_of_row, d)

    def kpis(self) -> dict[str, float]:
        nan = float("nan")
        region_week = sum(float(np.abs(f - d).sum()) for f, d in self.weeks.values())
        den = self.demand
        return {
            "promo_forecast_wape": self.abs_error / den if den else nan,
            "promo_forecast_wape_region_week": region_week / den if den else nan,
            "promo_forecast_bias": (self.forecast - den) / den if den else nan,
        }
