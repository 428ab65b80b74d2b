"""floecast.status on a fake workflow root: newest data days, forecasts, model links, the last
Snakemake run's failing rule and log; notify never raises."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from floecast import status as st
from floecast.sources.osisaf import osisaf_filename

REPO = Path(__file__).resolve().parents[1]
CONFIG = {
    "hemispheres": ["north"],
    "sources": {"sic": "osisaf", "atmos": "era5", "cmip6": "esgf"},
    "channels": {"atmos": {"t2m": {"lags": [1]}, "u10": {"lags": [1]}}},
    "notify": {"command": None, "timeout_s": 10},
}
FAILED_LOG = """\
Assuming unrestricted shared filesystem usage.

SNAKEMAKE
=========
  Date: 2026-11-27 06:00:00
  Command: /opt/floecast/.venv/bin/snakemake --configfile config/config.yaml --profile profiles/slurm
Building DAG of jobs...
[Fri Nov 27 06:00:01 2026]
rule regrid_sic:
    input: data/raw/osisaf/ice_conc/north/2021/03.json
    output: data/interim/north/obs/sic/2021.nc
    log: logs/regrid_sic/north_2021.log
    jobid: 7
    wildcards: hemi=north, year=2021
Error in rule ingest_atmos:
    message: None
    jobid: 3
    log: logs/ingest_atmos/era5_u10_north_2021.log (check log file(s) for error details)
Trying to restart job 3.
Finished jobid: 3 (Rule: ingest_atmos)
3 of 12 steps (25%) done
RuleException:
CalledProcessError in file "/opt/floecast/rules/preprocess.smk", line 20:
Command 'set -euo pipefail;  floecast regrid sic ...' returned non-zero exit status 1.
Error in rule regrid_sic:
    message: None
    jobid: 7
    input: data/raw/osisaf/ice_conc/north/2021/03.json
    output: data/interim/north/obs/sic/2021.nc
    log: logs/regrid_sic/north_2021.log, logs/regrid_sic/extra.log (check log file(s) for error details)
    wildcards: hemi=north, year=2021
    shell:
        floecast regrid sic --hemisphere north ... > logs/regrid_sic/north_2021.log 2>&1
        (command exited with non-zero exit code)
Exiting because a job execution failed. Look above for error messages
Complete log(s): /opt/floecast/.snakemake/log/2026-11-27T060000.000000.snakemake.log
WorkflowError:
At least one job did not complete successfully.
"""
SUCCESS_LOG = "Building DAG of jobs...\nFinished jobid: 0 (Rule: all)\n12 of 12 steps (100%) done\nComplete log(s): x\n"
LINT_LOG = "Lints for rule ingest_sic (line 4, Snakefile):\n    * No conda\n"


def _netcdf(path: Path, first: str, last: str, time_name: str) -> None:
    times = pd.date_range(first, last, freq="D")
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = xr.Dataset({"v": ((time_name, "yc"), np.zeros((len(times), 2), np.float32))}, coords={time_name: times})
    ds.to_netcdf(path, engine="netcdf4")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    raw = tmp_path / "data/raw/osisaf/ice_conc/north/2021"
    march = [pd.Timestamp(f"2021-03-0{d}").date() for d in (1, 2, 4)]
    (raw / "03").mkdir(parents=True)
    for day in march:
        (raw / "03" / osisaf_filename("north", day)).touch()
    (raw / "03" / "missing.json").write_text(json.dumps({"2021-03-03": "HTTP 404"}))
    served = {d.isoformat(): {"product": "OSI-430-a", "product_id": "OSI-430-a", "version": "3.0"} for d in march}
    (raw / "03.json").write_text(
        json.dumps({"files": [osisaf_filename("north", d) for d in march], "days": served, "last_day": "2021-03-31"})
    )
    (raw / "04").mkdir()  # a month still filling: no manifest yet, its files do not count
    (raw / "04" / osisaf_filename("north", pd.Timestamp("2021-04-01").date())).touch()
    _netcdf(tmp_path / "data/raw/era5/t2m/north/2020.nc", "2020-12-30", "2020-12-31", "valid_time")
    _netcdf(tmp_path / "data/raw/era5/t2m/north/2021.nc", "2021-01-01", "2021-03-02", "valid_time")
    _netcdf(tmp_path / "data/interim/north/obs/sic/2021.nc", "2021-01-01", "2021-02-28", "time")
    for run, date in (("v1", "2021-03-01"), ("v1", "2021-03-05"), ("v2", "2021-03-06")):
        forecast = tmp_path / f"results/north/{run}/forecasts/{date}.nc"
        forecast.parent.mkdir(parents=True, exist_ok=True)
        forecast.touch()
        (tmp_path / f"models/north/{run}/member_0").mkdir(parents=True, exist_ok=True)
    os.symlink("v1", tmp_path / "models/north/production")
    os.symlink("v2", tmp_path / "models/north/staging")
    logs = tmp_path / ".snakemake/log"
    logs.mkdir(parents=True)
    (logs / "2026-11-27T050000.000000.snakemake.log").write_text(SUCCESS_LOG)
    (logs / "2026-11-27T060000.000000.snakemake.log").write_text(FAILED_LOG)
    (logs / "2026-11-27T070000.000000.snakemake.log").write_text(LINT_LOG)  # newer, but not a run
    job_log = tmp_path / "logs/regrid_sic/north_2021.log"
    job_log.parent.mkdir(parents=True)
    job_log.write_text(
        "2026-11-27 06:00:02,000 floecast INFO reading\n2026-11-27 06:00:03,000 floecast ERROR day 2021-03-03 missing\n"
    )
    state = {
        "checked_at": "2026-11-27T05:00:00Z",
        "target_date": "2021-03-21",
        "ready": False,
        "waiting_for": ["north:sic:osisaf"],
    }
    (tmp_path / "data/poll").mkdir(parents=True)
    (tmp_path / "data/poll/state.json").write_text(json.dumps(state))
    return tmp_path


def test_status_reads_the_tree(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOECAST_TODAY", "2021-03-10")  # latencies are counted from the clock's today
    summary = st.status(root, CONFIG)
    north = summary["hemispheres"]["north"]
    assert north["data"] == {
        "sic:osisaf": {"raw": "2021-03-04", "interim": "2021-02-28", "served_by": "OSI-430-a v3.0", "latency_days": 6},
        "atmos:era5:t2m": {"raw": "2021-03-02", "interim": None, "served_by": "expver unknown", "latency_days": 8},
        "atmos:era5:u10": {"raw": None, "interim": None, "served_by": None, "latency_days": None},
    }
    assert summary["checked_at"].startswith("2021-03-10T")
    assert north["newest_forecast"] == {"run": "v2", "date": "2021-03-06", "path": "results/north/v2/forecasts/2021-03-06.nc"}
    assert north["production_forecast"]["date"] == "2021-03-05"
    assert north["models"] == {"staging": "v2", "production": "v1"}
    run = summary["last_run"]
    assert run["log"] == ".snakemake/log/2026-11-27T060000.000000.snakemake.log"
    assert run["outcome"] == "failed" and run["started"] == "2026-11-27 06:00:00"
    assert run["progress"] == "3 of 12 steps (25%) done"
    (job,) = run["failed_jobs"]  # ingest_atmos was retried and went through
    assert job["rule"] == "regrid_sic" and job["jobid"] == "7" and job["wildcards"] == "hemi=north, year=2021"
    assert job["logs"] == ["logs/regrid_sic/north_2021.log", "logs/regrid_sic/extra.log"]
    assert job["log_tail"][-1].endswith("floecast ERROR day 2021-03-03 missing")
    assert summary["poll"]["waiting_for"] == ["north:sic:osisaf"] and summary["warnings"] == []

    text = st.format_status(summary)
    assert "last run: FAILED  .snakemake/log/2026-11-27T060000.000000.snakemake.log" in text
    assert "failed rule regrid_sic (jobid 7, hemi=north, year=2021): log logs/regrid_sic/north_2021.log" in text
    assert "| 2026-11-27 06:00:03,000 floecast ERROR day 2021-03-03 missing" in text
    assert "models: production v1, staging v2" in text
    assert "newest forecast: 2021-03-06 (run v2)" in text
    assert "sic:osisaf" in text and "2021-03-04" in text and "not ready (waiting for north:sic:osisaf)" in text
    sic_line = next(line for line in text.splitlines() if line.strip().startswith("sic:osisaf"))
    assert sic_line.split()[1:] == ["2021-03-04", "2021-02-28", "6", "days", "OSI-430-a", "v3.0"]
    assert st.subject(summary).endswith("last run failed in rule regrid_sic")


def test_last_run_outcomes(tmp_path: Path) -> None:
    assert st.last_run(tmp_path)["outcome"] == "none"
    log = tmp_path / "run.log"
    log.write_text(SUCCESS_LOG)
    assert st.last_run(tmp_path, log)["outcome"] == "success"
    log.write_text("Building DAG of jobs...\nNothing to be done (all requested files are present and up to date).\n")
    assert st.last_run(tmp_path, log)["outcome"] == "nothing-to-do"
    log.write_text("Building DAG of jobs...\n2 of 12 steps (17%) done\n")
    (tmp_path / ".snakemake/locks").mkdir(parents=True)
    (tmp_path / ".snakemake/locks/0.input.lock").touch()
    run = st.last_run(tmp_path, log)
    assert run["outcome"] == "incomplete" and run["locked"]
    assert "still running, or killed" in st.format_status({"last_run": run})
    log.write_text('WorkflowError in file "/opt/floecast/rules/common.smk", line 10:\nconfig key date: not a date\n')
    run = st.last_run(tmp_path, log)
    assert run["outcome"] == "failed" and run["failed_jobs"] == [] and "config key date: not a date" in run["error"]


def test_dry_run_and_lint_logs_are_not_runs(tmp_path: Path) -> None:
    logs = tmp_path / ".snakemake/log"
    logs.mkdir(parents=True)
    (logs / "2026-01-01T000000.000000.snakemake.log").write_text(SUCCESS_LOG)
    (logs / "2026-01-02T000000.000000.snakemake.log").write_text("  Command: snakemake -n --cores 1\nBuilding DAG of jobs...\n")
    (logs / "2026-01-03T000000.000000.snakemake.log").write_text("Congratulations, your workflow is in a good condition!\n")
    assert st.newest_run_log(tmp_path).name.startswith("2026-01-01")


def test_notify_sends_the_summary_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "sent.txt"
    assert st.notify("line one\nline two\n", f'printf "%s\\n" "$FLOECAST_SUBJECT" > {out}; cat >> {out}', 10, "subject x")
    assert out.read_text() == "subject x\nline one\nline two\n"
    listed = tmp_path / "listed.txt"
    code = f"import sys; open({str(listed)!r}, 'w').write(sys.stdin.read())"
    assert st.notify("as a list", [sys.executable, "-c", code])
    assert listed.read_text() == "as a list"


def test_notify_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="floecast.status")
    assert not st.notify("x", "echo refused >&2; exit 7")
    assert "exited 7: refused" in caplog.text
    assert not st.notify("x", [str(tmp_path / "no-such-command")])
    assert "could not run" in caplog.text
    assert not st.notify("x", None)
    started = time.monotonic()
    assert not st.notify("x", "sleep 30 & sleep 30", timeout=0.5)  # the backgrounded child is killed too
    assert time.monotonic() - started < 10 and "timed out" in caplog.text


def test_notify_run_and_the_example_script(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = root / "notify.log"
    monkeypatch.setenv("FLOECAST_NOTIFY_FILE", str(sent))
    monkeypatch.delenv("FLOECAST_WEBHOOK", raising=False)
    config = {**CONFIG, "notify": {"command": str(REPO / "scripts" / "notify-example"), "timeout_s": 20}}
    snakemake_log = root / ".snakemake/log/2026-11-27T060000.000000.snakemake.log"
    assert st.notify_run(root, config, [str(snakemake_log)])  # Snakemake 9 hands onerror a list
    text = sent.read_text()
    assert text.startswith("=== ") and "last run failed in rule regrid_sic" in text.splitlines()[0]
    assert "failed rule regrid_sic" in text and "logs/regrid_sic/north_2021.log" in text
    assert not st.notify_run(root, {**CONFIG, "notify": {"command": None}}, None)


def test_status_names_the_source_that_produced_the_data(root: Path) -> None:
    """Issue 12: the demo's synthetic data, looked at with the production config (sources.sic:
    osisaf), is labelled synthetic, with a warning that the config names another source."""
    (root / "data/raw/osisaf").rename(root / "data/raw/synthetic")
    summary = st.status(root, CONFIG)
    data = summary["hemispheres"]["north"]["data"]
    days = {level: data["sic:synthetic"][level] for level in ("raw", "interim")}
    assert days == {"raw": "2021-03-04", "interim": "2021-02-28"} and "sic:osisaf" not in data
    assert data["sic:synthetic"]["served_by"].startswith("synthetic")
    assert "atmos:era5:t2m" in data  # its own source's folder is there
    assert summary["warnings"] == [
        "north: the sic data on disk come from synthetic, not from sources.sic (osisaf) of this config: "
        "is it the config of this workflow folder?"
    ]
