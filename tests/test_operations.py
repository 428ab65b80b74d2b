"""The simulated month of operation (benchmarks/operations.py) on a few days at the tiny size, so that
its machinery cannot rot: the real daily runner against the local providers on an injected clock,
with two of its faults, and every forecast and store part checked at the end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import xarray as xr
from benchmark_modules import benchmark_module

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def operations():  # noqa: ANN201 - the benchmarks/operations.py module
    with benchmark_module("operations") as module:
        yield module


def test_three_simulated_days_issue_a_forecast_each_and_recover_from_the_faults(operations, tmp_path: Path) -> None:
    days = 3
    sim = operations.Simulation(
        tmp_path,
        days,
        faults={1: "truncated_file", 2: "killed_job"},
        base=REPO / "tests" / "config" / "tiny.yaml",
        data_start=dt.date(2024, 1, 1),  # train 2024, validate 2025, test 2026 (to the simulated day)
        log=lambda text: None,
    )
    sim.run()

    figures = sim.figures()
    assert figures["ops_days"] == figures["ops_forecasts_issued"] == days
    assert figures["ops_faults_injected"] == figures["ops_faults_recovered"] == 2
    assert figures["ops_corrupt_outputs"] == 0 and sim.validation == {"forecasts": [], "store": []}
    # SIC two days behind (fast-track), the atmosphere one (HRES): each day's forecast is from yesterday
    assert [run.init for run in sim.runs] == [(run.today - dt.timedelta(days=1)).isoformat() for run in sim.runs]
    assert figures["ops_max_reference_lag_days"] == operations.FAST_TRACK_LAG
    assert [run.tries for run in sim.runs] == [1, 1, 2]  # the killed job: cron's next try made the forecast
    newest = sim.runs[-1]
    with xr.open_dataset(sim.forecast(newest.init)) as ds:
        assert str(ds["time"].values[0])[:10] == newest.init
        assert "OSI-438-fast-track" in str(ds.attrs)  # the newest SIC day came from a fast-track file
    # the truncated transfer was retried within the run: the nominal file is whole, it replaced the fast-track one
    replaced = sim.runs[1].today - dt.timedelta(days=operations.NOMINAL_LAG)
    manifest = sim.workdir / f"data/raw/osisaf/ice_conc/north/{replaced:%Y}/{replaced:%m}.json"
    assert f'"{replaced.isoformat()}"' in manifest.read_text() and sim.runs[1].recovered
    # the injected clock: every daily log is named by its simulated day
    logs = sorted(p.stem for p in (sim.workdir / "logs/daily").glob("*.log"))
    assert logs == [(sim.first_day + dt.timedelta(days=k)).isoformat() for k in range(-1, days)]
