"""ESGF client for CMIP6 files: search an index node, download from data-node replicas.

The search speaks the ESGF search REST API (``/esg-search/search`` with
``format=application/solr+json`` and ``type=File``); every replica of a file is a separate
record (``replica`` true or false, its own ``data_node`` and ``url`` list), which
:func:`search_files` groups into one :class:`EsgfFile` whose HTTPServer URLs list the
original first. :func:`download_file` tries those URLs in turn and accepts a file only when
its checksum (from the search record) matches. Index nodes change and go down, so the
index URL is a parameter (one URL or several, tried in turn).
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from floecast.variables import by_cmip6_name

DEFAULT_INDEX_URL = "https://esgf-data.dkrz.de/esg-search/search"
SEARCH_PATH = "/esg-search/search"
HISTORICAL_LAST_YEAR = 2014  # CMIP6 historical ends 2014-12-31; the scenarios start 2015-01-01
SCENARIO = "ssp245"
DEFAULT_PAGE_SIZE = 500  # index nodes cap ``limit`` (10000 on the ESGF Solr nodes)
DEFAULT_TIMEOUT = (10.0, 120.0)  # (connect, read) seconds
CHUNK_BYTES = 1 << 20

GR_SOURCES = frozenset({"EC-Earth3"})  # models whose files IceNet took on the regridded grid (data-formats.md)

# <var>_<table>_<source>_<experiment>_<member>_<grid>[_<start>-<end>].nc
_FILENAME = re.compile(
    r"^(?P<variable>[^_]+)_(?P<table>[^_]+)_(?P<source>[^_]+)_(?P<experiment>[^_]+)"
    r"_(?P<member>(?:s\d{4}-)?r\d+i\d+p\d+f\d+)_(?P<grid>g[a-z0-9]*)"
    r"(?:_(?P<start>\d{4,12})-(?P<end>\d{4,12}))?(?:-clim)?\.nc$"
)
_VERSION = re.compile(r"\.v(\d{8})(?:[.|]|$)")


class EsgfError(RuntimeError):
    """A search or download that failed on every node tried."""


@dataclass(frozen=True)
class CmipFileName:
    """The facets and time range encoded in a CMIP6 file name (``start``/``end`` None for fixed fields)."""

    variable_id: str
    table_id: str
    source_id: str
    experiment_id: str
    member_id: str
    grid_label: str
    start: dt.date | None
    end: dt.date | None


@dataclass(frozen=True)
class EsgfFile:
    """One CMIP6 file and every HTTP URL it can be fetched from, the original node first."""

    title: str
    instance_id: str
    urls: tuple[str, ...]
    checksum: str | None
    checksum_type: str | None
    size: int | None
    version: str | None
    data_nodes: tuple[str, ...]
    name: CmipFileName

    @property
    def start(self) -> dt.date | None:
        return self.name.start

    @property
    def end(self) -> dt.date | None:
        return self.name.end


def default_grid_label(source_id: str, variable_id: str) -> str:
    """The grid label IceNet used: ``gn``, except ``gr`` for EC-Earth3 and for a variable whose catalogue
    entry asks for it (``tos``)."""
    if source_id in GR_SOURCES:
        return "gr"
    try:
        return by_cmip6_name(variable_id).cmip6.grid_label or "gn"
    except ValueError:  # not a catalogue variable: the usual native grid
        return "gn"


def cmip6_table(variable_id: str) -> str:
    """The CMIP6 table the catalogue takes ``variable_id`` from (``SIday``, ``day``, ``Oday``, ``SImon``, ...)."""
    return by_cmip6_name(variable_id).cmip6.table


def experiments_for_years(first_year: int, last_year: int, scenario: str = SCENARIO) -> list[str]:
    """The experiments covering the years: ``historical`` up to 2014, the scenario from 2015."""
    if first_year > last_year:
        raise ValueError(f"first year {first_year} after last year {last_year}")
    experiments = []
    if first_year <= HISTORICAL_LAST_YEAR:
        experiments.append("historical")
    if last_year > HISTORICAL_LAST_YEAR:
        experiments.append(scenario)
    return experiments


def _parse_stamp(stamp: str, end: bool) -> dt.date:
    year = int(stamp[:4])
    month = int(stamp[4:6]) if len(stamp) >= 6 else (12 if end else 1)
    if len(stamp) >= 8:
        day = int(stamp[6:8])
    else:
        day = calendar.monthrange(year, month)[1] if end else 1
    return dt.date(year, month, day)


def parse_filename(name: str) -> CmipFileName:
    """Facets and time range of a CMIP6 file name, e.g.
    ``siconca_SIday_MRI-ESM2-0_historical_r1i1p1f1_gn_20000101-20141231.nc``."""
    match = _FILENAME.match(Path(name).name)
    if match is None:
        raise ValueError(f"not a CMIP6 file name: {name!r}")
    g = match.groupdict()
    start = _parse_stamp(g["start"], end=False) if g["start"] else None
    end = _parse_stamp(g["end"], end=True) if g["end"] else None
    return CmipFileName(g["variable"], g["table"], g["source"], g["experiment"], g["member"], g["grid"], start, end)


def files_for_years(files: Iterable[EsgfFile], first_year: int, last_year: int) -> list[EsgfFile]:
    """The files whose time range overlaps ``first_year``..``last_year`` (fixed fields always), by start date."""
    first, last = dt.date(first_year, 1, 1), dt.date(last_year, 12, 31)
    chosen = [f for f in files if f.start is None or (f.start <= last and f.end is not None and f.end >= first)]
    return sorted(chosen, key=lambda f: (f.start or dt.date.min, f.title))


def _search_url(index_url: str) -> str:
    url = index_url.rstrip("/")
    return url if url.endswith(SEARCH_PATH) else url + SEARCH_PATH


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _first(value: Any) -> Any:
    """Solr returns multi-valued fields as lists; take the first value of those."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _http_urls(doc: dict[str, Any]) -> list[str]:
    urls = []
    for entry in doc.get("url", []):
        parts = entry.split("|")
        if len(parts) >= 3 and parts[2] == "HTTPServer":
            urls.append(parts[0])
    return urls


def _title(doc: dict[str, Any]) -> str:
    """The file name: ``title``, else the last part of ``instance_id`` (``...v20190904.<name>.nc``)."""
    if doc.get("title"):
        return str(doc["title"])
    instance = str(doc.get("instance_id") or doc.get("id", "")).split("|")[0]
    parts = instance.rsplit(".", 2)
    return f"{parts[-2]}.nc" if len(parts) == 3 and parts[-1] == "nc" else instance


def _doc_version(doc: dict[str, Any]) -> str | None:
    for key in ("instance_id", "dataset_id", "id"):
        match = _VERSION.search(str(doc.get(key, "")))
        if match:
            return match.group(1)
    version = _first(doc.get("version"))
    return str(version) if version is not None else None


def _query_pages(session: requests.Session, url: str, params: list[tuple[str, str]], page_size: int, timeout) -> list[dict]:
    docs: list[dict] = []
    offset = 0
    while True:
        page = params + [("offset", str(offset)), ("limit", str(page_size))]
        response = session.get(url, params=page, timeout=timeout)
        response.raise_for_status()
        body = response.json()["response"]
        batch = body.get("docs", [])
        docs.extend(batch)
        offset += len(batch)
        if not batch or offset >= int(body.get("numFound", 0)):
            return docs


def _group(docs: list[dict], wanted: dict[str, list[str]]) -> list[EsgfFile]:
    """One EsgfFile per file: replicas merged, original node first, only the newest version of each name."""
    groups: dict[str, list[dict]] = {}
    for doc in docs:
        title = _title(doc)
        try:
            name = parse_filename(title)
        except ValueError:
            continue
        if title != Path(title).name:
            continue  # a title is a plain file name; anything else would write outside the target folder
        facets = {
            "source_id": name.source_id,
            "member_id": name.member_id,
            "experiment_id": name.experiment_id,
            "table_id": name.table_id,
            "variable_id": name.variable_id,
            "grid_label": name.grid_label,
        }
        if any(key in wanted and value not in wanted[key] for key, value in facets.items()):
            continue  # an index that ignored a facet
        key = doc.get("instance_id") or str(doc.get("id", "")).split("|")[0]
        groups.setdefault(key, []).append(doc)

    newest: dict[str, EsgfFile] = {}
    for instance_id, records in groups.items():
        records = sorted(records, key=lambda d: bool(_first(d.get("replica", False))))  # stable: original first
        urls: list[str] = []
        nodes: list[str] = []
        for doc in records:
            for url in _http_urls(doc):
                if url not in urls:
                    urls.append(url)
                    nodes.append(str(doc.get("data_node", "")))
        if not urls:
            continue
        source = next((d for d in records if d.get("checksum")), records[0])
        size = _first(source.get("size"))
        title = _title(records[0])
        file = EsgfFile(
            title=title,
            instance_id=instance_id,
            urls=tuple(urls),
            checksum=(_first(source.get("checksum")) or None),
            checksum_type=(_first(source.get("checksum_type")) or None),
            size=int(size) if size is not None else None,
            version=_doc_version(source),
            data_nodes=tuple(nodes),
            name=parse_filename(title),
        )
        held = newest.get(title)
        if held is None or (file.version or "") > (held.version or ""):
            newest[title] = file
    return sorted(newest.values(), key=lambda f: (f.name.experiment_id, f.start or dt.date.min, f.title))


def search_files(
    index_url: str | Sequence[str],
    source_id: str | Sequence[str],
    member_id: str | Sequence[str],
    experiment_id: str | Sequence[str],
    table_id: str | Sequence[str],
    variable_id: str | Sequence[str],
    grid_label: str | Sequence[str] | None = None,
    session: requests.Session | None = None,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
) -> list[EsgfFile]:
    """The latest CMIP6 files matching the facets, replicas grouped, sorted by experiment and start.

    ``index_url`` is an index node (``https://host`` or ``https://host/esg-search/search``) or a
    list of them, tried in turn until one answers every page. Each facet may be one value or
    several (ESGF ORs repeated parameters). ``grid_label`` None searches every grid.
    """
    wanted = {
        "source_id": _as_list(source_id),
        "member_id": _as_list(member_id),
        "experiment_id": _as_list(experiment_id),
        "table_id": _as_list(table_id),
        "variable_id": _as_list(variable_id),
    }
    if grid_label is not None:
        wanted["grid_label"] = _as_list(grid_label)
    params = [("project", "CMIP6"), ("type", "File"), ("latest", "true"), ("format", "application/solr+json")]
    params += [(key, value) for key, values in wanted.items() for value in values]
    indexes = _as_list(index_url)
    if not indexes:
        raise ValueError("no ESGF index URL given")
    if page_size < 1:
        raise ValueError(f"page_size must be positive, not {page_size}")

    own = session is None
    session = session or requests.Session()
    failures = []
    try:
        for index in indexes:
            url = _search_url(index)
            try:
                docs = _query_pages(session, url, params, page_size, timeout)
            except (requests.RequestException, ValueError, KeyError) as error:
                failures.append(f"{url} ({_describe(error)})")
                continue
            return _group(docs, wanted)
    finally:
        if own:
            session.close()
    query = ", ".join(f"{k}={'|'.join(v)}" for k, v in wanted.items())
    raise EsgfError(f"ESGF search for {query} failed on every index node: " + "; ".join(failures))


def file_checksum(path: str | os.PathLike[str], checksum_type: str) -> str:
    """Hex digest of a file (``SHA256``, ``MD5`` or any other hashlib name)."""
    digest = _hasher(checksum_type)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hasher(checksum_type: str):
    try:
        return hashlib.new(checksum_type.lower().replace("-", ""))
    except ValueError:
        raise ValueError(f"unsupported checksum type {checksum_type!r}") from None


def is_valid(esgf_file: EsgfFile, path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds the file: its checksum matches (its size, when the index gave no checksum)."""
    path = Path(path)
    if not path.is_file():
        return False
    if esgf_file.checksum and esgf_file.checksum_type:
        return file_checksum(path, esgf_file.checksum_type) == esgf_file.checksum.lower()
    return esgf_file.size is not None and path.stat().st_size == esgf_file.size


def _describe(error: Exception) -> str:
    """A short reason: the exception's class and, for a socket error, just its errno text."""
    text = str(error)
    errno = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    return f"{type(error).__name__}: {errno.group(0).strip() if errno else text}"


def _fetch(session: requests.Session, url: str, esgf_file: EsgfFile, target: Path, timeout) -> str | None:
    """Stream ``url`` to a temporary file beside ``target``, rename it on success; the reason it failed, else None."""
    digest = _hasher(esgf_file.checksum_type) if esgf_file.checksum and esgf_file.checksum_type else None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            with session.get(url, stream=True, timeout=timeout) as response:
                if response.status_code != 200:
                    return f"HTTP {response.status_code}"
                for chunk in response.iter_content(CHUNK_BYTES):
                    out.write(chunk)
                    if digest is not None:
                        digest.update(chunk)
        size = tmp.stat().st_size
        if esgf_file.size is not None and size != esgf_file.size:
            return f"size {size} != {esgf_file.size}"
        if digest is not None and digest.hexdigest() != esgf_file.checksum.lower():
            return f"{esgf_file.checksum_type} mismatch (got {digest.hexdigest()}, expected {esgf_file.checksum.lower()})"
        os.replace(tmp, target)
        return None
    except requests.RequestException as error:
        return _describe(error)
    finally:
        tmp.unlink(missing_ok=True)


def download_file(
    esgf_file: EsgfFile,
    target_dir: str | os.PathLike[str],
    session: requests.Session | None = None,
    *,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
) -> Path:
    """Fetch the file into ``target_dir/<title>``, trying each replica URL in turn; its path.

    A node that is down (refused, timed out, an HTTP error) or that serves a file whose
    checksum differs from the search record is skipped for the next one. A file already
    there whose checksum matches is not fetched again. If every URL fails, EsgfError names
    the file and every URL tried with its reason.
    """
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / Path(esgf_file.title).name
    if is_valid(esgf_file, target):
        return target
    own = session is None
    session = session or requests.Session()
    failures = []
    try:
        for url in esgf_file.urls:
            reason = _fetch(session, url, esgf_file, target, timeout)
            if reason is None:
                return target
            failures.append(f"{url} ({reason})")
    finally:
        if own:
            session.close()
    tried = "; ".join(failures) if failures else "no HTTPServer URL"
    raise EsgfError(f"{esgf_file.title}: download failed from every data node: {tried}")


def fetch_variable(
    index_url: str | Sequence[str],
    source_id: str,
    member_id: str,
    variable_id: str,
    first_year: int,
    last_year: int,
    target_dir: str | os.PathLike[str],
    session: requests.Session | None = None,
) -> list[Path]:
    """Every file of one model run and variable (from the catalogue's table, daily or monthly) that
    overlaps the years, downloaded (or already there and valid) into ``target_dir``; their paths
    in time order."""
    files = search_files(
        index_url,
        source_id,
        member_id,
        experiments_for_years(first_year, last_year),
        cmip6_table(variable_id),
        variable_id,
        default_grid_label(source_id, variable_id),
        session,
    )
    chosen = files_for_years(files, first_year, last_year)
    if not chosen:
        raise EsgfError(f"ESGF has no {source_id} {member_id} {variable_id} files for {first_year}-{last_year}")
    return [download_file(f, target_dir, session) for f in chosen]
