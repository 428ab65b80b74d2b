"""A local FTP server (``pyftpdlib``) standing in for ``ftp://osisaf.met.no``: anonymous,
read-only, serving the files under ``root`` on 127.0.0.1 (a free port).

Faults can be injected per path, each for the next N downloads (``RETR``), or every one:

* ``truncate``: send only the first ``fraction`` of the file and end the transfer (the
  client sees a short file and resumes with ``REST``);
* ``busy``: answer ``421``/``450`` (a temporary refusal);

Every ``RETR`` and ``SIZE`` is counted per path, so tests can assert what a run asked for.

    with FtpServer(tmp_path / "ftp") as server:
        server.fail("reprocessed/ice/x.nc", "truncate", fraction=0.3)
        url = f"{server.base_url}/reprocessed/ice/x.nc"
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

from .base import next_fault

# pyftpdlib configures logging to stderr on its first loop unless its logger has a handler
_LOG = logging.getLogger("pyftpdlib")
_LOG.addHandler(logging.NullHandler())
_LOG.propagate = False


@dataclass
class FtpFault:
    kind: str  # truncate | busy
    times: int | None = 1  # None: every request
    fraction: float = 0.5
    code: str = "450"


class _Handler(FTPHandler):
    owner: FtpServer

    def _rel(self, path: str) -> str:
        return str(Path(path).resolve().relative_to(self.owner.root.resolve()))

    def ftp_SIZE(self, path):  # noqa: N802 - pyftpdlib's command method names
        self.owner._count("SIZE", self._rel(path))
        return super().ftp_SIZE(path)

    def ftp_RETR(self, file):  # noqa: N802
        rel = self._rel(file)
        fault = self.owner._request(rel)
        if fault is not None and fault.kind == "busy":
            self.respond(f"{fault.code} injected: try again later.")
            return None
        if fault is not None and fault.kind == "truncate":
            data = Path(file).read_bytes()
            short = Path(tempfile.mkdtemp(dir=self.owner.scratch)) / Path(file).name
            short.write_bytes(data[: int(len(data) * fault.fraction)])
            return super().ftp_RETR(str(short))
        return super().ftp_RETR(file)


class FtpServer:
    """The server; a context manager. ``base_url`` is ``ftp://127.0.0.1:<port>``."""

    listen_port = 0  # a free port, unless set

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix="ftp-scratch-"))
        self.counts: Counter[tuple[str, str]] = Counter()
        self._faults: dict[str, list[FtpFault]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: FTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.address[1]

    @property
    def base_url(self) -> str:
        return f"ftp://127.0.0.1:{self.port}"

    def path(self, relpath: str) -> Path:
        """Where to put the file served at ``relpath`` (parent folders created)."""
        target = self.root / relpath.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def fail(self, relpath: str, kind: str = "busy", *, times: int | None = 1, **options: object) -> None:
        with self._lock:
            self._faults.setdefault(relpath.lstrip("/"), []).append(FtpFault(kind, times, **options))  # type: ignore[arg-type]

    def retrievals(self, relpath: str) -> int:
        with self._lock:
            return self.counts[("RETR", relpath.lstrip("/"))]

    def total(self, command: str | None = None) -> int:
        with self._lock:
            return sum(n for (cmd, _), n in self.counts.items() if command in (None, cmd))

    def _count(self, command: str, rel: str) -> None:
        with self._lock:
            self.counts[(command, rel)] += 1

    def _request(self, rel: str) -> FtpFault | None:
        with self._lock:
            self.counts[("RETR", rel)] += 1
            return next_fault(self._faults.get(rel, []))

    def start(self) -> Self:
        authorizer = DummyAuthorizer()
        authorizer.add_anonymous(str(self.root), perm="elr")
        handler = type("Handler", (_Handler,), {"owner": self, "authorizer": authorizer, "banner": "floecast test FTP"})
        self._server = FTPServer(("127.0.0.1", self.listen_port), handler)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            self._server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        self._server.close_all()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
