"""CMIP6 fields in the layout of the CMIP6 data request (CMOR names, tables and units).

Which CMOR variable stands for which input, its table (daily ``SIday``/``day``/``Oday`` or
monthly ``SImon``/``Omon``) and its conversion to canonical units come from the catalogue
(``floecast.variables``): ``siconca`` (SIday, %), ``tas`` (day, K), ``uas`` and ``vas``
(day, m s-1), ``tos`` (Oday, degC), ``sithick`` (SImon, m), ... The real files are on each
model's native grid: regular latitude/longitude, or for ocean and sea-ice variables usually
curvilinear (2-D ``latitude``/``longitude`` on a tripolar grid). The synthetic CMIP6-like
run writes them on EASE2.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from floecast.grid import Ease2Grid
from floecast.io import read_variable, write_netcdf
from floecast.variables import VARIABLES, Variable, by_cmip6_name, to_canonical

# CMOR name -> (table, units, the catalogue variable it stands for)
CMIP6_VARIABLES: dict[str, tuple[str, str, str]] = {
    item.cmip6.name: (item.cmip6.table, item.cmip6.units, item.name) for item in VARIABLES if item.cmip6 is not None
}
CANONICAL_TO_CMIP6 = {canonical: name for name, (_, _, canonical) in CMIP6_VARIABLES.items()}
LAT_NAMES = ("lat", "latitude", "nav_lat")
HEMISPHERE_EDGE_DEG = 15.0  # every EASE2 cell lies poleward of 16.6 degrees


def catalogue_entry(variable: str) -> Variable:
    """The catalogue variable of CMOR name ``variable`` (it has a CMIP6 counterpart)."""
    return by_cmip6_name(variable)


def write_cmip6_like(
    path: str | Path, grid: Ease2Grid, variable: str, dates: pd.DatetimeIndex, values: np.ndarray, source_id: str, member: str
) -> None:
    """One CMOR variable on EASE2: daily values at 12:00, or monthly means stamped on the 15th
    (``dates``: the first day of each month) for a monthly table."""
    table, units, _ = CMIP6_VARIABLES[variable]
    offset = np.timedelta64(14, "D") if catalogue_entry(variable).cmip6.frequency == "monthly" else np.timedelta64(12, "h")
    ds = xr.Dataset(
        {variable: (("time", "yc", "xc"), values.astype(np.float32), {"units": units})},
        coords={
            "time": ("time", dates.values + offset, {"standard_name": "time"}),
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
    """One CMOR variable in the catalogue's canonical units, its time snapped to the day."""
    cmip6 = catalogue_entry(variable).cmip6
    da = read_variable(path, variable)
    da = da.assign_coords(time=da["time"].dt.floor("D"))
    return to_canonical(da, cmip6.scale, cmip6.offset)


def _latitude(da: xr.DataArray) -> xr.DataArray:
    name = next((n for n in LAT_NAMES if n in da.coords), None)
    if name is None:
        raise ValueError(f"{da.name}: no latitude coordinate (looked for {LAT_NAMES})")
    return da[name]


def _hemisphere_cut(da: xr.DataArray, hemisphere: str) -> xr.DataArray:
    """The rows (1-D latitude) or grid rows (2-D latitude of a curvilinear grid) poleward of 15 degrees."""
    lat = _latitude(da)
    wanted = lat >= HEMISPHERE_EDGE_DEG if hemisphere == "north" else lat <= -HEMISPHERE_EDGE_DEG
    if lat.ndim == 1:
        return da.isel({lat.dims[0]: np.flatnonzero(wanted.values)})
    row_dim = lat.dims[0]  # a curvilinear grid: keep every grid row that reaches the hemisphere
    return da.isel({row_dim: np.flatnonzero(wanted.values.any(axis=1))})


def _standard_times(da: xr.DataArray, monthly: bool) -> xr.DataArray:
    """Times in the standard calendar: days at 12:00 (days a 365-day or 360-day calendar lacks
    interpolated in time), or each month's 15th."""
    if monthly:
        stamps = [
            pd.Timestamp(int(y), int(m), 15) for y, m in zip(da["time"].dt.year.values, da["time"].dt.month.values, strict=True)
        ]
        return da.assign_coords(time=pd.DatetimeIndex(stamps))
    if da["time"].dt.calendar not in ("standard", "gregorian", "proleptic_gregorian"):
        da = da.convert_calendar("standard", align_on="date", missing=np.nan).interpolate_na("time")
    return da.assign_coords(time=pd.DatetimeIndex(da["time"].values).normalize() + pd.Timedelta(hours=12))


def assemble_run(
    paths: Sequence[str | Path], variable: str, first_year: int, last_year: int, hemisphere: str, out_path: str | Path
) -> None:
    """The delivered files of one run and variable -> one file over the years (whole days, or the
    months of a monthly table), on the model's grid cut to the hemisphere, in the standard calendar."""
    monthly = catalogue_entry(variable).cmip6.frequency == "monthly"
    arrays = [read_variable(path, variable) for path in paths]
    da = xr.concat(arrays, dim="time").sortby("time")
    da = da.sel(time=slice(f"{first_year}-01-01", f"{last_year}-12-31"))
    if da.sizes["time"] == 0:
        raise ValueError(f"{paths[0]}: no {variable} {'months' if monthly else 'days'} in {first_year}-{last_year}")
    da = _hemisphere_cut(_standard_times(da, monthly), hemisphere)
    ds = da.to_dataset(name=variable)
    ds[variable].attrs.update(units=CMIP6_VARIABLES[variable][1])
    ds[variable].encoding.update(zlib=True, complevel=1, _FillValue=np.float32(1e20))
    write_netcdf(ds.astype(np.float32), out_path)
