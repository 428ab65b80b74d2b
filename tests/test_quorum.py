"""A member failing for good: recorded by `floecast train --record-failure`, written as a failed
member file by `predict`, and left out of the forecast while the quorum holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import xarray as xr
from test_forecast_file import INIT, climatology_members

from floecast.combine import combine_forecast
from floecast.predict import predict_member
from floecast.train import MemberFailed, load_member, record_failed_member


def _fail_member(tiny_data, paths: list[Path], member: int, tmp_path: Path) -> None:
    """Replace a member's file by what predict writes for a member that failed in training."""
    record_failed_member({"channels": {}}, member, tmp_path / f"m{member}", "RuntimeError: CUDA error")
    paths[member].unlink()
    predict_member(tmp_path / f"m{member}" / "weights.pt", tiny_data.store, [INIT.date()], paths[member], member)


def test_train_records_a_failure_only_when_asked(tiny_data, tmp_path) -> None:
    floecast = str(Path(sys.executable).parent / "floecast")
    cmd = [floecast, "train", "--spec", "config/demo.yaml", "--member", "1", "--store", str(tmp_path / "missing")]
    env = dict(os.environ)
    repo = Path(__file__).resolve().parents[1]
    failing = subprocess.run([*cmd, "--out-dir", str(tmp_path / "a")], cwd=repo, env=env, capture_output=True, text=True)
    assert failing.returncode != 0 and not (tmp_path / "a" / "weights.pt").exists()
    recorded = subprocess.run(
        [*cmd, "--out-dir", str(tmp_path / "b"), "--record-failure"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert recorded.returncode == 0, recorded.stderr
    meta = json.loads((tmp_path / "b" / "meta.json").read_text())
    assert meta["status"] == "failed" and "no <year>.zarr store parts" in meta["error"]
    assert torch.load(tmp_path / "b" / "weights.pt", weights_only=True)["failed"] is True
    with pytest.raises(MemberFailed, match="member 1 failed in training"):
        load_member(tmp_path / "b" / "weights.pt")


def test_forecast_from_the_members_left_while_the_quorum_holds(tiny_data, tmp_path) -> None:
    paths = climatology_members(tiny_data, tmp_path / "members")
    _fail_member(tiny_data, paths, 1, tmp_path)
    with xr.open_dataset(paths[1]) as failed:
        assert failed.attrs["failed"] == 1 and "sic" not in failed
    out = tmp_path / "forecast.nc"
    ds = combine_forecast(paths, tiny_data.store, tiny_data.grid, "tiny", out, members_expected=3, quorum=2)
    assert json.loads(ds.attrs["members"]) == [0, 2] and json.loads(ds.attrs["members_failed"]) == [1]
    assert int(ds.attrs["members_used"]) == 2 and int(ds.attrs["quorum"]) == 2
    with xr.open_dataset(out) as on_disk:
        assert on_disk.attrs["members_failed"] == "[1]"
    # below the quorum: no forecast, and a message that says why
    _fail_member(tiny_data, paths, 2, tmp_path)
    with pytest.raises(ValueError, match=r"only 1 of 3 members have forecasts \(members \[1, 2\] failed"):
        combine_forecast(paths, tiny_data.store, tiny_data.grid, "tiny", tmp_path / "none.nc", quorum=2)
    assert not (tmp_path / "none.nc").exists()
