"""Samples from the zarr store: inputs for an init date, targets for its lead days.

Time semantics: for init date D the inputs are days strictly before D (each channel at
D - lag, lag >= 1), and lead k is the day D + k. Targets are the same SIC array shifted in
time, so a sample is a window of days, never a stored copy. The per-lead trend and
climatology channels are of the target days, which are known before D (the trend is
fitted on earlier years only).

The store's years are read once (``floecast.store.read_store``) into a compact cache
(SIC and trend as uint8 steps of 1/250, field channels as float16) held as torch
tensors on the CPU or, in a GPU job, in GPU memory, so that a batch is gathered where
the model runs and converted to float32 there: no per-sample Python work, no copies of
the target window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from floecast.channels import InputSpec
from floecast.store import SIC_STEPS, read_store


@dataclass
class SampleStore:
    """A store's days in a compact cache, ready to gather batches by init date.

    ``trend`` covers the store's days and ``leads`` days after them (it needs no data of
    the days it describes), so a forecast from the day after the last stored day has its
    trend channels.
    """

    spec: InputSpec
    dates: pd.DatetimeIndex
    sic: torch.Tensor  # (T, H, W) uint8
    trend: torch.Tensor  # (T + leads, H, W) uint8
    fields: dict[str, torch.Tensor]  # key -> (T, H, W) float16
    hole_km: torch.Tensor  # (T,) float32, radius of the polar hole of each day
    land: np.ndarray
    active: np.ndarray
    sic_clim: np.ndarray
    yc: np.ndarray
    xc: np.ndarray
    attrs: dict = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def open(
        cls,
        paths: str | Path | Sequence[str | Path],
        spec: InputSpec,
        statistics: str | Path | None = None,
        device: torch.device | str = "cpu",
    ) -> SampleStore:
        """Read the parts (contiguous days) and the statistics file into the cache on ``device``."""
        days = read_store(
            paths, statistics, leads=spec.leads, fields=[f.key for f in spec.fields], sic_trend_years=spec.sic_trend_years
        )
        device = torch.device(device)
        to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        return cls(
            spec,
            days.dates,
            sic=to(days.sic),
            trend=to(days.trend),
            fields={key: to(values) for key, values in days.fields.items()},
            hole_km=to(days.hole_km),
            land=days.land,
            active=days.active,
            sic_clim=days.sic_clim,
            yc=days.yc,
            xc=days.xc,
            attrs=days.attrs,
            device=device,
        )

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.land.shape)  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        """Bytes of the cache's per-day arrays (what grows with the number of years)."""
        tensors = [self.sic, self.trend, self.hole_km, *self.fields.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

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
        lags = sorted(set(self.spec.sic_lags + tuple(lag for f in self.spec.fields for lag in f.lags)))
        return pd.DatetimeIndex([init - pd.Timedelta(days=lag) for lag in lags])

    def _base(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """Index of each init date D in the cache (one past the end for the day after it)."""
        base = ((dates - self.dates[0]) // pd.Timedelta(days=1)).to_numpy()
        short = (base - self.spec.max_lag < 0) | (base > len(self.dates))
        if short.any():
            raise KeyError(
                f"init date {dates[short][0].date()} needs its {self.spec.max_lag} days of inputs in the store "
                f"({self.dates[0].date()} .. {self.dates[-1].date()})"
            )
        return base

    def _target_days(self, dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
        leads = np.arange(1, self.spec.leads + 1)
        return pd.DatetimeIndex((dates.values[:, None] + leads[None, :] * np.timedelta64(1, "D")).ravel())

    def gather(self, dates: pd.DatetimeIndex, with_targets: bool = True) -> dict[str, torch.Tensor]:
        """The batch's per-day arrays in the cache's compact dtypes, on the cache's device."""
        spec, device = self.spec, self.device
        base = torch.from_numpy(np.array(self._base(dates))).to(device)
        leads = torch.arange(1, spec.leads + 1, device=device)
        n = len(dates)

        def frames(array: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            # index_select on whole days copies contiguous frames (advanced indexing is 2x slower)
            return torch.index_select(array, 0, index.reshape(-1)).reshape(*index.shape, *array.shape[1:])

        out = {"sic_lags": frames(self.sic, base[:, None] - torch.tensor(spec.sic_lags, device=device))}
        for f in spec.fields:
            out[f.key] = frames(self.fields[f.key], base[:, None] - torch.tensor(f.lags, device=device))
        out["latest"] = frames(self.sic, (base - 1).reshape(n, 1))
        if spec.sic_trend_years:
            out["trend"] = frames(self.trend, base[:, None] + leads[None, :])
        if with_targets:
            out.update(self._gather_targets(base, dates))
        return out

    def _gather_targets(self, base: torch.Tensor, dates: pd.DatetimeIndex) -> dict[str, torch.Tensor]:
        """SIC of D + 1 .. D + leads (compact) and the polar hole radius of those days."""
        idx = base[:, None] + torch.arange(1, self.spec.leads + 1, device=self.device)[None, :]
        if int(idx.max()) >= len(self.dates):
            raise KeyError(f"init date {dates[-1].date()}: targets run past the store's last day {self.dates[-1].date()}")
        targets = torch.index_select(self.sic, 0, idx.reshape(-1)).reshape(*idx.shape, *self.sic.shape[1:])
        return {"targets": targets, "hole_km": self.hole_km[idx]}

    def _mask(self, months: np.ndarray, hole_km: torch.Tensor) -> torch.Tensor:
        """Active ocean of each target's month outside that day's polar hole: (*months.shape, H, W) bool,
        the cells the loss and the scores count."""
        active = self._statics["active_ocean"][torch.from_numpy(months - 1).to(self.device)]
        return active & (self._statics["distance_km"] >= hole_km[..., None, None])

    def _float(self, gathered: dict[str, torch.Tensor], dates: pd.DatetimeIndex) -> dict[str, torch.Tensor]:
        """Model-ready float32 tensors from a gathered batch."""
        spec, device = self.spec, self.device
        n, (h, w) = len(dates), self.shape
        scale = 1.0 / SIC_STEPS
        target_days = self._target_days(dates)
        doy = target_days.day_of_year.to_numpy().reshape(n, spec.leads)
        clim = self._statics["sic_clim"][torch.from_numpy(doy - 1).to(device)]
        parts = [gathered["sic_lags"].float() * scale]
        parts += [gathered[f.key].float() for f in spec.fields]
        if spec.land:
            parts.append(self._statics["land"].expand(n, 1, h, w))
        if spec.day_of_year:
            angle = 2 * np.pi * (dates.day_of_year.to_numpy() - 1) / 365.25
            for wave in (np.cos(angle), np.sin(angle)):
                parts.append(torch.from_numpy(wave.astype(np.float32)).to(device)[:, None, None, None].expand(n, 1, h, w))
        if spec.sic_trend_years:
            parts.append(gathered["trend"].float() * scale)
        if spec.sic_climatology:
            parts.append(clim)
        batch = {"x": torch.cat(parts, dim=1), "clim": clim, "latest": gathered["latest"].float() * scale}
        if "targets" in gathered:
            batch.update(self._float_targets(gathered, dates))
        return batch

    def _float_targets(self, gathered: dict[str, torch.Tensor], dates: pd.DatetimeIndex) -> dict[str, torch.Tensor]:
        months = self._target_days(dates).month.to_numpy().reshape(len(dates), self.spec.leads)
        return {
            "y": gathered["targets"].float() * (1.0 / SIC_STEPS),
            "weights": self._mask(months, gathered["hole_km"]).float(),
        }

    @cached_property
    def _statics(self) -> dict[str, torch.Tensor]:
        """Masks and climatology as tensors on the cache's device (small: no time axis)."""
        xx, yy = np.meshgrid(self.xc, self.yc)
        arrays = {
            "sic_clim": self.sic_clim.astype(np.float32),
            "land": self.land.astype(np.float32)[None],
            "active_ocean": self.active & ~self.land,
            "distance_km": (np.hypot(xx, yy) / 1000.0).astype(np.float32),
        }
        return {name: torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for name, a in arrays.items()}

    def batch(self, dates: pd.DatetimeIndex, with_targets: bool = True) -> dict[str, torch.Tensor]:
        """x (n, C, H, W), clim and (with targets) y and weights (n, leads, H, W), latest (n, 1, H, W)."""
        return self._float(self.gather(dates, with_targets), dates)

    def inputs(self, dates: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's arguments as numpy float32: X, the target days' climatology, the SIC of D - 1."""
        b = self.batch(dates, with_targets=False)
        return b["x"].cpu().numpy(), b["clim"].cpu().numpy(), b["latest"].cpu().numpy()

    def targets(self, dates: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        """(Y, weights): SIC on D + 1 .. D + leads and the mask of active ocean outside the polar hole
        (without building the inputs)."""
        base = torch.from_numpy(np.array(self._base(dates))).to(self.device)
        b = self._float_targets(self._gather_targets(base, dates), dates)
        return b["y"].cpu().numpy(), b["weights"].cpu().numpy()
