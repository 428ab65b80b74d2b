"""Egress: publish a forecast's files to an external store named by an fsspec URL.

Layout under ``<url>/<key>/`` (``key`` e.g. ``north/prod-v1/2026-11-26``): the files by
their base names, and ``manifest.json``, written last. Readers start from the manifest:
a file it lists is complete and has the size and sha256 the manifest gives, because

- every file is uploaded under a hidden temporary name (``.<name>.<token>.part``), its
  size checked, and only then moved onto its name;
- a republish (``force``, or a damaged store: a listed file missing, or its sha256 not the
  manifest's, checked by reading it back) stages every new file first and removes the
  old manifest before moving them, so a reader sees the old set, no set, or the new set,
  never a mix; an upload that fails leaves the old manifest and files as they were;
- the manifest is written to a temporary name and moved (a rename on local disks, one
  atomic object on S3).

Publishing again with the same files does nothing; different files need ``force=True``.
Credentials come from fsspec's usual sources (``AWS_ACCESS_KEY_ID``..., ``~/.aws``) or
``storage_options``; they are never logged, put in an error message or in the manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import mimetypes
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from fsspec.core import url_to_fs

import floecast
from floecast.sources.http import redact

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "floecast-egress-manifest"
MANIFEST_VERSION = 1
CHUNK = 1 << 20
MEDIA_TYPES = {".nc": "application/x-netcdf", ".csv": "text/csv", ".png": "image/png", ".json": "application/json"}


class EgressError(RuntimeError):
    """A publish or a read of the store that cannot go on (bad input, unreadable manifest)."""


class PublishConflictError(EgressError):
    """The key is already published with different files, and ``force`` was not given."""


@dataclass(frozen=True)
class _Local:
    path: Path
    name: str
    size: int
    sha256: str
    stat: tuple[int, int]  # (size, mtime_ns) when hashed: a file changed during the upload is caught


def publish(
    files: Sequence[str | os.PathLike[str]],
    url: str,
    *,
    key: str,
    force: bool = False,
    metadata: Mapping[str, Any] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Upload ``files`` under ``<url>/<key>/`` and write its ``manifest.json`` last; return the manifest.

    ``metadata`` (JSON-serialisable, e.g. hemisphere, run, init date) goes into the manifest
    as is. Idempotent: when the store's manifest already lists the same sha256 for the same
    names and those files are there, nothing is written and that manifest is returned.
    Different content raises :class:`PublishConflictError` unless ``force``, which replaces
    the whole set (files of the old set that are not in the new one are removed).
    """
    _check_key(key)
    where = f"{redact(url).rstrip('/')}/{key}"
    locals_ = _describe(files)
    fs, root = url_to_fs(url, **dict(storage_options or {}))
    dest = f"{root.rstrip('/')}/{key}"
    fs.invalidate_cache(dest)
    try:
        old = _read_manifest(fs, dest, where)
    except EgressError:
        if not force:
            raise
        log.warning("%s: replacing an unreadable %s (force)", where, MANIFEST_NAME)
        old = {"files": []}  # its files are unknown, so none is removed as no longer published

    if old is not None and not force:
        changes = _differences(old, locals_)
        if changes:
            raise PublishConflictError(
                f"{where} is already published with different files ({'; '.join(changes)}); "
                "nothing was changed: publish with force to replace them"
            )
        damaged = _damaged(fs, dest, old)
        if not damaged:
            log.info("%s: already published (%d files, same sha256), nothing to do", where, len(locals_))
            return old
        log.warning("%s: manifest matches but the store is damaged (%s); uploading again", where, "; ".join(damaged))

    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "key": key,
        "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "floecast_version": floecast.__version__,
        "files": [{"name": f.name, "size": f.size, "sha256": f.sha256, "media_type": _media_type(f.name)} for f in locals_],
        "total_size": sum(f.size for f in locals_),
        "metadata": dict(metadata or {}),
    }
    try:
        manifest_bytes = (json.dumps(manifest, indent=2) + "\n").encode()
    except (TypeError, ValueError) as err:  # checked before anything is uploaded
        raise EgressError(f"egress: metadata is not JSON-serialisable ({err})") from None

    fs.makedirs(dest, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    staged: dict[str, str] = {}  # final path -> temporary path
    try:
        for f in locals_:
            tmp = f"{dest}/.{f.name}.{token}.part"
            staged[f"{dest}/{f.name}"] = tmp
            _upload(fs, f, tmp, where)
        manifest_tmp = f"{dest}/.{MANIFEST_NAME}.{token}.part"
        staged[f"{dest}/{MANIFEST_NAME}"] = manifest_tmp
        fs.pipe_file(manifest_tmp, manifest_bytes)
    except BaseException:
        _remove_quietly(fs, list(staged.values()))
        raise

    # Commit: from here on a failure leaves no manifest (never a stale one over new files); a rerun repairs it.
    manifest_path = f"{dest}/{MANIFEST_NAME}"
    try:
        if old is not None:
            fs.rm_file(manifest_path)
        for final, tmp in staged.items():
            if final != manifest_path:
                fs.mv(tmp, final)
        fs.mv(staged[manifest_path], manifest_path)
    except BaseException:
        _remove_quietly(fs, list(staged.values()))  # the ones not moved yet
        raise

    if old is not None:
        gone = sorted({e["name"] for e in old["files"]} - {f.name for f in locals_})
        _remove_quietly(fs, [f"{dest}/{name}" for name in gone if _safe_name(name)])
    fs.invalidate_cache(dest)
    log.info("%s: published %d files (%d bytes)", where, len(locals_), manifest["total_size"])
    return manifest


def read_manifest(url: str, key: str, *, storage_options: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The manifest of ``<url>/<key>``, or None when that key is not published (what readers check first)."""
    _check_key(key)
    fs, root = url_to_fs(url, **dict(storage_options or {}))
    dest = f"{root.rstrip('/')}/{key}"
    fs.invalidate_cache(dest)
    return _read_manifest(fs, dest, f"{redact(url).rstrip('/')}/{key}")


def verify(url: str, key: str, *, storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """Every problem of the published set (missing manifest or file, wrong size or sha256); empty when it is sound.

    Downloads every file to hash it, so it proves what a reader would get.
    """
    _check_key(key)
    where = f"{redact(url).rstrip('/')}/{key}"
    fs, root = url_to_fs(url, **dict(storage_options or {}))
    dest = f"{root.rstrip('/')}/{key}"
    fs.invalidate_cache(dest)
    try:
        manifest = _read_manifest(fs, dest, where)
    except EgressError as err:
        return [str(err)]
    if manifest is None:
        return [f"{where}: no {MANIFEST_NAME} (not published, or a publish is under way or failed)"]
    problems = []
    for entry in manifest["files"]:
        name = entry["name"]
        if not _safe_name(name):
            problems.append(f"{name!r}: not a plain file name")
            continue
        try:
            size, sha = _remote_digest(fs, f"{dest}/{name}")
        except FileNotFoundError:
            problems.append(f"{name}: missing")
            continue
        if size != entry["size"]:
            problems.append(f"{name}: size {size}, manifest says {entry['size']}")
        elif sha != entry["sha256"]:
            problems.append(f"{name}: sha256 {sha}, manifest says {entry['sha256']}")
    return problems


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts):
        raise EgressError(f"egress key {key!r}: want relative segments joined by '/', e.g. 'north/prod-v1/2026-11-26'")
    if any(not p.isprintable() for p in parts):
        raise EgressError(f"egress key {key!r} has control characters")


def _safe_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


def _describe(files: Sequence[str | os.PathLike[str]]) -> list[_Local]:
    """Name, size and sha256 of each local file; names must be unique, visible base names."""
    if not files:
        raise EgressError("egress: no files to publish")
    out: list[_Local] = []
    seen: dict[str, Path] = {}
    for item in files:
        path = Path(item)
        name = path.name
        if not path.is_file():
            raise EgressError(f"egress: {path} is not a file")
        if not _safe_name(name) or name == MANIFEST_NAME:
            raise EgressError(f"egress: cannot publish a file named {name!r} (hidden, or the manifest's name)")
        if name in seen:
            raise EgressError(f"egress: {seen[name]} and {path} would both be published as {name!r}")
        seen[name] = path
        before = path.stat()
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        out.append(_Local(path, name, before.st_size, digest.hexdigest(), (before.st_size, before.st_mtime_ns)))
    return out


def _media_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _read_manifest(fs: fsspec.AbstractFileSystem, dest: str, where: str) -> dict[str, Any] | None:
    try:
        raw = fs.cat_file(f"{dest}/{MANIFEST_NAME}")
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(raw)
        entries = manifest["files"]
        if not isinstance(entries, list) or not all(_valid_entry(e) for e in entries):
            raise ValueError("'files' is not a list of {name, size, sha256}")
    except (ValueError, KeyError, TypeError) as err:
        raise EgressError(f"{where}/{MANIFEST_NAME} is not a floecast manifest ({err}); force=True replaces it") from None
    return manifest


def _valid_entry(entry: object) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and isinstance(entry.get("size"), int)
        and isinstance(entry.get("sha256"), str)
    )


def _differences(old: Mapping[str, Any], new: Sequence[_Local]) -> list[str]:
    """What differs between the published manifest and the files at hand, by name ([] when the same)."""
    published = {e["name"]: e["sha256"] for e in old["files"]}
    current = {f.name: f.sha256 for f in new}
    changed = sorted(n for n in current.keys() & published.keys() if current[n] != published[n])
    added = sorted(current.keys() - published.keys())
    removed = sorted(published.keys() - current.keys())
    return [
        f"{label}: {', '.join(names)}" for label, names in (("changed", changed), ("new", added), ("not given", removed)) if names
    ]


def _damaged(fs: fsspec.AbstractFileSystem, dest: str, manifest: Mapping[str, Any]) -> list[str]:
    """Files the manifest lists that are missing, or whose size or sha256 in the store is not the
    manifest's: each is read back and hashed, so a changed byte is found, not only a changed size."""
    problems = []
    for entry in manifest["files"]:
        if not _safe_name(entry["name"]):
            problems.append(f"{entry['name']!r} is not a plain file name")
            continue
        try:
            size, sha = _remote_digest(fs, f"{dest}/{entry['name']}")
        except FileNotFoundError:
            problems.append(f"{entry['name']} missing")
            continue
        if size != entry["size"]:
            problems.append(f"{entry['name']} has {size} bytes, not {entry['size']}")
        elif sha != entry["sha256"]:
            problems.append(f"{entry['name']} has sha256 {sha[:12]}..., not the manifest's {entry['sha256'][:12]}...")
    return problems


def _upload(fs: fsspec.AbstractFileSystem, f: _Local, tmp: str, where: str) -> None:
    """Upload one file to its temporary name and check that the store holds all of it."""
    fs.put_file(str(f.path), tmp)
    now = f.path.stat()
    if (now.st_size, now.st_mtime_ns) != f.stat:
        raise EgressError(f"egress: {f.path} changed while it was published to {where}")
    stored = fs.info(tmp)["size"]
    if stored != f.size:
        raise EgressError(f"egress: {where}/{f.name}: the store holds {stored} bytes of {f.size}")


def _remote_digest(fs: fsspec.AbstractFileSystem, path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _remove_quietly(fs: fsspec.AbstractFileSystem, paths: Sequence[str]) -> None:
    """Best-effort clean-up of temporary or orphaned objects; a failure here must not hide the real error."""
    for path in paths:
        try:
            fs.rm_file(path)
        except Exception as err:  # clean-up only
            if not isinstance(err, FileNotFoundError):
                log.debug("egress: could not remove %s (%s)", path, type(err).__name__)
