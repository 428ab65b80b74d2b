"""SEAS5 as a benchmark of the hindcast: its starts on the EASE2 grid, and their fields by lead for the scorecard.

* :func:`regrid_seas5`: raw SEAS5 GRIB files (a year's starts, every member and lead) onto EASE2 with the regridding
  weights of :mod:`floecast.regrid` (conservative from SEAS5's 1-degree grid onto 25 km cells where it is coarser),
  written to ``data/interim/<hemi>/seas5/<year>.nc``: ``sic`` (init_time, member, leadtime, yc, xc) packed in steps
  of 1/250.
  SEAS5's land is missing: a cell's value is the mean over the SEAS5 ocean it covers, and the few EASE2 cells
  SEAS5 sees as land take the nearest SEAS5 ocean value (the scorecard masks land with the observations' mask).
* :class:`Seas5Hindcast`: the interim starts, read a lead at a time for the init dates both systems share.
* :func:`hindcast_init_dates`: the hindcast's init dates, every ``stride`` days plus the 1st of each month (SEAS5's
  starts), so the two systems share init dates.

Alignment (tested): lead k of init date D is valid on D + k in both systems (see :mod:`floecast.sources.seas5`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from floecast import __version__
from floecast.io import atomic_path
from floecast.store import SIC_STEPS

if TYPE_CHECKING:
    from floecast.grid import Ease2Grid

# the scorecard's method names: the synthetic stand-in is labelled as such wherever it is scored
METHODS = {"cds": "seas5", "synthetic": "seas5_synthetic"}


def method_name(source: str) -> str:
    """The scorecard's name of SEAS5 from ``source`` (cds or synthetic)."""
    try:
        return METHODS[source]
    except KeyError:
        raise ValueError(f"sources.seas5: unknown source {source!r} (known: {sorted(METHODS)})") from None


def hindcast_init_dates(candidates: pd.DatetimeIndex, stride: int, month_starts: bool = True) -> pd.DatetimeIndex:
    """Every ``stride``-th of the ``candidates`` (the valid init dates, daily), plus each 1st of a month among them."""
    dates = candidates[::stride]
    if month_starts:
        dates = dates.union(candidates[candidates.day == 1])
    return dates


def _fill_nearest(values: np.ndarray) -> np.ndarray:
    """(..., H, W) with each grid's NaN cells set to the nearest finite cell of the same grid."""
    from scipy.ndimage import distance_transform_edt

    missing = np.isnan(values[(0,) * (values.ndim - 2)])
    if not missing.any() or missing.all():
        return values
    _, (rows, cols) = distance_transform_edt(missing, return_indices=True)
    return values[..., rows, cols]


def _regrid_member(raw: xr.Dataset, member: int, grid: Ease2Grid, weights) -> np.ndarray:
    """One member's leads (leadtime, H, W) on ``grid``: the mean over the SEAS5 ocean each cell covers, nearest-filled."""
    from floecast import regrid

    fields = raw["sic"].values[member]
    total = regrid.apply(weights, np.nan_to_num(fields), grid)
    share = regrid.apply(weights, np.isfinite(fields).astype(np.float32), grid)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(share > 0, total / share, np.nan)
    if np.isnan(values).all():
        raise ValueError(f"{raw.attrs['source_file']}: no SEAS5 ocean cell overlaps the EASE2 grid (wrong area?)")
    # cells with no source at all (outside the requested area) or only SEAS5 land: the nearest SEAS5 ocean value
    return np.clip(_fill_nearest(values), 0.0, 1.0)


def regrid_seas5(
    raw_paths: Sequence[str | Path], out_path: str | Path, grid: Ease2Grid, source: str, cache_dir: str | Path | None = None
) -> None:
    """SEAS5 starts (raw GRIB files, e.g. a year's) onto ``grid`` in one file: ``sic`` (init_time, member, leadtime,
    yc, xc), written a member at a time (a 25 km start is 3.5 GB as float32). Every start needs the same members
    and leads (a year's starts are all hindcasts or all forecasts)."""
    # here, not at the top: the scorecard (predict env) and the hindcast's init dates (train env) import this
    # module without scipy (the regridding) or ecCodes (the GRIB reader)
    import netCDF4

    from floecast import regrid
    from floecast.sources.seas5 import read_seas5_grib

    paths = sorted(map(Path, raw_paths))
    if not paths:
        raise ValueError(f"{out_path}: no SEAS5 starts to regrid")
    synthetic = source == "synthetic"
    with atomic_path(out_path) as tmp:
        nc = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            first = None
            for i, path in enumerate(paths):
                raw = read_seas5_grib(path)
                if first is None:
                    first = raw
                    _create(nc, raw, grid, len(paths), synthetic, source)
                elif dict(raw.sizes) != dict(first.sizes) or not np.array_equal(raw["member"].values, first["member"].values):
                    raise ValueError(f"{path}: members or leads differ from {paths[0].name}'s")
                init = pd.Timestamp(raw["init_time"].values)
                nc["init_time"][i] = (init - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)
                weights = regrid.cached_weights(raw["latitude"].values, raw["longitude"].values, grid, cache_dir, "auto")
                for j in range(raw.sizes["member"]):
                    nc["sic"][i, j] = np.rint(_regrid_member(raw, j, grid, weights) * SIC_STEPS).astype(np.uint8)
            nc.setncattr("raw_files", " ".join(p.name for p in paths))
        finally:
            nc.close()


def _create(nc, raw: xr.Dataset, grid: Ease2Grid, starts: int, synthetic: bool, source: str) -> None:
    """Dimensions, coordinates and the packed ``sic`` variable of a SEAS5 interim file."""
    from floecast.sources.seas5 import SYNTHETIC_LABEL

    members, leads = raw["member"].values, raw["leadtime"].values
    for name, size in (("init_time", starts), ("member", len(members)), ("leadtime", len(leads))):
        nc.createDimension(name, size)
    nc.createDimension("yc", grid.size)
    nc.createDimension("xc", grid.size)
    init = nc.createVariable("init_time", "i4", ("init_time",))
    init.setncatts({"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "long_name": "SEAS5 start"})
    nc.createVariable("member", "i4", ("member",))[:] = members
    lead = nc.createVariable("leadtime", "i4", ("leadtime",))
    lead[:] = leads
    lead.setncatts({"units": "days", "long_name": "lead: valid on init_time + leadtime days"})
    for name, (_, values, attrs) in grid.coords().items():
        var = nc.createVariable(name, "f8", (name,))
        var[:] = values
        var.setncatts(attrs)
    sic = nc.createVariable(
        "sic",
        "u1",
        ("init_time", "member", "leadtime", "yc", "xc"),
        zlib=True,
        complevel=4,
        chunksizes=(1, 1, 1, grid.size, grid.size),
        fill_value=np.uint8(255),
    )
    sic.set_auto_scale(False)  # packed here: steps of 1/SIC_STEPS, rounded
    sic.setncatts(
        {
            "units": "1",
            "scale_factor": np.float32(1.0 / SIC_STEPS),
            "add_offset": np.float32(0.0),
            "long_name": ("SYNTHETIC " if synthetic else "") + "SEAS5 daily-mean sea-ice cover",
        }
    )
    nc.setncatts(
        {
            "source": SYNTHETIC_LABEL if synthetic else "ECMWF SEAS5 from the Copernicus Climate Data Store",
            "seas5_source": source,
            "method": method_name(source),
            "comment": "lead k is valid on init_time + k days: the SEAS5 mean over the step range 24k-24(k+1) h",
            "floecast_version": __version__,
        }
    )


class Seas5Hindcast:
    """SEAS5 starts on the EASE2 grid (interim files), read a lead at a time; the caller closes it.

    Starts may have different ensemble sizes (51 forecast members, 25 hindcast members): every start contributes
    its first ``members`` members, the fewest any start has, so the probabilistic scores pool like with like.
    """

    def __init__(self, paths: Sequence[str | Path]) -> None:
        if not paths:
            raise ValueError("no SEAS5 interim files")
        self.files = [xr.open_dataset(path, engine="netcdf4") for path in paths]
        self.starts: dict[pd.Timestamp, tuple[xr.Dataset, int]] = {}
        for path, ds in zip(paths, self.files, strict=True):
            for i, init in enumerate(pd.DatetimeIndex(ds["init_time"].values)):
                if init in self.starts:
                    self.close()
                    raise ValueError(f"{path}: a second copy of the SEAS5 start {init.date()}")
                self.starts[init] = (ds, i)
        sources = {ds.attrs.get("seas5_source", "cds") for ds in self.files}
        if len(sources) != 1:
            self.close()
            raise ValueError(f"SEAS5 files of several sources {sorted(sources)}: score one at a time")
        self.source = sources.pop()
        self.method = method_name(self.source)
        self.members = min(ds.sizes["member"] for ds in self.files)
        self.leads = min(int(ds["leadtime"].values.max()) for ds in self.files)

    @property
    def dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(sorted(self.starts))

    def shared(self, dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
        """The init dates among ``dates`` that SEAS5 has."""
        return dates.intersection(self.dates)

    def lead(self, dates: pd.DatetimeIndex, k: int) -> np.ndarray:
        """Lead ``k`` (valid on D + k) of each start D in ``dates``: (members, len(dates), H, W) float32."""
        fields = []
        for date in dates:
            if pd.Timestamp(date) not in self.starts:
                raise KeyError(f"no SEAS5 start on {pd.Timestamp(date).date()}")
            ds, i = self.starts[pd.Timestamp(date)]
            fields.append(ds["sic"].isel(init_time=i, member=slice(0, self.members)).sel(leadtime=k).values.astype(np.float32))
        return np.stack(fields, axis=1)

    def close(self) -> None:
        for ds in self.files:
            ds.close()
