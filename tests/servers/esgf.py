"""A local ESGF federation for tests: one index node and two THREDDS data nodes on 127.0.0.1.

The index node answers ``/esg-search/search`` like the ESGF Solr search API (``type=File``,
``format=application/solr+json``, facet parameters ORed when repeated, ``latest``,
``replica``, ``offset``/``limit`` capped at ``max_limit``) from an in-memory catalogue with
one record per (file, data node). Each data node serves ``/thredds/fileServer/<path>`` and
can be taken down (``stop()``: a closed port), answer 503 (``mode = "503"``), hang
(``mode = "hang"``) or serve a corrupted copy of one file (``corrupt(path)``); it counts the
requests per path. Fixture files are small CMIP6 files with the CMOR names, units, file
names and global attributes of the real ones.

    with EsgfTestbed(tmp_path) as esgf:
        f = esgf.publish("siconca", "MRI-ESM2-0", "r1i1p1f1", "historical", "20000101", "20141231")
        search_files(esgf.index.url, ...)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import netCDF4
import numpy as np
import pandas as pd

from .orca import tripolar_like

FILE_SERVER = "/thredds/fileServer/"
SEARCH_PATH = "/esg-search/search"
SOLR_JSON = "application/solr+json"
FACETS = ("project", "source_id", "member_id", "variant_label", "experiment_id", "table_id", "variable_id", "grid_label")

# CMOR variable -> (table, realm, units, standard_name, long_name, height in m or None)
CMOR: dict[str, tuple[str, str, str, str, str, float | None]] = {
    "siconca": ("SIday", "seaIce", "%", "sea_ice_area_fraction", "Sea-Ice Area Percentage (Atmospheric Grid)", None),
    "tas": ("day", "atmos", "K", "air_temperature", "Near-Surface Air Temperature", 2.0),
    "uas": ("day", "atmos", "m s-1", "eastward_wind", "Eastward Near-Surface Wind", 10.0),
    "vas": ("day", "atmos", "m s-1", "northward_wind", "Northward Near-Surface Wind", 10.0),
    "tos": ("Oday", "ocean", "degC", "sea_surface_temperature", "Sea Surface Temperature", None),
    "sithick": ("SImon", "seaIce ocean", "m", "sea_ice_thickness", "Sea Ice Thickness", None),
}
OCEAN_GRID_VARIABLES = frozenset({"tos", "sithick"})  # on the model's native ocean grid (curvilinear) when gn
INSTITUTION = {"MRI-ESM2-0": "MRI", "EC-Earth3": "EC-Earth-Consortium"}
ACTIVITY = {"historical": "CMIP", "ssp245": "ScenarioMIP"}
TIME_UNITS = "days since 1850-01-01"
CALENDAR = "proleptic_gregorian"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class _Base:
    """An HTTP server on 127.0.0.1 (a free port) in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self.mode = "up"  # "up", "503" or "hang"
        self.hang_seconds = 5.0
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.running = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Close the port: clients get 'connection refused'."""
        if self.running:
            self.running = False
            self._server.shutdown()
            self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass

    @property
    def owner(self):
        return self.server.owner  # type: ignore[attr-defined]

    def _send(self, status: int, body: bytes, content_type: str, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _unavailable(self) -> bool:
        """Answer as a node in trouble would; True when the request is answered."""
        if self.owner.mode == "503":
            self._send(503, b"Service Temporarily Unavailable\n", "text/plain")
            return True
        if self.owner.mode == "hang":
            time.sleep(self.owner.hang_seconds)
            self.close_connection = True
            return True
        return False


class _DataNodeHandler(_Handler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        node: DataNode = self.owner
        path = urlsplit(self.path).path
        with node.lock:
            node.requests[path] += 1
        if self._unavailable():
            return
        if not path.startswith(FILE_SERVER) or path[len(FILE_SERVER) :] not in node.files:
            self._send(404, b"Not Found\n", "text/plain", head)
            return
        rel = path[len(FILE_SERVER) :]
        data = node.files[rel]
        if rel in node.corrupted:
            middle = len(data) // 2  # same size, other bytes: only the checksum tells
            data = data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]
        self._send(200, data, "application/x-netcdf", head)


class DataNode(_Base):
    """A THREDDS data node: files under ``/thredds/fileServer/``; ``requests`` counts requests per URL path."""

    def __init__(self, name: str, root: str) -> None:
        super().__init__(_DataNodeHandler)
        self.name = name  # the data_node value in search records
        self.root = root  # the THREDDS dataset root, e.g. esg_dataroot
        self.files: dict[str, bytes] = {}
        self.corrupted: set[str] = set()
        self.requests: Counter[str] = Counter()

    def add(self, rel: str, data: bytes) -> str:
        self.files[rel] = data
        return self.url(rel)

    def url(self, rel: str) -> str:
        return f"{self.base_url}{FILE_SERVER}{rel}"

    def corrupt(self, rel: str) -> None:
        """Serve a damaged copy of ``rel`` (same size, different bytes)."""
        self.corrupted.add(rel)

    def hits(self, rel: str | None = None) -> int:
        """Requests for one file (``rel`` under fileServer), or all requests."""
        with self.lock:
            return self.requests[FILE_SERVER + rel] if rel is not None else sum(self.requests.values())


class _IndexHandler(_Handler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        index: IndexNode = self.owner
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        with index.lock:
            index.queries.append(query)
        if self._unavailable():
            return
        if url.path != SEARCH_PATH:
            self._send(404, b"Not Found\n", "text/plain")
            return
        status, body = index.answer(query)
        self._send(status, json.dumps(body).encode(), "application/json;charset=UTF-8")


class IndexNode(_Base):
    """An ESGF index node: ``docs`` is the Solr catalogue of File records; ``queries`` what was asked."""

    def __init__(self, max_limit: int = 10000) -> None:
        super().__init__(_IndexHandler)
        self.max_limit = max_limit
        self.docs: list[dict] = []
        self.queries: list[dict[str, list[str]]] = []

    @property
    def url(self) -> str:
        return self.base_url + SEARCH_PATH

    def answer(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        def one(name: str, default: str) -> str:
            return query.get(name, [default])[-1]

        if one("format", "application/xml") != SOLR_JSON:
            return 400, {"error": "only format=application/solr+json is served here"}
        if one("type", "Dataset") != "File":
            return 400, {"error": "only type=File is served here"}
        try:
            offset, limit = int(one("offset", "0")), min(int(one("limit", "10")), self.max_limit)
        except ValueError:
            return 400, {"error": "offset and limit must be integers"}
        docs = self.docs
        for flag in ("latest", "replica"):
            if flag in query:
                wanted = one(flag, "").lower() == "true"
                docs = [d for d in docs if d[flag] == wanted]
        for facet in FACETS:
            values = [v for v in query.get(facet, []) if v]
            if values:
                docs = [d for d in docs if set(d.get(facet, [])) & set(values)]
        # Solr's order: stable between pages but unrelated to replica or date
        docs = sorted(docs, key=lambda d: hashlib.sha1(d["id"].encode()).hexdigest())
        page = docs[offset : offset + limit]
        header = {"status": 0, "QTime": 1, "params": {k: v[-1] for k, v in query.items()}}
        response = {"numFound": len(docs), "start": offset, "maxScore": 1.0, "docs": page}
        return 200, {"responseHeader": header, "response": response}


@dataclass
class PublishedFile:
    """A fixture file as published: its name, bytes on disk, checksum and where each node serves it."""

    title: str
    path: Path
    sha256: str
    size: int
    instance_id: str
    rel: dict[str, str] = field(default_factory=dict)  # data node name -> path under fileServer
    urls: dict[str, str] = field(default_factory=dict)  # data node name -> HTTPServer URL


def cmip6_filename(variable: str, source: str, experiment: str, member: str, grid: str, start: str, end: str) -> str:
    return f"{variable}_{CMOR[variable][0]}_{source}_{experiment}_{member}_{grid}_{start}-{end}.nc"


# The fixture's grids: "sample" (3 x 4 cells, small enough for 250 years of days) and "north", a 5-degree
# grid covering every cell of the northern EASE2 grid, with the model's own land: its sea-ice fields
# are missing (the CMOR fill value) south of MODEL_COAST_LAT, where the observations have ocean too.
GRIDS = {
    "sample": (np.array([70.0, 75.0, 80.0]), np.array([0.0, 90.0, 180.0, 270.0])),
    "north": (np.arange(12.5, 90.0, 5.0), np.arange(0.0, 360.0, 5.0)),
}
MODEL_COAST_LAT = 60.0
OCEAN_GRID = tripolar_like(ni=72, nj=40, south_lat=5.0)  # (latitude, longitude) of the model's ocean grid (j, i)


def ocean_value(variable: str, month: int, lat: np.ndarray) -> np.ndarray:
    """The fixture's ocean-grid values (CMOR units): tos in degC, missing on the model's land (south of
    MODEL_COAST_LAT); sithick (the floe thickness) missing where there is no ice (south of 70N), as
    CMIP6 defines it."""
    season = np.cos(2 * np.pi * (month - 4) / 12.0)
    if variable == "tos":
        return np.where(lat < MODEL_COAST_LAT, np.nan, np.maximum(-1.8, 20.0 * np.cos(np.radians(lat)) - 8.0 + season))
    return np.where(lat > 70.0, 1.5 + 1.5 * np.clip((lat - 70.0) / 20.0, 0.0, 1.0) + 0.3 * season, np.nan)


def global_attrs(
    name: str, variable: str, source: str, experiment: str, member: str, grid: str, version: str, frequency: str
) -> dict:
    """The CMIP6 global attributes of a fixture file."""
    table, realm = CMOR[variable][:2]
    institution = INSTITUTION.get(source, source)
    return {
        "Conventions": "CF-1.7 CMIP-6.2",
        "activity_id": ACTIVITY[experiment],
        "experiment_id": experiment,
        "frequency": frequency,
        "grid_label": grid,
        "institution_id": institution,
        "mip_era": "CMIP6",
        "nominal_resolution": "100 km",
        "realm": realm,
        "source_id": source,
        "table_id": table,
        "variable_id": variable,
        "variant_label": member,
        "tracking_id": f"hdl:21.14100/{uuid.uuid5(uuid.NAMESPACE_URL, name + version)}",
        "further_info_url": f"https://furtherinfo.es-doc.org/CMIP6.{institution}.{source}.{experiment}.none.{member}",
        "license": "CMIP6 model data produced by the test suite is licensed under CC BY 4.0.",
    }


def write_cmip6_ocean_file(
    path: Path, variable: str, source: str, experiment: str, member: str, grid: str, start: str, end: str, version: str
) -> None:
    """A CMIP6 file on the model's native ocean grid: dims (time, j, i) with 2-D latitude/longitude, daily
    (Oday) or monthly (SImon: ``start``/``end`` as YYYYMM), missing values as the CMOR fill value 1e20."""
    table, realm, units, standard_name, long_name, _ = CMOR[variable]
    monthly = table.endswith("mon")
    epoch = dt.date(1850, 1, 1)
    if monthly:
        months = pd.date_range(f"{start[:4]}-{start[4:6]}-01", f"{end[:4]}-{end[4:6]}-01", freq="MS")
        lower = np.array([(m.date() - epoch).days for m in months], np.float64)
        upper = np.array([((m + pd.offsets.MonthBegin(1)).date() - epoch).days for m in months], np.float64)
        month_of = months.month.to_numpy()
    else:
        first = dt.date(int(start[:4]), int(start[4:6]), int(start[6:8]))
        last = dt.date(int(end[:4]), int(end[4:6]), int(end[6:8]))
        lower = np.arange((first - epoch).days, (last - epoch).days + 1, dtype=np.float64)
        upper = lower + 1.0
        month_of = pd.DatetimeIndex([pd.Timestamp(epoch) + pd.Timedelta(days=d) for d in lower]).month.to_numpy()
    lat, lon = OCEAN_GRID
    values = np.stack([ocean_value(variable, m, lat) for m in month_of])
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.setncatts(global_attrs(path.name, variable, source, experiment, member, grid, version, "mon" if monthly else "day"))
        nc.createDimension("time", None)
        nc.createDimension("bnds", 2)
        nc.createDimension("j", lat.shape[0])
        nc.createDimension("i", lat.shape[1])
        t = nc.createVariable("time", "f8", ("time",))
        t.setncatts({"standard_name": "time", "units": TIME_UNITS, "calendar": CALENDAR, "axis": "T", "bounds": "time_bnds"})
        t[:] = (lower + upper) / 2
        nc.createVariable("time_bnds", "f8", ("time", "bnds"))[:] = np.stack([lower, upper], axis=1)
        for name, values_2d, std, unit in (
            ("latitude", lat, "latitude", "degrees_north"),
            ("longitude", lon, "longitude", "degrees_east"),
        ):
            v = nc.createVariable(name, "f8", ("j", "i"))
            v.setncatts({"standard_name": std, "units": unit})
            v[:] = values_2d
        var = nc.createVariable(variable, "f4", ("time", "j", "i"), zlib=True, complevel=1, fill_value=np.float32(1e20))
        cell_methods = (
            "area: time: mean where sea_ice (comment: mask=siconc)"
            if variable == "sithick"
            else "area: mean where sea time: mean"
        )
        var.setncatts(
            {
                "standard_name": standard_name,
                "long_name": long_name,
                "units": units,
                "missing_value": np.float32(1e20),
                "cell_methods": cell_methods,
                "coordinates": "latitude longitude",
            }
        )
        var[:] = np.where(np.isnan(values), 1e20, values).astype(np.float32)


def model_land(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The fixture model's land on the "north" grid (lat, lon): everything south of MODEL_COAST_LAT."""
    return np.broadcast_to((np.asarray(lat) < MODEL_COAST_LAT)[:, None], (np.size(lat), np.size(lon)))


def write_cmip6_file(
    path: Path,
    variable: str,
    source: str,
    experiment: str,
    member: str,
    grid: str,
    start: str,
    end: str,
    version: str,
    coverage: str = "sample",
) -> None:
    """A small CMIP6 file (one value per day on the ``coverage`` grid of GRIDS) with the CMOR layout and
    global attributes."""
    table, realm, units, standard_name, long_name, height = CMOR[variable]
    first = dt.date(int(start[:4]), int(start[4:6]), int(start[6:8]))
    last = dt.date(int(end[:4]), int(end[4:6]), int(end[6:8]))
    epoch = dt.date(1850, 1, 1)
    days = np.arange((first - epoch).days, (last - epoch).days + 1, dtype=np.float64)
    lat, lon = GRIDS[coverage]
    rng = np.random.default_rng(int(hashlib.sha256(path.name.encode()).hexdigest()[:8], 16))
    season = np.cos(2 * np.pi * (days % 365.25) / 365.25)[:, None, None]
    noise = rng.normal(0.0, 1.0, (days.size, lat.size, lon.size))
    means = {
        "siconca": 60.0 + 35.0 * season,
        "tas": 260.0 - 15.0 * season,
        "uas": 2.0 * season,
        "vas": -season,
        "tos": 4.0 - 3.0 * season,
    }
    base = means[variable]
    values = np.round(base + noise, 1)
    if variable == "siconca":
        values = np.clip(values, 0.0, 100.0)
    if variable in ("siconca", "tos") and coverage == "north":
        values = np.where(model_land(lat, lon)[None], 1e20, values)
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.setncatts(global_attrs(path.name, variable, source, experiment, member, grid, version, "day"))
        nc.createDimension("time", None)
        nc.createDimension("bnds", 2)
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        chunk = min(days.size, 4096)
        t = nc.createVariable("time", "f8", ("time",), chunksizes=(chunk,))
        t.setncatts({"standard_name": "time", "units": TIME_UNITS, "calendar": CALENDAR, "axis": "T", "bounds": "time_bnds"})
        t[:] = days + 0.5
        nc.createVariable("time_bnds", "f8", ("time", "bnds"), chunksizes=(chunk, 2))[:] = np.stack([days, days + 1.0], axis=1)
        for name, values_1d, std in (("lat", lat, "latitude"), ("lon", lon, "longitude")):
            v = nc.createVariable(name, "f8", (name,))
            units_1d = "degrees_north" if name == "lat" else "degrees_east"
            v.setncatts({"standard_name": std, "units": units_1d, "axis": name[0].upper()})
            v[:] = values_1d
        attrs = {"standard_name": standard_name, "long_name": long_name, "units": units, "missing_value": np.float32(1e20)}
        attrs["cell_methods"] = "area: mean where sea time: mean" if variable == "siconca" else "area: mean time: mean"
        if height is not None:
            h = nc.createVariable("height", "f8", ())
            h.setncatts({"standard_name": "height", "units": "m", "positive": "up", "axis": "Z"})
            h.assignValue(height)
            attrs["coordinates"] = "height"
        dims, chunks = ("time", "lat", "lon"), (chunk, lat.size, lon.size)
        var = nc.createVariable(variable, "f4", dims, zlib=True, complevel=1, chunksizes=chunks, fill_value=np.float32(1e20))
        var.setncatts(attrs)
        var[:] = values.astype(np.float32)


class EsgfTestbed:
    """An index node and two data nodes (``primary``, ``replica``); ``publish`` adds fixture files to them."""

    def __init__(self, workdir: Path, max_limit: int = 10000) -> None:
        self.workdir = Path(workdir)
        self.index = IndexNode(max_limit)
        self.primary = DataNode("esgf-data02.diasjp.net", "esg_dataroot")
        self.replica = DataNode("esgf-data04.llnl.gov", "css03_data")
        self.nodes = {node.name: node for node in (self.primary, self.replica)}
        self.published: list[PublishedFile] = []

    def publish(
        self,
        variable: str,
        source: str,
        member: str,
        experiment: str,
        start: str,
        end: str,
        *,
        version: str = "20190904",
        grid: str = "gn",
        nodes: tuple[DataNode, ...] | None = None,
        latest: bool = True,
        checksum_type: str = "SHA256",
        coverage: str = "sample",
    ) -> PublishedFile:
        """Write a fixture file (on the ``coverage`` grid of GRIDS) and publish it on ``nodes`` (the first
        holds the original; default both)."""
        nodes = nodes or (self.primary, self.replica)
        title = cmip6_filename(variable, source, experiment, member, grid, start, end)
        table = CMOR[variable][0]
        institution, activity = INSTITUTION.get(source, source), ACTIVITY[experiment]
        drs = f"CMIP6/{activity}/{institution}/{source}/{experiment}/{member}/{table}/{variable}/{grid}/v{version}"
        path = self.workdir / drs / title
        if variable in OCEAN_GRID_VARIABLES and grid == "gn":
            write_cmip6_ocean_file(path, variable, source, experiment, member, grid, start, end, version)
        else:
            write_cmip6_file(path, variable, source, experiment, member, grid, start, end, version, coverage)
        data = path.read_bytes()
        dataset = drs.replace("/", ".")
        published = PublishedFile(title, path, hashlib.sha256(data).hexdigest(), len(data), f"{dataset}.{title}")
        checksum = hashlib.new(checksum_type.lower(), data).hexdigest()
        for i, node in enumerate(nodes):
            rel = f"{node.root}/{drs}/{title}"
            published.rel[node.name] = rel
            published.urls[node.name] = node.add(rel, data)
            self.index.docs.append(
                {
                    "id": f"{published.instance_id}|{node.name}",
                    "version": version,
                    "activity_id": [activity],
                    "cf_standard_name": [CMOR[variable][3]],
                    "checksum": [checksum],
                    "checksum_type": [checksum_type],
                    "data_node": node.name,
                    "dataset_id": f"{dataset}|{node.name}",
                    "experiment_id": [experiment],
                    "frequency": ["mon" if table.endswith("mon") else "day"],
                    "grid_label": [grid],
                    "index_node": "127.0.0.1",
                    "instance_id": published.instance_id,
                    "institution_id": [institution],
                    "latest": latest,
                    "master_id": f"{dataset.rsplit('.', 1)[0]}.{title}",
                    "member_id": [member],
                    "mip_era": ["CMIP6"],
                    "project": ["CMIP6"],
                    "realm": [CMOR[variable][1]],
                    "replica": i > 0,
                    "size": len(data),
                    "source_id": [source],
                    "sub_experiment_id": ["none"],
                    "table_id": [table],
                    "title": title,
                    "tracking_id": [f"hdl:21.14100/{uuid.uuid5(uuid.NAMESPACE_URL, title + version)}"],
                    "type": "File",
                    "url": [
                        f"{node.url(rel)}|application/netcdf|HTTPServer",
                        f"{node.base_url}/thredds/dodsC/{rel}.html|application/opendap-html|OPENDAP",
                        f"gsiftp://{node.name}:2811//{rel}|application/gridftp|GridFTP",
                    ],
                    "variable": [variable],
                    "variable_id": [variable],
                    "variable_units": [CMOR[variable][2]],
                    "variant_label": [member],
                    "score": 1.0,
                }
            )
        self.published.append(published)
        return published

    def close(self) -> None:
        for server in (self.index, self.primary, self.replica):
            server.stop()

    def __enter__(self) -> EsgfTestbed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# The MRI-ESM2-0 r1i1p1f1 SIday siconca files of the sample catalogue, as (experiment, start, end)
MRI_SICONCA = [
    ("historical", "18500101", "18991231"),
    ("historical", "19000101", "19491231"),
    ("historical", "19500101", "19991231"),
    ("historical", "20000101", "20141231"),
    ("ssp245", "20150101", "20641231"),
    ("ssp245", "20650101", "21001231"),
]


def publish_sample(esgf: EsgfTestbed) -> dict[str, PublishedFile]:
    """An IceNet-like catalogue; the latest files keyed by title.

    MRI-ESM2-0 r1i1p1f1 siconca (6 files, original on ``primary``, replica on ``replica``) and an
    older, superseded version of one; other members, variables and an EC-Earth3 (gr) pair whose
    original is on ``replica``.
    """
    files = [esgf.publish("siconca", "MRI-ESM2-0", "r1i1p1f1", *period, version="20190603") for period in MRI_SICONCA]
    files.append(esgf.publish("siconca", "MRI-ESM2-0", "r2i1p1f1", "historical", "20000101", "20141231", version="20190603"))
    for variable in ("tas", "uas", "vas"):
        files.append(esgf.publish(variable, "MRI-ESM2-0", "r1i1p1f1", "historical", "20100101", "20141231", version="20190603"))
    for exp, start, end in (("historical", "20140101", "20141231"), ("ssp245", "20150101", "20151231")):
        ec_earth = esgf.publish(
            "siconca", "EC-Earth3", "r2i1p1f1", exp, start, end, version="20200310", grid="gr", nodes=(esgf.replica, esgf.primary)
        )
        files.append(ec_earth)
    # an older version of one file, still listed by the index but no longer the latest
    esgf.publish("siconca", "MRI-ESM2-0", "r1i1p1f1", "historical", "20000101", "20141231", version="20190222", latest=False)
    return {f.title: f for f in files}
