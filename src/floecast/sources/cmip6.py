"""CMIP6 daily fields in the layout of the CMIP6 data request (CMOR names and units).

``siconca`` (SIday, %), ``tas`` (day, K), ``uas`` and ``vas`` (day, m s-1). The real files
are on each model's native grid; the synthetic CMIP6-like run writes them on EASE2.
"""

from __future__ import annotations

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
