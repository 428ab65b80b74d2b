"""From delivered files to analysis-ready data: EASE2 interim files and the training statistics.

* ``regrid_*``: raw files -> one float32 EASE2 file per variable (and year), daily, under the
  catalogue's canonical names (``sic`` as a fraction, ``t2m``, ``sst``, ``sithick``, ...), gaps
  filled by each variable's fill policy (``floecast.variables``).
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
from floecast.channels import DEFAULT_FIELDS, FieldChannel
from floecast.fill import causal_daily, fill_from_nearest
from floecast.grid import BASE_SIZE, Ease2Grid, coarsen_blocks
from floecast.io import read_variable, write_netcdf
from floecast.sources.cmip6 import read_cmip6_variable
from floecast.sources.era5 import EXPVER_PERSISTED, read_era5_variable
from floecast.sources.oras5 import read_oras5_variable
from floecast.sources.osisaf import (
    POLSTERE_GRIDS,
    STATUS_LAKE,
    STATUS_LAND,
    polar_hole_radius_km,
    read_osisaf_file,
    served_days,
)
from floecast.sources.sicchain import SicChain, SicProduct
from floecast.variables import Variable
from floecast.variables import variable as catalogue_variable

if TYPE_CHECKING:
    from floecast.consistency import SicMapping

log = logging.getLogger(__name__)
DEFAULT_FIELD_VARIABLES = tuple(f.variable for f in DEFAULT_FIELDS)  # the default channels' variables
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


LAT_NAMES, LON_NAMES = ("latitude", "lat", "nav_lat"), ("longitude", "lon", "nav_lon")
SOURCE_KINDS = ("era5", "oras5", "cmip6")  # the layouts a raw field file can have
SOURCE_LAND_ATTRS = {"long_name": "cells the source never defines (its land), filled from the nearest defined cell"}
PERSISTED_ATTRS = {"long_name": "day persisting the source's newest data (no newer data yet)"}


def _latlon_dims(da: xr.DataArray) -> tuple[str, str] | None:
    lat = next((d for d in LAT_NAMES if d in da.dims), None)
    lon = next((d for d in LON_NAMES if d in da.dims), None)
    return (lat, lon) if lat and lon else None


def _curvilinear_coords(da: xr.DataArray) -> tuple[str, str] | None:
    """The 2-D latitude/longitude coordinates of a curvilinear grid (ORCA's nav_lat/nav_lon, CMIP6's
    latitude/longitude on (j, i)), or None."""
    lat = next((n for n in LAT_NAMES if n in da.coords and da[n].ndim == 2), None)
    lon = next((n for n in LON_NAMES if n in da.coords and da[n].ndim == 2), None)
    return (lat, lon) if lat and lon else None


def _regridded(
    da: xr.DataArray, path: str | Path, grid: Ease2Grid, cache_dir: str | Path | None = None, skip_nan: bool = False
) -> np.ndarray:
    """(time, y, x) float32 on ``grid``: passed through if already on it, else from a regular latitude/longitude
    grid (bilinear, or area-conservative where the source cells are larger than the target cells) or a
    curvilinear grid (area shares from its cells on the sphere, see :mod:`floecast.regrid`). ``skip_nan``: the
    weights of a source's NaN cells are shared out among its defined cells (:func:`regrid.apply`).

    A target cell outside the source's area is an error naming the file: no fill may hide it."""
    if "yc" in da.dims and "xc" in da.dims:
        _check_grid(path, da.shape, grid)
        return da.transpose("time", "yc", "xc").values.astype(np.float32)
    curvilinear = _curvilinear_coords(da)
    if curvilinear is not None:
        lat, lon = da[curvilinear[0]].values, da[curvilinear[1]].values
        dims = da[curvilinear[0]].dims
    else:
        dims = _latlon_dims(da)
        if dims is None:
            raise ValueError(f"{path}: cannot regrid dims {da.dims}: expected (yc, xc), latitude/longitude or 2-D coordinates")
        lat, lon = da[dims[0]].values, da[dims[1]].values
    weights = regrid.cached_weights(lat, lon, grid, cache_dir, method="auto")
    outside = ~regrid.covered(weights, grid)
    if outside.any():
        raise ValueError(
            f"{path}: the source ({float(np.nanmin(lat)):g}..{float(np.nanmax(lat)):g} degrees of latitude) does not cover "
            f"{int(outside.sum())} of the {outside.size} EASE2 cells (source area too small?)"
        )
    return regrid.apply(weights, da.transpose("time", *dims).values, grid, skip_nan=skip_nan)


def fill_source_land(values: np.ndarray, path: str | Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Cells the source never defines (its land) filled from the nearest cell it defines, day by day.

    Returns the filled (time, y, x) values and the (y, x) mask of filled cells. A cell the source
    defines on some days but not on others is a gap in its data, not land: an error naming the day.
    """
    defined = np.isfinite(values)
    source_land = ~defined.any(axis=0)
    gaps = ~defined & ~source_land
    if gaps.any():
        day = int(np.flatnonzero(gaps.reshape(len(values), -1).any(axis=1))[0])
        raise ValueError(f"{path}: {name} is missing on day {day} of the file in cells it defines on other days")
    return fill_from_nearest(values, source_land), source_land


def apply_fill(values: np.ndarray, item: Variable, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The catalogue's fill policy of ``item`` on regridded (time, y, x) values: the value for cells a source
    leaves empty on some days (``fill.missing``, or everywhere it is empty where ``fill.coast`` is off), then
    the nearest defined cell for cells it never defines (``fill.coast``). Returns the values and the (y, x)
    mask of cells filled from the nearest; a gap no policy covers is an error naming the file."""
    missing = np.isnan(values)
    if not missing.any():
        return values, np.zeros(values.shape[1:], bool)
    if item.fill.missing is not None:
        empty = missing if not item.fill.coast else missing & np.isfinite(values).any(axis=0)
        values = np.where(empty, np.float32(item.fill.missing), values)
    if item.fill.coast:
        return fill_source_land(values, path, item.name)
    if np.isnan(values).any():
        raise ValueError(f"{path}: {item.name} has missing values on the EASE2 grid, and its fill policy fills none")
    return values, np.zeros(values.shape[1:], bool)


def _check_range(da: xr.DataArray, item: Variable, path: str | Path) -> None:
    low, high = item.valid_range
    finite = da.values[np.isfinite(da.values)]
    if finite.size and (finite.min() < low or finite.max() > high):
        found = f"{finite.min():.4g} .. {finite.max():.4g}"
        raise ValueError(f"{path}: {item.name} outside [{low:g}, {high:g}] {item.units} ({found})")


def _expver_persisted(path: str | Path, times: np.ndarray) -> np.ndarray:
    """ERA5 layout: the days whose ``expver`` marks them as persisting the newest ERA5 day."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        if "expver" not in ds.variables:
            return np.zeros(len(times), bool)
        return np.array([str(v) == EXPVER_PERSISTED for v in np.asarray(ds["expver"].values).ravel()], bool)


def read_field(raw_path: str | Path, variable: str, kind: str) -> tuple[xr.DataArray, np.ndarray]:
    """One raw file of ``variable`` in canonical units with a ``time`` dimension, and the days that persist
    the source's newest data (ERA5 layout: ``expver``), by the file's layout ``kind`` (era5, oras5, cmip6)."""
    item = catalogue_variable(variable)
    if kind == "era5":
        da = read_era5_variable(raw_path, variable)
        return da, _expver_persisted(raw_path, da["time"].values)
    if kind == "oras5":
        da = read_oras5_variable(raw_path, variable)
    elif kind == "cmip6":
        if item.cmip6 is None:
            raise ValueError(f"{raw_path}: {variable} has no CMIP6 counterpart in the catalogue")
        da = read_cmip6_variable(raw_path, item.cmip6.name)
    else:
        raise ValueError(f"{raw_path}: unknown source layout {kind!r}; known: {SOURCE_KINDS}")
    _check_range(da, item, raw_path)
    return da, np.zeros(da.sizes["time"], bool)


def _monthly(item: Variable, kind: str) -> bool:
    if kind == "cmip6":
        return item.cmip6 is not None and item.cmip6.frequency == "monthly"
    return item.frequency == "monthly"


def field_values(
    raw_paths: Sequence[str | Path],
    grid: Ease2Grid,
    variable: str,
    kind: str,
    partner_paths: Sequence[str | Path] = (),
    cache_dir: str | Path | None = None,
    period: tuple[dt.date, dt.date] | None = None,
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, np.ndarray]:
    """A variable's raw files on EASE2 as daily fields: (days, values (time, y, x), persisted (time),
    source_land (y, x)).

    Vectors on latitude/longitude grids are east/north components: they are rotated to the grid's x/y
    axes, which needs the partner's files. Fields already on the EASE2 grid (the synthetic source) are
    grid-relative and pass through. The fill policy of the catalogue is applied on the EASE2 grid; monthly
    means become daily values that never use a month before it has ended (:func:`fill.causal_daily`) over
    ``period`` (default: every day of the months' years).
    """
    item = catalogue_variable(variable)
    pieces = [read_field(path, variable, kind) for path in raw_paths]
    pieces = [p for p in pieces if p[0].sizes["time"]]  # a year the source has no month of yet
    if not pieces:
        raise ValueError(f"{', '.join(map(str, raw_paths))}: no {variable} data in these files")
    da = xr.concat([p[0] for p in pieces], dim="time") if len(pieces) > 1 else pieces[0][0]
    persisted = np.concatenate([p[1] for p in pieces])
    order = np.argsort(da["time"].values, kind="stable")
    da, persisted = da.isel(time=order), persisted[order]
    source = raw_paths[0]
    gappy = item.fill.coast or item.fill.missing is not None
    values = _regridded(da, source, grid, cache_dir, skip_nan=gappy)
    if item.partner and (_latlon_dims(da) is not None or _curvilinear_coords(da) is not None):
        if not partner_paths:
            raise ValueError(f"{source}: rotating {variable} to the grid axes needs the {item.partner} file")
        partner = [read_field(path, item.partner, kind)[0] for path in partner_paths]
        other = xr.concat(partner, dim="time").sortby("time") if len(partner) > 1 else partner[0]
        other = _regridded(other, partner_paths[0], grid, cache_dir, skip_nan=gappy)
        east = item.component == "east"
        u, v = (values, other) if east else (other, values)
        x, y = regrid.rotate_winds(u, v, grid)
        values = (x if east else y).astype(np.float32)
    values, source_land = apply_fill(values, item, source)
    times = pd.DatetimeIndex(da["time"].values).normalize()
    if _monthly(item, kind):
        first, last = period or (dt.date(times[0].year, 1, 1), dt.date(times[-1].year, 12, 31))
        days = pd.date_range(first, last, freq="D")
        values, persisted = causal_daily(times, values, days)
        return days, values.astype(np.float32), persisted, source_land
    if period is not None:
        keep = (times >= pd.Timestamp(period[0])) & (times <= pd.Timestamp(period[1]))
        times, values, persisted = times[keep], values[keep], persisted[keep]
    return times, values, persisted, source_land


def regrid_field(
    raw_paths: Sequence[str | Path],
    out_path: str | Path,
    grid: Ease2Grid,
    variable: str,
    kind: str,
    partner_paths: Sequence[str | Path] = (),
    cache_dir: str | Path | None = None,
    period: tuple[dt.date, dt.date] | None = None,
) -> None:
    """One variable of the catalogue onto EASE2 as daily float32 fields (see :func:`field_values`), with
    ``persisted`` (per day) and ``source_land`` (the cells filled from the nearest defined cell)."""
    days, values, persisted, source_land = field_values(raw_paths, grid, variable, kind, partner_paths, cache_dir, period)
    item = catalogue_variable(variable)
    ds = xr.Dataset(
        {
            variable: (("time", "yc", "xc"), values, {"units": item.units, "long_name": item.long_name}),
            "persisted": (("time",), persisted.astype(np.int8), PERSISTED_ATTRS),
            "source_land": (("yc", "xc"), source_land.astype(np.int8), SOURCE_LAND_ATTRS),
        },
        coords={"time": days.values, **grid.coords()},
    )
    if variable == "sic":  # the SIC of a climate model: no day filled in time (the store reads the flag)
        ds["filled"] = (("time",), np.zeros(len(days), np.int8))
    _write_interim(ds, out_path)


def regrid_cmip6_sic(raw_path: str | Path, out_path: str | Path, grid: Ease2Grid, cache_dir: str | Path | None = None) -> None:
    """CMIP6 ``siconca`` onto EASE2. The model's land (where SIC is never defined) differs from the
    observations': it takes the SIC of the nearest model-ocean cell (``source_land`` records where),
    so every cell the observations call ocean has a value."""
    regrid_field([raw_path], out_path, grid, "sic", "cmip6", cache_dir=cache_dir)


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
    field_paths: dict[str, Sequence[str | Path]],
    out_path: str | Path,
    channels: Sequence[FieldChannel] = DEFAULT_FIELDS,
) -> xr.Dataset:
    """Masks, climatologies and normalisation from the training years' interim files only.

    Every field channel gets its normalisation (mean, std of the transformed values; (0, 1) for
    ``norm: none``) and, for ``transform: anomaly``, its day-of-year climatology. A variable whose
    fill policy sets the observations' land to the mean (an ocean field) is normalised over the
    ocean cells only.
    """
    sic = _open_concat(sic_paths, "sic")
    with xr.open_dataset(sic_paths[0], engine="netcdf4") as first:
        land = first["land"].values.astype(bool)
    ocean_sic = sic.fillna(0.0)
    ice = ocean_sic > ICE_THRESHOLD
    active = ice.groupby("time.month").any().reindex(month=np.arange(1, 13), fill_value=False).values & ~land
    climatologies, norm = {}, {}
    for channel in channels:
        da = _open_concat(field_paths[channel.variable], channel.variable)
        values = da.values
        if channel.transform == "anomaly":
            clim = _doy_climatology(da)
            climatologies[f"{channel.variable}_clim"] = (("dayofyear", "yc", "xc"), clim)
            values = values - clim[da["time"].dt.dayofyear.values - 1]
        if catalogue_variable(channel.variable).fill.land == "mean":
            values = values[:, ~land]
        norm[channel.key] = (float(values.mean()), float(values.std())) if channel.norm == "zscore" else (0.0, 1.0)
        if not (np.isfinite(norm[channel.key]).all() and norm[channel.key][1] > 0):
            raise ValueError(
                f"{field_paths[channel.variable][0]}: the training years give {channel.key} no usable normalisation "
                f"(mean, std = {norm[channel.key]}): too few days for a day-of-year climatology, or a constant field?"
            )
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
