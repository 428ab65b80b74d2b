"""ERA5 daily fields in the layout the new CDS API delivers as NetCDF.

Dimensions ``valid_time`` plus the horizontal ones, the ERA5 short names (``t2m``,
``u10``, ``v10``), and the auxiliary ``number`` and ``expver`` variables. The real CDS
files are on a regular latitude/longitude grid; the synthetic source writes the same
variables directly on the EASE2 grid (``yc``/``xc``), which the regrid step passes through.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from floecast.grid import Ease2Grid
from floecast.io import read_variable, write_netcdf

ERA5_VARIABLES: dict[str, dict[str, str]] = {
    "t2m": {"long_name": "2 metre temperature", "units": "K", "GRIB_paramId": "167"},
    "u10": {"long_name": "10 metre U wind component", "units": "m s**-1", "GRIB_paramId": "165"},
    "v10": {"long_name": "10 metre V wind component", "units": "m s**-1", "GRIB_paramId": "166"},
}
# physically possible daily means, used to reject corrupt deliveries
VALID_RANGE: dict[str, tuple[float, float]] = {"t2m": (180.0, 340.0), "u10": (-80.0, 80.0), "v10": (-80.0, 80.0)}


def write_era5_like(path: str | Path, grid: Ease2Grid, variable: str, dates: pd.DatetimeIndex, values: np.ndarray) -> None:
    """Write daily means of one variable on the EASE2 grid in the CDS NetCDF layout."""
    if variable not in ERA5_VARIABLES:
        raise ValueError(f"unknown ERA5 variable {variable!r}; known: {sorted(ERA5_VARIABLES)}")
    ds = xr.Dataset(
        {
            variable: (("valid_time", "yc", "xc"), values.astype(np.float32), dict(ERA5_VARIABLES[variable])),
            "number": ((), np.int64(0), {"long_name": "ensemble member numerical id", "units": "1"}),
            "expver": (("valid_time",), np.array(["0001"] * len(dates)), {"long_name": "model version"}),
        },
        coords={
            "valid_time": ("valid_time", dates.values, {"standard_name": "time", "long_name": "time"}),
            **grid.coords(),
        },
        attrs={"GRIB_centre": "ecmf", "Conventions": "CF-1.7", "institution": "synthetic (floecast)"},
    )
    ds[variable].encoding.update(zlib=True, complevel=1)
    write_netcdf(ds, path)


def read_era5_variable(path: str | Path, variable: str) -> xr.DataArray:
    """One variable with a ``time`` dimension, loaded, its range checked."""
    da = read_variable(path, variable).rename(valid_time="time")
    low, high = VALID_RANGE[variable]
    finite = da.values[np.isfinite(da.values)]
    if finite.size and (finite.min() < low or finite.max() > high):
        raise ValueError(f"{path}: {variable} outside [{low}, {high}] ({finite.min():.4g} .. {finite.max():.4g})")
    return da
