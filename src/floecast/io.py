"""File I/O shared by the stages: atomic output (a partial file never carries the final
name; a full disk is said so, naming the path), NetCDF written with a checksum on every
variable (Fletcher-32, checked by HDF5 on every read) and opened through one checked door
(:func:`open_netcdf`: a file that cannot be read is named and moved to ``rejected/`` so
the workflow makes it again), reading one checked variable, and reading days of interim files."""

from __future__ import annotations

import errno
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
    except (OSError, RuntimeError) as err:  # NetCDF reports a full disk as "HDF error" (a RuntimeError)
        full = _disk_full(err, tmp, target)
        if full:
            raise full from err
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class DiskFullError(OSError):
    """An output could not be written for want of space; the message names the path and the free space."""


FULL_DISK_BYTES = 1 << 20  # free space below this when a write failed: the disk (or quota) is full


def _disk_full(err: OSError | RuntimeError, tmp: Path, target: Path) -> DiskFullError | None:
    """The error to raise for a write that failed on a full disk (None for any other failure).

    Measured before the partial output is removed: a write that filled the disk leaves it full."""
    code = getattr(err, "errno", None)
    try:
        free = shutil.disk_usage(tmp).free
    except OSError:
        free = None
    if code not in (errno.ENOSPC, errno.EDQUOT) and (free is None or free >= FULL_DISK_BYTES):
        return None
    where = f"{free} bytes free" if free is not None else "no space"
    previous = "the previous version is kept" if target.exists() else "nothing was written under that name"
    return DiskFullError(
        errno.ENOSPC,
        f"{target}: no space left on the device ({where} in {target.parent} when the write failed: "
        f"{type(err).__name__}: {err}); {previous}. Free space there and run again",
    )


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike[str]) -> None:
    """Write ``ds`` to ``path`` atomically (NetCDF4), with a Fletcher-32 checksum on every numeric
    variable: HDF5 checks it on every read, so a changed byte is an error, never a changed value."""
    for variable in ds.variables.values():
        if variable.ndim and variable.dtype.kind in "biufM" and not variable.encoding.get("contiguous"):
            variable.encoding.setdefault("fletcher32", True)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")


class UnreadableFileError(ValueError):
    """A NetCDF file that cannot be read (truncated, corrupt, a checksum that fails): moved to ``rejected/``."""


def unreadable(path: str | os.PathLike[str], err: BaseException, remade_by: str) -> UnreadableFileError:
    """The error for a file that cannot be read, after moving it to ``rejected/<name>`` beside it (with
    a ``.reason.txt``): the next run that needs the file makes it again (``remade_by`` says how)."""
    from floecast.sources.http import reject  # the shared "move aside with a reason"

    reason = f"not a readable NetCDF file ({type(err).__name__}: {err})"
    try:
        moved = f"moved to {reject(path, reason)}"
    except OSError as move_err:
        moved = f"could not move it aside ({move_err}): delete it"
    return UnreadableFileError(f"{path}: {reason}; {moved}; {remade_by}")


@contextmanager
def checked_reads(path: str | os.PathLike[str], remade_by: str) -> Iterator[None]:
    """Reads from ``path`` inside: a failure of the file itself (HDF error, checksum) becomes :func:`unreadable`."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        raise unreadable(path, err, remade_by) from None


def open_netcdf(path: str | os.PathLike[str], remade_by: str) -> xr.Dataset:
    """``xr.open_dataset`` (lazy) of a file the workflow made; one that does not open is :func:`unreadable`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file ({remade_by})")
    with checked_reads(path, remade_by):
        return xr.open_dataset(path, engine="netcdf4")


def read_variable(path: str | os.PathLike[str], variable: str) -> xr.DataArray:
    """One variable, loaded; a clear error naming the file when it is not there."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        if variable not in ds:
            raise ValueError(f"{path}: no variable {variable!r} (has {sorted(ds.data_vars)})")
        return ds[variable].load()


class DailyReader:
    """Days of one variable from interim files (one a year, or one spanning many years),
    read lazily by date: only the slices asked for are decompressed."""

    REMADE_BY = "the next run makes the interim file again (snakemake regenerates a missing file it needs)"

    def __init__(self, paths: Sequence[str | Path], variable: str) -> None:
        self.variable = variable
        self.sources: list[tuple[Path, pd.DatetimeIndex, xr.Dataset]] = []
        for path in paths:
            ds = open_netcdf(path, self.REMADE_BY)
            if variable not in ds:
                raise ValueError(f"{path}: no variable {variable!r} (has {sorted(ds.data_vars)})")
            with checked_reads(path, self.REMADE_BY):
                self.sources.append((Path(path), pd.DatetimeIndex(ds["time"].values).normalize(), ds))

    @property
    def days(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(sorted(set().union(*(days for _, days, _ in self.sources))))

    def read(self, days: pd.DatetimeIndex, name: str | None = None) -> np.ndarray:
        """(len(days), ...) float32; NaN for days no file has."""
        name = name or self.variable
        out: np.ndarray | None = None
        for path, have, ds in self.sources:
            idx = have.get_indexer(days)
            found = np.flatnonzero(idx >= 0)
            if not len(found):
                continue
            lo, hi = idx[found].min(), idx[found].max()
            with checked_reads(path, self.REMADE_BY):
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
