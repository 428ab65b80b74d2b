"""CMIP6 daily fields in the layout of the CMIP6 data request (CMOR names and units).

``siconca`` (SIday, %), ``tas`` (day, K), ``uas`` and ``vas`` (day, m s-1). The real files
are on each model's native grid; the synthetic CMIP6-like run writes them on EASE2.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from floecast.grid import Ease2Grid
from floecast.io import read_variable, write_netcdf

# CMOR name -> (table, units, the ERA5/OSI-SAF quantity it stands for)
CMIP6_VARIABLES: dict[str, tuple[str, str, str]] = {
    "siconca": ("SIday", "%", "sic"),
    "tas": ("day", "K", "t2m"),
    "uas": ("day", "m s-1", "u10"),
    "vas": ("day", "m s-1", "v10"),
}
CANONICAL_TO_CMIP6 = {canonical: name for name, (_, _, canonical) in CMIP6_VARIABLES.items()}


def write_cmip6_like(
    path: str | Path, grid: Ease2Grid, variable: str, dates: pd.DatetimeIndex, values: np.ndarray, source_id: str, member: str
) -> None:
    table, units, _ = CMIP6_VARIABLES[variable]
    ds = xr.Dataset(
        {variable: (("time", "yc", "xc"), values.astype(np.float32), {"units": units})},
        coords={
            "time": ("time", dates.values + np.timedelta64(12, "h"), {"standard_name": "time"}),
            **grid.coords(),
        },
        attrs={
            "source_id": source_id,
            "variant_label": member,
            "table_id": table,
            "variable_id": variable,
            "grid_label": "gn",
            "institution": "synthetic (floecast)",
        },
    )
    ds[variable].encoding.update(zlib=True, complevel=1, _FillValue=np.float32(1e20))
    write_netcdf(ds, path)


def read_cmip6_variable(path: str | Path, variable: str) -> xr.DataArray:
    """One CMOR variable, its time snapped to the day, SIC converted to a fraction."""
    da = read_variable(path, variable)
    da = da.assign_coords(time=da["time"].dt.floor("D"))
    if variable == "siconca":
        da = da / 100.0
    return da


def assemble_run(
    paths: Sequence[str | Path], variable: str, first_year: int, last_year: int, hemisphere: str, out_path: str | Path
) -> None:
    """The delivered files of one run and variable -> one file of whole days over the years,
    on the model's grid cut to the hemisphere, in the standard calendar (days a 365-day or
    360-day calendar lacks are interpolated in time)."""
    arrays = [read_variable(path, variable) for path in paths]
    da = xr.concat(arrays, dim="time").sortby("time")
    da = da.sel(time=slice(f"{first_year}-01-01", f"{last_year}-12-31"))
    if da.sizes["time"] == 0:
        raise ValueError(f"{paths[0]}: no {variable} days in {first_year}-{last_year}")
    calendar = da["time"].dt.calendar
    if calendar not in ("standard", "gregorian", "proleptic_gregorian"):
        da = da.convert_calendar("standard", align_on="date", missing=np.nan).interpolate_na("time")
    da = da.assign_coords(time=pd.DatetimeIndex(da["time"].values).normalize() + pd.Timedelta(hours=12))
    lat = next(name for name in ("lat", "latitude") if name in da.dims)
    da = da.where(da[lat] >= 15, drop=True) if hemisphere == "north" else da.where(da[lat] <= -15, drop=True)
    ds = da.to_dataset(name=variable)
    ds[variable].attrs.update(units=CMIP6_VARIABLES[variable][1])
    ds[variable].encoding.update(zlib=True, complevel=1, _FillValue=np.float32(1e20))
    write_netcdf(ds.astype(np.float32), out_path)
