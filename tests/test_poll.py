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
from servers.osisaf import OsisafServers

from floecast.grid import Ease2Grid
from floecast.poll import newest_sic_day
from floecast.sources.atmos import newest_era5_day
from floecast.sources.remote import Probe

REPO = Path(__file__).resolve().parents[1]
TODAY = dt.date(2021, 3, 20)
PUBLISHED = [dt.date(2021, 3, 1), dt.date(2021, 3, 3), dt.date(2021, 3, 4)]  # ~16 days behind, as the ICDR
SMALL = Ease2Grid("north", 27)
# OSI-438: nominal files 16 days behind, fast-track files (FTP) 2 days behind
AMSR_TODAY = dt.date(2026, 1, 20)
NOMINAL = [dt.date(2026, 1, 3), dt.date(2026, 1, 4)]
FAST_TRACK = [dt.date(2026, 1, 5) + dt.timedelta(days=i) for i in range(14)]  # to 2026-01-18


@pytest.fixture(scope="module")
def osisaf(tmp_path_factory: pytest.TempPathFactory):
    with OsisafServers(tmp_path_factory.mktemp("osisaf")) as servers:
        zeros = np.zeros(SMALL.shape)
        for day in PUBLISHED:
            servers.publish("OSI-430-a", "north", day, zeros, zeros, SMALL)
        for day in NOMINAL:
            servers.publish("OSI-438", "north", day, zeros, zeros, SMALL)
        for day in FAST_TRACK:
            servers.publish("OSI-438-fast-track", "north", day, zeros, zeros, SMALL)
        yield servers


def test_newest_sic_day_uses_head_requests_only(osisaf: OsisafServers) -> None:
    before = osisaf.thredds.total_requests()
    with Probe() as probe:
        assert newest_sic_day(osisaf.chain, "north", TODAY, probe) == (dt.date(2021, 3, 4), "OSI-430-a v3.0")
        assert newest_sic_day(osisaf.chain, "north", dt.date(2021, 1, 1), probe, lookback=5) is None
    assert osisaf.thredds.total_requests() - before == (TODAY - dt.date(2021, 3, 4)).days + 5  # HEADs, newest first


def test_newest_sic_day_takes_fast_track_files_from_ftp(osisaf: OsisafServers) -> None:
    """Two days behind: the newest nominal file is 16 days old, the fast-track file of the day before yesterday is there."""
    head_before, size_before = osisaf.thredds.total_requests(), osisaf.ftp.total("SIZE")
    with Probe() as probe:
        newest = newest_sic_day(osisaf.chain, "north", AMSR_TODAY, probe)
    assert newest == (dt.date(2026, 1, 18), "OSI-438 v3.0 (OSI-438-fast-track)")
    # 2026-01-19 and -18: the nominal file first (HEAD), then the fast-track file (FTP SIZE); nothing downloaded
    assert osisaf.thredds.total_requests() - head_before == 2
    assert osisaf.ftp.total("SIZE") - size_before == 2 and osisaf.ftp.total("RETR") == 0


def test_newest_sic_day_passes_over_a_server_that_cannot_answer(osisaf: OsisafServers) -> None:
    """THREDDS answers 503 (the nominal files): the fast-track files on the FTP server still give the newest day."""
    nominal = osisaf.chain.product("OSI-438")
    second = osisaf.relpath(nominal, "north", AMSR_TODAY - dt.timedelta(days=2))
    before = osisaf.thredds.requests_for(second)
    for back in (1, 2):
        osisaf.thredds.fail(osisaf.relpath(nominal, "north", AMSR_TODAY - dt.timedelta(days=back)), "status", status=503)
    with Probe() as probe:
        newest = newest_sic_day(osisaf.chain, "north", AMSR_TODAY, probe)
    assert newest == (dt.date(2026, 1, 18), "OSI-438 v3.0 (OSI-438-fast-track)")
    # one 503 and the nominal product is not asked again in that poll: the second fault is still queued
    assert osisaf.thredds.requests_for(second) == before
    osisaf.thredds._faults.clear()


def _poll(tmp_path: Path, config: dict, date: str | None, today: str | None = None) -> tuple[int, dict, str]:
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    state = tmp_path / "state.json"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("FLOECAST_TODAY", None)
    if today:
        env["FLOECAST_TODAY"] = today
    cmd = ["floecast", "poll", "--config", str(configfile), "--state", str(state), "--root", str(tmp_path)]
    cmd += ["--date", date] if date else []
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(state.read_text()), proc.stderr


def _config(osisaf: OsisafServers, date: str, start: int, end: str) -> dict:
    """The tiny config on the local OSI SAF servers, data from ``start`` (a year) to ``end``."""
    config = yaml.safe_load((REPO / "tests/config/tiny.yaml").read_text())
    config.update(
        date=date,
        data={"start": f"{start}-01-01", "end": end},
        splits={"train": [start, start], "validate": [start + 1, start + 1], "test": [start + 2, start + 2]},
        sources={"sic": "osisaf", "atmos": "synthetic", "cmip6": "synthetic"},
        osisaf={"servers": osisaf.servers, "known_bad_days": []},
    )
    return config


def test_poll_exit_status_and_state(tmp_path: Path, osisaf: OsisafServers) -> None:
    config = _config(osisaf, "2021-03-05", 2019, "2021-03-10")
    status, state, _ = _poll(tmp_path, config, "2021-03-05", today="2021-03-20")
    assert status == 0 and state["ready"] is True
    assert state["target_date"] == "2021-03-05" and state["needs_up_to"] == "2021-03-04"
    assert state["newest"] == {"north:sic:osisaf": "2021-03-04", "north:atmos:synthetic": "2021-03-10"}
    assert state["served_by"]["north:sic:osisaf"] == "OSI-430-a v3.0"
    assert state["latency_days"] == {"north:sic:osisaf": 16, "north:atmos:synthetic": 10}  # behind 2021-03-20
    assert state["resolved_date"] == "2021-03-05"  # the day after the oldest newest day
    status, state, _ = _poll(tmp_path, config, "2021-03-03", today="2021-03-20")  # needs 03-02; OSI-SAF lacks it
    assert status == 3 and state["ready"] is False and state["waiting_for"] == ["north:sic:osisaf"]
    assert state["newest"]["north:sic:osisaf"] == "2021-03-01"
    synthetic = {**config, "sources": {**config["sources"], "sic": "synthetic"}}
    status, state, _ = _poll(tmp_path, synthetic, "2021-03-11", today="2021-03-20")
    assert status == 0 and state["waiting_for"] == []
    status, state, _ = _poll(tmp_path, synthetic, "2021-03-12", today="2021-03-20")
    assert status == 3 and state["waiting_for"] == ["north:atmos:synthetic", "north:sic:synthetic"]


def test_poll_resolves_the_newest_init_date_with_fast_track_files(tmp_path: Path, osisaf: OsisafServers) -> None:
    """Without --date: the newest init date whose inputs are all there (SIC 2 days behind from the fast-track
    files, the synthetic atmosphere to data.end), printed and recorded; `date: today` then stands for it."""
    config = _config(osisaf, "2026-01-10", 2024, "2026-01-19")
    status, state, stderr = _poll(tmp_path, config, None, today="2026-01-20")
    assert status == 0 and state["ready"] is True
    assert state["today"] == "2026-01-20" and state["resolved_date"] == state["target_date"] == "2026-01-19"
    assert state["newest"]["north:sic:osisaf"] == "2026-01-18" and state["latency_days"]["north:sic:osisaf"] == 2
    assert state["served_by"]["north:sic:osisaf"] == "OSI-438 v3.0 (OSI-438-fast-track)"
    assert "newest init date with all inputs: 2026-01-19" in stderr
    # the config checks take the poll state of the same day and sources: date today is that date
    from floecast import config as cfg

    checked, state = cfg.validate(config), tmp_path / "state.json"
    assert cfg.resolve_today(checked, dt.date(2026, 1, 20), state)[0] == dt.date(2026, 1, 19)
    # another day's state, or another config's, is not used: the latencies give an estimate (fast-track: 2 days)
    init, why = cfg.resolve_today(checked, dt.date(2026, 1, 21), state)
    assert init == dt.date(2026, 1, 20) and why.startswith("estimated from the expected latencies (SIC 2 days")
    elsewhere = cfg.validate({**config, "osisaf": {"servers": {"thredds": "http://elsewhere", "ftp": "ftp://elsewhere"}}})
    assert cfg.resolve_today(elsewhere, dt.date(2026, 1, 20), state)[1].startswith("estimated")


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
        pollers = source_pollers(config, "north", dt.date(2006, 7, 1), probe=lambda url: pytest.fail(f"probed {url}"))
        assert not any(name.startswith("seas5") for name in pollers)
        # nor does it move the init date `date: today` is estimated as (the expected latencies)
        from floecast.config import _expected_newest

        assert set(_expected_newest(config, dt.date(2006, 7, 1))) == {"sic", "atmos", "ocean"}  # the tiny ocean is synthetic
