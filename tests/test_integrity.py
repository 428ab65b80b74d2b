"""Issue 12's repros, through `snakemake` as an operator meets them: never a wrong forecast
reported as right, never a good output lost. Each test works on a copy of the session's tiny
run (conftest ``tiny_run``), so it re-runs only the few jobs its fault touches.
``docs/reliability.md`` lists them with what the user now sees."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_workflow import INIT, RESULTS, TINY, snakemake

pytestmark = pytest.mark.workflow

FORECAST = RESULTS / "forecasts" / f"{INIT}.nc"


@pytest.fixture
def run(tiny_run: Path, tmp_path: Path) -> Path:
    """A copy of the tiny run (file times and Snakemake's metadata kept); raw data is linked, not copied."""
    copy = tmp_path / "run"
    data = str(tiny_run / "data")
    shutil.copytree(tiny_run, copy, symlinks=True, ignore=lambda folder, names: ["raw"] if folder == data else [])
    os.symlink(tiny_run / "data" / "raw", copy / "data" / "raw")
    return copy


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _log(run: Path, rule: str) -> str:
    return "".join(p.read_text() for p in sorted((run / "logs" / rule).glob("*.log")))


def _jobs(dry_run: str) -> dict[str, int]:
    """The job counts of a dry run's job stats table."""
    table = dry_run.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def test_a_missing_store_chunk_stops_the_forecast_naming_the_part_and_the_chunk(run: Path) -> None:
    """Repro 1: zarr reads an absent chunk as its fill value; the forecast read those days as SIC 0
    and the run exited 0. Now predict_member refuses the part, naming it and the chunk."""
    (run / "data/store/north/obs/2006.zarr/sic/c/4/0/0").unlink()  # 2006-05-08 .. 2006-06-08
    proc = snakemake(run, "--config", "date=2006-06-01", check=False)
    assert proc.returncode != 0
    assert not (run / RESULTS / "forecasts" / "2006-06-01.nc").exists()
    assert (
        "data/store/north/obs/2006.zarr: chunk sic/c/4/0/0 is missing; the part is incomplete: "
        "rebuild it: snakemake data/store/north/obs/2006.zarr --force" in _log(run, "predict_member")
    )


def test_a_changed_model_setting_retrains_in_the_same_run(run: Path, tmp_path: Path) -> None:
    """Repro 2: with model.leads changed, the first run rebuilt the store and predicted with the old
    weights; only the next run planned train_member. Now the first run plans it, and weights of
    another spec are refused by predict, naming the setting."""
    config = yaml.safe_load(TINY.read_text())
    config["model"]["leads"] = 12
    changed = tmp_path / "leads12.yaml"
    changed.write_text(yaml.safe_dump(config))
    plan = _jobs(snakemake(run, "-n", configfile=changed).stdout)
    assert plan["train_member"] == 3 and plan["build_store_obs"] == 4 and plan["predict_member"] == 3

    member = RESULTS / "members" / INIT / "member_0.nc"
    proc = snakemake(run, str(member), "--force", "--allowed-rules", "predict_member", configfile=changed, check=False)
    assert proc.returncode != 0 and not (run / member).exists()
    assert (
        "models/north/tiny/member_0/weights.pt: trained on another spec than the config's "
        "(model.leads: 10 -> 12, as trained -> as configured)" in _log(run, "predict_member")
    )


def test_a_truncated_member_is_set_aside_and_made_again_and_the_forecast_is_kept(run: Path) -> None:
    """Repros 3 and 4: a truncated member file made combine fail with a raw HDF error, and the good
    forecast was gone (Snakemake removes a job's outputs first). Now combine names the member and
    moves it to rejected/, the previous forecast stays byte for byte, and running the same command
    again makes the member and the forecast."""
    member = run / RESULTS / "members" / INIT / "member_1.nc"
    with member.open("r+b") as f:
        f.truncate(member.stat().st_size // 2)
    before = _sha(run / FORECAST)

    failed = snakemake(run, str(FORECAST), "--force", check=False)
    assert failed.returncode != 0
    log = _log(run, "combine_forecast")
    assert f"{RESULTS}/members/{INIT}/member_1.nc: not a readable NetCDF file (OSError: [Errno -101] NetCDF: HDF error" in log
    assert f"moved to {RESULTS}/members/{INIT}/rejected/member_1.nc" in log and "run the same command again" in log
    assert "Restored previous version of" in failed.stdout + failed.stderr
    assert _sha(run / FORECAST) == before  # the last good forecast, in place
    assert not member.exists() and (member.parent / "rejected" / "member_1.nc.reason.txt").is_file()

    again = snakemake(run, str(FORECAST), "--force")
    assert _jobs(again.stdout + again.stderr) == {"predict_member": 1, "combine_forecast": 1, "total": 2}
    assert member.is_file() and _sha(run / FORECAST) != before


def test_a_full_disk_says_so_naming_the_path_and_the_forecast_is_kept(run: Path) -> None:
    """Found with the repros: on a full disk the error was only `NetCDF: HDF error`, and the
    previous forecast was kept only when the command was run by hand. The forecasts folder is
    a tmpfs with room for the forecast and a little more (root only, like the other tmpfs test)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    folder = run / FORECAST.parent
    kept = folder.with_name("kept")
    folder.rename(kept)
    folder.mkdir()
    size = 4096 * (-(-(kept / FORECAST.name).stat().st_size // 4096) + 4)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        shutil.copy2(kept / FORECAST.name, folder / FORECAST.name)  # its time kept: nothing else is out of date
        before = _sha(run / FORECAST)
        proc = snakemake(run, str(FORECAST), "--force", check=False)
        assert proc.returncode != 0
        log = _log(run, "combine_forecast")
        assert f"floecast ERROR [Errno 28] {FORECAST}: no space left on the device (" in log
        assert "the previous version is kept. Free space there and run again" in log
        assert _sha(run / FORECAST) == before and sorted(p.name for p in folder.iterdir()) == [FORECAST.name]
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_reserved_run_name_is_refused_before_any_job(run: Path, tmp_path: Path) -> None:
    """Repro 4: `--config run=staging` planned training into models/north/staging/, because the
    wildcard constraint never fired. Now the schema refuses it, and a staging path is no target."""
    for name in ("staging", "production"):
        proc = snakemake(tmp_path / name, "-n", "--config", f"run={name}", check=False)
        assert proc.returncode != 0 and f"'{name}' should not be valid under" in proc.stdout + proc.stderr
        assert not (tmp_path / name / "models").exists()
    proc = snakemake(run, "-n", "models/north/staging/member_0/weights.pt", check=False)
    assert proc.returncode != 0 and "MissingRuleException" in proc.stdout + proc.stderr


def test_egress_compares_sha256_forces_as_the_runbook_shows_and_never_retries_a_refusal(run: Path, tmp_path: Path) -> None:
    """Repro 5: a published byte changed at the same size was 'already published (same sha256)'
    and the log also said 'published'; the runbook's --config egress='{url: ..., force: true}'
    failed validation; a refusal was retried twice."""
    store = tmp_path / "store"
    receipt = RESULTS / "egress" / f"{INIT}.json"
    url = f"egress={{url: '{store.as_uri()}'}}"
    snakemake(run, str(receipt), "--config", url)
    published = store / "north" / "tiny" / INIT / f"{INIT}.nc"
    data = bytearray(published.read_bytes())
    data[len(data) // 2] ^= 0x01
    published.write_bytes(bytes(data))
    (run / receipt).unlink()
    snakemake(run, str(receipt), "--config", url)
    assert _sha(published) == _sha(run / FORECAST)  # uploaded again
    log = (run / "logs" / "egress" / f"north_tiny_{INIT}.log").read_text()
    assert "the store is damaged" in log and "already published" not in log and log.count("published 3 files") == 1

    snakemake(run, str(FORECAST), "--force")  # a new forecast: new bytes under the published key
    refused = snakemake(run, str(receipt), "--config", url, check=False)
    assert refused.returncode != 0 and "Trying to restart job" not in refused.stdout + refused.stderr
    log = (run / "logs" / "egress" / f"north_tiny_{INIT}.log").read_text()
    assert "is already published with different files (changed: 2006-07-01.nc" in log
    assert "--config egress='{force: true}'" in log

    forced = f"egress={{url: '{store.as_uri()}', force: true}}"  # the runbook's way
    snakemake(run, str(receipt), "--config", forced)
    assert _sha(published) == _sha(run / FORECAST)
    assert json.loads((run / receipt).read_text())["files"][0]["sha256"] == _sha(run / FORECAST)


def test_nested_config_values_take_the_schema_types(tmp_path: Path) -> None:
    """Found with the repros: nested --config values arrived as strings ("'3' is not of type
    'integer'"); they are converted to the schema's types before validation."""
    proc = snakemake(tmp_path, "-n", "--config", "train={'members': 2, 'quorum': 2}", "plots={leads: [1, 10]}")
    assert _jobs(proc.stdout)["train_member"] == 2


def test_the_outside_the_data_refusal_shows_the_override_that_fixes_it(tmp_path: Path) -> None:
    proc = snakemake(tmp_path, "-n", "--config", "date=2006-09-01", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "move data.end to 2006-08-31: --config data='{end: 2006-08-31}'" in text
    proc = snakemake(tmp_path, "-n", "--config", "date=2006-09-01", "data={end: 2006-08-31}")
    assert "Job stats:" in proc.stdout  # the override it showed works
