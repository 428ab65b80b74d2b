"""From delivered files to analysis-ready data: EASE2 interim files and the training statistics.

* ``regrid_*``: raw files -> one float32 EASE2 file per variable (and year), with the
  canonical names ``sic`` (fraction), ``t2m``, ``u10``, ``v10``.
* ``fit_statistics``: land and active-cell masks, day-of-year climatologies and the
  normalisation, all from the training years only (the rule is given only their files).

The zarr store they feed is written and read by ``floecast.store``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import uniform_filter1d

from floecast import __version__, regrid
from floecast.channels import DEFAULT_ATMOS, AtmosChannel
from floecast.grid import BASE_SIZE, Ease2Grid, coarsen_blocks
from floecast.io import read_variable, write_netcdf
from floecast.sources.cmip6 import CANONICAL_TO_CMIP6, read_cmip6_variable
from floecast.sources.era5 import read_era5_variable
from floecast.sources.osisaf import (
    POLSTERE_GRIDS,
    STATUS_LAKE,
    STATUS_LAND,
    polar_hole_radius_km,
    read_osisaf_file,
    served_days,
)
from floecast.sources.sicchain import SicChain, SicProduct

if TYPE_CHECKING:
    from floecast.consistency import SicMapping

log = logging.getLogger(__name__)
ATMOS_VARIABLES = ("t2m", "u10", "v10")  # what the sources deliver; the config picks channels
ICE_THRESHOLD = 0.15
CLIM_WINDOW_DAYS = 31  # smoothing of day-of-year climatologies


def _check_grid(path: str | Path, shape: tuple[int, ...], grid: Ease2Grid) -> None:
    if tuple(shape[-2:]) != grid.shape:
        raise ValueError(f"{path}: grid {tuple(shape[-2:])} does not match the configured EASE2 grid {grid.shape}")


def _write_interim(ds: xr.Dataset, out_path: str | Path) -> None:
    """Compressed, one chunk per day (or per day of year) of each field: the store reads
    slices of days, so no chunk is decompressed twice."""
    ds.attrs["floecast_version"] = __version__
    for name, da in ds.data_vars.items():
        ds[name].encoding.update(zlib=True, complevel=1)
        if da.ndim == 3:
            ds[name].encoding["chunksizes"] = (1, *da.shape[1:])
    write_netcdf(ds, out_path)


def _sic_days(folders: Sequence[str | Path], grid: Ease2Grid, chain: SicChain) -> dict[dt.date, tuple[Path, SicProduct]]:
    """The file and product of each day in the folders (files of no product of the chain are left out)."""
    days: dict[dt.date, tuple[Path, SicProduct]] = {}
    for folder in folders:
        for day, (name, product) in served_days(folder, chain, grid.hemisphere).items():
            days[day] = (Path(folder) / name, product)
        others = sorted(p.name for p in Path(folder).glob("ice_conc_*.nc") if chain.identify(p.name, grid.hemisphere) is None)
        if others:
            log.warning("%s: %d file(s) of no product in osisaf.products left out, e.g. %s", folder, len(others), others[0])
    return days


@lru_cache(maxsize=2)
def _polstere_weights(hemisphere: str):
    source = POLSTERE_GRIDS[hemisphere]
    return regrid.projected_bilinear_weights(source.xc * 1000.0, source.yc * 1000.0, source.crs, Ease2Grid(hemisphere, 1))


def _read_sic_day(path: Path, product: SicProduct, grid: Ease2Grid) -> tuple[np.ndarray, np.ndarray | None]:
    """(SIC on ``grid``, land or lake on ``grid``; None for a product whose flags are not used for the land mask)."""
    sic, flag = read_osisaf_file(path, product.variables)
    if product.grid == "polstere-100":  # 10 km polar stereographic -> 25 km EASE2, bilinear
        base = Ease2Grid(grid.hemisphere, 1)
        sic = regrid.apply(_polstere_weights(grid.hemisphere), sic[None].astype(np.float32), base)[0]
        if grid.coarsen > 1:
            sic = coarsen_blocks(sic, grid.coarsen)
        return sic, None
    day_land = (flag & STATUS_LAND).astype(bool) | (flag & STATUS_LAKE).astype(bool)
    if sic.shape == (BASE_SIZE, BASE_SIZE) and grid.coarsen > 1:  # 25 km files, coarser grid
        sic = coarsen_blocks(np.where(day_land, np.nan, sic), grid.coarsen)
        day_land = coarsen_blocks(day_land.astype(np.float32), grid.coarsen) > 0.5
    _check_grid(path, sic.shape, grid)
    return sic, day_land


def regrid_sic_year(
    raw_dirs: str | Path | Sequence[str | Path],
    out_path: str | Path,
    grid: Ease2Grid,
    period: tuple[dt.date, dt.date] | None = None,
    chain: SicChain | None = None,
    mapping: SicMapping | None = None,
) -> xr.Dataset:
    """Stack the daily SIC files of a year (from one folder or one per month) over ``period``
    (default: first to last file); missing days are filled linearly in time, those before
    the first or after the last file with the nearest file's field, and all are flagged.

    Each day's file is the chain's (``chain``, default the schema's): 25 km EASE2 files are
    coarsened to ``grid``, 10 km polar stereographic ones (OSI-408-a) regridded; the land
    mask comes from the first EASE2 file's ``status_flag``. With ``mapping``, the days of
    the products it applies to are mapped onto the reference record. The product serving
    each day is kept in ``sic_product``."""
    chain = chain or SicChain.default()
    folders = [raw_dirs] if isinstance(raw_dirs, str | Path) else list(raw_dirs)
    found = _sic_days(folders, grid, chain)
    if not found:
        raise FileNotFoundError(f"{', '.join(map(str, folders))}: no daily SIC files of the products in osisaf.products")
    ordered = sorted(found.items())
    days = pd.DatetimeIndex([pd.Timestamp(day) for day, _ in ordered])
    fields, land, labels = [], None, []
    for day, (path, product) in ordered:
        sic, day_land = _read_sic_day(path, product, grid)
        if land is None and day_land is not None:
            land = day_land
        if mapping is not None and mapping.applies_to(product.name):
            sic = mapping.apply(sic, day.month)
        fields.append(sic)
        labels.append(product.label + (" mapped to " + mapping.reference if mapping and mapping.applies_to(product.name) else ""))
    if land is None:
        raise ValueError(f"{', '.join(map(str, folders))}: no EASE2 file (with its status_flag) to take the land mask from")
    fields = [np.where(land, np.nan, f) for f in fields]
    sic = xr.DataArray(np.stack(fields), dims=("time", "yc", "xc"), coords={"time": days})
    first, last = period or (days[0], days[-1])
    full = pd.date_range(first, last, freq="D")
    sic = sic.reindex(time=full)
    missing = sic.isnull().all(dim=("yc", "xc"))
    ocean = ~xr.DataArray(land, dims=("yc", "xc"))
    partly = (sic.isnull() & ocean).any(dim=("yc", "xc")) & ~missing  # a swath gap: some ocean cells
    sic = sic.interpolate_na(dim="time", method="linear")
    known = np.flatnonzero(~missing.values)  # days at the period's edges take the nearest file's field
    sic[: known[0]] = sic.values[known[0]]
    sic[known[-1] + 1 :] = sic.values[known[-1]]
    # ocean cells still missing (a gap on the first or newest day): the nearest day's value
    flat = pd.DataFrame(sic.values.reshape(len(full), -1)).ffill().bfill()  # pandas: no bottleneck needed
    sic = sic.copy(data=flat.to_numpy().reshape(sic.shape)).where(ocean)
    filled = missing | partly
    # the polar hole of each day's era is ice (it is surrounded by pack ice); its radius is
    # kept so the loss and the metrics can leave those cells out
    hole_km = np.array([polar_hole_radius_km(day.date(), grid.hemisphere) for day in full])
    served = dict(zip(days, labels, strict=True))
    product_of_day = np.array([served.get(day, "none (filled)") for day in full], dtype=object)
    xx, yy = np.meshgrid(grid.xc, grid.yc)
    in_hole = np.hypot(xx, yy)[None] / 1000.0 < hole_km[:, None, None]
    sic = sic.where(~(in_hole & ~land[None]), 1.0)
    ds = xr.Dataset(
        {
            "sic": (
                ("time", "yc", "xc"),
                sic.values.astype(np.float32),
                {"units": "1", "standard_name": "sea_ice_area_fraction"},
            ),
            "filled": (("time",), filled.values.astype(np.int8), {"long_name": "day filled by interpolation in time"}),
            "polar_hole_km": (("time",), hole_km.astype(np.float32), {"long_name": "radius of the polar hole, set to ice"}),
            "sic_product": (("time",), product_of_day, {"long_name": "the product (and version) that served the day"}),
            "land": (("yc", "xc"), land.astype(np.int8), {"long_name": "land or lake (OSI-SAF status_flag)"}),
        },
        coords={"time": full, **grid.coords()},
    )
    _write_interim(ds, out_path)
    return ds


LAT_NAMES, LON_NAMES = ("latitude", "lat"), ("longitude", "lon")
WIND_PARTNER = {"u10": "v10", "v10": "u10"}


def _latlon_dims(da: xr.DataArray) -> tuple[str, str] | None:
    lat = next((d for d in LAT_NAMES if d in da.dims), None)
    lon = next((d for d in LON_NAMES if d in da.dims), None)
    return (lat, lon) if lat and lon else None


def _regridded(da: xr.DataArray, path: str | Path, grid: Ease2Grid, cache_dir: str | Path | None = None) -> np.ndarray:
    """(time, y, x) float32 on ``grid``: passed through if already on it, else from lat/lon, bilinear or
    area-conservative where the source cells are larger than the target cells."""
    if "yc" in da.dims and "xc" in da.dims:
        _check_grid(path, da.shape, grid)
        return da.transpose("time", "yc", "xc").values.astype(np.float32)
    dims = _latlon_dims(da)
    if dims is None:
        raise ValueError(f"{path}: cannot regrid dims {da.dims}: expected (yc, xc) or latitude/longitude")
    weights = regrid.cached_weights(da[dims[0]].values, da[dims[1]].values, grid, cache_dir, method="auto")
    return regrid.apply(weights, da.transpose("time", *dims).values, grid)


def _read_atmos(raw_path: str | Path, variable: str, cmip6: bool) -> xr.DataArray:
    if cmip6:
        return read_cmip6_variable(raw_path, CANONICAL_TO_CMIP6[variable])
    return read_era5_variable(raw_path, variable)


def regrid_atmos(
    raw_path: str | Path,
    out_path: str | Path,
    grid: Ease2Grid,
    variable: str,
    cmip6: bool = False,
    partner_path: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> None:
    """One atmospheric variable (ERA5 short name or its CMIP6 counterpart) onto EASE2.

    Winds on latitude/longitude grids are east/north components: they are rotated to the
    grid's x/y axes, which needs the other component's file (``partner_path``). Fields
    already on the EASE2 grid (the synthetic source) are grid-relative and pass through.
    """
    da = _read_atmos(raw_path, variable, cmip6)
    values = _regridded(da, raw_path, grid, cache_dir)
    if variable in WIND_PARTNER and _latlon_dims(da) is not None:
        if partner_path is None:
            raise ValueError(f"{raw_path}: rotating {variable} to the grid axes needs the {WIND_PARTNER[variable]} file")
        other = _regridded(_read_atmos(partner_path, WIND_PARTNER[variable], cmip6), partner_path, grid, cache_dir)
        u, v = (values, other) if variable == "u10" else (other, values)
        x, y = regrid.rotate_winds(u, v, grid)
        values = (x if variable == "u10" else y).astype(np.float32)
    if not np.isfinite(values).all():
        raise ValueError(f"{raw_path}: {variable} has missing values on the EASE2 grid (source area too small?)")
    ds = xr.Dataset({variable: (("time", "yc", "xc"), values)}, coords={"time": da["time"].values, **grid.coords()})
    _write_interim(ds, out_path)


def regrid_cmip6_sic(raw_path: str | Path, out_path: str | Path, grid: Ease2Grid, cache_dir: str | Path | None = None) -> None:
    """CMIP6 ``siconca`` onto EASE2; the model's land is where SIC is never defined."""
    da = read_cmip6_variable(raw_path, "siconca")
    values = _regridded(da, raw_path, grid, cache_dir)
    land = ~np.isfinite(values).any(axis=0)
    ds = xr.Dataset(
        {
            "sic": (("time", "yc", "xc"), values, {"units": "1"}),
            "filled": (("time",), np.zeros(len(da["time"]), np.int8)),
            "land": (("yc", "xc"), land.astype(np.int8)),
        },
        coords={"time": da["time"].values, **grid.coords()},
    )
    _write_interim(ds, out_path)


def _open_concat(paths: Sequence[str | Path], variable: str) -> xr.DataArray:
    return xr.concat([read_variable(path, variable) for path in paths], dim="time").sortby("time")


def _doy_climatology(da: xr.DataArray) -> np.ndarray:
    """Mean by day of year (1..366), smoothed over CLIM_WINDOW_DAYS with wrap-around."""
    by_doy = da.groupby("time.dayofyear").mean().reindex(dayofyear=np.arange(1, 367))
    values = by_doy.values
    if np.isnan(values[365]).all():  # no leap year among the years: day 366 as day 365
        values[365] = values[364]
    return uniform_filter1d(values, CLIM_WINDOW_DAYS, axis=0, mode="wrap").astype(np.float32)


def fit_statistics(
    sic_paths: Sequence[str | Path],
    atmos_paths: dict[str, Sequence[str | Path]],
    out_path: str | Path,
    atmos_channels: Sequence[AtmosChannel] = DEFAULT_ATMOS,
) -> xr.Dataset:
    """Masks, climatologies and normalisation from the training years' interim files only.

    Every atmospheric channel gets its normalisation (mean, std of the transformed values;
    (0, 1) for ``norm: none``) and, for ``transform: anomaly``, its day-of-year climatology.
    """
    sic = _open_concat(sic_paths, "sic")
    with xr.open_dataset(sic_paths[0], engine="netcdf4") as first:
        land = first["land"].values.astype(bool)
    ocean_sic = sic.fillna(0.0)
    ice = ocean_sic > ICE_THRESHOLD
    active = ice.groupby("time.month").any().reindex(month=np.arange(1, 13), fill_value=False).values & ~land
    climatologies, norm = {}, {}
    for channel in atmos_channels:
        da = _open_concat(atmos_paths[channel.variable], channel.variable)
        values = da.values
        if channel.transform == "anomaly":
            clim = _doy_climatology(da)
            climatologies[f"{channel.variable}_clim"] = (("dayofyear", "yc", "xc"), clim)
            values = values - clim[da["time"].dt.dayofyear.values - 1]
        norm[channel.key] = (float(values.mean()), float(values.std())) if channel.norm == "zscore" else (0.0, 1.0)
    years = sorted({int(y) for y in sic["time"].dt.year.values})
    ds = xr.Dataset(
        {
            "land": (("yc", "xc"), land.astype(np.int8)),
            "active": (("month", "yc", "xc"), active.astype(np.int8), {"long_name": "ice seen in this month in training years"}),
            "sic_clim": (("dayofyear", "yc", "xc"), np.where(land, 0.0, _doy_climatology(ocean_sic)).astype(np.float32)),
            # the reference of the Brier skill score: the share of training years with ice on that day of year
            "ice_probability_clim": (
                ("dayofyear", "yc", "xc"),
                np.where(land, 0.0, _doy_climatology(ice.astype(np.float32))).astype(np.float32),
                {"long_name": "climatological probability of SIC above 15 % in the training years", "units": "1"},
            ),
            **climatologies,
        },
        coords={"month": np.arange(1, 13), "dayofyear": np.arange(1, 367), "yc": sic["yc"].values, "xc": sic["xc"].values},
        attrs={"training_years": json.dumps(years), "normalisation": json.dumps(norm)},
    )
    _write_interim(ds, out_path)
    return ds
