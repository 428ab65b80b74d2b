"""ECMWF real-time open data (IFS HRES forecasts) for the days ERA5 does not cover yet.

ERA5T runs about five days behind real time; the operational forecast for init date D
needs inputs up to D - 1. The days in between come from the 00 UTC run of the IFS
high-resolution forecast on ECMWF's open-data portal, through the ``ecmwf-opendata``
client (``Client(source=..., model="ifs", resol="0p25")``), decoded here with ecCodes.

What is fetched for a day D (:func:`fetch_opendata_day`): the run of D 00 UTC, stream
``oper``, type ``fc``, steps 0, 3, ..., 21 h (:data:`DEFAULT_STEPS`; the portal has HRES
00 UTC steps 0 to 144 by 3, then by 6), the parameters of :data:`OPENDATA_PARAMS` (open-data
short names ``2t``, ``10u``, ``10v``, ``msl``, instantaneous fields). The daily mean is the
mean of the steps valid within D (00 to 21 UTC), the 3-hourly counterpart of ERA5's mean
of the 24 hourly values 00 to 23 UTC (step 24 is 00 UTC of the next day, as in ERA5). The
client reads each step's ``.index`` (JSON lines with ``_offset``/``_length`` per GRIB
message) and fetches only the requested messages with HTTP byte ranges
(``<source>/<yyyymmdd>/00z/ifs/0p25/oper/<yyyymmdd>000000-<step>h-oper-fc.grib2``).

Output: ONE NetCDF per day in the layout of the ERA5 daily files (see :mod:`era5`):
dimensions ``valid_time`` (1, the day at 00:00), ``latitude`` (descending, poleward of
``area_lat``), ``longitude`` (-180 .. 180 - step, ascending, like the ERA5 requests with area
[N, -180, S, 180]); one float32 variable per requested variable with the ERA5 short name
(``t2m``, ``u10``, ``v10``, ``msl``) and ERA5 units; the scalar ``number`` (0) and
``expver`` per ``valid_time`` set to :data:`EXPVER_OPENDATA` (``"hres"``), so downstream
can tell these days from ERA5 (``"0001"``) and ERA5T (``"0005"``). Note that
:func:`era5.era5t_days` and ``validate_era5_month`` expect numeric ``expver`` values: a
file joining these days to ERA5 days must handle the marker. Values are checked against
:data:`era5.VALID_RANGE` on every step before averaging; the file is written atomically.

Retries are the client's own (multiurl's ``robust``): HTTP 408, 429, 500, 502, 503, 504,
dropped connections and read timeouts are retried up to ``maximum_tries`` tries, sleeping
``retry_after`` seconds (a number, or (first, longest, factor) for a growing wait; the
index requests also honour ``Retry-After``). The client sets no timeouts, so
:func:`make_opendata_client` mounts an adapter on its session that gives every request a
default (connect, read) timeout. HTTP 404 (a run the portal does not have, or no longer
has: the ECMWF portal keeps only recent runs) raises :class:`OpendataNotAvailable` at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyproj  # noqa: F401  before ecCodes, always: see _read_grib
import requests
import xarray as xr

from floecast import __version__
from floecast.io import write_netcdf
from floecast.sources.era5 import DEFAULT_AREA_LAT, VALID_RANGE, Era5Variable, era5_area, era5_variable
from floecast.sources.grib import GRID_KEYS
from floecast.sources.http import DownloadError, NotAvailable, redact, reject
from floecast.variables import VARIABLES

log = logging.getLogger(__name__)

# floecast (ERA5) variable -> open-data short name, from the catalogue: the instantaneous surface
# fields of the open-data HRES catalogue that ERA5 also provides (paramIds as ERA5's)
OPENDATA_PARAMS: dict[str, str] = {item.name: item.opendata for item in VARIABLES if item.opendata}
DEFAULT_VARIABLES = tuple(OPENDATA_PARAMS)
RUN_HOUR = 0  # the 00 UTC run: its steps 0..21 are the day itself
DEFAULT_STEPS = tuple(range(0, 24, 3))  # valid 00, 03, ..., 21 UTC of the run's day
STREAM, TYPE, MODEL, RESOL = "oper", "fc", "ifs", "0p25"
EXPVER_OPENDATA = "hres"  # ``expver`` of these days in the raw store (ERA5 "0001", ERA5T "0005")
SOURCE_DEFAULT = "ecmwf"  # https://data.ecmwf.int/forecasts (the client's name for it)

# client settings (see the module docstring); the client's own defaults are 500 tries, 120 s
MAXIMUM_TRIES = 10
RETRY_AFTER: tuple[float, float, float] = (5.0, 120.0, 2.0)  # waits 5, 10, 20, ... 120 s
TIMEOUT_S = (30.0, 120.0)  # (connect, read between bytes)


class OpendataError(DownloadError):
    """An open-data request failed (a permanent HTTP answer, retries used up, a broken transfer)."""


class OpendataNotAvailable(NotAvailable):
    """The portal does not have the run (HTTP 404 for one of its files); not retried."""

    def __init__(self, message: str, *, url: str, day: dt.date, status: int | None = 404) -> None:
        super().__init__(message, url=url, status=status)
        self.day = day


class InvalidOpendata(ValueError):
    """The delivered GRIB is not usable; it was moved to ``rejected/`` beside the target."""

    def __init__(self, message: str, *, reason: str, rejected: Path | None) -> None:
        super().__init__(message)
        self.reason = reason
        self.rejected = rejected


class _Bad(Exception):
    """A reason a delivery or file is not acceptable (internal)."""


@dataclass(frozen=True)
class OpendataFetch:
    path: Path
    status: Literal["fetched", "skipped"]
    urls: tuple[str, ...]  # the GRIB files read (empty when skipped)


# ---------------------------------------------------------------------------------------
# client and request
# ---------------------------------------------------------------------------------------


class _TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Gives requests sent without a timeout (the client sets none) a default one."""

    def __init__(self, timeout: float | tuple[float, float], **kwargs: Any) -> None:
        self._timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, *args, **kwargs)


def make_opendata_client(
    source_url: str | None = None,
    *,
    maximum_tries: int = MAXIMUM_TRIES,
    retry_after: float | tuple[float, float, float] = RETRY_AFTER,
    timeout: float | tuple[float, float] = TIMEOUT_S,
) -> Any:
    """``ecmwf.opendata.Client`` for the IFS 0.25-degree products of ``source_url``.

    ``source_url`` is the portal's root (default: ECMWF's own, ``https://data.ecmwf.int/forecasts``;
    the client also knows ``"aws"``, ``"google"`` and ``"azure"``). ``maximum_tries`` and
    ``retry_after`` set the client's retries of transient errors (see the module docstring);
    ``timeout`` is given to every request of the client's session.
    """
    from ecmwf.opendata import Client  # imported here: the synthetic path does not need it

    client = Client(
        source=source_url or SOURCE_DEFAULT, model=MODEL, resol=RESOL, maximum_retries=maximum_tries, retry_after=retry_after
    )
    adapter = _TimeoutAdapter(timeout)
    client.session.mount("http://", adapter)
    client.session.mount("https://", adapter)
    return client


def _params(variables: Sequence[str]) -> list[str]:
    unknown = [v for v in variables if v not in OPENDATA_PARAMS]
    if unknown or not variables:
        raise ValueError(f"no open-data HRES field for {unknown or 'no variables'}; known: {sorted(OPENDATA_PARAMS)}")
    return [OPENDATA_PARAMS[v] for v in dict.fromkeys(variables)]


def _check_steps(steps: Sequence[int]) -> list[int]:
    steps = sorted({int(s) for s in steps})
    if not steps or steps[0] != 0 or steps[-1] >= 24 or len({b - a for a, b in zip(steps, steps[1:], strict=False)}) > 1:
        raise ValueError(f"steps must be evenly spaced hours from 0 to before 24 (valid within the day), got {steps}")
    return steps


def opendata_request(day: dt.date, variables: Sequence[str], steps: Sequence[int] = DEFAULT_STEPS) -> dict[str, Any]:
    """The ``Client.retrieve`` request for the HRES run of ``day`` 00 UTC."""
    return {
        "date": f"{day:%Y%m%d}",
        "time": RUN_HOUR,
        "stream": STREAM,
        "type": TYPE,
        "step": _check_steps(steps),
        "param": _params(variables),
    }


# ---------------------------------------------------------------------------------------
# decoding and validation
# ---------------------------------------------------------------------------------------


@dataclass
class _Field:
    short_name: str
    param_id: int
    date: int
    time: int
    step: int
    grid: tuple[Any, ...]
    values: np.ndarray  # (Nj, Ni) in scanning order, NaN where missing


def _read_grib(path: Path) -> list[_Field]:
    # ecCodes' wheel (eccodeslib -> eckitlib) loads eckit's own libproj/libsqlite3 with
    # RTLD_GLOBAL (findlibs); pyproj loaded after that fails ("no database context
    # specified") and the process aborts at exit. pyproj is imported first, above.
    import eccodes

    fields = []
    try:
        with path.open("rb") as f:
            while (h := eccodes.codes_grib_new_from_file(f)) is not None:
                try:
                    grid = tuple(eccodes.codes_get(h, key) for key in GRID_KEYS)
                    if grid[0] != "regular_ll":
                        raise _Bad(f"gridType {grid[0]!r}, expected regular_ll")
                    values = np.asarray(eccodes.codes_get_values(h), dtype=np.float64)
                    if eccodes.codes_get(h, "bitmapPresent"):
                        values[values == eccodes.codes_get(h, "missingValue")] = np.nan
                    fields.append(
                        _Field(
                            short_name=str(eccodes.codes_get(h, "shortName")),
                            param_id=int(eccodes.codes_get(h, "paramId")),
                            date=int(eccodes.codes_get(h, "dataDate")),
                            time=int(eccodes.codes_get(h, "dataTime")),
                            step=int(eccodes.codes_get(h, "endStep")),
                            grid=grid,
                            values=values.reshape(int(grid[2]), int(grid[1])),
                        )
                    )
                finally:
                    eccodes.codes_release(h)
    except _Bad:
        raise
    except Exception as exc:  # ecCodes errors for truncated or corrupt messages
        raise _Bad(f"not readable GRIB ({type(exc).__name__}: {exc})") from None
    if not fields:
        raise _Bad("no GRIB messages")
    return fields


def _coordinates(grid: tuple[Any, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latitudes (descending), longitudes (-180..180, ascending) and the index orders that give them."""
    _, ni, nj, lat0, lon0, di, dj, i_neg, j_pos, j_consecutive = grid
    if j_consecutive:
        raise _Bad("unsupported scanning mode (j points consecutive)")
    lat = lat0 + (1 if j_pos else -1) * dj * np.arange(nj)
    lon = lon0 + (-1 if i_neg else 1) * di * np.arange(ni)
    lon = (lon + 180.0) % 360.0 - 180.0
    lat_order, lon_order = np.argsort(-lat, kind="stable"), np.argsort(lon, kind="stable")
    lat, lon = lat[lat_order], lon[lon_order]
    if np.any(np.diff(lat) >= 0) or np.any(np.diff(lon) <= 0):
        raise _Bad("grid has repeated latitudes or longitudes")
    if lat[0] > 90.0 + 1e-6 or lat[-1] < -90.0 - 1e-6:
        raise _Bad(f"latitudes outside -90..90 ({lat[-1]:g} .. {lat[0]:g})")
    if abs(ni * di - 360.0) > 1e-3 * di:
        raise _Bad(f"longitudes do not go round the globe ({ni} x {di:g} degrees)")
    return lat, lon, lat_order, lon_order


def _check_values(key: str, values: np.ndarray, when: str) -> None:
    low, high = VALID_RANGE[key]
    if np.isinf(values).any():
        raise _Bad(f"{key} has infinite values at {when}")
    finite = values[np.isfinite(values)]
    if not finite.size:
        raise _Bad(f"{key} is all missing at {when}")
    vmin, vmax = float(finite.min()), float(finite.max())
    if vmin < low or vmax > high:
        raise _Bad(f"{key} outside its valid range [{low:g}, {high:g}] at {when} ({vmin:.6g} .. {vmax:.6g})")


def _cut(lat: np.ndarray, hemisphere: str, area_lat: float) -> np.ndarray:
    north, _, south, _ = era5_area(hemisphere, area_lat)
    keep = (lat <= north + 1e-6) & (lat >= south - 1e-6)
    if not keep.any():
        raise _Bad(f"no latitudes in {south:g} .. {north:g}")
    return keep


def _daily_dataset(
    fields: list[_Field], day: dt.date, variables: Sequence[str], steps: list[int], hemisphere: str, area_lat: float
) -> xr.Dataset:
    """Check the decoded messages and return the day's means in the ERA5 daily layout."""
    grids = {f.grid for f in fields}
    if len(grids) != 1:
        raise _Bad(f"messages on {len(grids)} different grids")
    lat, lon, lat_order, lon_order = _coordinates(grids.pop())
    keep = _cut(lat, hemisphere, area_lat)
    want_date = int(f"{day:%Y%m%d}")
    data_vars: dict[str, Any] = {}
    for key in dict.fromkeys(variables):
        meta: Era5Variable = era5_variable(key)
        param = OPENDATA_PARAMS[key]
        by_step: dict[int, _Field] = {}
        for f in fields:
            if f.short_name != param:
                continue
            if f.param_id != meta.grib_param_id:
                raise _Bad(f"{param} has paramId {f.param_id}, expected {meta.grib_param_id}")
            if (f.date, f.time) != (want_date, RUN_HOUR * 100):
                raise _Bad(f"{param} step {f.step} is from the run {f.date} {f.time:04d}, expected {want_date} {RUN_HOUR:02d}00")
            if f.step in by_step:
                raise _Bad(f"{param} step {f.step} delivered twice")
            by_step[f.step] = f
        missing = [s for s in steps if s not in by_step]
        if missing:
            raise _Bad(f"{param} ({key}) missing at step(s) {missing} h")
        stack = np.stack([by_step[s].values[lat_order][:, lon_order][keep] for s in steps])
        for s, field in zip(steps, stack, strict=True):
            _check_values(key, field, f"step {s} h")
        daily = stack.mean(axis=0).astype(np.float32)
        attrs = {
            "long_name": meta.long_name,
            "units": meta.units,
            "GRIB_paramId": np.int64(meta.grib_param_id),
            "GRIB_shortName": param,
            "cell_methods": f"valid_time: mean ({len(steps)} forecast steps {steps[0]}..{steps[-1]} h of the "
            f"{RUN_HOUR:02d} UTC HRES run, computed by floecast)",
        }
        data_vars[meta.short_name] = (("valid_time", "latitude", "longitude"), daily[None], attrs)
    data_vars["number"] = (
        (),
        np.int64(0),
        {"long_name": "ensemble member numerical id", "units": "1", "standard_name": "realization"},
    )
    data_vars["expver"] = (
        ("valid_time",),
        np.array([EXPVER_OPENDATA], dtype=object),
        {"long_name": "Experiment version", "comment": f"{EXPVER_OPENDATA!r}: ECMWF open-data IFS HRES forecast, not ERA5"},
    )
    coords = {
        "valid_time": (
            "valid_time",
            pd.DatetimeIndex([pd.Timestamp(day)]).values,
            {"long_name": "time", "standard_name": "time"},
        ),
        "latitude": (
            "latitude",
            lat[keep],
            {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude", "stored_direction": "decreasing"},
        ),
        "longitude": ("longitude", lon, {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"}),
    }
    ds = xr.Dataset(
        data_vars,
        coords=coords,
        attrs={
            "GRIB_centre": "ecmf",
            "Conventions": "CF-1.7",
            "institution": "European Centre for Medium-Range Weather Forecasts",
            "licence": "CC BY 4.0; contains ECMWF open data, attribute ECMWF",
        },
    )
    for key in dict.fromkeys(variables):
        ds[era5_variable(key).short_name].encoding.update(zlib=True, complevel=1, _FillValue=np.float32(np.nan))
    ds["valid_time"].encoding.update(units="seconds since 1970-01-01", calendar="proleptic_gregorian", dtype="int64")
    return ds


def validate_opendata_day(
    path: str | Path, day: dt.date, variables: Sequence[str], hemisphere: str, *, area_lat: float = DEFAULT_AREA_LAT
) -> None:
    """Check a daily file as :func:`fetch_opendata_day` writes it; ValueError naming the file and reason."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size == 0:
            raise _Bad("missing or empty file")
        try:
            with xr.open_dataset(path, engine="netcdf4") as handle:
                ds = handle.load()
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise _Bad(f"not a readable NetCDF file ({type(exc).__name__}: {exc})") from None
        times = np.asarray(ds["valid_time"].values) if "valid_time" in ds.variables else np.array([])
        if times.shape != (1,) or pd.Timestamp(times[0]) != pd.Timestamp(day):
            raise _Bad(f"valid_time is {times.tolist()}, expected [{day}]")
        if "expver" not in ds.variables or [str(v) for v in np.asarray(ds["expver"].values).ravel()] != [EXPVER_OPENDATA]:
            raise _Bad(f"expver is not [{EXPVER_OPENDATA!r}]")
        lat = np.asarray(ds["latitude"].values, dtype=np.float64)
        if lat.size < 2 or not (np.diff(lat) < 0).all():
            raise _Bad("latitude is not strictly descending")
        north, _, south, _ = era5_area(hemisphere, area_lat)
        step = -float(np.diff(lat).max())
        if (
            lat[0] > north + 1e-6
            or lat[-1] < south - 1e-6
            or abs(lat[0] - north) > step + 1e-6
            or abs(lat[-1] - south) > step + 1e-6
        ):
            raise _Bad(f"latitudes {lat[-1]:g} .. {lat[0]:g} do not match the area {south:g} .. {north:g}")
        for key in dict.fromkeys(variables):
            meta = era5_variable(key)
            if meta.short_name not in ds.data_vars:
                raise _Bad(f"no variable {meta.short_name!r}")
            da = ds[meta.short_name]
            if da.dims != ("valid_time", "latitude", "longitude") or da.attrs.get("units") != meta.units:
                raise _Bad(f"{meta.short_name} dims {da.dims} units {da.attrs.get('units')!r}")
            _check_values(key, np.asarray(da.values), str(day))
    except _Bad as exc:
        raise ValueError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------------------
# fetching
# ---------------------------------------------------------------------------------------


def _response_of(exc: BaseException) -> requests.Response | None:
    response = getattr(exc, "response", None)
    return response if isinstance(response, requests.Response) else None


def fetch_opendata_day(
    day: dt.date,
    variables: Sequence[str],
    hemisphere: str,
    target: str | Path,
    *,
    source_url: str | None = None,
    area_lat: float = DEFAULT_AREA_LAT,
    client: Any = None,
    steps: Sequence[int] = DEFAULT_STEPS,
) -> OpendataFetch:
    """Fetch the HRES run of ``day`` 00 UTC and write the day's means of ``variables`` to ``target``.

    ``variables`` are keys of :data:`OPENDATA_PARAMS` (``t2m``, ``u10``, ``v10``, ``msl``).
    A valid existing ``target`` is kept and nothing is requested; an invalid one is moved to
    ``rejected/``. ``client`` is an ``ecmwf.opendata.Client`` (default
    :func:`make_opendata_client` of ``source_url``). Raises :class:`OpendataNotAvailable`
    when the portal lacks a file of the run (naming the day and the URL),
    :class:`OpendataError` for other failed requests and :class:`InvalidOpendata` (the
    GRIB moved to ``rejected/<target name>.grib2`` with a reason) for an unusable delivery.
    """
    target = Path(target)
    request = opendata_request(day, variables, steps)
    what = f"ECMWF open data HRES {day:%Y-%m-%d} {RUN_HOUR:02d}UTC {','.join(request['param'])} {hemisphere}"
    era5_area(hemisphere, area_lat)  # checks hemisphere and area_lat before any request

    if target.exists():
        try:
            validate_opendata_day(target, day, variables, hemisphere, area_lat=area_lat)
        except ValueError as exc:
            moved = reject(target, f"existing file invalid: {exc}")
            log.warning("%s: existing %s is invalid, moved to %s; fetching again", what, target, moved)
        else:
            log.info("%s: %s is there and valid, nothing fetched", what, target)
            return OpendataFetch(target, "skipped", ())

    client = client if client is not None else make_opendata_client(source_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    grib = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.grib2"
    try:
        log.info("%s: requesting from %s", what, redact(client.url))
        try:
            result = client.retrieve(request=dict(request), target=str(grib))
        except requests.HTTPError as exc:
            response = _response_of(exc)
            status = response.status_code if response is not None else None
            url = redact(response.url) if response is not None else redact(client.url)
            if status in (404, 410):
                raise OpendataNotAvailable(
                    f"{what}: the open-data portal does not have this run (HTTP {status} for {url}); "
                    "it keeps only recent runs, and a run is published step by step",
                    url=url,
                    day=day,
                    status=status,
                ) from None
            raise OpendataError(f"{what}: HTTP {status} for {url} (after the client's retries)", url=url, status=status) from None
        except ValueError as exc:  # "Cannot find index entries matching ...": the run lacks every requested field
            raise OpendataError(f"{what}: {exc}", url=redact(client.url)) from None
        except Exception as exc:  # connection errors after retries, broken transfers (size checks)
            raise OpendataError(f"{what}: request failed: {type(exc).__name__}: {exc}", url=redact(client.url)) from None
        urls = tuple(redact(u[0] if isinstance(u, tuple) else u) for u in result.urls)
        try:
            daily = _daily_dataset(_read_grib(grib), day, variables, request["step"], hemisphere, area_lat)
        except _Bad as exc:
            moved = reject(grib, str(exc), name=f"{target.name}.grib2")
            raise InvalidOpendata(
                f"{what}: invalid delivery ({exc}); moved to {moved}", reason=str(exc), rejected=moved
            ) from None
        daily.attrs.update(
            floecast_source=f"ECMWF open data, IFS HRES ({STREAM} {TYPE}, {RESOL}), {redact(client.url)}",
            floecast_run=f"{day:%Y-%m-%d}T{RUN_HOUR:02d}:00Z",
            floecast_steps=",".join(str(s) for s in request["step"]),
            floecast_daily_mean=f"mean of the steps {request['step'][0]}..{request['step'][-1]} h, all valid within the day",
            floecast_urls=" ".join(urls),
            floecast_version=__version__,
        )
        write_netcdf(daily, target)
    finally:
        grib.unlink(missing_ok=True)
    log.info("%s: wrote %s", what, target)
    return OpendataFetch(target, "fetched", urls)


def newest_opendata_day(
    source_url: str | None = None,
    *,
    client: Any = None,
    variables: Sequence[str] = DEFAULT_VARIABLES,
    steps: Sequence[int] = DEFAULT_STEPS,
) -> dt.date | None:
    """The date of the newest 00 UTC HRES run whose files for ``steps`` are all published.

    HEAD requests for the step files of today's run, then yesterday's (as the client's
    ``latest()`` does), today being :func:`floecast.clock.today`: ``latest()`` reads the
    machine's clock, so a simulated day (``FLOECAST_TODAY``) found no run. None when neither
    run is complete. Nothing is downloaded.
    """
    from floecast import clock

    client = client if client is not None else make_opendata_client(source_url, maximum_tries=3, retry_after=1.0)
    request = {"time": RUN_HOUR, "stream": STREAM, "type": TYPE, "step": _check_steps(steps), "param": _params(variables)}
    today = clock.today()
    try:
        for day in (today, today - dt.timedelta(days=1)):
            # the URLs latest() asks for (its _get_urls, without the index); latest() takes no date
            run = dt.datetime.combine(day, dt.time(RUN_HOUR))
            urls = client._get_urls(request=None, use_index=False, date=run, **request).urls
            head = client._robust(client.session.head)
            if urls and all(head(url, verify=client.verify).status_code == 200 for url in urls):
                return day
    except requests.RequestException as exc:
        raise OpendataError(f"ECMWF open data poll: {type(exc).__name__}", url=redact(client.url)) from None
    return None
