"""A local stand-in for the Copernicus Climate Data Store (new CDS API), for the real ``cdsapi``.

It speaks the protocol that ``cdsapi`` 0.7 uses with a key without a colon, i.e. the
``ecmwf.datastores`` client (``legacy_client.LegacyClient`` -> ``client.Client`` ->
``processing.py``), under ``CDSAPI_URL = <base_url>`` (``http://127.0.0.1:<port>/api``):

=======  ===================================================  =====================================
method   path                                                 answer
=======  ===================================================  =====================================
GET      /api/catalogue/v1/messages                           ``{"messages": []}`` (client start-up)
GET      /api/retrieve/v1/processes/<dataset>                 process description (``id``); 404 JSON
POST     /api/retrieve/v1/processes/<dataset>/execution       body ``{"inputs": request}`` -> 201 job
                                                              JSON, ``status: accepted``, a
                                                              ``rel=monitor`` link; 400 JSON for a
                                                              request the CDS would refuse
GET      /api/retrieve/v1/jobs/<id>[?log=&request=&logStartTime=]  job JSON: ``status`` accepted ->
                                                              running -> successful | failed over
                                                              several polls, ``metadata.log``
                                                              (``[[time, "LEVEL: text"], ...]``),
                                                              ``metadata.request.ids``, links
                                                              ``self`` and ``results``
GET      /api/retrieve/v1/jobs/<id>/results                   ``{"asset": {"value": {"href",
                                                              "type", "file:size", ...}}}``; a failed
                                                              job: HTTP 400 JSON with ``title``,
                                                              ``traceback``, ``detail`` (what the
                                                              client joins into its error message)
DELETE   /api/retrieve/v1/jobs/<id>                           job JSON, ``status: dismissed``
POST     /api/retrieve/v1/jobs/delete                         body ``{"job_ids": [...]}``
HEAD/GET /cache/<id>/<file>.nc                                the NetCDF (``Content-Length``,
                                                              ``Accept-Ranges``, ``Range``)
=======  ===================================================  =====================================

Every ``/api/retrieve`` and ``/api/profiles`` request must carry the ``PRIVATE-TOKEN``
header with the key (the client's ``_get_headers``), else HTTP 401. The download, like the
CDS's object store, takes no credentials (the client sends none to it).

Fixtures are generated per job from the request: the real CDS NetCDF layout (dimensions
``valid_time``, ``latitude`` descending, ``longitude`` -180..180-step, plus
``pressure_level`` for pressure-level data; the ERA5 short name as a float32 variable with
``_FillValue`` NaN and ``GRIB_*``/``units``/``long_name`` attributes; ``number`` and
``expver`` coordinates; CF-1.7 global attributes from cfgrib). The attribute list is
written from memory of real files, not verified against ECMWF's documentation. The grid
is the request's ``grid`` or, by default, a coarse 2.5 degrees (the real default is 0.25)
to keep the files small. Values are known: ``hourly_values`` = ``daily_mean`` + a diurnal
term that sums to zero over the 24 hours of a day, so daily means are checkable exactly.

Faults (``inject``) per endpoint kind ``messages|process|submit|job|results|download``:
an HTTP status (429 with ``Retry-After``, 503, ...) or a stall (to trip the client's read
timeout), for the next N requests. ``fail_next_job`` makes the next job end ``failed``;
``tamper`` rewrites the delivered dataset (or returns bytes) to model bad deliveries;
``era5t_from`` marks hours from then on as ERA5T (``expver`` "0005"). Every request is
recorded (``records``); the token itself is never stored, only whether it was right.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pandas as pd
import xarray as xr

from . import seas5
from .base import LocalServer, QuietHandler

DATASETS = ("reanalysis-era5-single-levels", "reanalysis-era5-pressure-levels", seas5.DATASET)
DEFAULT_RESOLUTION = 2.5  # degrees; the CDS delivers 0.25 unless the request has ``grid``


@dataclass(frozen=True)
class FixtureVariable:
    short_name: str
    grib_short_name: str
    long_name: str
    units: str
    param_id: int
    center: float
    spread: float
    diurnal: float
    step_type: str = "instant"
    land_nan: bool = False


# request name -> what the fixture writes; z and t: centre/spread per level below
VARIABLES: dict[str, FixtureVariable] = {
    "2m_temperature": FixtureVariable("t2m", "2t", "2 metre temperature", "K", 167, 255.0, 15.0, 4.0),
    "10m_u_component_of_wind": FixtureVariable("u10", "10u", "10 metre U wind component", "m s**-1", 165, 0.0, 8.0, 2.0),
    "10m_v_component_of_wind": FixtureVariable("v10", "10v", "10 metre V wind component", "m s**-1", 166, 0.0, 8.0, 2.0),
    "mean_sea_level_pressure": FixtureVariable("msl", "msl", "Mean sea level pressure", "Pa", 151, 101_000.0, 1500.0, 100.0),
    "surface_solar_radiation_downwards": FixtureVariable(
        "ssrd", "ssrd", "Surface short-wave (solar) radiation downwards", "J m**-2", 169, 6.0e5, 2.0e5, 2.0e5, "accum"
    ),
    "surface_thermal_radiation_downwards": FixtureVariable(
        "strd", "strd", "Surface long-wave (thermal) radiation downwards", "J m**-2", 175, 9.0e5, 2.0e5, 5.0e4, "accum"
    ),
    "sea_surface_temperature": FixtureVariable("sst", "sst", "Sea surface temperature", "K", 34, 280.0, 5.0, 0.3, land_nan=True),
    "geopotential": FixtureVariable("z", "z", "Geopotential", "m**2 s**-2", 129, 54_000.0, 2000.0, 50.0),
    "temperature": FixtureVariable("t", "t", "Temperature", "K", 130, 245.0, 10.0, 1.0),
}
LEVEL_CENTER = {
    ("z", 250): (100_000.0, 4000.0),
    ("z", 500): (54_000.0, 2000.0),
    ("t", 500): (245.0, 10.0),
    ("t", 250): (225.0, 8.0),
}


def _center_spread(var: FixtureVariable, level: float | None) -> tuple[float, float]:
    if level is not None and (var.short_name, int(level)) in LEVEL_CENTER:
        return LEVEL_CENTER[(var.short_name, int(level))]
    return var.center, var.spread


def land(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The fixture's 'land' (NaN for sst): 0..40E below 70 degrees of latitude."""
    lat, lon = np.broadcast_arrays(lat, lon)
    return (np.mod(lon, 360.0) < 40.0) & (np.abs(lat) < 70.0)


def daily_mean(request_name: str, level: float | None, day: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The exact daily mean of the fixture's hourly values (``day``: day of month, broadcast)."""
    var = VARIABLES[request_name]
    center, spread = _center_spread(var, level)
    day, lat, lon = np.broadcast_arrays(np.asarray(day, np.float64), np.asarray(lat, np.float64), np.asarray(lon, np.float64))
    value = center + spread * (0.5 * np.cos(np.radians(2 * lat)) + 0.3 * np.sin(np.radians(lon)) + 0.01 * (day - 15))
    if var.land_nan:
        value = np.where(land(lat, lon), np.nan, value)
    return value


def hourly_values(
    request_name: str, level: float | None, times: pd.DatetimeIndex, lat: np.ndarray, lon: np.ndarray
) -> np.ndarray:
    """(time, lat, lon) float64: the daily mean plus ``diurnal * (hour - 11.5) / 11.5``."""
    var = VARIABLES[request_name]
    day = np.asarray(times.day, np.float64)[:, None, None]
    hour = np.asarray(times.hour, np.float64)[:, None, None]
    base = daily_mean(request_name, level, day, lat[None, :, None], lon[None, None, :])
    return base + var.diurnal * (hour - 11.5) / 11.5


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def request_problem(dataset: str, request: dict[str, Any]) -> str | None:
    """Why the CDS would refuse ``request`` at submission (None: accepted)."""
    needed = ["product_type", "variable", "year", "month", "day", "time", "data_format"]
    if dataset == "reanalysis-era5-pressure-levels":
        needed.append("pressure_level")
    missing = [k for k in needed if k not in request]
    if missing:
        return f"missing required request keys {missing}"
    unknown = [v for v in _as_list(request["variable"]) if v not in VARIABLES]
    if unknown:
        return f"invalid variable(s) {unknown}"
    if request.get("data_format") != "netcdf":
        return f"this test server writes netcdf only, got data_format {request.get('data_format')!r}"
    if request.get("download_format", "unarchived") != "unarchived":
        return "this test server delivers unarchived files only"
    if len(_as_list(request["variable"])) != 1:
        return "this test server delivers one variable per request"
    area = request.get("area", [90, -180, -90, 180])
    if len(area) != 4 or not (-90 <= float(area[2]) < float(area[0]) <= 90):
        return f"invalid area {area}"
    return None


def request_times(request: dict[str, Any]) -> pd.DatetimeIndex:
    """Every valid (year, month, day, time) combination of the request, sorted."""
    stamps = []
    for y, m, d, t in itertools.product(*(_as_list(request[k]) for k in ("year", "month", "day", "time"))):
        year, month, day = int(y), int(m), int(d)
        if day > calendar.monthrange(year, month)[1]:
            continue  # the CDS drops impossible dates such as 31 February
        hour, minute = (int(part) for part in t.split(":")[:2])
        stamps.append(pd.Timestamp(year, month, day, hour, minute))
    return pd.DatetimeIndex(sorted(stamps))


def make_era5_dataset(
    dataset: str, request: dict[str, Any], *, resolution: float = DEFAULT_RESOLUTION, era5t_from=None
) -> xr.Dataset:
    """The hourly dataset the CDS would deliver for ``request`` (at ``grid`` or ``resolution``)."""
    var = VARIABLES[_as_list(request["variable"])[0]]
    north, west, south, east = (float(v) for v in request.get("area", [90, -180, -90, 180]))
    step = float(request["grid"][0]) if "grid" in request else resolution
    lat = north - step * np.arange(int(round((north - south) / step)) + 1)
    nlon = int(round((east - west) / step)) + (0 if np.isclose(east - west, 360.0) else 1)
    lon = west + step * np.arange(nlon)
    times = request_times(request)
    levels = [float(v) for v in _as_list(request.get("pressure_level"))] if dataset.endswith("pressure-levels") else [None]
    fields = np.stack([hourly_values(_as_list(request["variable"])[0], lev, times, lat, lon) for lev in levels], axis=1)
    expver = np.array(["0001"] * len(times), dtype=object)
    if era5t_from is not None:
        expver[times >= pd.Timestamp(era5t_from)] = "0005"
    attrs = {
        "GRIB_paramId": np.int64(var.param_id),
        "GRIB_dataType": "an",
        "GRIB_numberOfPoints": np.int64(lat.size * lon.size),
        "GRIB_typeOfLevel": "isobaricInhPa" if levels[0] is not None else "surface",
        "GRIB_stepUnits": np.int64(1),
        "GRIB_stepType": var.step_type,
        "GRIB_gridType": "regular_ll",
        "GRIB_Nx": np.int64(lon.size),
        "GRIB_Ny": np.int64(lat.size),
        "GRIB_iDirectionIncrementInDegrees": step,
        "GRIB_jDirectionIncrementInDegrees": step,
        "GRIB_missingValue": 3.4028234663852886e38,
        "GRIB_name": var.long_name,
        "GRIB_shortName": var.grib_short_name,
        "GRIB_units": var.units,
        "long_name": var.long_name,
        "units": var.units,
        "standard_name": "unknown",
    }
    coords: dict[str, Any] = {
        "number": ((), np.int64(0), {"long_name": "ensemble member numerical id", "units": "1", "standard_name": "realization"}),
        "valid_time": ("valid_time", times.values, {"long_name": "time", "standard_name": "time"}),
        "latitude": (
            "latitude",
            lat,
            {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude", "stored_direction": "decreasing"},
        ),
        "longitude": ("longitude", lon, {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"}),
        "expver": ("valid_time", expver, {"long_name": "Experiment version"}),
    }
    if levels[0] is None:
        dims: tuple[str, ...] = ("valid_time", "latitude", "longitude")
        values = fields[:, 0]
    else:
        dims = ("valid_time", "pressure_level", "latitude", "longitude")
        values = fields
        coords["pressure_level"] = (
            "pressure_level",
            np.array(levels, np.float64),
            {
                "long_name": "pressure",
                "units": "hPa",
                "positive": "down",
                "stored_direction": "decreasing",
                "standard_name": "air_pressure",
            },
        )
    ds = xr.Dataset(
        {var.short_name: (dims, values.astype(np.float32), attrs)},
        coords=coords,
        attrs={
            "GRIB_centre": "ecmf",
            "GRIB_centreDescription": "European Centre for Medium-Range Weather Forecasts",
            "GRIB_subCentre": np.int64(0),
            "Conventions": "CF-1.7",
            "institution": "European Centre for Medium-Range Weather Forecasts",
            "history": f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M} GRIB to CDM+CF via cfgrib-0.9.15.0/ecCodes-2.39.0 (test)",
        },
    )
    ds[var.short_name].encoding.update(_FillValue=np.float32(np.nan), dtype="float32")
    ds["valid_time"].encoding.update(units="seconds since 1970-01-01", calendar="proleptic_gregorian", dtype="int64")
    return ds


def netcdf_bytes(ds: xr.Dataset, folder: Path) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.nc"
    ds.to_netcdf(path, engine="netcdf4")
    data = path.read_bytes()
    path.unlink()
    return data


# ---------------------------------------------------------------------------------------


@dataclass
class Fault:
    status: int | None = 503  # None: no status, only the stall
    times: int = 1
    retry_after: str | None = None
    stall: float = 0.0


@dataclass
class Record:
    method: str
    path: str
    kind: str
    query: dict[str, list[str]]
    body: Any
    token_ok: bool
    token_sent: bool
    answered: int = 0


@dataclass
class Job:
    job_id: str
    dataset: str
    request: dict[str, Any]
    plan: list[str]
    error: str | None = None
    polls: int = 0
    status: str = "accepted"
    created: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    data: bytes | None = None
    dismissed: bool = False
    log: list[list[str]] = field(default_factory=list)


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        self.server.owner._handle(self, "GET")

    def do_HEAD(self) -> None:
        self.server.owner._handle(self, "HEAD")

    def do_POST(self) -> None:
        self.server.owner._handle(self, "POST")

    def do_DELETE(self) -> None:
        self.server.owner._handle(self, "DELETE")

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class CdsServer(LocalServer):
    """The server; a context manager. ``base_url`` is what ``CDSAPI_URL`` should be."""

    handler = _Handler

    def start(self) -> CdsServer:
        self.root.mkdir(parents=True, exist_ok=True)
        return super().start()

    def __init__(
        self,
        root: str | Path,
        key: str = "00000000-test-key-0000",
        *,
        resolution: float = DEFAULT_RESOLUTION,
        polls_accepted: int = 2,
        polls_running: int = 2,
    ) -> None:
        self.root = Path(root)
        self.key = key
        self.resolution = resolution
        self.polls_accepted = polls_accepted
        self.polls_running = polls_running
        self.tamper: Callable[[xr.Dataset, dict[str, Any]], xr.Dataset | bytes] | None = None
        self.era5t_from: str | None = None
        self.era5_end = "2026-11-21T23:00:00Z"  # newest hour in the catalogue (what `floecast poll` reads)
        self.records: list[Record] = []
        self.jobs: dict[str, Job] = {}
        self._faults: dict[str, list[Fault]] = {}
        self._fail_next: list[str] = []
        self._lock = threading.Lock()

    # -- configuration -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def inject(
        self, kind: str, status: int | None = 503, *, times: int = 1, retry_after: str | None = None, stall: float = 0.0
    ) -> None:
        """The next ``times`` requests of ``kind`` answer ``status`` (after ``stall`` seconds)."""
        with self._lock:
            self._faults.setdefault(kind, []).append(Fault(status, times, retry_after, stall))

    def fail_next_job(self, detail: str = "MARS returned no data, please check your selection") -> None:
        """The next submitted job runs, then ends ``failed`` with ``detail``."""
        with self._lock:
            self._fail_next.append(detail)

    def count(self, kind: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.records if (kind is None or r.kind == kind) and (method is None or r.method == method))

    def statuses_served(self, job_id: str | None = None) -> list[str]:
        """The job statuses answered to polls, in order."""
        with self._lock:
            return [
                r.body
                for r in self.records
                if r.kind == "job" and r.method == "GET" and r.answered == 200 and (job_id is None or r.path.endswith(job_id))
            ]

    # -- request handling ----------------------------------------------------------------
    def _fault(self, kind: str) -> Fault | None:
        queue = self._faults.get(kind, [])
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    @staticmethod
    def _kind(method: str, parts: list[str]) -> str:
        if parts[:1] == ["cache"]:
            return "download"
        if parts[:3] == ["api", "catalogue", "v1"]:
            return "messages" if parts[3:] == ["messages"] else "catalogue"
        if parts[:3] == ["api", "retrieve", "v1"]:
            rest = parts[3:]
            if len(rest) == 2 and rest[0] == "processes":
                return "process"
            if len(rest) == 3 and rest[0] == "processes" and rest[2] == "execution":
                return "submit"
            if rest == ["jobs", "delete"] and method == "POST":
                return "delete"
            if len(rest) == 2 and rest[0] == "jobs":
                return "delete" if method == "DELETE" else "job"
            if len(rest) == 3 and rest[0] == "jobs" and rest[2] == "results":
                return "results"
        return "unknown"

    def _handle(self, h: _Handler, method: str) -> None:
        split = urlsplit(h.path)
        parts = [unquote(p) for p in split.path.split("/") if p]
        kind = self._kind(method, parts)
        body: Any = None
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            raw = h.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        token = h.headers.get("PRIVATE-TOKEN")
        record = Record(method, split.path, kind, parse_qs(split.query), body, token == self.key, token is not None)
        with self._lock:
            self.records.append(record)
            fault = self._fault(kind) if method != "HEAD" else None
        try:
            if fault is not None:
                if fault.stall:
                    time.sleep(fault.stall)
                if fault.status is not None:
                    record.answered = fault.status
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    h.send_json(fault.status, {"title": "injected fault", "status": fault.status}, headers)
                    return
            self._route(h, method, parts, kind, body, record)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _error(self, h: _Handler, record: Record, status: int, title: str, detail: str = "", **extra: Any) -> None:
        record.answered = status
        payload = {"type": "about:blank", "title": title, "status": status, "detail": detail, "instance": record.path, **extra}
        h.send_json(status, payload)

    def _route(self, h: _Handler, method: str, parts: list[str], kind: str, body: Any, record: Record) -> None:
        if kind == "download":
            self._download(h, method, parts, record)
            return
        if kind == "messages":
            record.answered = 200
            h.send_json(200, {"messages": []})
            return
        if kind == "catalogue" and parts[3:4] == ["collections"] and len(parts) == 5 and parts[4] in DATASETS:
            # the STAC collection record: its temporal extent ends at the newest ERA5 hour
            record.answered = 200
            interval = [["1940-01-01T00:00:00Z", self.era5_end]]
            h.send_json(200, {"id": parts[4], "type": "Collection", "extent": {"temporal": {"interval": interval}}})
            return
        if kind == "unknown" or kind == "catalogue":
            self._error(h, record, 404, "not found", f"{method} {record.path}")
            return
        if not record.token_ok:
            self._error(h, record, 401, "Authentication failed", "The API key is missing or not valid.")
            return
        if kind == "process":
            dataset = parts[4]
            if dataset not in DATASETS:
                self._error(h, record, 404, "Process not found", f"process {dataset!r} not found")
                return
            record.answered = 200
            h.send_json(
                200, {"id": dataset, "title": dataset, "version": "1.0.0", "links": [], "jobControlOptions": ["async-execute"]}
            )
            return
        if kind == "submit":
            self._submit(h, parts[4], body, record)
            return
        if kind == "delete":
            ids = [parts[4]] if method == "DELETE" else list((body or {}).get("job_ids", []))
            with self._lock:
                found = [self.jobs[i] for i in ids if i in self.jobs and not self.jobs[i].dismissed]
                for job in found:
                    job.dismissed = True
                    job.status = "dismissed"
            if method == "DELETE" and not found:
                self._error(h, record, 404, "Job not found", f"job {parts[4]} not found")
                return
            record.answered = 200
            if method == "DELETE":
                h.send_json(200, self._job_json(found[0], h))
            else:
                h.send_json(200, {"jobs": [self._job_json(job, h) for job in found]})
            return
        job_id = parts[4]
        with self._lock:
            job = self.jobs.get(job_id)
        if job is None or job.dismissed:
            self._error(h, record, 404, "Job not found", f"job {job_id} not found")
            return
        if kind == "job":
            with self._lock:
                job.status = job.plan[min(job.polls, len(job.plan) - 1)]
                job.polls += 1
            query = parse_qs(urlsplit(h.path).query)
            since = (query.get("logStartTime") or [None])[0]
            payload = self._job_json(job, h)
            if query.get("log"):
                payload["metadata"]["log"] = [entry for entry in job.log if since is None or entry[0] > since]
            if query.get("request"):
                payload["metadata"]["request"] = {"ids": job.request}
            record.answered = 200
            record.body = job.status  # what the poll answered (the GET has no body)
            h.send_json(200, payload)
            return
        if kind == "results":
            self._results(h, job, record)
            return
        self._error(h, record, 405, "method not allowed")

    def _submit(self, h: _Handler, dataset: str, body: Any, record: Record) -> None:
        if dataset not in DATASETS:
            self._error(h, record, 404, "Process not found", f"process {dataset!r} not found")
            return
        request = (body or {}).get("inputs") if isinstance(body, dict) else None
        if not isinstance(request, dict):
            self._error(h, record, 400, "invalid request", "the body must be {'inputs': {...}}")
            return
        problem = seas5.request_problem(request) if dataset == seas5.DATASET else request_problem(dataset, request)
        if problem:
            self._error(h, record, 400, "invalid request", problem)
            return
        with self._lock:
            job_id = str(uuid.uuid4())
            error = self._fail_next.pop(0) if self._fail_next else None
            final = "failed" if error else "successful"
            plan = ["accepted"] * self.polls_accepted + ["running"] * self.polls_running + [final]
            now = dt.datetime.now(dt.UTC)
            job = Job(job_id, dataset, request, plan, error=error)
            job.log = [[(now + dt.timedelta(microseconds=1)).isoformat(), "INFO: Welcome to the test CDS"]]
            self.jobs[job_id] = job
        record.answered = 201
        h.send_json(201, self._job_json(job, h), {"Location": f"{self.base_url}/retrieve/v1/jobs/{job_id}"})

    def _job_json(self, job: Job, h: _Handler) -> dict[str, Any]:
        url = f"{self.base_url}/retrieve/v1/jobs/{job.job_id}"
        links = [
            {"href": url, "rel": "monitor", "type": "application/json", "title": "status of the job"},
            {"href": url, "rel": "self", "type": "application/json"},
        ]
        if job.status in ("successful", "failed"):
            links.append({"href": f"{url}/results", "rel": "results"})
        return {
            "processID": job.dataset,
            "type": "process",
            "jobID": job.job_id,
            "status": job.status,
            "created": job.created,
            "updated": dt.datetime.now(dt.UTC).isoformat(),
            "metadata": {},
            "links": links,
        }

    def _results(self, h: _Handler, job: Job, record: Record) -> None:
        if job.status == "failed":
            self._error(
                h,
                record,
                400,
                "The job has failed",
                job.error or "",
                traceback=f"The job failed with: {job.error}",
                trace_id=uuid.uuid4().hex,
            )
            return
        if job.status != "successful":
            self._error(h, record, 404, "Results not ready", f"job {job.job_id} is {job.status}")
            return
        with self._lock:
            if job.data is None:
                job.data = self._deliver(job)
        record.answered = 200
        suffix = "grib" if job.dataset == seas5.DATASET else "nc"
        href = f"http://127.0.0.1:{self.port}/cache/{job.job_id}/{hashlib.md5(job.data).hexdigest()}.{suffix}"
        asset = {
            "type": "application/x-grib" if job.dataset == seas5.DATASET else "application/netcdf",
            "href": href,
            "file:checksum": hashlib.md5(job.data).hexdigest(),
            "file:size": len(job.data),
            "file:local_path": href,
        }
        h.send_json(200, {"asset": {"value": asset}})

    def _deliver(self, job: Job) -> bytes:
        if job.dataset == seas5.DATASET:  # GRIB; ``tamper(None, request)`` may return other bytes
            out = self.tamper(None, job.request) if self.tamper is not None else None
            return out if isinstance(out, bytes) else seas5.make_seas5_grib(job.request)
        ds = make_era5_dataset(job.dataset, job.request, resolution=self.resolution, era5t_from=self.era5t_from)
        if self.tamper is not None:
            out = self.tamper(ds, job.request)
            if isinstance(out, bytes):
                return out
            ds = out
        return netcdf_bytes(ds, self.root)

    def _download(self, h: _Handler, method: str, parts: list[str], record: Record) -> None:
        job_id = parts[1] if len(parts) == 3 else ""
        with self._lock:
            job = self.jobs.get(job_id)
            data = job.data if job is not None else None
        if data is None:
            self._error(h, record, 404, "not found", record.path)
            return
        start = 0
        rng = h.headers.get("Range") or h.headers.get("range")
        status = 200
        if rng and rng.startswith("bytes=") and method == "GET":
            start = int(rng[len("bytes=") :].split("-")[0] or 0)
            status = 206
        chunk = data[start:]
        record.answered = status
        h.send_response(status)
        h.send_header("Content-Type", "application/netcdf")
        h.send_header("Content-Length", str(len(chunk)))
        h.send_header("Accept-Ranges", "bytes")
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if method == "GET":
            h.wfile.write(chunk)

    # -- lifecycle -----------------------------------------------------------------------
