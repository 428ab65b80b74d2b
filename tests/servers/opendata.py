"""A local ECMWF open-data portal for testing the real ``ecmwf-opendata`` client.

Serves, on 127.0.0.1 (a free port, threaded, HTTP/1.1), the directory layout the client's
``Client._get_urls`` builds for ``model="ifs"``, ``resol="0p25"``::

    /forecasts/<yyyymmdd>/<HH>z/ifs/0p25/oper/<yyyymmdd><HH>0000-<step>h-oper-fc.grib2
    /forecasts/<yyyymmdd>/<HH>z/ifs/0p25/oper/<yyyymmdd><HH>0000-<step>h-oper-fc.index

(``base_url`` ends in ``/forecasts`` like ``https://data.ecmwf.int/forecasts``). Each
``.index`` is JSON lines, one per GRIB message, with the MARS keys as strings (``domain``,
``date``, ``time``, ``expver``, ``class``, ``type``, ``stream``, ``step``, ``levtype``,
``param``) and ``_offset``/``_length`` in bytes, as on the real portal. GET honours
``Range: bytes=a-b[,c-d...]`` (one range: 206 with ``Content-Range``; several: 206
``multipart/byteranges``, nginx style); HEAD answers ``Content-Length`` and
``Accept-Ranges: bytes`` (the client's downloader, multiurl, infers range support from it).
A path the server does not hold answers 404, like a run the portal does not (or no longer)
have.

Fixture fields are GRIB2 messages written with ecCodes: the ECMWF paramIds/short names
(2t 167 K, 10u 165 and 10v 166 m s**-1, msl 151 Pa, plus sp, skt and tcwv interleaved so
the requested fields are not one contiguous byte range), ``dataDate``/``dataTime`` of the
run, ``step`` in hours, the ECMWF local section (class od, type fc, stream oper, expver
0001), ``grid_simple`` packing at 16 bits. The grid is a COARSE regular lat/lon grid
(2.5 degrees, 144 x 73, north to south, first longitude -180 stored as 180 as GRIB2 does),
not the real 0.25-degree grid (1440 x 721), to keep files small; the -180 start mirrors
the real portal's grid (from memory, not verified). The layout and index keys were taken
from ecmwf-opendata 0.3.35 (``client.py``: ``HOURLY_PATTERN``, ``get_parts``) and ECMWF's
open-data documentation (file-naming convention; HRES 00/12 UTC steps 0 to 144 by 3).

Values are known: at step ``s`` of the run of day ``D`` the field is
``daily_mean(param, D + s // 24 days)`` plus a diurnal term ``amp * cos(2 pi h / 24)``
(``h = s % 24``) that sums to zero over 0, 3, ..., 21 h (and 0, 6, 12, 18 h), so the mean of
steps 0..21 is exactly ``daily_mean(param, D)`` up to packing.

Faults (``fail``), per path suffix and method, for the next N requests: an HTTP status
(503, ...; with ``Retry-After`` if given) or a stall (to trip a read timeout). Every request
is recorded (``records``).

    with OpendataServer() as srv:
        srv.add_run(dt.date(2026, 11, 24))
        srv.fail("-0h-oper-fc.index", status=503)
        Client(source=srv.base_url).retrieve(...)
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import numpy as np
import pyproj  # noqa: F401  before ecCodes (see floecast.sources.ecmwf_opendata._read_grib)

from .base import LocalServer, QuietHandler

PREFIX = "/forecasts"
RESOLUTION = 2.5
DEFAULT_STEPS = tuple(range(0, 49, 3))  # the real HRES 00 UTC run: 0 to 144 by 3, then by 6
# open-data short name -> (paramId, units); the order is the order of messages in each file
PARAMS: dict[str, tuple[int, str]] = {
    "2t": (167, "K"),
    "sp": (134, "Pa"),
    "10u": (165, "m s**-1"),
    "tcwv": (137, "kg m**-2"),
    "10v": (166, "m s**-1"),
    "skt": (235, "K"),
    "msl": (151, "Pa"),
}
DIURNAL_AMPLITUDE = {"2t": 4.0, "sp": 50.0, "10u": 1.5, "tcwv": 1.0, "10v": -1.0, "skt": 6.0, "msl": 60.0}

Tamper = Callable[[str, int, np.ndarray], np.ndarray]  # (param, step, values on the grid) -> values


def grid(resolution: float = RESOLUTION) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes (90 .. -90) and longitudes (-180 .. 180 - step) of the fixture grid."""
    nlat = int(round(180.0 / resolution)) + 1
    nlon = int(round(360.0 / resolution))
    return 90.0 - resolution * np.arange(nlat), -180.0 + resolution * np.arange(nlon)


def daily_mean(param: str, day: dt.date, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The fixture's daily mean of ``param`` on ``day`` (broadcast over ``lat`` and ``lon``)."""
    phi, lam, d = np.deg2rad(lat), np.deg2rad(lon), day.day
    if param in ("2t", "skt"):
        return 255.0 + 30.0 * np.cos(phi) + 3.0 * np.sin(lam) + 0.2 * d + (1.0 if param == "skt" else 0.0)
    if param == "10u":
        return 6.0 * np.cos(phi) * np.sin(lam) - 2.0 + 0.1 * d
    if param == "10v":
        return 4.0 * np.sin(2.0 * phi) * np.cos(lam) + 1.0 - 0.05 * d
    if param in ("msl", "sp"):
        return 101_000.0 + 800.0 * np.cos(2.0 * phi) + 200.0 * np.sin(lam) + 10.0 * d - (600.0 if param == "sp" else 0.0)
    if param == "tcwv":
        return 10.0 + 10.0 * np.cos(phi) + 0.0 * lam
    raise KeyError(param)


def step_value(param: str, run: dt.date, step: int, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The field at ``step`` hours of the run of ``run`` 00 UTC."""
    valid_day = run + dt.timedelta(days=step // 24)
    hour = step % 24
    return daily_mean(param, valid_day, lat, lon) + DIURNAL_AMPLITUDE[param] * np.cos(2.0 * np.pi * hour / 24.0) * (
        0.5 + 0.5 * np.cos(np.deg2rad(lat))
    )


def relpath(run: dt.date, step: int, hour: int = 0, ext: str = "grib2") -> str:
    """The path of one step's file below ``base_url`` (``ext``: grib2 or index)."""
    ymd = f"{run:%Y%m%d}"
    return f"{ymd}/{hour:02d}z/ifs/0p25/oper/{ymd}{hour:02d}0000-{step}h-oper-fc.{ext}"


def grib_message(param: str, run: dt.date, hour: int, step: int, values: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> bytes:
    """One GRIB2 message as the portal disseminates it (see the module docstring)."""
    import eccodes  # here, after pyproj (see the import of pyproj above)

    from floecast.sources.grib import regular_grid_values

    param_id, _ = PARAMS[param]
    h = eccodes.codes_grib_new_from_samples("GRIB2")
    try:
        eccodes.codes_set(h, "centre", "ecmf")
        eccodes.codes_set(h, "setLocalDefinition", 1)
        eccodes.codes_set(h, "localDefinitionNumber", 1)
        for key, value in (("class", "od"), ("type", "fc"), ("stream", "oper"), ("expver", "0001")):
            eccodes.codes_set(h, key, value)
        eccodes.codes_set(h, "dataDate", int(f"{run:%Y%m%d}"))
        eccodes.codes_set(h, "dataTime", hour * 100)
        eccodes.codes_set(h, "stepUnits", 1)
        eccodes.codes_set(h, "step", step)
        eccodes.codes_set(h, "paramId", param_id)
        eccodes.codes_set_key_vals(h, regular_grid_values(lat, lon))
        eccodes.codes_set(h, "packingType", "grid_simple")
        eccodes.codes_set(h, "bitsPerValue", 16)
        eccodes.codes_set_values(h, np.asarray(values, dtype=np.float64).ravel())
        if eccodes.codes_get(h, "shortName") != param:
            raise AssertionError(f"ecCodes wrote {eccodes.codes_get(h, 'shortName')!r} for {param!r}")
        return eccodes.codes_get_message(h)
    finally:
        eccodes.codes_release(h)


def index_line(param: str, run: dt.date, hour: int, step: int, offset: int, length: int) -> str:
    return json.dumps(
        {
            "domain": "g",
            "date": f"{run:%Y%m%d}",
            "time": f"{hour:02d}00",
            "expver": "0001",
            "class": "od",
            "type": "fc",
            "stream": "oper",
            "step": str(step),
            "levtype": "sfc",
            "param": param,
            "_offset": offset,
            "_length": length,
        }
    )


@dataclass
class Fault:
    suffix: str
    method: str | None  # None: any method
    times: int
    status: int | None = 503  # None: no status, only the stall
    retry_after: str | None = None
    stall: float = 0.0


@dataclass(frozen=True)
class Record:
    method: str
    path: str  # below base_url
    range: str | None
    status: int


def parse_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """``bytes=a-b,c-,-n`` as inclusive (start, end) pairs; None when unsatisfiable or malformed."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or not spec:
        return None
    ranges = []
    for part in spec.split(","):
        first, sep, last = part.strip().partition("-")
        if not sep:
            return None
        if first == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), (int(last) if last else size - 1)
        end = min(end, size - 1)
        if start > end or start >= size:
            return None
        ranges.append((start, end))
    return ranges


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _send(self, status: int, headers: dict[str, str], body: bytes, send_body: bool) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _plain(self, status: int, text: str, send_body: bool, headers: dict[str, str] | None = None) -> None:
        body = f"<html><head><title>{status}</title></head><body><h1>{status}</h1><p>{text}</p></body></html>".encode()
        self._send(status, {"Content-Type": "text/html", **(headers or {})}, body, send_body)

    def _serve(self, send_body: bool) -> None:
        owner = self.server.owner
        path = unquote(urlsplit(self.path).path)
        rel = path[len(PREFIX) + 1 :] if path.startswith(PREFIX + "/") else path
        range_header = self.headers.get("Range")
        fault = owner._fault(rel, self.command)
        data = owner.files.get(rel) if path.startswith(PREFIX + "/") else None
        ranges = parse_ranges(range_header, len(data)) if data is not None and range_header and send_body else None
        if fault is not None and fault.status is not None:
            status = fault.status
        elif data is None:
            status = 404
        elif range_header is None or not send_body:  # HEAD answers with the whole entity's headers
            status = 200
        else:
            status = 206 if ranges is not None else 416
        owner._record(self.command, rel, range_header, status)  # on arrival, before any stall
        if fault is not None and fault.stall:
            time.sleep(fault.stall)
        if fault is not None and fault.status is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._plain(fault.status, "injected fault", send_body, extra)
            return
        if data is None:
            self._plain(404, "Not Found", send_body)
            return
        kind = "application/octet-stream" if rel.endswith(".grib2") else "text/plain"
        common = {"Accept-Ranges": "bytes", "Server": "nginx", "Last-Modified": self.date_time_string(owner.started)}
        if status == 200:
            self._send(200, {"Content-Type": kind, **common}, data, send_body)
            return
        if ranges is None:
            self._plain(416, "Requested Range Not Satisfiable", send_body, {"Content-Range": f"bytes */{len(data)}"})
            return
        if len(ranges) == 1:
            start, end = ranges[0]
            headers = {"Content-Type": kind, "Content-Range": f"bytes {start}-{end}/{len(data)}", **common}
            self._send(206, headers, data[start : end + 1], send_body)
            return
        boundary = uuid.uuid4().hex[:20]
        chunks = []
        for start, end in ranges:
            head = f"\r\n--{boundary}\r\nContent-Type: {kind}\r\nContent-Range: bytes {start}-{end}/{len(data)}\r\n\r\n"
            chunks += [head.encode(), data[start : end + 1]]
        chunks.append(f"\r\n--{boundary}--\r\n".encode())
        headers = {"Content-Type": f"multipart/byteranges; boundary={boundary}", **common}
        self._send(206, headers, b"".join(chunks), send_body)


class OpendataServer(LocalServer):
    """The portal; a context manager. ``add_run`` publishes a run's files."""

    handler = _Handler

    def __init__(self, resolution: float = RESOLUTION) -> None:
        self.resolution = resolution
        self.lat, self.lon = grid(resolution)
        self.files: dict[str, bytes] = {}
        self.records: list[Record] = []
        self.started = time.time()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    # -- content ---------------------------------------------------------------------------

    def add_run(
        self,
        run: dt.date,
        hour: int = 0,
        steps: Iterable[int] = DEFAULT_STEPS,
        params: Iterable[str] = tuple(PARAMS),
        tamper: Tamper | None = None,
    ) -> None:
        """Publish the files (GRIB2 + index) of the run ``run`` ``hour`` UTC for ``steps``."""
        lat2, lon2 = np.meshgrid(self.lat, self.lon, indexing="ij")
        params = [p for p in PARAMS if p in set(params)]  # the file order of PARAMS
        for step in steps:
            grib, lines = b"", []
            for param in params:
                values = step_value(param, run, step, lat2, lon2)
                if tamper is not None:
                    values = tamper(param, step, values)
                message = grib_message(param, run, hour, step, values, self.lat, self.lon)
                lines.append(index_line(param, run, hour, step, len(grib), len(message)))
                grib += message
            with self._lock:
                self.files[relpath(run, step, hour)] = grib
                self.files[relpath(run, step, hour, "index")] = ("\n".join(lines) + "\n").encode()

    def remove(self, run: dt.date, step: int, hour: int = 0, ext: str | None = None) -> None:
        """Withdraw one step's files (both, or only ``ext``), e.g. a run still being published."""
        with self._lock:
            for e in (ext,) if ext else ("grib2", "index"):
                self.files.pop(relpath(run, step, hour, e), None)

    # -- faults and records ------------------------------------------------------------------

    def fail(
        self,
        suffix: str,
        *,
        status: int | None = 503,
        times: int = 1,
        method: str | None = "GET",
        retry_after: str | None = None,
        stall: float = 0.0,
    ) -> None:
        """The next ``times`` ``method`` requests of a path ending in ``suffix`` fail."""
        with self._lock:
            self._faults.append(Fault(suffix, method, times, status, retry_after, stall))

    def _fault(self, rel: str, method: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and rel.endswith(fault.suffix) and fault.method in (None, method):
                    fault.times -= 1
                    return fault
        return None

    def _record(self, method: str, rel: str, range_header: str | None, status: int) -> None:
        with self._lock:
            self.records.append(Record(method, rel, range_header, status))

    def requests(self, method: str | None = None, suffix: str = "") -> list[Record]:
        with self._lock:
            return [r for r in self.records if method in (None, r.method) and r.path.endswith(suffix)]

    # -- server ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The equivalent of ``https://data.ecmwf.int/forecasts`` (the client's ``source``)."""
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path}"
