"""A local THREDDS ``fileServer`` stand-in for testing the real download clients.

Serves the files under ``root`` at ``/thredds/fileServer/osisaf/met.no/<relpath>`` on 127.0.0.1
(a free port) over HTTP/1.1 with ``Content-Length``, like thredds.met.no: every product folder
of the chain lies below it (``reprocessed/ice/conc_450a1_files/``, ``reprocessed/ice/conc_438_files/``,
``ice/amsr2_conc/``, ...), as on the real server.
Faults can be injected per path, each for the next N requests (or every request):

* ``status``: answer with an HTTP status (e.g. 503, or 429 with ``Retry-After``);
* ``truncate``: announce the full ``Content-Length``, send a fraction of the bytes and
  close the connection (a broken transfer);
* ``stall``: wait before answering (to trigger the client's read timeout);
* ``body``: serve other bytes than the file's (e.g. a truncated or corrupt copy).

A path without a file answers 404, like a day the provider lacks. Every request is
counted per path, so tests can assert that a second run fetches nothing.

    with ThreddsServer(tmp_path / "srv") as server:
        server.fail("reprocessed/ice/conc_450a1_files/2020/12/x.nc", "status", status=503, times=2)
        url = f"{server.base_url}/reprocessed/ice/conc_450a1_files/2020/12/x.nc"
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .base import LocalServer, QuietHandler, next_fault

PREFIX = "/thredds/fileServer/osisaf/met.no"


@dataclass
class Fault:
    kind: str  # status | truncate | stall | body
    times: int | None = 1  # None: every request
    status: int = 503
    retry_after: str | None = None
    fraction: float = 0.5
    seconds: float = 1.0
    body: bytes = b""


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _plain(self, status: int, text: str, headers: dict[str, str] | None = None, send_body: bool = True) -> None:
        body = f"<html><body><h1>{status}</h1><p>{text}</p></body></html>".encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/html;charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _serve(self, send_body: bool) -> None:
        owner = self.server.owner
        path = unquote(urlsplit(self.path).path)
        if not path.startswith(PREFIX + "/"):
            self._plain(404, "not a fileServer path", send_body=send_body)
            return
        rel = path[len(PREFIX) + 1 :]
        fault = owner._request(rel, self.headers.get("Authorization"))
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._plain(fault.status, "injected fault", headers, send_body)
            return
        file = (owner.root / rel).resolve()
        if fault is not None and fault.kind == "body":
            data = fault.body
        elif owner.root.resolve() in file.parents and file.is_file():
            data = file.read_bytes()
        else:
            self._plain(404, f"FileNotFound: {rel}", send_body=send_body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-netcdf")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not send_body:
            return
        if fault is not None and fault.kind == "truncate":
            self.wfile.write(data[: int(len(data) * fault.fraction)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)


class ThreddsServer(LocalServer):
    """The server; a context manager. ``root`` maps to ``PREFIX``."""

    handler = _Handler

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.counts: Counter[str] = Counter()
        self.authorization: list[str] = []  # Authorization headers seen (to check credentials are sent)
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The equivalent of ``osisaf.servers.thredds`` (https://thredds.met.no/thredds/fileServer/osisaf/met.no) here."""
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    def url(self, relpath: str) -> str:
        return f"{self.base_url}/{relpath.lstrip('/')}"

    def path(self, relpath: str) -> Path:
        """Where to put the file served at ``relpath`` (parent folders created)."""
        target = self.root / relpath.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def fail(self, relpath: str, kind: str = "status", *, times: int | None = 1, **options: object) -> None:
        """Inject a fault for the next ``times`` requests of ``relpath`` (None: all of them)."""
        fault = Fault(kind, times, **options)  # type: ignore[arg-type]
        with self._lock:
            self._faults.setdefault(relpath.lstrip("/"), []).append(fault)

    def requests_for(self, relpath: str) -> int:
        with self._lock:
            return self.counts[relpath.lstrip("/")]

    def total_requests(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def _request(self, rel: str, authorization: str | None) -> Fault | None:
        with self._lock:
            self.counts[rel] += 1
            if authorization:
                self.authorization.append(authorization)
            return next_fault(self._faults.get(rel, []))
