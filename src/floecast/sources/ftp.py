"""Downloads over FTP (``ftplib``), with the same contract as :func:`floecast.sources.http.download`.

The OSI SAF fast-track files are published on the provider's FTP server first
(``ftp://osisaf.met.no``, anonymous). ``download(url, target)`` asks the server for the
file's size (``SIZE``), retrieves it in binary mode into a temporary file beside
``target`` and gives it the final name only when the byte count matches and the caller's
``validate`` accepts it. A dropped transfer is resumed where it stopped (``REST``) on the
next attempt; timeouts, dropped connections, short transfers and temporary replies (4xx)
are retried with exponential backoff. A file the server lacks (``550``) raises
:class:`~floecast.sources.http.NotAvailable`; other permanent replies (``530`` login
refused, ...) raise :class:`~floecast.sources.http.DownloadError` at once. A file that
fails validation is moved to ``rejected/``. A valid existing target is not fetched again.
Credentials in the URL (``ftp://user:password@host/...``) are never logged.
"""

from __future__ import annotations

import ftplib
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from floecast.sources.http import (
    DEFAULT_BACKOFF_S,
    DEFAULT_MAX_WAIT_S,
    DEFAULT_RETRIES,
    DownloadError,
    DownloadResult,
    NotAvailable,
    Validator,
    install,
    redact,
    reuse_or_clear,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 20
_TRANSIENT = (OSError, EOFError, ftplib.error_temp, ftplib.error_reply, ftplib.error_proto)


@dataclass(frozen=True)
class FtpAddress:
    host: str
    port: int
    user: str
    password: str
    path: str  # absolute path on the server

    @classmethod
    def parse(cls, url: str) -> FtpAddress:
        parts = urlsplit(url)
        if parts.scheme != "ftp" or not parts.hostname:
            raise ValueError(f"{redact(url)}: not an ftp:// address")
        user = unquote(parts.username) if parts.username else "anonymous"
        password = unquote(parts.password) if parts.password else ("anonymous@" if user == "anonymous" else "")
        return cls(parts.hostname, parts.port or 21, user, password, unquote(parts.path) or "/")


class _Transient(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


def connect(address: FtpAddress, timeout: float = DEFAULT_TIMEOUT_S) -> ftplib.FTP:
    """A logged-in session in binary mode (raises :class:`DownloadError` when the login is refused)."""
    session = ftplib.FTP(timeout=timeout)
    session.connect(address.host, address.port)
    try:
        session.login(address.user, address.password)
    except ftplib.error_perm as err:
        session.close()
        raise DownloadError(
            f"ftp://{address.host}:{address.port}: login refused ({str(err)[:80]}); check the account", url=address.host
        ) from None
    session.voidcmd("TYPE I")
    return session


def _is_missing(err: ftplib.error_perm) -> bool:
    return str(err).startswith("550")


def remote_size(session: ftplib.FTP, path: str) -> int | None:
    """The file's size, or None when the server does not have it (550)."""
    try:
        size = session.size(path)
    except ftplib.error_perm as err:
        if _is_missing(err):
            return None
        raise
    return int(size) if size is not None else None


def list_names(session: ftplib.FTP, folder: str) -> list[str]:
    """The file names in ``folder`` (empty when the folder does not exist)."""
    try:
        return [name.rsplit("/", 1)[-1] for name in session.nlst(folder)]
    except ftplib.error_perm as err:
        if _is_missing(err) or str(err).startswith("450"):
            return []
        raise


def _fetch_once(address: FtpAddress, tmp: Path, timeout: float) -> tuple[int, int]:
    """One session: SIZE, then RETR into ``tmp`` from its current length (REST). Returns (bytes, expected)."""
    shown = redact(f"ftp://{address.host}:{address.port}{address.path}")
    try:
        session = connect(address, timeout)
    except DownloadError:
        raise
    except _TRANSIENT as exc:
        raise _Transient(f"cannot connect: {type(exc).__name__}: {exc}") from None
    try:
        try:
            expected = remote_size(session, address.path)
        except ftplib.error_perm as err:
            raise DownloadError(f"{shown}: FTP {str(err)[:80]}; a permanent answer, not retried", url=shown) from None
        if expected is None:
            raise NotAvailable(f"{shown}: not on the server (FTP 550)", url=shown, status=550)
        offset = tmp.stat().st_size if tmp.exists() else 0
        if offset > expected:
            tmp.unlink()
            offset = 0
        if offset < expected:
            with open(tmp, "ab") as fh:
                session.retrbinary(f"RETR {address.path}", fh.write, blocksize=CHUNK_BYTES, rest=offset or None)
                fh.flush()
                os.fsync(fh.fileno())
        written = tmp.stat().st_size
        if written != expected:
            raise _Transient(f"short transfer: {written} of {expected} bytes")
        return written, expected
    except ftplib.error_perm as err:
        if _is_missing(err):
            raise NotAvailable(f"{shown}: not on the server (FTP {str(err)[:40]})", url=shown, status=550) from None
        raise DownloadError(f"{shown}: FTP {str(err)[:80]}; a permanent answer, not retried", url=shown) from None
    except _TRANSIENT as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from None
    finally:
        try:
            session.quit()
        except _TRANSIENT:
            session.close()


def download(
    url: str,
    target: str | os.PathLike[str],
    *,
    validate: Validator | None = None,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF_S,
    max_wait: float = DEFAULT_MAX_WAIT_S,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> DownloadResult:
    """Fetch ``url`` (ftp://) into ``target`` (see the module docstring)."""
    target = Path(target)
    shown = redact(url)
    address = FtpAddress.parse(url)
    existing = reuse_or_clear(target, validate)
    if existing is not None:
        return existing
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
    attempt = 0
    try:
        while True:
            attempt += 1
            try:
                nbytes, _ = _fetch_once(address, tmp, timeout)
                break
            except _Transient as exc:
                if attempt > retries:
                    raise DownloadError(f"{shown}: gave up after {attempt} attempts; last error: {exc}", url=shown) from None
                wait = min(max(backoff * 2 ** (attempt - 1), 0.0), max_wait)
                kept = tmp.stat().st_size if tmp.exists() else 0
                log.warning("%s: %s; retry %d of %d in %.1f s (resuming at byte %d)", shown, exc, attempt, retries, wait, kept)
                time.sleep(wait)
        install(tmp, target, validate, url)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("%s: fetched %d bytes into %s (%d attempt%s)", shown, nbytes, target, attempt, "" if attempt == 1 else "s")
    return DownloadResult(target, "fetched", attempt, nbytes)
