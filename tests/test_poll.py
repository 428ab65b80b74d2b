"""`floecast poll`: newest day per source without downloading, a state file, exit 0 / 3."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from servers.cds import CdsServer
from servers.thredds import ThreddsServer

from floecast.grid import Ease2Grid
from floecast.poll import newest_osisaf_day
from floecast.sources.atmos import newest_era5_day
from floecast.sources.osisaf import osisaf_url, write_osisaf_file

REPO = Path(__file__).resolve().parents[1]
TODAY = dt.date(2021, 3, 20)
PUBLISHED = [dt.date(2021, 3, 1), dt.date(2021, 3, 3), dt.date(2021, 3, 4)]  # ~16 days behind, as the ICDR


@pytest.fixture(scope="module")
def thredds(tmp_path_factory: pytest.TempPathFactory):
    grid = Ease2Grid("north", 27)
    with ThreddsServer(tmp_path_factory.mktemp("thredds")) as server:
        for day in PUBLISHED:
            write_osisaf_file(
                server.path(osisaf_url("", "north", day).lstrip("/")), grid, day, np.zeros(grid.shape), np.zeros(grid.shape)
            )
        yield server


def test_newest_osisaf_day_uses_head_requests_only(thredds: ThreddsServer) -> None:
    before = thredds.total_requests()
    assert newest_osisaf_day(thredds.base_url, "north", TODAY) == dt.date(2021, 3, 4)
    assert thredds.total_requests() - before == (TODAY - dt.date(2021, 3, 4)).days  # 16 HEADs, newest first
    assert newest_osisaf_day(thredds.base_url, "north", dt.date(2021, 1, 1), lookback=5) is None


def _poll(tmp_path: Path, config: dict, date: str) -> tuple[int, dict]:
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    state = tmp_path / "state.json"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = ["floecast", "poll", "--config", str(configfile), "--date", date, "--state", str(state)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(state.read_text())


def test_poll_exit_status_and_state(tmp_path: Path, thredds: ThreddsServer) -> None:
    config = yaml.safe_load((REPO / "tests/config/tiny.yaml").read_text())
    config.update(
        date="2021-03-05",
        data={"start": "2019-01-01", "end": "2021-03-10"},
        splits={"train": [2019, 2019], "validate": [2020, 2020], "test": [2021, 2021]},
        sources={"sic": "osisaf", "atmos": "synthetic", "cmip6": "synthetic"},
        osisaf={"base_url": thredds.base_url, "known_bad_days": []},
    )
    status, state = _poll(tmp_path, config, "2021-03-05")
    assert status == 0 and state["ready"] is True
    assert state["target_date"] == "2021-03-05" and state["needs_up_to"] == "2021-03-04"
    assert state["newest"] == {"north:sic:osisaf": "2021-03-04", "north:atmos:synthetic": "2021-03-10"}
    status, state = _poll(tmp_path, config, "2021-03-03")  # needs 03-02; OSI-SAF lacks it
    assert status == 3 and state["ready"] is False and state["waiting_for"] == ["north:sic:osisaf"]
    assert state["newest"]["north:sic:osisaf"] == "2021-03-01"
    synthetic = {**config, "sources": {**config["sources"], "sic": "synthetic"}}
    status, state = _poll(tmp_path, synthetic, "2021-03-11")
    assert status == 0 and state["waiting_for"] == []
    status, state = _poll(tmp_path, synthetic, "2021-03-12")
    assert status == 3 and state["waiting_for"] == ["north:atmos:synthetic", "north:sic:synthetic"]


def test_daily_run_waits_for_inputs_and_never_overlaps(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    script = REPO / "scripts" / "daily-run"
    # the tiny config's data end in 2006: today's inputs are never there
    config = str(REPO / "tests/config/tiny.yaml")
    proc = subprocess.run([str(script), config], env=env, capture_output=True, text=True, timeout=120)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    log = (REPO / "logs" / "daily" / f"{today}.log").read_text()
    assert proc.returncode == 3, proc.stderr
    assert f"inputs for {today} not there yet" in log and '"ready": false' in log
    lock = REPO / "data" / "poll" / "daily-run.lock"
    with open(lock) as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = subprocess.run([str(script), config], env=env, capture_output=True, text=True)
    assert proc.returncode == 75 and "another daily run holds" in proc.stderr


def test_newest_era5_day_from_the_cds_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with CdsServer(tmp_path / "cds", key="00000000-test-key-0000") as cds:
        cds.era5_end = "2026-11-20T23:00:00Z"
        monkeypatch.setenv("CDSAPI_URL", cds.base_url)
        monkeypatch.setenv("CDSAPI_KEY", "00000000-test-key-0000")
        monkeypatch.setenv("CDSAPI_RC", str(tmp_path / "no-cdsapirc"))
        assert newest_era5_day() == dt.date(2026, 11, 20)
        assert not [r for r in cds.records if r.kind in ("submit", "download")]  # nothing fetched


def test_seas5_never_holds_up_a_forecast() -> None:
    from floecast.poll import source_pollers

    config = yaml.safe_load((REPO / "tests/config/tiny.yaml").read_text())
    for seas5 in ("synthetic", "cds", "none"):
        config["sources"]["seas5"] = seas5
        assert not any(name.startswith("seas5") for name in source_pollers(config, "north", dt.date(2006, 7, 1)))
