"""A small, careful HTTP(S) downloader shared by the sources (OSI-SAF THREDDS, ESGF, ...).

``download(url, target)`` streams into a temporary file beside ``target`` and gives it the
final name only when the byte count matches ``Content-Length`` (if the server sent one)
and the caller's ``validate`` accepts it, so a partial or corrupt file never carries the
final name. Transient failures (timeouts, dropped connections, short transfers, HTTP 408,
425, 429 and 5xx) are retried with exponential backoff, honouring ``Retry-After``. HTTP 404
and 410 raise :class:`NotAvailable` at once; other 4xx answers raise :class:`DownloadError`
at once. A file that fails validation is moved to ``rejected/`` beside the target with a
``<name>.reason.txt`` and :class:`InvalidFile` is raised. A valid existing target is not
fetched again.

URLs are shown without credentials or query strings (which may carry tokens) in messages
and logs; see :func:`redact`.

``requests`` is imported where a download runs: the error classes and :func:`redact` also
serve steps whose envs hold no ``requests`` (egress, reading delivered OSI SAF files).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from floecast import __version__

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

USER_AGENT = f"floecast/{__version__}"
CHUNK_BYTES = 1 << 20
DEFAULT_RETRIES = 5  # retries after the first attempt
DEFAULT_BACKOFF_S = 2.0  # waits 2, 4, 8, 16, 32 s
DEFAULT_MAX_WAIT_S = 300.0  # longest single wait, also for Retry-After
DEFAULT_TIMEOUT_S = (30.0, 120.0)  # (connect, read between bytes)
NOT_AVAILABLE_STATUS = frozenset({404, 410})
RETRY_STATUS = frozenset({408, 425, 429})  # plus every 5xx
REJECTED_DIR = "rejected"

Validator = Callable[[Path], Any]


class DownloadError(Exception):
    """A download that failed for good (a permanent answer, or retries used up)."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url  # redacted
        self.status = status


class NotAvailable(DownloadError):
    """The server does not have the file (HTTP 404 or 410); not retried."""


class InvalidFile(DownloadError):
    """The delivered file failed validation; it was moved to ``rejected``."""

    def __init__(self, message: str, *, url: str, reason: str, rejected: Path) -> None:
        super().__init__(message, url=url)
        self.reason = reason
        self.rejected = rejected


class _Transient(Exception):
    """One failed attempt worth retrying (internal; its message never holds the URL)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    status: Literal["fetched", "skipped"]
    attempts: int  # HTTP attempts made (0 when skipped)
    nbytes: int


def redact(url: str) -> str:
    """``url`` without user/password, query string or fragment (``?<redacted>`` marks a query)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "<redacted>" if parts.query else "", ""))


_QUERY = re.compile(r"\?[^\s'\"<>()]+")
_USERINFO = re.compile(r"(://)[^/\s@]+@")


def redact_text(text: str) -> str:
    """Remove query strings and credentials from URLs inside free text (e.g. a requests error)."""
    return _QUERY.sub("?<redacted>", _USERINFO.sub(r"\1", text))


class _RedactFilter(logging.Filter):
    """Strips query strings and credentials from URLs in another library's log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_text(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = redact_text(record.msg)
        return True


# urllib3 logs every request line (with its query string) at DEBUG level
logging.getLogger("urllib3.connectionpool").addFilter(_RedactFilter())


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _content_length(response: requests.Response) -> int | None:
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None  # the length of the encoded body; urllib3 checks it
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def check_file(path: Path, validate: Validator | None) -> str | None:
    """The reason ``path`` is not acceptable, or None. ``validate`` fails by raising or returning False."""
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    if validate is None:
        return None
    try:
        ok = validate(path)
    except Exception as exc:  # any failure of the validator means the file is not usable
        return str(exc) or type(exc).__name__
    return "validation returned False" if ok is False else None


def reject(path: str | os.PathLike[str], reason: str, *, name: str | None = None, url: str | None = None) -> Path:
    """Move ``path`` to ``rejected/<name>`` in its folder and write ``<name>.reason.txt``; returns the new path."""
    path = Path(path)
    name = name or path.name
    folder = path.parent / REJECTED_DIR
    folder.mkdir(exist_ok=True)
    dest = folder / name
    size = path.stat().st_size
    os.replace(path, dest)
    lines = [f"file: {name}", f"rejected: {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}", f"size: {size} bytes"]
    if url:
        lines.append(f"url: {redact(url)}")
    lines.append(f"reason: {reason}")
    (folder / f"{name}.reason.txt").write_text("\n".join(lines) + "\n")
    return dest


def _fetch_once(
    session: requests.Session, url: str, tmp: Path, timeout: Any, headers: Mapping[str, str] | None
) -> tuple[int, int | None]:
    """One GET into ``tmp``; returns (bytes written, Content-Length). Removes ``tmp`` on failure."""
    import requests

    shown = redact(url)
    sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
    try:
        with session.get(url, stream=True, timeout=timeout, headers=sent) as response:
            status = response.status_code
            if status in NOT_AVAILABLE_STATUS:
                raise NotAvailable(f"{shown}: not available on the server (HTTP {status})", url=shown, status=status)
            if status in RETRY_STATUS or status >= 500:
                raise _Transient(f"HTTP {status} {response.reason or ''}".strip(), status, _retry_after(response))
            if status != 200:
                raise DownloadError(
                    f"{shown}: HTTP {status} {response.reason or ''}; a permanent answer, not retried "
                    "(check the URL, credentials and access rights)",
                    url=shown,
                    status=status,
                )
            expected = _content_length(response)
            written = 0
            with open(tmp, "xb") as fh:
                for chunk in response.iter_content(CHUNK_BYTES):
                    fh.write(chunk)
                    written += len(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            if expected is not None and written != expected:
                raise _Transient(f"short transfer: {written} of {expected} bytes")
            return written, expected
    except requests.exceptions.SSLError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{shown}: TLS error, not retried: {redact_text(str(exc))}", url=shown) from None
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
        tmp.unlink(missing_ok=True)
        raise _Transient(f"{type(exc).__name__}: {redact_text(str(exc))}") from None
    except requests.RequestException as exc:  # invalid URL, too many redirects, ...
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{shown}: {type(exc).__name__}: {redact_text(str(exc))}", url=shown) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def reuse_or_clear(target: Path, validate: Validator | None) -> DownloadResult | None:
    """A valid existing ``target`` (not fetched again), else None: an invalid one is moved to
    ``rejected/`` and the ``.part`` files a killed earlier download left are removed."""
    if target.is_file():
        reason = check_file(target, validate)
        if reason is None:
            log.debug("%s: present and valid, not fetched again", target)
            return DownloadResult(target, "skipped", 0, target.stat().st_size)
        moved = reject(target, f"existing file failed validation: {reason}")
        log.warning("%s: existing file is not valid (%s); moved to %s, fetching again", target, reason, moved)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.part"):
        stale.unlink(missing_ok=True)
    return None


def install(tmp: Path, target: Path, validate: Validator | None, url: str) -> None:
    """Give a complete download its final name once it validates; else move it to ``rejected/``
    under the target's name and raise :class:`InvalidFile`."""
    shown = redact(url)
    try:
        reason = check_file(tmp, validate)
        if reason is not None:
            reason = reason.replace(str(tmp), str(target)).replace(tmp.name, target.name)
            moved = reject(tmp, reason, name=target.name, url=url)
            raise InvalidFile(f"{shown}: delivered file is not valid: {reason}", url=shown, reason=reason, rejected=moved)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # only left if validation itself was interrupted


def download(
    url: str,
    target: str | os.PathLike[str],
    *,
    session: requests.Session | None = None,
    validate: Validator | None = None,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF_S,
    max_wait: float = DEFAULT_MAX_WAIT_S,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT_S,
    headers: Mapping[str, str] | None = None,
) -> DownloadResult:
    """Fetch ``url`` into ``target`` (see the module docstring).

    ``validate(path)`` fails by raising (its message becomes the reason) or returning
    False; an empty file always fails. Waits between attempts are ``backoff * 2**k``
    seconds, or the server's ``Retry-After``, at most ``max_wait``. Raises
    :class:`NotAvailable`, :class:`InvalidFile` or :class:`DownloadError`.
    """
    target = Path(target)
    shown = redact(url)
    existing = reuse_or_clear(target, validate)
    if existing is not None:
        return existing
    own_session = session is None
    if session is None:
        import requests

        session = requests.Session()
    try:
        attempt = 0
        while True:
            attempt += 1
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
            try:
                nbytes, _ = _fetch_once(session, url, tmp, timeout, headers)
                break
            except _Transient as exc:
                if attempt > retries:
                    raise DownloadError(
                        f"{shown}: gave up after {attempt} attempts; last error: {exc}", url=shown, status=exc.status
                    ) from None
                wait = exc.retry_after if exc.retry_after is not None else backoff * 2 ** (attempt - 1)
                wait = min(max(wait, 0.0), max_wait)
                log.warning("%s: %s; retry %d of %d in %.1f s", shown, exc, attempt, retries, wait)
                time.sleep(wait)
        install(tmp, target, validate, url)
        log.info("%s: fetched %d bytes into %s (%d attempt%s)", shown, nbytes, target, attempt, "" if attempt == 1 else "s")
        return DownloadResult(target, "fetched", attempt, nbytes)
    finally:
        if own_session:
            session.close()
