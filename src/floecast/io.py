"""File I/O shared by the stages: atomic output (a partial file never carries the final
name), reading one checked variable of a NetCDF file, and reading days of interim files."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    Works for files and directories (e.g. a zarr store). On error the temporary path is
    removed and an existing ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):  # left by a job killed while writing
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    staged = tmp / target.name
    try:
        yield staged
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(staged, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike[str]) -> None:
    """Write ``ds`` to ``path`` atomically (NetCDF4)."""
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")


def read_variable(path: str | os.PathLike[str], variable: str) -> xr.DataArray:
    """One variable, loaded; a clear error naming the file when it is not there."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        if variable not in ds:
            raise ValueError(f"{path}: no variable {variable!r} (has {sorted(ds.data_vars)})")
        return ds[variable].load()


class DailyReader:
    """Days of one variable from interim files (one a year, or one spanning many years),
    read lazily by date: only the slices asked for are decompressed."""

    def __init__(self, paths: Sequence[str | Path], variable: str) -> None:
        self.variable = variable
        self.sources: list[tuple[Path, pd.DatetimeIndex, xr.Dataset]] = []
        for path in paths:
            ds = xr.open_dataset(path, engine="netcdf4")
            if variable not in ds:
                raise ValueError(f"{path}: no variable {variable!r} (has {sorted(ds.data_vars)})")
            self.sources.append((Path(path), pd.DatetimeIndex(ds["time"].values).normalize(), ds))

    @property
    def days(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(sorted(set().union(*(days for _, days, _ in self.sources))))

    def read(self, days: pd.DatetimeIndex, name: str | None = None) -> np.ndarray:
        """(len(days), ...) float32; NaN for days no file has."""
        name = name or self.variable
        out: np.ndarray | None = None
        for _, have, ds in self.sources:
            idx = have.get_indexer(days)
            found = np.flatnonzero(idx >= 0)
            if not len(found):
                continue
            lo, hi = idx[found].min(), idx[found].max()
            block = ds[name].isel(time=slice(lo, hi + 1)).values.astype(np.float32)  # one contiguous read
            if out is None:
                out = np.full((len(days), *block.shape[1:]), np.nan, np.float32)
            out[found] = block[idx[found] - lo]
        if out is None:  # no file has any of the days (e.g. years before the data start)
            shape = self.sources[0][2][name].shape[1:]
            out = np.full((len(days), *shape), np.nan, np.float32)
        return out

    def close(self) -> None:
        for _, _, ds in self.sources:
            ds.close()
