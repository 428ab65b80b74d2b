"""Ensemble member files: one member's SIC for every lead of one or more init dates.

``floecast predict`` writes them (:func:`member_dataset`; a member whose training failed for
good gets a file that says so, :func:`failed_member_dataset`); ``combine``, ``calibrate``, the
scorecard and the plots read them here, without torch. Each file is checked as it is opened and
read (:func:`open_member`): one that cannot be read (truncated, a checksum that fails) or lacks
a member's variables is named and moved to ``rejected/`` beside it, so that the next run that
needs it makes it again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from floecast import __version__
from floecast.io import checked_reads, open_netcdf, unreadable

MEMBER_DIMS = ("init_time", "leadtime", "yc", "xc")
REMADE_BY = (
    "Snakemake makes it again for the next run that needs it: run the same command again "
    "(a forecast asked for with --force, again with --force)"
)


def member_dataset(
    pred: np.ndarray,
    init_dates: pd.DatetimeIndex,
    *,
    land: np.ndarray,
    yc: np.ndarray,
    xc: np.ndarray,
    member: int,
    weights: str | Path,
    store_sha256: str,
) -> xr.Dataset:
    """A member's forecasts ``pred`` (init dates, leads, y, x) as its file's dataset, land as NaN."""
    pred = np.where(land.astype(bool), np.nan, pred)
    leads = np.arange(1, pred.shape[1] + 1)
    ds = xr.Dataset(
        {"sic": (("init_time", "leadtime", "yc", "xc"), pred.astype(np.float32), {"units": "1", "long_name": "forecast SIC"})},
        coords={
            "init_time": init_dates.values,
            "leadtime": ("leadtime", leads, {"units": "days"}),
            "yc": ("yc", yc, {"units": "m", "standard_name": "projection_y_coordinate", "axis": "Y"}),
            "xc": ("xc", xc, {"units": "m", "standard_name": "projection_x_coordinate", "axis": "X"}),
        },
        attrs={"member": member, "weights": str(weights), "store_sha256": store_sha256, "floecast_version": __version__},
    )
    ds["sic"].encoding.update(zlib=True, complevel=1)
    return ds


def failed_member_dataset(init_dates: pd.DatetimeIndex, member: int, error: str) -> xr.Dataset:
    """The file of a member whose training failed for good (``failed = 1``): ``combine`` leaves it out."""
    return xr.Dataset(
        coords={"init_time": init_dates.values},
        attrs={"member": member, "failed": 1, "error": error, "floecast_version": __version__},
    )


def open_member(path: str | Path) -> xr.Dataset:
    """A member file opened lazily and checked: it opens, names its member, and holds either a
    failure record or ``sic`` on ``MEMBER_DIMS``. Otherwise it is moved to ``rejected/``
    (:func:`floecast.io.unreadable`) and the error names it and how it is made again."""
    ds = open_netcdf(path, REMADE_BY)
    with checked_reads(path, REMADE_BY):
        problem = None
        if "member" not in ds.attrs:
            problem = "no 'member' attribute"
        elif not int(ds.attrs.get("failed", 0)) and ("sic" not in ds or ds["sic"].dims != MEMBER_DIMS):
            problem = f"no variable sic on {MEMBER_DIMS}"
        else:
            ds["init_time"].values  # noqa: B018 - read (and checksummed) here, named if it fails
    if problem:
        ds.close()
        raise unreadable(path, ValueError(f"not a member file: {problem}"), REMADE_BY)
    return ds


def usable_members(paths: Sequence[str | Path]) -> tuple[list[Path], list[int]]:
    """The member files with forecasts, and the numbers of the members recorded as failed."""
    usable, failed = [], []
    for path in paths:
        with open_member(path) as ds:
            if int(ds.attrs.get("failed", 0)):
                failed.append(int(ds.attrs["member"]))
            else:
                usable.append(Path(path))
    return usable, sorted(failed)


def open_member_files(paths: Sequence[str | Path]) -> tuple[list[xr.Dataset], pd.DatetimeIndex, int]:
    """The usable members' files opened lazily (to read a lead at a time), their common init
    dates and their number of leads; the caller closes them."""
    usable, _ = usable_members(paths)
    if not usable:
        raise ValueError("no member has a forecast: every member failed in training")
    datasets = [open_member(path) for path in usable]
    dates = pd.DatetimeIndex(datasets[0]["init_time"].values)
    for path, ds in zip(usable, datasets, strict=True):
        if not pd.DatetimeIndex(ds["init_time"].values).equals(dates):
            for opened in datasets:
                opened.close()
            raise ValueError(f"{path}: its init dates differ from {usable[0]}'s")
    return datasets, dates, datasets[0].sizes["leadtime"]


def _values(ds: xr.Dataset, k: int | None = None) -> np.ndarray:
    """A member's ``sic`` (one lead, or all) as float32, read under the file's checks."""
    with checked_reads(ds.encoding["source"], REMADE_BY):
        sic = ds["sic"] if k is None else ds["sic"].isel(leadtime=k - 1)
        return sic.values.astype(np.float32)


def member_lead(datasets: Sequence[xr.Dataset], k: int) -> np.ndarray:
    """Lead ``k`` of every member, (members, init dates, H, W) float32."""
    return np.stack([_values(ds, k) for ds in datasets])


def open_members(paths: Sequence[str | Path], quorum: int = 1) -> xr.DataArray:
    """Stack the usable member files along ``member`` (sorted by number); attrs name the failed
    ones. Fewer than ``quorum`` usable members is an error naming them."""
    usable, failed = usable_members(paths)
    if len(usable) < max(quorum, 1):
        raise ValueError(
            f"only {len(usable)} of {len(paths)} members have forecasts (members {failed} failed in training), "
            f"fewer than the quorum of {quorum} (train.quorum): no forecast from {Path(paths[0]).parent}"
        )
    arrays, store_hash = [], ""
    for path in usable:
        with open_member(path) as ds:
            sic = ds["sic"].copy(data=_values(ds))
            arrays.append(sic.expand_dims(member=[int(ds.attrs["member"])]))
            store_hash = ds.attrs.get("store_sha256", "")
    stacked = xr.concat(arrays, dim="member").sortby("member")
    stacked.attrs.update(store_sha256=store_hash, failed_members=json.dumps(failed))
    return stacked
