"""One address, whatever its protocol: download a file or ask whether the server has it.

``http(s)://`` goes through :mod:`floecast.sources.http`, ``ftp://`` through
:mod:`floecast.sources.ftp`; both download atomically, validate, and raise the same
exceptions (:class:`~floecast.sources.http.NotAvailable` for a file the server lacks).
:class:`Probe` answers "is it there?" without downloading (HTTP ``HEAD``, FTP ``SIZE``),
keeping one session per server for a batch of questions (polling).

``requests`` is imported where an HTTP request is made: the steps that only read delivered
files (regridding, the consistency report) import this module without it in their envs.
"""

from __future__ import annotations

import ftplib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

from floecast.sources import ftp, http

if TYPE_CHECKING:
    import requests


def download(url: str, target: Any, *, session: requests.Session | None = None, **options: Any) -> http.DownloadResult:
    """:func:`floecast.sources.http.download` or :func:`floecast.sources.ftp.download` by the URL's scheme."""
    if url.startswith("ftp://"):
        timeout = options.pop("timeout", ftp.DEFAULT_TIMEOUT_S)
        if isinstance(timeout, tuple):
            timeout = max(timeout)
        return ftp.download(url, target, timeout=timeout, **options)
    return http.download(url, target, session=session, **options)


class Probe:
    """Whether files exist on their servers, without downloading them; a context manager."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._http: requests.Session | None = None
        self._ftp: dict[tuple[str, int, str], ftplib.FTP] = {}
        self.requests = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        for session in self._ftp.values():
            try:
                session.quit()
            except (OSError, EOFError, ftplib.Error):
                session.close()
        self._ftp.clear()

    def exists(self, url: str) -> bool:
        """True when the server has the file; raises RuntimeError (URL redacted) when it cannot answer."""
        self.requests += 1
        if url.startswith("ftp://"):
            return self._retry_ftp(url, lambda session, path: ftp.remote_size(session, path) is not None)
        import requests

        self._http = self._http or requests.Session()
        try:
            response = self._http.head(url, timeout=(10, self.timeout), allow_redirects=True)
        except requests.RequestException as err:
            raise RuntimeError(f"{http.redact(url)} unreachable ({type(err).__name__})") from None
        if response.status_code == 200:
            return True
        if response.status_code in http.NOT_AVAILABLE_STATUS:
            return False
        raise RuntimeError(f"{http.redact(url)} answered HTTP {response.status_code}")

    def _retry_ftp(self, url: str, ask: Callable[[ftplib.FTP, str], bool]) -> bool:
        address = ftp.FtpAddress.parse(url)
        key = (address.host, address.port, address.user)
        for attempt in (1, 2):  # a session kept from an earlier question may have timed out: one fresh try
            try:
                session = self._ftp.get(key) or ftp.connect(address, self.timeout)
                self._ftp[key] = session
                return ask(session, address.path)
            except http.DownloadError as err:
                raise RuntimeError(str(err)) from None
            except (OSError, EOFError, ftplib.error_temp, ftplib.error_reply, ftplib.error_proto, ftplib.error_perm) as err:
                self._ftp.pop(key, None)
                if attempt == 2:
                    raise RuntimeError(f"{http.redact(url)} unreachable ({type(err).__name__}: {err})") from None
        return False
