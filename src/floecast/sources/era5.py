"""ERA5 from the Copernicus Climate Data Store (new CDS API, ``cdsapi``), and ERA5-like files.

Layout (as the CDS delivers NetCDF, kept in ``data/raw/era5/<variable>/<period>.nc``):
dimensions ``valid_time``, ``latitude`` (descending), ``longitude`` (plus ``pressure_level``
for pressure-level data, selected to a scalar coordinate in the raw store), the ERA5 short
names (``t2m``, ``u10``, ...), and the auxiliary ``number`` (scalar) and ``expver``
(per ``valid_time``: ``"0001"`` ERA5, ``"0005"`` preliminary ERA5T) variables.

Fetching (:func:`fetch_era5_month`): one variable, one month, one hemisphere per request.
The request asks for every hour (``"00:00"`` ... ``"23:00"``) of every day of the month and
the daily means are computed here, as the mean of the 24 hourly values of each UTC day.
For the accumulated radiation fields (``ssrd``, ``strd``) the hourly value at ``HH:00`` is
the accumulation over the hour ending then, so a day's mean (still in ``J m**-2``, divide by
3600 for ``W m**-2``) covers 23:00 of the day before to 23:00. Each day keeps its ``expver``
(``"0005"`` when any of its hours is ERA5T), so :func:`era5t_days` tells which months to
fetch again once final ERA5 replaces ERA5T.

Credentials and retries are cdsapi's own: ``~/.cdsapirc`` or ``CDSAPI_URL``/``CDSAPI_KEY``
(a key without a colon selects the new API's client, ``ecmwf.datastores``). That client
retries HTTP 408/429/500/502/503/504, dropped connections and read timeouts up to
``retry_max`` times, sleeping ``sleep_max`` seconds between tries (multiurl's ``robust``),
and polls a queued/running job with sleeps growing 1 s x 1.5 up to ``sleep_max``. The key
is never logged nor written anywhere by this module.

The synthetic source writes the same variables directly on the EASE2 grid (``yc``/``xc``),
which the regrid step passes through (:func:`write_era5_like`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import math
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from floecast import __version__
from floecast.grid import Ease2Grid
from floecast.io import read_variable, write_netcdf
from floecast.variables import VARIABLES

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# variables
# ---------------------------------------------------------------------------------------

DATASET_SINGLE_LEVELS = "reanalysis-era5-single-levels"
DATASET_PRESSURE_LEVELS = "reanalysis-era5-pressure-levels"
EXPVER_ERA5 = "0001"
EXPVER_ERA5T = "0005"
EXPVER_PERSISTED = "persisted"  # a day after ERA5's newest that repeats it (no real-time counterpart)
HOURS = tuple(f"{hour:02d}:00" for hour in range(24))
# Poleward bound of the requested area (degrees of latitude). The 25 km EASE2 grids reach
# 16.6 degrees at their corners; one more degree leaves room for the bilinear neighbours.
DEFAULT_AREA_LAT = 15.0

# cdsapi client settings (see the module docstring); cdsapi's own defaults are 500 and 120
CDS_RETRY_MAX = 30
CDS_SLEEP_MAX = 120.0
CDS_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Era5Variable:
    """One ERA5 field as requested from the CDS and named in its NetCDF files."""

    key: str  # floecast name: the short name, plus the level for pressure levels (z500)
    request_name: str  # the CDS request's ``variable``
    short_name: str  # the NetCDF variable
    long_name: str
    units: str  # as the CDS NetCDF writes them
    grib_param_id: int
    valid_range: tuple[float, float]  # physically possible hourly (and so daily) values
    pressure_level: int | None = None  # hPa
    accumulated: bool = False  # hourly accumulations (J m**-2), not instantaneous values

    @property
    def dataset(self) -> str:
        return DATASET_SINGLE_LEVELS if self.pressure_level is None else DATASET_PRESSURE_LEVELS


# from the catalogue of input variables; valid ranges are generous physical limits, meant to
# catch corrupt or mislabelled deliveries, not to flag extremes
ERA5_CDS_VARIABLES: dict[str, Era5Variable] = {
    item.name: Era5Variable(
        item.name,
        item.era5.request,
        item.era5.short_name,
        item.long_name,
        item.era5.units,
        item.era5.param_id,
        item.valid_range,
        item.era5.pressure_level,
        item.era5.accumulated,
    )
    for item in VARIABLES
    if item.era5 is not None
}
# attributes of the synthetic ERA5-like files
ERA5_VARIABLES: dict[str, dict[str, str]] = {
    key: {"long_name": item.long_name, "units": item.units, "GRIB_paramId": str(item.grib_param_id)}
    for key, item in ERA5_CDS_VARIABLES.items()
}

# physically possible values, used to reject corrupt deliveries and raw files
VALID_RANGE: dict[str, tuple[float, float]] = {key: item.valid_range for key, item in ERA5_CDS_VARIABLES.items()}


def era5_variable(variable: str) -> Era5Variable:
    """The catalogue entry of ``variable`` (a key of :data:`ERA5_CDS_VARIABLES`)."""
    try:
        return ERA5_CDS_VARIABLES[variable]
    except KeyError:
        raise ValueError(f"unknown ERA5 variable {variable!r}; known: {sorted(ERA5_CDS_VARIABLES)}") from None


# ---------------------------------------------------------------------------------------
# synthetic ERA5-like files and reading
# ---------------------------------------------------------------------------------------


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
    """One variable with a ``time`` dimension, loaded, its range checked.

    ``variable`` is a catalogue key: ``z500`` reads the file's ``z`` (its ``pressure_level``
    is a scalar coordinate in the raw store).
    """
    name = ERA5_CDS_VARIABLES[variable].short_name if variable in ERA5_CDS_VARIABLES else variable
    da = read_variable(path, name).rename(valid_time="time")
    low, high = VALID_RANGE[variable]
    finite = da.values[np.isfinite(da.values)]
    if finite.size and (finite.min() < low or finite.max() > high):
        raise ValueError(f"{path}: {variable} outside [{low}, {high}] ({finite.min():.4g} .. {finite.max():.4g})")
    return da


# ---------------------------------------------------------------------------------------
# CDS requests
# ---------------------------------------------------------------------------------------


def era5_area(hemisphere: str, area_lat: float = DEFAULT_AREA_LAT) -> list[float]:
    """The CDS ``area`` ([N, W, S, E]) poleward of ``area_lat`` degrees in ``hemisphere``."""
    if not 0.0 <= area_lat < 90.0:
        raise ValueError(f"area_lat must be in [0, 90) degrees, got {area_lat}")
    if hemisphere == "north":
        return [90.0, -180.0, float(area_lat), 180.0]
    if hemisphere == "south":
        return [-float(area_lat), -180.0, -90.0, 180.0]
    raise ValueError(f"hemisphere must be 'north' or 'south', got {hemisphere!r}")


def area_lat_for_grid(grid: Ease2Grid, margin_deg: float = 1.0) -> float:
    """An ``area_lat`` whose area covers every cell of ``grid`` with ``margin_deg`` to spare."""
    return float(max(0.0, math.floor(np.abs(grid.lat).min() - margin_deg)))


def _month_days(year: int, month: int, last_day: dt.date | None) -> list[int]:
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    ndays = calendar.monthrange(year, month)[1]
    if last_day is not None:
        if (last_day.year, last_day.month) < (year, month):
            raise ValueError(f"last day {last_day} is before {year}-{month:02d}")
        if (last_day.year, last_day.month) == (year, month):
            ndays = last_day.day
    return list(range(1, ndays + 1))


def era5_request(
    variable: str,
    year: int,
    month: int,
    hemisphere: str,
    area_lat: float = DEFAULT_AREA_LAT,
    *,
    last_day: dt.date | None = None,
    grid_deg: float | None = None,
) -> dict[str, Any]:
    """The new-CDS request for every hour of one month of ``variable`` in ``hemisphere``.

    ``last_day`` ends the month early (the current month, operationally); ``grid_deg``
    asks the CDS to interpolate to a coarser regular grid (default: native 0.25 degrees).
    """
    meta = era5_variable(variable)
    request: dict[str, Any] = {
        "product_type": ["reanalysis"],
        "variable": [meta.request_name],
        "year": [f"{year:04d}"],
        "month": [f"{month:02d}"],
        "day": [f"{day:02d}" for day in _month_days(year, month, last_day)],
        "time": list(HOURS),
    }
    if meta.pressure_level is not None:
        request["pressure_level"] = [str(meta.pressure_level)]
    request.update(data_format="netcdf", download_format="unarchived", area=era5_area(hemisphere, area_lat))
    if grid_deg is not None:
        request["grid"] = [float(grid_deg), float(grid_deg)]
    return request


def make_cds_client(
    *, retry_max: int = CDS_RETRY_MAX, sleep_max: float = CDS_SLEEP_MAX, timeout: float = CDS_TIMEOUT_S, quiet: bool = False
) -> Any:
    """``cdsapi.Client`` with credentials from ``~/.cdsapirc`` or ``CDSAPI_URL``/``CDSAPI_KEY``.

    ``retry_max`` and ``sleep_max`` set cdsapi's own retries of transient HTTP errors and
    its polling backoff (see the module docstring); no progress bar. Do not build a client
    with cdsapi's ``debug=True`` for these fetches: cdsapi then logs the key itself.
    """
    import cdsapi  # imported here: the synthetic path does not need it

    return cdsapi.Client(retry_max=retry_max, sleep_max=sleep_max, timeout=timeout, progress=False, quiet=quiet)


# ---------------------------------------------------------------------------------------
# validation and conversion
# ---------------------------------------------------------------------------------------


class CdsRequestError(RuntimeError):
    """The CDS request failed (a failed job, a permanent HTTP error, retries used up)."""


class InvalidDelivery(ValueError):
    """The delivered file is not usable; it was moved to ``rejected/`` beside the target."""

    def __init__(self, message: str, *, reason: str, rejected: Path | None) -> None:
        super().__init__(message)
        self.reason = reason
        self.rejected = rejected


class _Bad(Exception):
    """A reason a file is not acceptable (internal)."""


_MAGIC = {b"\x89HDF\r\n\x1a\n": "netcdf4", b"CDF\x01": "netcdf3", b"CDF\x02": "netcdf3", b"CDF\x05": "netcdf3"}


def _check_format(path: Path) -> None:
    size = path.stat().st_size
    if size == 0:
        raise _Bad("empty file (0 bytes)")
    with path.open("rb") as f:
        head = f.read(8)
    if any(head.startswith(magic) for magic in _MAGIC):
        return
    if head.startswith(b"PK\x03\x04"):
        raise _Bad("a zip archive, expected unarchived NetCDF (download_format 'unarchived')")
    if head.startswith(b"GRIB"):
        raise _Bad("GRIB, expected NetCDF (data_format 'netcdf')")
    raise _Bad(f"not a NetCDF file (starts with {head!r})")


def _expver_strings(values: np.ndarray) -> np.ndarray:
    """``expver`` as 4-digit strings, whatever the file stored (strings, bytes or numbers)."""
    out = []
    for value in np.asarray(values).ravel():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, float | np.floating):
            if not np.isfinite(value):
                raise _Bad("expver has missing values")
            value = int(value)
        text = str(value).strip()
        if not text.isdigit():
            raise _Bad(f"expver value {text!r} is not a number")
        out.append(f"{int(text):04d}")
    return np.array(out, dtype=object)


def _check_grid(ds: xr.Dataset, area: list[float], grid_deg: float | None) -> None:
    lat = np.asarray(ds["latitude"].values, dtype=np.float64)
    lon = np.asarray(ds["longitude"].values, dtype=np.float64)
    if lat.size < 2 or lon.size < 2:
        raise _Bad(f"grid too small ({lat.size} latitudes, {lon.size} longitudes)")
    dlat, dlon = np.diff(lat), np.diff(lon)
    if not (dlat < 0).all():
        raise _Bad("latitude is not strictly descending")
    if not np.allclose(dlat, dlat[0], rtol=1e-4) or not np.allclose(dlon, dlon[0], rtol=1e-4) or dlon[0] <= 0:
        raise _Bad("latitude/longitude are not a regular grid with ascending longitude")
    step_lat, step_lon = -dlat[0], dlon[0]
    if grid_deg is not None and not (np.isclose(step_lat, grid_deg, rtol=1e-4) and np.isclose(step_lon, grid_deg, rtol=1e-4)):
        raise _Bad(f"grid spacing {step_lat:g} x {step_lon:g} degrees, requested {grid_deg:g}")
    north, _, south, _ = area
    if lat[0] > 90.0 + 1e-6 or lat[-1] < -90.0 - 1e-6:
        raise _Bad(f"latitudes outside -90..90 ({lat[-1]:g} .. {lat[0]:g})")
    if abs(lat[0] - north) > step_lat + 1e-6 or abs(lat[-1] - south) > step_lat + 1e-6:
        raise _Bad(f"latitudes {lat[-1]:g} .. {lat[0]:g} do not cover the requested area {south:g} .. {north:g}")
    if lon[-1] - lon[0] < 360.0 - 1.01 * step_lon:
        raise _Bad(f"longitudes {lon[0]:g} .. {lon[-1]:g} do not go round the globe")


def _check_values(da: xr.DataArray, meta: Era5Variable) -> None:
    fill = da.encoding.get("_FillValue", da.attrs.get("_FillValue"))
    low, high = meta.valid_range
    if fill is not None and np.isfinite(fill) and low <= float(fill) <= high:
        raise _Bad(f"{meta.short_name} _FillValue {fill} lies inside the valid range {meta.valid_range}")
    values = np.asarray(da.values)
    if np.isinf(values).any():
        raise _Bad(f"{meta.short_name} has infinite values")
    finite = np.isfinite(values)
    if not finite.any():
        raise _Bad(f"{meta.short_name} is all missing")
    empty = ~finite.reshape(values.shape[0], -1).any(axis=1)
    if empty.any():
        first = pd.Timestamp(da["valid_time"].values[np.argmax(empty)])
        raise _Bad(f"{meta.short_name} is all missing at {int(empty.sum())} time(s), first {first:%Y-%m-%d %H:%M}")
    vmin, vmax = float(values[finite].min()), float(values[finite].max())
    if vmin < low or vmax > high:
        raise _Bad(f"{meta.short_name} outside its valid range [{low:g}, {high:g}] ({vmin:.6g} .. {vmax:.6g})")


def _check_times(times: np.ndarray, year: int, month: int, days: list[int], per_day: int) -> pd.DatetimeIndex:
    if not np.issubdtype(times.dtype, np.datetime64):
        raise _Bad(f"valid_time is not decoded as dates (dtype {times.dtype})")
    index = pd.DatetimeIndex(times)
    if index.has_duplicates:
        raise _Bad("valid_time has duplicate values")
    outside = index[(index.year != year) | (index.month != month)]
    if len(outside):
        raise _Bad(f"{len(outside)} time(s) outside {year}-{month:02d}, first {outside[0]:%Y-%m-%d %H:%M}")
    if per_day == 24:
        if (index.minute != 0).any() or (index.second != 0).any():
            raise _Bad("valid_time is not on the hour")
    elif (index != index.normalize()).any():
        raise _Bad("valid_time is not at 00:00 of each day")
    counts = pd.Series(1, index=index.day).groupby(level=0).sum()
    wrong = {int(day): int(n) for day, n in counts.items() if n != per_day}
    if wrong:
        raise _Bad(f"days without {per_day} time step(s): {dict(list(wrong.items())[:5])}")
    missing = sorted(set(days) - set(counts.index))
    extra = sorted(set(counts.index) - set(days))
    if missing or extra:
        raise _Bad(f"days missing {missing[:10]}, not requested {extra[:10]}")
    return index


def _open(path: Path) -> xr.Dataset:
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise _Bad(f"not a readable NetCDF file ({type(exc).__name__}: {exc})") from None


def _variable_of(ds: xr.Dataset, meta: Era5Variable) -> xr.DataArray:
    if meta.short_name not in ds.data_vars:
        raise _Bad(f"no variable {meta.short_name!r} (has {sorted(map(str, ds.data_vars))})")
    da = ds[meta.short_name]
    units = da.attrs.get("units")
    if units is not None and units != meta.units:
        raise _Bad(f"{meta.short_name} units {units!r}, expected {meta.units!r}")
    return da


def _daily_expver(hourly: np.ndarray) -> str:
    unique = sorted(set(hourly))
    if len(unique) == 1:
        return unique[0]
    return EXPVER_ERA5T if EXPVER_ERA5T in unique else unique[-1]


def _convert_delivery(
    path: Path, meta: Era5Variable, year: int, month: int, days: list[int], area: list[float], grid_deg: float | None
) -> xr.Dataset:
    """Check a delivered hourly file and return its daily means in the CDS layout."""
    _check_format(path)
    ds = _open(path)
    da = _variable_of(ds, meta)
    wanted = ("valid_time", "latitude", "longitude")
    if meta.pressure_level is not None:
        wanted = ("valid_time", "pressure_level", "latitude", "longitude")
    if da.dims != wanted:
        raise _Bad(f"{meta.short_name} dims {da.dims}, expected {wanted}")
    if meta.pressure_level is not None:
        levels = np.asarray(ds["pressure_level"].values, dtype=np.float64)
        match = np.nonzero(np.isclose(levels, meta.pressure_level))[0]
        if match.size != 1:
            raise _Bad(f"pressure_level {meta.pressure_level} hPa not (uniquely) delivered: {levels.tolist()}")
        da = da.isel(pressure_level=int(match[0]))
    _check_grid(ds, area, grid_deg)
    index = _check_times(np.asarray(ds["valid_time"].values), year, month, days, per_day=24)
    if "expver" not in ds.variables or ds["expver"].dims != ("valid_time",):
        raise _Bad("no expver variable along valid_time (ERA5 and ERA5T cannot be told apart)")
    _check_values(da, meta)

    order = np.argsort(index.values)
    values = np.asarray(da.values)[order].astype(np.float64)
    ny, nx = values.shape[-2:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        daily = values.reshape(len(days), 24, ny, nx).mean(axis=1).astype(np.float32)
    expver_hourly = _expver_strings(ds["expver"].values)[order].reshape(len(days), 24)
    expver = np.array([_daily_expver(list(row)) for row in expver_hourly], dtype=object)
    day_index = pd.DatetimeIndex([pd.Timestamp(year, month, day) for day in days])

    skip = {"_FillValue", "missing_value", "coordinates"}
    attrs = {k: v for k, v in da.attrs.items() if k not in skip}
    attrs["cell_methods"] = "valid_time: mean (24 hourly values per UTC day, computed by floecast)"
    if meta.accumulated:
        attrs["comment"] = "daily mean of hourly accumulations (J m**-2 per hour); divide by 3600 for W m**-2"
    coords: dict[str, Any] = {
        "valid_time": ("valid_time", day_index.values, {k: v for k, v in ds["valid_time"].attrs.items() if k not in skip}),
        "latitude": ("latitude", ds["latitude"].values, dict(ds["latitude"].attrs)),
        "longitude": ("longitude", ds["longitude"].values, dict(ds["longitude"].attrs)),
    }
    if meta.pressure_level is not None:
        coords["pressure_level"] = ((), np.float64(meta.pressure_level), dict(ds["pressure_level"].attrs))
    number = ds["number"] if "number" in ds.variables else xr.DataArray(np.int64(0))
    out = xr.Dataset(
        {
            meta.short_name: (("valid_time", "latitude", "longitude"), daily, attrs),
            "number": ((), np.asarray(number.values).reshape(-1)[0], dict(number.attrs)),
            "expver": (("valid_time",), expver, dict(ds["expver"].attrs)),
        },
        coords=coords,
        attrs={k: v for k, v in ds.attrs.items() if not k.startswith("_")},
    )
    out[meta.short_name].encoding.update(zlib=True, complevel=1, _FillValue=np.float32(np.nan))
    out["valid_time"].encoding.update(units="seconds since 1970-01-01", calendar="proleptic_gregorian", dtype="int64")
    return out


def validate_era5_month(path: str | Path, variable: str, year: int, month: int, *, last_day: dt.date | None = None) -> None:
    """Check a raw-store file of daily means (as :func:`fetch_era5_month` writes it).

    Raises ValueError naming the file and the reason.
    """
    path = Path(path)
    meta = era5_variable(variable)
    try:
        _check_format(path)
        ds = _open(path)
        da = _variable_of(ds, meta)
        if da.dims != ("valid_time", "latitude", "longitude"):
            raise _Bad(f"{meta.short_name} dims {da.dims}, expected ('valid_time', 'latitude', 'longitude')")
        if meta.pressure_level is not None:
            level = ds["pressure_level"].values if "pressure_level" in ds.variables else None
            if level is None or np.ndim(level) != 0 or not np.isclose(float(level), meta.pressure_level):
                raise _Bad(f"pressure_level is {level}, expected the scalar {meta.pressure_level}")
        _check_times(np.asarray(ds["valid_time"].values), year, month, _month_days(year, month, last_day), per_day=1)
        if "expver" not in ds.variables or ds["expver"].dims != ("valid_time",):
            raise _Bad("no expver variable along valid_time")
        _expver_strings(ds["expver"].values)
        _check_values(da, meta)
    except _Bad as exc:
        raise ValueError(f"{path}: {exc}") from None


def _valid_shorter_month(path: Path, variable: str, year: int, month: int) -> bool:
    """Whether ``path`` is a valid file of the month's first days (an earlier operational run)."""
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            last = pd.DatetimeIndex(ds["valid_time"].values).max()
        validate_era5_month(path, variable, year, month, last_day=last.date())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return True


def era5t_days(path: str | Path) -> list[dt.date]:
    """The days of a raw-store file whose data are preliminary ERA5T (``expver`` 0005)."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        if "expver" not in ds.variables:
            raise ValueError(f"{path}: no expver variable")
        times = pd.DatetimeIndex(ds["valid_time"].values)
        try:
            expver = _expver_strings(ds["expver"].values)
        except _Bad as exc:
            raise ValueError(f"{path}: {exc}") from None
    if len(expver) != len(times):
        raise ValueError(f"{path}: expver has {len(expver)} values for {len(times)} days")
    return sorted({t.date() for t, e in zip(times, expver, strict=True) if e == EXPVER_ERA5T})


# ---------------------------------------------------------------------------------------
# fetching
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Era5Fetch:
    path: Path
    status: Literal["fetched", "skipped"]
    era5t_days: list[dt.date]


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "<redacted>") if secret and len(secret) >= 4 else text


def cds_client(what: str) -> Any:
    """:func:`make_cds_client`, its failure (no credentials) a :class:`CdsRequestError` naming ``what``."""
    try:
        return make_cds_client()
    except Exception as exc:  # cdsapi raises a bare Exception for missing credentials
        raise CdsRequestError(f"{what}: cannot set up the CDS client: {exc}") from None


def cds_retrieve(client: Any, dataset: str, request: dict[str, Any], target: Path, what: str) -> None:
    """One CDS request into ``target``; any failure (a failed job, HTTP errors, retries used up) is a
    :class:`CdsRequestError` naming ``what`` and the CDS's reason, with the key scrubbed from it."""
    try:
        client.retrieve(dataset, request, str(target))
    except Exception as exc:
        detail = _scrub(f"{type(exc).__name__}: {exc}", getattr(client, "key", None))
        raise CdsRequestError(f"{what}: CDS request failed: {detail}") from None


CDS_CHECK_TIMEOUT_S = 60.0
CDS_CHECK_ATTEMPTS = 4
_TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}


def check_cds_key(
    *, timeout_s: float = CDS_CHECK_TIMEOUT_S, attempts: int = CDS_CHECK_ATTEMPTS, dataset: str = DATASET_SINGLE_LEVELS
) -> str:
    """Check the CDS credentials (as cdsapi finds them) with one authenticated request, the dataset's
    process description: at most ``attempts`` tries within ``timeout_s`` seconds in all, each failed
    try logged with the wait before the next. A refused key (401/403) is not tried again. Returns a
    line saying the key was accepted; raises :class:`CdsRequestError` saying why not."""
    import time

    import requests
    from cdsapi.api import get_url_key_verify
    from ecmwf.datastores import Client

    try:
        url, key, verify = get_url_key_verify(None, None, None)
    except Exception as exc:  # cdsapi raises a bare Exception for missing credentials
        raise CdsRequestError(f"CDS key check: no CDS credentials ({exc})") from None
    started = time.monotonic()
    deadline = started + timeout_s
    error = "no attempt made"
    for attempt in range(1, attempts + 1):
        per_try = max(1.0, min(15.0, deadline - time.monotonic()))
        log.info("CDS key check: %s, attempt %d of %d (at most %.0f s in all)", url, attempt, attempts, timeout_s)
        try:
            with warnings.catch_warnings():  # the client warns (rather than raises) when its start-up call fails
                warnings.simplefilter("ignore", UserWarning)
                client = Client(url=url, key=key, verify=verify, timeout=per_try, maximum_tries=1, retry_after=0, progress=False)
                client.get_process(dataset)
            return f"CDS key check: {url} accepted the key ({dataset} answered in {time.monotonic() - started:.1f} s)"
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            error = _scrub(f"HTTP {status}: {exc}", key)
            if status not in _TRANSIENT_HTTP:
                refused = "refused the key" if status in (401, 403) else "answered with an error"
                raise CdsRequestError(f"CDS key check: {url} {refused} ({error})") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            error = _scrub(f"{type(exc).__name__}: {exc}", key)
        wait = min(2.0**attempt, deadline - time.monotonic())
        if attempt == attempts or wait <= 0:
            break
        log.warning("CDS key check: attempt %d of %d failed (%s); trying again in %.0f s", attempt, attempts, error, wait)
        time.sleep(wait)
    raise CdsRequestError(
        f"CDS key check: {url} did not answer after {attempt} attempts in {time.monotonic() - started:.0f} s "
        f"(last: {error}); check CDSAPI_URL or the url in ~/.cdsapirc, and the network"
    )


def fetch_era5_month(
    variable: str,
    year: int,
    month: int,
    hemisphere: str,
    target: str | Path,
    *,
    area_lat: float = DEFAULT_AREA_LAT,
    client: Any = None,
    last_day: dt.date | None = None,
    grid_deg: float | None = None,
    refetch_era5t: bool = False,
) -> Era5Fetch:
    """Fetch one month of hourly ``variable`` from the CDS and write its daily means to ``target``.

    A valid existing ``target`` is kept and nothing is fetched (unless ``refetch_era5t`` and
    it still holds ERA5T days); an invalid one is moved to ``rejected/`` and fetched again.
    ``client`` is a ``cdsapi.Client`` (default :func:`make_cds_client`). The delivered file
    is checked (format, dims, variables, grid and area, every hour of every requested day and
    no other, units, fill value, valid range, no all-missing field, ``expver``) and an invalid
    one is moved to ``rejected/<target name>`` with a ``.reason.txt``, raising
    :class:`InvalidDelivery` (a ValueError). A failed CDS job or request raises
    :class:`CdsRequestError`. Both messages name the dataset, variable and period.
    """
    from floecast.sources.http import reject  # the shared "move aside with a reason"

    meta = era5_variable(variable)
    target = Path(target)
    days = _month_days(year, month, last_day)
    period = f"{year:04d}-{month:02d}" + (f"-01..{days[-1]:02d}" if last_day is not None else "")
    what = f"ERA5 {meta.dataset} {meta.request_name} ({variable}) {period} {hemisphere}"
    request = era5_request(variable, year, month, hemisphere, area_lat, last_day=last_day, grid_deg=grid_deg)

    if target.exists():
        try:
            validate_era5_month(target, variable, year, month, last_day=last_day)
        except ValueError as exc:
            if _valid_shorter_month(target, variable, year, month):
                log.info("%s: %s holds fewer days, fetching the longer period", what, target)
            else:
                moved = reject(target, f"existing file invalid: {exc}")
                log.warning("%s: existing %s is invalid, moved to %s; fetching again", what, target, moved)
        else:
            pending = era5t_days(target)
            if not (refetch_era5t and pending):
                log.info("%s: %s is there and valid, nothing fetched", what, target)
                return Era5Fetch(target, "skipped", pending)
            log.info("%s: %s holds %d ERA5T day(s), fetching again", what, target, len(pending))

    client = client if client is not None else cds_client(what)
    target.parent.mkdir(parents=True, exist_ok=True)
    delivery = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.cds.nc"
    try:
        log.info("%s: requesting from the CDS", what)
        cds_retrieve(client, meta.dataset, request, delivery, what)
        try:
            try:
                daily = _convert_delivery(delivery, meta, year, month, days, era5_area(hemisphere, area_lat), grid_deg)
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:  # content too odd to check
                raise _Bad(f"unreadable content ({type(exc).__name__}: {exc})") from None
        except _Bad as exc:
            moved = reject(delivery, str(exc), name=target.name)
            raise InvalidDelivery(
                f"{what}: invalid delivery ({exc}); moved to {moved}", reason=str(exc), rejected=moved
            ) from None
        daily.attrs.update(
            floecast_source=f"Copernicus Climate Data Store, {meta.dataset}",
            floecast_period=period,
            floecast_request=json.dumps(request),
            floecast_daily_mean="mean of the 24 hourly values of each UTC day",
            floecast_version=__version__,
        )
        write_netcdf(daily, target)
    finally:
        for leftover in (delivery, delivery.with_name(delivery.name + ".download")):
            leftover.unlink(missing_ok=True)
    pending = [
        pd.Timestamp(t).date()
        for t, e in zip(daily["valid_time"].values, daily["expver"].values, strict=True)
        if e == EXPVER_ERA5T
    ]
    log.info("%s: wrote %s (%d days, %d ERA5T)", what, target, len(days), len(pending))
    return Era5Fetch(target, "fetched", pending)


def fetch_era5_months(
    variable: str,
    hemisphere: str,
    first_day: dt.date,
    last_day: dt.date,
    months_dir: str | Path,
    *,
    area_lat: float = DEFAULT_AREA_LAT,
) -> xr.Dataset:
    """One CDS request per month of first_day..last_day (one year at most), each month's daily
    means kept in ``months_dir/MM.nc`` so a re-run fetches only what is missing, invalid or
    still ERA5T; returns the days joined."""
    if first_day.year != last_day.year or first_day > last_day:
        raise ValueError(f"ERA5 {variable}: period {first_day}..{last_day} must lie within one year")
    months_dir = Path(months_dir)
    client = None  # made by the first month that must be fetched: valid months need no credentials
    fetches = []
    for month in range(first_day.month, last_day.month + 1):
        month_last = min(last_day, (pd.Timestamp(first_day.year, month, 1) + pd.offsets.MonthEnd(1)).date())
        fetches.append(
            fetch_era5_month(
                variable,
                first_day.year,
                month,
                hemisphere,
                months_dir / f"{month:02d}.nc",
                area_lat=area_lat,
                client=client,
                last_day=month_last,
                refetch_era5t=True,
            )
        )
    months = []
    for fetch in fetches:
        with xr.open_dataset(fetch.path) as ds:
            months.append(ds.load())
    # data_vars="all" said, not defaulted: xarray is to change its default; "all" is what was tested
    joined = xr.concat(months, dim="valid_time", data_vars="all")
    return joined.sel(valid_time=slice(str(first_day), str(last_day)))
