"""`floecast check-data`: passes on sound data and fails, naming the day, on each injected defect."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from floecast.checkdata import CheckSettings, check_data, extent_jumps
from floecast.cli import main
from floecast.store import part_content_hash

YEAR = 2005
DAY = dt.date(2005, 3, 10)


@pytest.fixture
def data(tiny_data, tmp_path: Path) -> dict:
    """A copy of the tiny dataset's last year at every level, with the manifest ingest writes."""
    raw_dir = tmp_path / "raw" / str(YEAR)
    shutil.copytree(tiny_data.raw_sic_dir(YEAR), raw_dir)
    days = sorted(p.name for p in raw_dir.glob("ice_conc_*.nc"))
    manifest = tmp_path / "raw" / f"{YEAR}.json"
    manifest.write_text(json.dumps({"first_day": "2005-01-01", "last_day": "2005-04-30", "files": days, "missing": []}))
    interim = tmp_path / "interim" / f"{YEAR}.nc"
    interim.parent.mkdir()
    shutil.copy(tiny_data.interim("sic", YEAR), interim)
    store = tmp_path / "store" / f"{YEAR}.zarr"
    shutil.copytree(tiny_data.store / f"{YEAR}.zarr", store)
    return {"raw": [manifest], "interim": [interim], "store": [store], "area": tiny_data.grid.cell_area_km2, "dir": raw_dir}


def run(data: dict, settings: CheckSettings | None = None):
    return check_data(data["raw"], data["interim"], data["store"], data["area"], settings or CheckSettings())


def errors(report) -> set[tuple[str, str, dt.date | None]]:
    return {(f.level, f.check, f.day) for f in report.errors}


def raw_file(data: dict, day: dt.date) -> Path:
    return next(data["dir"].glob(f"*_{day:%Y%m%d}1200.nc"))


def edit_raw(path: Path, edit) -> None:
    with netCDF4.Dataset(path, "a") as nc:
        edit(nc)


def edit_interim(data: dict, edit) -> None:
    path = data["interim"][0]
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    edit(ds)
    path.unlink()
    ds.to_netcdf(path)


def ocean_cells(data: dict) -> np.ndarray:
    with xr.open_dataset(data["interim"][0]) as ds:
        return ds["land"].values == 0


def test_sound_data_pass(data: dict) -> None:
    report = run(data)
    assert report.errors == []
    assert report.bad_days() == []
    assert {"raw", "interim"} <= set(report.series)


def test_all_zero_day_in_the_raw_files(data: dict) -> None:
    def zero(nc):
        values = nc["ice_conc"][:]
        nc["ice_conc"][:] = np.where(np.ma.getmaskarray(values), values, 0)

    edit_raw(raw_file(data, DAY), zero)
    report = run(data)
    assert ("raw", "all_zero", DAY) in errors(report)
    assert report.bad_days() == [DAY]
    known = run(data, CheckSettings(known_bad_days=(DAY,)))  # already listed: noted, not an error
    assert ("raw", "all_zero", DAY) not in errors(known)


def test_constant_and_out_of_range_days_in_interim(data: dict) -> None:
    other = DAY + dt.timedelta(days=20)

    def inject(ds):
        ocean = ds["land"].values == 0
        day = list(pd.DatetimeIndex(ds["time"].values).date).index(DAY)
        ds["sic"].values[day][ocean] = 0.5
        ds["sic"].values[day + 20][ocean.nonzero()[0][0], ocean.nonzero()[1][0]] = 1.5

    edit_interim(data, inject)
    found = errors(run(data))
    assert ("interim", "constant", DAY) in found
    assert ("interim", "out_of_range", other) in found


def test_nan_share_in_a_raw_day(data: dict) -> None:
    ocean = ocean_cells(data)

    def holes(nc):
        values = nc["ice_conc"][:]
        rows, cols = ocean.nonzero()
        values[0, rows[: len(rows) // 3], cols[: len(cols) // 3]] = np.ma.masked  # a third of the ocean missing
        nc["ice_conc"][:] = values

    edit_raw(raw_file(data, DAY), holes)
    report = run(data)
    assert ("raw", "nan_share", DAY) in errors(report)
    share = next(f for f in report.errors if f.check == "nan_share").value
    assert 0.3 <= share <= 0.4


def test_extent_spike_and_step() -> None:
    days = pd.date_range("2005-01-01", periods=60, freq="D")
    rng = np.random.default_rng(1)
    extent = pd.Series(14e6 + np.cumsum(rng.normal(0, 30e3, 60)), index=days)
    spiked = extent.copy()
    spiked.iloc[30] -= 3e6  # a bad day: down 3 million km2 and back
    stepped = extent.copy()
    stepped.iloc[40:] += 1.5e6  # a new product: up and staying
    settings = CheckSettings()
    assert extent_jumps(extent, settings, "interim") == []
    spike = extent_jumps(spiked, settings, "interim")
    assert [(f.check, f.severity, f.day) for f in spike] == [("extent_spike", "error", days[30].date())]
    assert spike[0].value == pytest.approx(-3e6, rel=0.05)
    step = extent_jumps(stepped, settings, "interim")
    assert [(f.check, f.severity, f.day) for f in step] == [("extent_step", "warning", days[40].date())]


def test_extent_spike_found_in_the_data(data: dict) -> None:
    def halve(ds):
        day = list(pd.DatetimeIndex(ds["time"].values).date).index(DAY)
        ds["sic"].values[day] = np.where(ds["sic"].values[day] > 0.5, 0.05, ds["sic"].values[day])

    edit_interim(data, halve)
    report = run(data, CheckSettings(jump_min_km2=0.0))
    assert ("interim", "extent_spike", DAY) in errors(report)
    assert DAY in report.bad_days()


def test_missing_and_duplicated_days(data: dict) -> None:
    gone = raw_file(data, DAY)
    twin = raw_file(data, DAY + dt.timedelta(days=1))
    gone.unlink()  # lost, and not listed as missing by the provider
    shutil.copy(twin, twin.with_name(twin.name.replace("cdr-v3p1", "icdr-v3p0")))  # two products for one day
    stray = twin.with_name(twin.name.replace("cdr-v3p1", "cdr-v9p9"))
    shutil.copy(twin, stray)  # a file of no product of the SIC chain
    found = errors(run(data))
    assert ("raw", "missing_day", DAY) in found
    assert ("raw", "duplicated_day", DAY + dt.timedelta(days=1)) in found
    assert ("raw", "unknown_product", DAY + dt.timedelta(days=1)) in found
    stray.unlink()

    with xr.open_dataset(data["interim"][0]) as ds:
        shorter = ds.load().isel(time=pd.DatetimeIndex(ds["time"].values).date != DAY)
    data["interim"][0].unlink()
    shorter.to_netcdf(data["interim"][0])
    assert ("interim", "missing_day", DAY) in errors(run(data))


def test_grid_and_units_that_changed(data: dict) -> None:
    def shift(nc):
        nc["xc"][:] = nc["xc"][:] + 25.0

    edit_raw(raw_file(data, DAY), shift)
    edit_raw(raw_file(data, DAY + dt.timedelta(days=2)), lambda nc: nc["ice_conc"].setncattr("units", "1"))
    found = errors(run(data))
    assert ("raw", "grid_changed", DAY) in found
    assert ("raw", "units_changed", DAY + dt.timedelta(days=2)) in found


def test_store_part_whose_content_changed(data: dict) -> None:
    part = data["store"][0]
    with xr.open_zarr(part, consolidated=True) as ds:
        assert part_content_hash(part) == ds.attrs["content_sha256"]  # recomputed as written
        day = list(pd.DatetimeIndex(ds["time"].values).date).index(DAY)
    group = zarr.open_group(str(part), mode="r+")
    sic = group["sic"][day]
    sic[sic > 0.5] = 0.6
    group["sic"][day] = sic
    report = run(data)
    found = errors(report)
    assert any(check == "hash_mismatch" for _, check, _ in found)
    assert ("store", "changed_day", DAY) in found
    mismatch = next(f for f in report.errors if f.check == "hash_mismatch")
    assert str(DAY) in mismatch.message and mismatch.file == str(part)


def test_command_exit_status_outputs_and_proposal(data: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "checks"
    args = ["check-data", "--hemisphere", "north", "--coarsen", "27"]
    args += ["--raw", *map(str, data["raw"]), "--interim", *map(str, data["interim"]), "--store", *map(str, data["store"])]
    args += ["--csv", str(out / "check.csv"), "--plot", str(out / "check.png"), "--propose", str(out / "bad.yaml")]
    assert main(args) == 0
    assert (out / "check.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "known_bad_days: []" in (out / "bad.yaml").read_text()

    def zero(nc):
        values = nc["ice_conc"][:]
        nc["ice_conc"][:] = np.where(np.ma.getmaskarray(values), values, 0)

    edit_raw(raw_file(data, DAY), zero)
    assert main(args) == 1
    assert f'"{DAY}"' in capsys.readouterr().out  # the proposal names the day
    table = pd.read_csv(out / "check.csv")
    assert ((table["check"] == "all_zero") & (table["day"] == str(DAY)) & (table["severity"] == "error")).any()
    assert f'known_bad_days: ["{DAY}"]' in (out / "bad.yaml").read_text()
