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

A production batch is 152 MB gathered (1.4 GB as float32) of fresh memory. On the CPU it
is allocated by numpy (see ``_new``), and each float channel group is converted straight
into its slice of x: faulting torch-allocated memory in 4 KiB pages, float temporaries and
the final concatenation made the gather 5x and the float batch 12x a copy of its bytes.
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

_NUMPY_DTYPES = {torch.uint8: np.uint8, torch.float16: np.float16, torch.float32: np.float32, torch.bool: np.bool_}


def _new(shape: Sequence[int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialised tensor for a batch. On the CPU its memory comes from numpy, which
    asks the kernel for transparent huge pages on large arrays (madvise); torch's own
    allocator faults fresh memory in 4 KiB pages, which took 80% of a production gather
    (37,000 page faults for its 152 MB). On a GPU, torch's caching allocator."""
    if device.type != "cpu":
        return torch.empty(tuple(shape), dtype=dtype, device=device)
    return torch.from_numpy(np.empty(tuple(shape), _NUMPY_DTYPES[dtype]))


def _to_fraction(steps: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """uint8 SIC steps as float32 fractions written into ``out``: a converting copy, then an
    in-place scaling (``torch.mul(steps, scale, out=)`` would cast through a temporary)."""
    return out.copy_(steps).mul_(1.0 / SIC_STEPS)


def _runs(days: np.ndarray) -> list[tuple[int, int, int, int]]:
    """``days`` as runs (first position, length, first day, step) of consecutive days (step 1)
    or of one day repeated (step 0)."""
    runs, start = [], 0
    while start < len(days):
        end = start + 1
        step = int(days[end] - days[start]) if end < len(days) else 1
        if step in (0, 1):
            while end < len(days) and days[end] - days[end - 1] == step:
                end += 1
        runs.append((start, end - start, int(days[start]), step if step in (0, 1) else 1))
        start = end
    return runs


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

        out = {"sic_lags": self._frames(self.sic, base[:, None] - torch.tensor(spec.sic_lags, device=device))}
        for f in spec.fields:
            out[f.key] = self._frames(self.fields[f.key], base[:, None] - torch.tensor(f.lags, device=device))
        out["latest"] = self._frames(self.sic, (base - 1).reshape(n, 1))
        if spec.sic_trend_years:
            out["trend"] = self._frames(self.trend, base[:, None] + leads[None, :])
        if with_targets:
            out.update(self._gather_targets(base, dates))
        return out

    def _frames(self, array: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Whole days of ``array`` at ``index`` (any shape): (*index.shape, H, W) in a fresh tensor.

        On a GPU one index_select. On the CPU one copy per run of days: a sample's leads are
        one block of the cache and a mask's repeats one frame, while index_select with more
        than one thread starts a parallel copy per frame (2 threads: 10x slower than 1)."""
        out = _new((*index.shape, *array.shape[1:]), array.dtype, self.device)
        rows = out.view(-1, *array.shape[1:])
        if self.device.type != "cpu":
            torch.index_select(array, 0, index.reshape(-1), out=rows)
            return out
        days = index.reshape(-1).numpy()
        if len(days) and (days.min() < 0 or days.max() >= len(array)):
            raise IndexError(f"day {days.min()} or {days.max()} is outside the cache's {len(array)} days")
        for first, count, day, step in _runs(days):
            source = array[day : day + count] if step else array[day : day + 1].expand(count, *array.shape[1:])
            rows[first : first + count].copy_(source)
        return out

    def _gather_targets(self, base: torch.Tensor, dates: pd.DatetimeIndex) -> dict[str, torch.Tensor]:
        """SIC of D + 1 .. D + leads (compact) and the polar hole radius of those days."""
        idx = base[:, None] + torch.arange(1, self.spec.leads + 1, device=self.device)[None, :]
        if int(idx.max()) >= len(self.dates):
            raise KeyError(f"init date {dates[-1].date()}: targets run past the store's last day {self.dates[-1].date()}")
        return {"targets": self._frames(self.sic, idx), "hole_km": self.hole_km[idx]}

    def _mask(self, months: np.ndarray, hole_km: torch.Tensor, dtype: torch.dtype = torch.bool) -> torch.Tensor:
        """Active ocean of each target's month outside that day's polar hole: (*months.shape, H, W),
        the cells the loss and the scores count. A batch has a few months and hole radii: the
        mask of each pair is made once and gathered as frames (a comparison per cell and lead
        took 0.1 s of a production batch)."""
        month = torch.tensor(np.asarray(months) - 1, device=self.device)
        months_in, month_index = torch.unique(month, return_inverse=True)
        holes, hole_index = torch.unique(hole_km, return_inverse=True)
        active = self._statics["active_ocean"][months_in][:, None]
        outside = self._statics["distance_km"] >= holes[:, None, None]
        masks = (active & outside).to(dtype).reshape(-1, *self.shape)  # (month, hole) pairs
        return self._frames(masks, month_index * len(holes) + hole_index)

    def _float(self, gathered: dict[str, torch.Tensor], dates: pd.DatetimeIndex) -> dict[str, torch.Tensor]:
        """Model-ready float32 tensors from a gathered batch. Each channel group is converted
        straight into its slice of x (one op, no float intermediate, no concatenation)."""
        spec, device = self.spec, self.device
        n, (h, w) = len(dates), self.shape
        target_days = self._target_days(dates)
        doy = target_days.day_of_year.to_numpy().reshape(n, spec.leads)
        clim = self._frames(self._statics["sic_clim"], torch.from_numpy(doy - 1).to(device))
        x = _new((n, len(spec.channel_names), h, w), torch.float32, device)
        filled = 0

        def channels(count: int) -> torch.Tensor:
            nonlocal filled
            filled += count
            return x[:, filled - count : filled]

        _to_fraction(gathered["sic_lags"], channels(len(spec.sic_lags)))
        for f in spec.fields:
            channels(len(f.lags)).copy_(gathered[f.key])
        if spec.land:
            channels(1).copy_(self._statics["land"])
        if spec.day_of_year:
            angle = 2 * np.pi * (dates.day_of_year.to_numpy() - 1) / 365.25
            for wave in (np.cos(angle), np.sin(angle)):
                channels(1).copy_(torch.from_numpy(wave.astype(np.float32)).to(device)[:, None, None, None])
        if spec.sic_trend_years:
            _to_fraction(gathered["trend"], channels(spec.leads))
        if spec.sic_climatology:
            channels(spec.leads).copy_(clim)
        assert filled == x.shape[1], (filled, spec.channel_names)
        latest = _to_fraction(gathered["latest"], _new(gathered["latest"].shape, torch.float32, device))
        batch = {"x": x, "clim": clim, "latest": latest}
        if "targets" in gathered:
            batch.update(self._float_targets(gathered, dates))
        return batch

    def _float_targets(self, gathered: dict[str, torch.Tensor], dates: pd.DatetimeIndex) -> dict[str, torch.Tensor]:
        months = self._target_days(dates).month.to_numpy().reshape(len(dates), self.spec.leads)
        y = _to_fraction(gathered["targets"], _new(gathered["targets"].shape, torch.float32, self.device))
        return {"y": y, "weights": self._mask(months, gathered["hole_km"], torch.float32)}

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
