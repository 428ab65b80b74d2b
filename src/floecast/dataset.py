"""Samples from a zarr store: inputs for an init date, targets for its lead days.

Time semantics: for init date D the inputs are days strictly before D (SIC at D - lag for
each configured lag, lag >= 1), and lead k is the day D + k. Targets are the same SIC array
shifted in time, so a sample is a window of days, never a stored copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr


@dataclass(frozen=True)
class InputSpec:
    """Which days feed the model (lags in days before the init date) and how far it looks."""

    sic_lags: tuple[int, ...] = (1, 2, 3, 7, 14)
    t2m_lags: tuple[int, ...] = (1, 2, 3, 5)
    wind_lags: tuple[int, ...] = (1,)
    leads: int = 30

    def __post_init__(self) -> None:
        for name in ("sic_lags", "t2m_lags", "wind_lags"):
            if min(getattr(self, name)) < 1:
                raise ValueError(f"inputs.{name}: every lag must be >= 1 day before the init date")

    @property
    def max_lag(self) -> int:
        return max(self.sic_lags + self.t2m_lags + self.wind_lags)

    @property
    def channel_names(self) -> list[str]:
        names = [f"sic_lag{lag}" for lag in self.sic_lags]
        names += [f"t2m_anom_lag{lag}" for lag in self.t2m_lags]
        names += [f"{v}_lag{lag}" for lag in self.wind_lags for v in ("u10", "v10")]
        names += ["land", "cos_doy", "sin_doy"]
        names += [f"sic_clim_lead{k}" for k in range(1, self.leads + 1)]
        return names

    @classmethod
    def from_config(cls, inputs: dict, leads: int) -> InputSpec:
        return cls(tuple(inputs["sic_lags"]), tuple(inputs["t2m_lags"]), tuple(inputs["wind_lags"]), leads)


@dataclass
class SampleStore:
    """A store loaded into memory, ready to gather batches by init date."""

    spec: InputSpec
    dates: pd.DatetimeIndex
    sic: np.ndarray
    t2m_anom: np.ndarray
    u10: np.ndarray
    v10: np.ndarray
    land: np.ndarray
    active: np.ndarray
    sic_clim: np.ndarray
    yc: np.ndarray
    xc: np.ndarray
    attrs: dict = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | Path, spec: InputSpec) -> SampleStore:
        with xr.open_zarr(path, consolidated=True) as ds:
            arrays = {name: ds[name].values for name in ("sic", "t2m_anom", "u10", "v10", "land", "active", "sic_clim")}
            arrays.update(yc=ds["yc"].values, xc=ds["xc"].values)
            dates = pd.DatetimeIndex(ds["time"].values)
            attrs = dict(ds.attrs)
        if not (np.diff(dates.values) == np.timedelta64(1, "D")).all():
            raise ValueError(f"{path}: the store's days are not contiguous")
        return cls(spec, dates, attrs=attrs, **arrays)

    @property
    def shape(self) -> tuple[int, int]:
        return self.sic.shape[1:]  # type: ignore[return-value]

    def _index(self, dates: pd.DatetimeIndex) -> np.ndarray:
        idx = self.dates.get_indexer(dates)
        if (idx < 0).any():
            missing = dates[idx < 0][0].date()
            raise KeyError(f"init date {missing} is not in the store ({self.dates[0].date()} .. {self.dates[-1].date()})")
        return idx

    def init_dates(self, years: tuple[int, int] | None = None, stride: int = 1, with_targets: bool = True) -> pd.DatetimeIndex:
        """Init dates whose inputs (and targets) all lie in the store, within ``years``."""
        first = self.dates[0] + pd.Timedelta(days=self.spec.max_lag)
        last = self.dates[-1] - pd.Timedelta(days=self.spec.leads if with_targets else -1)
        dates = pd.date_range(first, last, freq="D")
        if years is not None:
            dates = dates[(dates.year >= years[0]) & (dates.year <= years[1])]
        return dates[::stride]

    def input_days(self, init: pd.Timestamp) -> pd.DatetimeIndex:
        """Every day read to build the inputs of one init date."""
        lags = sorted(set(self.spec.sic_lags + self.spec.t2m_lags + self.spec.wind_lags))
        return pd.DatetimeIndex([init - pd.Timedelta(days=lag) for lag in lags])

    def inputs(self, dates: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's arguments, float32: X (n, C, H, W), the climatology of the target
        days (n, leads, H, W) and the latest SIC, of D - 1 (n, 1, H, W)."""
        base = self.dates.get_indexer(dates - pd.Timedelta(days=1)) + 1  # index of D; may be one past the end
        short = base - self.spec.max_lag < 0  # also where D - 1 is not in the store (base == 0)
        if short.any():
            raise KeyError(
                f"init date {dates[short][0].date()} needs its {self.spec.max_lag} days of inputs in the store "
                f"({self.dates[0].date()} .. {self.dates[-1].date()})"
            )
        n = len(dates)
        parts = [self.sic[base[:, None] - np.array(self.spec.sic_lags)]]
        parts.append(self.t2m_anom[base[:, None] - np.array(self.spec.t2m_lags)])
        for lag in self.spec.wind_lags:
            parts.append(np.stack([self.u10[base - lag], self.v10[base - lag]], axis=1))
        parts.append(np.broadcast_to(self.land.astype(np.float32), (n, 1, *self.shape)))
        angle = 2 * np.pi * (dates.day_of_year.to_numpy() - 1) / 365.25
        for wave in (np.cos(angle), np.sin(angle)):
            parts.append(np.broadcast_to(wave[:, None, None, None].astype(np.float32), (n, 1, *self.shape)))
        clim = self.sic_clim[self._target_doy(dates) - 1]
        parts.append(clim)
        latest = self.sic[base - 1][:, None]
        return np.concatenate(parts, axis=1).astype(np.float32), clim.astype(np.float32), latest.astype(np.float32)

    def _target_doy(self, dates: pd.DatetimeIndex) -> np.ndarray:
        leads = np.arange(1, self.spec.leads + 1)
        targets = dates.values[:, None] + leads[None, :] * np.timedelta64(1, "D")
        return pd.DatetimeIndex(targets.ravel()).day_of_year.to_numpy().reshape(targets.shape)

    def targets(self, dates: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        """(Y, weights): SIC on D + 1 .. D + leads and the active-ocean mask of each target month."""
        base = self._index(dates)
        idx = base[:, None] + np.arange(1, self.spec.leads + 1)[None, :]
        if (idx >= len(self.dates)).any():
            raise KeyError(f"init date {dates[0].date()}: targets run past the store's last day {self.dates[-1].date()}")
        months = self.dates[idx.ravel()].month.to_numpy().reshape(idx.shape)
        weights = self.active[months - 1].astype(np.float32)
        return self.sic[idx], weights
