"""File I/O shared by the stages: atomic output (a partial file never carries the final
name) and reading one checked variable of a NetCDF file."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
