"""Egress: publish to a local directory, to fsspec's memory store and to a real S3-compatible server (moto) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest
import xarray as xr
from fsspec.implementations.local import LocalFileSystem

import floecast
from floecast.egress import EgressError, PublishConflictError, publish, read_manifest, verify

KEY = "north/prod-v1/2026-11-26"


@pytest.fixture
def outputs(tmp_path: Path) -> list[Path]:
    """A tiny forecast NetCDF, a PNG plot and a scorecard CSV, as the workflow writes them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    src = tmp_path / "results"
    src.mkdir()
    nc = src / "2026-11-26.nc"
    sic = np.linspace(0, 1, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    xr.Dataset({"sic": (("leadtime", "yc", "xc"), sic)}, coords={"leadtime": [1, 2]}).to_netcdf(nc)
    png = src / "2026-11-26_maps.png"
    fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
    ax.imshow(sic[0])
    fig.savefig(png)
    plt.close(fig)
    csv = src / "scorecard.csv"
    csv.write_text("lead,rmse\n1,0.05\n2,0.07\n")
    return [nc, png, csv]


def _store(tmp_path: Path) -> tuple[str, Path]:
    root = tmp_path / "store"
    return root.as_uri(), root / KEY  # file:///.../store and where the key's files land


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_publish_to_local_directory_reads_back(tmp_path: Path, outputs: list[Path]) -> None:
    url, dest = _store(tmp_path)
    manifest = publish(outputs, url, key=KEY, metadata={"hemisphere": "north", "run": "prod-v1", "init_date": "2026-11-26"})

    assert sorted(p.name for p in dest.iterdir()) == sorted([p.name for p in outputs] + ["manifest.json"])  # no .part left
    on_disk = json.loads((dest / "manifest.json").read_text())
    assert on_disk == manifest == read_manifest(url, KEY)
    assert manifest["key"] == KEY and manifest["floecast_version"] == floecast.__version__
    assert manifest["published_at"].endswith("Z") and manifest["metadata"]["init_date"] == "2026-11-26"
    assert [e["name"] for e in manifest["files"]] == [p.name for p in outputs]
    for entry, src in zip(manifest["files"], outputs, strict=True):
        data = (dest / src.name).read_bytes()
        assert data == src.read_bytes()
        assert entry["size"] == len(data) and entry["sha256"] == _sha(data)
    assert manifest["files"][0]["media_type"] == "application/x-netcdf"
    assert manifest["total_size"] == sum(p.stat().st_size for p in outputs)
    with xr.open_dataset(dest / outputs[0].name) as ds:
        assert ds["sic"].shape == (2, 3, 4)
    assert verify(url, KEY) == []


def test_second_publish_is_a_no_op(tmp_path: Path, outputs: list[Path], caplog: pytest.LogCaptureFixture) -> None:
    url, dest = _store(tmp_path)
    first = publish(outputs, url, key=KEY)
    before = _mtimes(dest)
    with caplog.at_level(logging.INFO, logger="floecast.egress"):
        second = publish(outputs, url, key=KEY)
    assert second == first  # the stored manifest, published_at included
    assert _mtimes(dest) == before
    assert "already published" in caplog.text


def test_changed_file_needs_force(tmp_path: Path, outputs: list[Path]) -> None:
    url, dest = _store(tmp_path)
    old = publish(outputs, url, key=KEY)
    old_manifest = (dest / "manifest.json").read_bytes()
    outputs[2].write_text("lead,rmse\n1,0.04\n2,0.06\n")

    with pytest.raises(PublishConflictError) as err:
        publish(outputs, url, key=KEY)
    assert "scorecard.csv" in str(err.value) and str(tmp_path / "store") in str(err.value)
    assert "2026-11-26.nc" not in str(err.value).split("(", 1)[1]  # only the changed file is named
    assert (dest / "manifest.json").read_bytes() == old_manifest

    new = publish(outputs, url, key=KEY, force=True)
    assert new["files"][2]["sha256"] == _sha(outputs[2].read_bytes()) != old["files"][2]["sha256"]
    assert (dest / "scorecard.csv").read_bytes() == outputs[2].read_bytes()
    assert read_manifest(url, KEY) == new and verify(url, KEY) == []

    # a smaller set with force: the file no longer published is removed after the new manifest
    smaller = publish(outputs[:2], url, key=KEY, force=True)
    assert [e["name"] for e in smaller["files"]] == [p.name for p in outputs[:2]]
    assert not (dest / "scorecard.csv").exists() and verify(url, KEY) == []


def _fail_on_second_put(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the local filesystem's upload break after writing half of the second file."""
    calls: list[str] = []
    real = LocalFileSystem.put_file

    def put_file(self, lpath, rpath, *args, **kwargs):
        calls.append(rpath)
        if len(calls) == 2:
            Path(rpath).write_bytes(Path(lpath).read_bytes()[:10])
            raise OSError("connection reset (simulated)")
        return real(self, lpath, rpath, *args, **kwargs)

    monkeypatch.setattr(LocalFileSystem, "put_file", put_file)
    return calls


def test_interrupted_first_publish_leaves_no_manifest(tmp_path: Path, outputs: list[Path], monkeypatch) -> None:
    url, dest = _store(tmp_path)
    calls = _fail_on_second_put(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        publish(outputs, url, key=KEY)
    assert len(calls) == 2
    assert read_manifest(url, KEY) is None
    assert list(dest.iterdir()) == []  # the staged temporary files are removed, no final name was written
    assert verify(url, KEY) == [f"{url}/{KEY}: no manifest.json (not published, or a publish is under way or failed)"]

    monkeypatch.undo()
    assert publish(outputs, url, key=KEY)["key"] == KEY and verify(url, KEY) == []  # a rerun completes it


def test_interrupted_republish_keeps_the_old_set(tmp_path: Path, outputs: list[Path], monkeypatch) -> None:
    url, dest = _store(tmp_path)
    old = publish(outputs, url, key=KEY)
    old_bytes = {p.name: p.read_bytes() for p in dest.iterdir()}
    for path in outputs:
        path.write_bytes(path.read_bytes() + b"\n")  # every file changes

    _fail_on_second_put(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        publish(outputs, url, key=KEY, force=True)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == old_bytes  # old manifest and files, nothing else
    assert read_manifest(url, KEY) == old and verify(url, KEY) == []


def test_verify_reports_and_publish_repairs_a_damaged_store(tmp_path: Path, outputs: list[Path]) -> None:
    url, dest = _store(tmp_path)
    publish(outputs, url, key=KEY)
    (dest / outputs[1].name).write_bytes(b"not a png")
    (dest / outputs[2].name).unlink()
    problems = verify(url, KEY)
    assert problems == [f"{outputs[1].name}: size 9, manifest says {outputs[1].stat().st_size}", "scorecard.csv: missing"]

    publish(outputs, url, key=KEY)  # same content as the manifest: uploads again without force
    assert verify(url, KEY) == []


def test_a_published_byte_changed_at_the_same_size_is_uploaded_again(
    tmp_path: Path, outputs: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 12: a republish compares sha256, not sizes; the log says one true thing."""
    url, dest = _store(tmp_path)
    publish(outputs, url, key=KEY)
    published = dest / outputs[0].name
    data = bytearray(published.read_bytes())
    data[len(data) // 2] ^= 0x01  # the same size, one byte changed
    published.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO, logger="floecast.egress"):
        publish(outputs, url, key=KEY)
    assert published.read_bytes() == outputs[0].read_bytes() and verify(url, KEY) == []
    assert "the store is damaged (2026-11-26.nc has sha256" in caplog.text
    assert "already published" not in caplog.text and "published 3 files" in caplog.text


def test_rejects_bad_input(tmp_path: Path, outputs: list[Path]) -> None:
    url, dest = _store(tmp_path)
    twin = tmp_path / "other" / outputs[0].name
    twin.parent.mkdir()
    twin.write_bytes(b"x")
    with pytest.raises(EgressError, match="both be published"):
        publish([outputs[0], twin], url, key=KEY)
    for key in ("", "/abs", "a//b", "a/../b", "a/./b"):
        with pytest.raises(EgressError, match="egress key"):
            publish(outputs, url, key=key)
    with pytest.raises(EgressError, match="not a file"):
        publish([tmp_path / "missing.nc"], url, key=KEY)
    with pytest.raises(EgressError, match="JSON"):
        publish(outputs, url, key=KEY, metadata={"when": object()})
    assert not dest.exists()

    dest.mkdir(parents=True)
    (dest / "manifest.json").write_text("{not json")
    with pytest.raises(EgressError, match="not a floecast manifest"):
        publish(outputs, url, key=KEY)
    assert publish(outputs, url, key=KEY, force=True)["key"] == KEY


def test_publish_to_another_fsspec_protocol(outputs: list[Path]) -> None:
    url = f"memory://egress-{uuid.uuid4().hex}"
    manifest = publish(outputs, url, key=KEY)
    fs = fsspec.filesystem("memory")
    root = url.removeprefix("memory://")
    for entry, src in zip(manifest["files"], outputs, strict=True):
        assert fs.cat_file(f"/{root}/{KEY}/{entry['name']}") == src.read_bytes()
    assert verify(url, KEY) == [] and publish(outputs, url, key=KEY) == manifest


def test_publish_to_s3_compatible_server(outputs: list[Path], caplog: pytest.LogCaptureFixture) -> None:
    """The real s3fs/botocore client against moto's S3 server; credentials never reach the manifest or the log."""
    pytest.importorskip("s3fs", reason="s3fs not installed (the [s3] extra): no S3 egress test")
    boto3 = pytest.importorskip("boto3", reason="boto3 not installed: no S3 egress test")
    moto_server = pytest.importorskip("moto.server", reason="moto[server] not installed: no S3 egress test")

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        key_id, secret = "FLOECASTTESTKEYID", "floecast-test-secret-9f3a"
        bucket = f"forecasts-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1"
        ).create_bucket(Bucket=bucket)
        options = {"key": key_id, "secret": secret, "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        url = f"s3://{bucket}/floecast"

        with caplog.at_level(logging.DEBUG):
            manifest = publish(outputs, url, key=KEY, storage_options=options)
            again = publish(outputs, url, key=KEY, storage_options=options)
        assert again == manifest and "already published" in caplog.text

        s3 = fsspec.filesystem("s3", **options)
        s3.invalidate_cache()
        prefix = f"{bucket}/floecast/{KEY}"
        assert sorted(p.rsplit("/", 1)[1] for p in s3.ls(prefix)) == sorted([p.name for p in outputs] + ["manifest.json"])
        stored_manifest = s3.cat_file(f"{prefix}/manifest.json")
        assert json.loads(stored_manifest) == manifest
        for src in outputs:
            assert s3.cat_file(f"{prefix}/{src.name}") == src.read_bytes()
        assert verify(url, KEY, storage_options=options) == []

        outputs[0].write_bytes(outputs[0].read_bytes() + b"\0")
        with pytest.raises(PublishConflictError, match=outputs[0].name) as err:
            publish(outputs, url, key=KEY, storage_options=options)
        assert f"s3://{bucket}/floecast/{KEY}" in str(err.value)
        new = publish(outputs, url, key=KEY, force=True, storage_options=options)
        assert verify(url, KEY, storage_options=options) == [] and new != manifest

        ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("floecast"))
        for text in (stored_manifest.decode(), json.dumps(new), ours, str(err.value)):
            assert secret not in text and key_id not in text
        secret_in_any_log = secret in caplog.text  # botocore's DEBUG output included (it shows the key id, not the secret)
        assert not secret_in_any_log
    finally:
        server.stop()
