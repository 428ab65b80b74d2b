"""ORAS5, ECMWF's ocean and sea-ice reanalysis: monthly means from the CDS dataset ``reanalysis-oras5``
through ``cdsapi`` (the client, credentials, retries and errors are those of :mod:`era5`).

Request (one per variable and year, for the months not yet in the raw store)::

    reanalysis-oras5
    {"product_type": ["consolidated"], "vertical_resolution": "single_level",
     "variable": ["sea_ice_thickness"], "year": ["2014"], "month": ["01", ..., "12"],
     "download_format": "zip"}

``product_type`` is ``consolidated`` (ERA-Interim forcing) up to 2014 and ``operational`` from 2015,
which ECMWF updates monthly, about 15 days after the month. The zip holds one NetCDF per month,
``<short>_control_monthly_highres_2D_<YYYYMM>_<CONS|OPER>_v0.1.nc``, on the ORCA025 grid: dimensions
``time_counter`` (1), ``y`` (1021), ``x`` (1442) without coordinate variables, the 2-D
``nav_lat``/``nav_lon``, and the variable (``iicethic``, ``sohtc300``, ``somxl010``, ...) on
(``time_counter``, ``y``, ``x``), missing over land. docs/data-sources.md says which of these facts
are verified. A bare NetCDF delivery (a one-file request without the zip) is accepted too.

Raw store: the month files are kept, under the provider's names, in ``data/raw/oras5/<variable>/files/``
(ORAS5 is global, so both hemispheres share them), and a re-run requests only months missing there.
The job's output, ``data/raw/oras5/<variable>/<hemi>/<year>.nc``, holds the year's months that have
ended by the last day asked for and that the CDS has, on the grid rows that reach the hemisphere,
with dims (``time``, ``y``, ``x``) and ``nav_lat``/``nav_lon``. Months the CDS does not have yet are
listed in its ``floecast_months_missing`` attribute: the regrid step persists the newest month over
the days that need them, and flags those days.

The synthetic source writes the same variables as monthly means directly on EASE2 (``yc``/``xc``),
which the regrid step passes through (:func:`write_oras5_like`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import shutil
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from floecast import __version__
from floecast.grid import Ease2Grid
from floecast.io import atomic_path, read_variable, write_netcdf
from floecast.variables import Oras5Name, Variable, to_canonical
from floecast.variables import variable as catalogue_variable

log = logging.getLogger(__name__)

DATASET = "reanalysis-oras5"
CONSOLIDATED_LAST_YEAR = 2014  # the consolidated product (reanalysis forcing) ends here; operational from 2015
HEMISPHERE_EDGE_DEG = 15.0
FILES_DIR = "files"
TIME_DIMS = ("time_counter", "time")


def oras5_name(variable: str) -> tuple[Variable, Oras5Name]:
    """The catalogue entry of ``variable`` and its ORAS5 names (an error if ORAS5 has none)."""
    item = catalogue_variable(variable)
    if item.oras5 is None:
        raise ValueError(f"{variable} has no ORAS5 counterpart in the catalogue (floecast/variables.py)")
    return item, item.oras5


def product_type(year: int) -> str:
    return "consolidated" if year <= CONSOLIDATED_LAST_YEAR else "operational"


def oras5_filename(variable: str, year: int, month: int) -> str:
    """The provider's name of one month's file."""
    _, names = oras5_name(variable)
    stream = "CONS" if year <= CONSOLIDATED_LAST_YEAR else "OPER"
    return f"{names.short_name}_control_monthly_highres_2D_{year:04d}{month:02d}_{stream}_v0.1.nc"


def oras5_request(variable: str, year: int, months: Sequence[int]) -> dict[str, Any]:
    """The new-CDS request for ``months`` of ``year`` of one variable."""
    _, names = oras5_name(variable)
    if not months or not all(1 <= m <= 12 for m in months):
        raise ValueError(f"ORAS5 {variable} {year}: months must be 1..12, got {list(months)}")
    return {
        "product_type": [product_type(year)],
        "vertical_resolution": names.vertical_resolution,
        "variable": [names.request],
        "year": [f"{year:04d}"],
        "month": [f"{m:02d}" for m in sorted(set(months))],
        "download_format": "zip",
    }


def months_ended(year: int, last_day: dt.date) -> list[int]:
    """The months of ``year`` whose last day is on or before ``last_day``."""
    return [m for m in range(1, 13) if dt.date(year, m, calendar.monthrange(year, m)[1]) <= last_day]


def newest_oras5_month(url: str | None = None, key: str | None = None) -> tuple[int, int] | None:
    """(year, month) of the end of ORAS5's temporal extent in the CDS catalogue (credentials as for cdsapi)."""
    from cdsapi.api import get_url_key_verify
    from ecmwf.datastores import Client

    url, key, verify = get_url_key_verify(url, key, None)
    end = Client(url=url, key=key, verify=verify, maximum_tries=3, retry_after=1).get_collection(DATASET).end_datetime
    return (end.year, end.month) if end else None


# ---------------------------------------------------------------------------------------
# validation and reading
# ---------------------------------------------------------------------------------------


def _time_dim(da: xr.DataArray) -> str:
    found = next((d for d in TIME_DIMS if d in da.dims), None)
    if found is None:
        raise ValueError(f"{da.name} has no time dimension (looked for {TIME_DIMS}; dims {da.dims})")
    return found


def validate_oras5_month(path: str | Path, variable: str, year: int, month: int) -> None:
    """Check one delivered month file; ValueError naming the file and the reason."""
    item, names = oras5_name(variable)
    path = Path(path)

    def bad(reason: str) -> ValueError:
        return ValueError(f"{path}: {reason}")

    try:
        with xr.open_dataset(path, engine="netcdf4") as handle:
            ds = handle.load()
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise bad(f"not a readable NetCDF file ({type(exc).__name__}: {exc})") from None
    if names.short_name not in ds.data_vars:
        raise bad(f"no variable {names.short_name!r} (has {sorted(map(str, ds.data_vars))})")
    da = ds[names.short_name]
    time = next((d for d in TIME_DIMS if d in da.dims), None)
    if time is None or da.dims != (time, "y", "x"):
        raise bad(f"{names.short_name} dims {da.dims}, expected (time_counter, y, x)")
    for coord in ("nav_lat", "nav_lon"):
        if coord not in ds.variables or ds[coord].dims != ("y", "x"):
            raise bad(f"no 2-D {coord} on (y, x)")
    if da.sizes[time] != 1:
        raise bad(f"{da.sizes[time]} time steps, expected one month")
    stamp = pd.Timestamp(ds[time].values[0]) if np.issubdtype(ds[time].dtype, np.datetime64) else None
    if stamp is None or (stamp.year, stamp.month) != (year, month):
        raise bad(f"time {ds[time].values[0]} is not in {year}-{month:02d}")
    units = da.attrs.get("units")
    if units != names.units:
        raise bad(f"{names.short_name} units {units!r}, expected {names.units!r}")
    values = to_canonical(np.asarray(da.values, np.float64), names.scale, names.offset)
    finite = values[np.isfinite(values)]
    if not finite.size:
        raise bad(f"{names.short_name} is all missing")
    low, high = item.valid_range
    if finite.min() < low or finite.max() > high:
        raise bad(f"{names.short_name} outside [{low:g}, {high:g}] ({finite.min():.4g} .. {finite.max():.4g})")


def read_oras5_variable(path: str | Path, variable: str) -> xr.DataArray:
    """One variable of a raw year file (or a synthetic one) in canonical units, with a ``time`` dimension."""
    _, names = oras5_name(variable)
    da = read_variable(path, names.short_name)
    time = _time_dim(da)
    if time != "time":
        da = da.rename({time: "time"})
    return to_canonical(da, names.scale, names.offset)


# ---------------------------------------------------------------------------------------
# fetching
# ---------------------------------------------------------------------------------------


def _unpack(delivery: Path, variable: str, year: int, months: Sequence[int], files_dir: Path) -> list[int]:
    """Validate the delivered month files and move them into ``files_dir``; the months that came."""
    from floecast.sources.http import reject  # the shared "move aside with a reason"

    wanted = {oras5_filename(variable, year, m): m for m in months}
    unpacked = delivery.with_name(delivery.name + ".d")
    unpacked.mkdir()
    try:
        if zipfile.is_zipfile(delivery):
            with zipfile.ZipFile(delivery) as archive:
                for member in archive.namelist():
                    name = Path(member).name
                    if name in wanted:
                        with archive.open(member) as src, open(unpacked / name, "wb") as dst:
                            shutil.copyfileobj(src, dst)
        elif len(wanted) == 1:  # a bare NetCDF for a one-month request
            shutil.copyfile(delivery, unpacked / next(iter(wanted)))
        else:
            raise ValueError(f"ORAS5 {variable} {year}: the delivery is not a zip archive of month files")
        came = []
        for name, month in wanted.items():
            path = unpacked / name
            if not path.exists():
                continue
            try:
                validate_oras5_month(path, variable, year, month)
            except ValueError as exc:
                moved = reject(path, str(exc))
                raise ValueError(f"ORAS5 {variable} {year}-{month:02d}: invalid delivery ({exc}); moved to {moved}") from None
            with atomic_path(files_dir / name) as tmp:
                shutil.move(path, tmp)
            came.append(month)
        return came
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)


def _month_valid(path: Path, variable: str, year: int, month: int) -> bool:
    try:
        validate_oras5_month(path, variable, year, month)
    except ValueError:
        return False
    return True


def _cut_rows(da: xr.DataArray, hemisphere: str) -> xr.DataArray:
    """The grid rows (``y``) that reach the hemisphere poleward of 15 degrees."""
    lat = da["nav_lat"].values
    rows = (lat >= HEMISPHERE_EDGE_DEG) if hemisphere == "north" else (lat <= -HEMISPHERE_EDGE_DEG)
    return da.isel(y=np.flatnonzero(rows.any(axis=1)))


def fetch_oras5_year(
    variable: str,
    year: int,
    hemisphere: str,
    last_day: dt.date,
    target: str | Path,
    *,
    client: Any = None,
    newest: tuple[int, int] | None = None,
) -> dict[str, list[int]]:
    """The months of ``year`` that have ended by ``last_day`` into ``target`` (see the module docstring).

    ``newest`` is ORAS5's newest (year, month) (default: asked of the CDS catalogue); later months are
    not requested and are listed as missing. ``client`` is a ``cdsapi.Client`` (default: made when a
    month must be fetched). Returns ``{"months": [...], "missing": [...], "fetched": [...]}``.
    """
    from floecast.sources.era5 import cds_client, cds_retrieve

    _, names = oras5_name(variable)
    target = Path(target)
    files_dir = target.parent.parent / FILES_DIR
    files_dir.mkdir(parents=True, exist_ok=True)
    wanted = months_ended(year, last_day)
    present = [m for m in wanted if _month_valid(files_dir / oras5_filename(variable, year, m), variable, year, m)]
    todo = [m for m in wanted if m not in present]
    if todo and newest is None:
        newest = newest_oras5_month()
    available = [m for m in todo if newest is None or (year, m) <= newest]
    fetched: list[int] = []
    if available:
        request = oras5_request(variable, year, available)
        what = f"ORAS5 {DATASET} {names.request} ({variable}) {year} months {available[0]:02d}..{available[-1]:02d}"
        client = client if client is not None else cds_client(what)
        delivery = files_dir / f".{variable}_{year}.{uuid.uuid4().hex[:8]}.cds.zip"
        try:
            log.info("%s: requesting from the CDS", what)
            cds_retrieve(client, DATASET, request, delivery, what)
            fetched = _unpack(delivery, variable, year, available, files_dir)
        finally:
            for leftover in (delivery, delivery.with_name(delivery.name + ".download")):
                leftover.unlink(missing_ok=True)
        if sorted(fetched) != sorted(available):
            lacking = sorted(set(available) - set(fetched))
            raise ValueError(
                f"{what}: the delivery lacks the month file(s) {[oras5_filename(variable, year, m) for m in lacking]}"
            )
    months = sorted(present + fetched)
    missing = [m for m in wanted if m not in months]
    if missing:
        log.warning("ORAS5 %s %d: month(s) %s not in the CDS yet; the newest month will be persisted", variable, year, missing)
    pieces = []
    for m in months:
        with xr.open_dataset(files_dir / oras5_filename(variable, year, m), engine="netcdf4") as ds:
            da = ds[names.short_name].load()
        time = _time_dim(da)
        da = da.rename({time: "time"}).assign_coords(time=[pd.Timestamp(year, m, 15)])
        pieces.append(_cut_rows(da, hemisphere))
    if pieces:
        year_da = xr.concat(pieces, dim="time")
    else:  # nothing yet: an empty year (the regrid step persists the year before)
        year_da = xr.DataArray(np.zeros((0, 0, 0), np.float32), dims=("time", "y", "x"), coords={"time": []})
    out = year_da.to_dataset(name=names.short_name)
    out.attrs.update(
        floecast_source=f"Copernicus Climate Data Store, {DATASET}",
        floecast_months=json.dumps(months),
        floecast_months_missing=json.dumps(missing),
        floecast_version=__version__,
    )
    out[names.short_name].encoding = {"zlib": True, "complevel": 1, "_FillValue": np.float32(1e20)}  # not the cut file's chunks
    write_netcdf(out, target)
    log.info("ORAS5 %s %s %d: %d month(s) (%d fetched) -> %s", variable, hemisphere, year, len(months), len(fetched), target)
    return {"months": months, "missing": missing, "fetched": sorted(fetched)}


# ---------------------------------------------------------------------------------------
# the synthetic counterpart
# ---------------------------------------------------------------------------------------


def write_oras5_like(path: str | Path, grid: Ease2Grid, variable: str, months: pd.DatetimeIndex, values: np.ndarray) -> None:
    """Monthly means (``months``: the first day of each) of one variable on EASE2, under its ORAS5 name and
    units, stamped on the 15th of each month."""
    item, names = oras5_name(variable)
    ds = xr.Dataset(
        {
            names.short_name: (
                ("time_counter", "yc", "xc"),
                np.asarray(values, np.float32),
                {"long_name": item.long_name, "units": names.units},
            )
        },
        coords={"time_counter": ("time_counter", pd.DatetimeIndex(months) + pd.Timedelta(days=14)), **grid.coords()},
        attrs={
            "institution": "synthetic (floecast)",
            "floecast_months": json.dumps([int(m) for m in pd.DatetimeIndex(months).month]),
        },
    )
    ds[names.short_name].encoding.update(zlib=True, complevel=1)
    write_netcdf(ds, path)
