"""What every local test server shares: a threaded HTTP server on 127.0.0.1 (a free port),
started and stopped by a context manager, whose request handlers reach the server object
as ``self.server.owner``; and the queue of faults injected for the next requests of a path."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, Self, TypeVar


class Countable(Protocol):
    times: int | None  # requests it still applies to; None: every one


F = TypeVar("F", bound=Countable)


def next_fault(queue: list[F]) -> F | None:
    """The fault for this request from a path's queue (each used for its ``times`` requests, in order)."""
    while queue:
        fault = queue[0]
        if fault.times is None:
            return fault
        if fault.times > 0:
            fault.times -= 1
            if fault.times == 0:
                queue.pop(0)
            return fault
        queue.pop(0)
    return None


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: Any

    def handle_error(self, request, client_address) -> None:  # clients that timed out or went away
        pass


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive like the real services, and no access log on stderr."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stalls
    server: QuietServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


class LocalServer:
    handler: type[BaseHTTPRequestHandler]
    listen_port = 0  # a free port, unless set (a simulation resumed on the addresses in its config)
    _httpd: QuietServer | None = None
    _thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def start(self) -> Self:
        self._httpd = QuietServer(("127.0.0.1", self.listen_port), self.handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
