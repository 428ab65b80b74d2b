"""Interim files and the training-years statistics (masks, climatologies, normalisation)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from floecast.grid import Ease2Grid
from floecast.preprocess import DEFAULT_FIELD_VARIABLES, fit_statistics, regrid_field, regrid_sic_year
from floecast.sources.era5 import write_era5_like
from floecast.sources.osisaf import STATUS_LAND, osisaf_filename, polar_hole_radius_km, read_osisaf_file, write_osisaf_file
from floecast.sources.synthetic import idealised_land


def _load(path: Path) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def statistics(tiny_data) -> xr.Dataset:
    return _load(tiny_data.statistics)


@pytest.fixture
def interim_copy(tiny_data, tmp_path) -> Path:
    """A writable copy of the interim files (variable/year.nc)."""
    return Path(shutil.copytree(tiny_data.root / "interim", tmp_path / "interim"))


def _paths(root: Path, years: tuple[int, ...]) -> tuple[list[Path], dict[str, list[Path]]]:
    return [root / "sic" / f"{y}.nc" for y in years], {v: [root / v / f"{y}.nc" for y in years] for v in DEFAULT_FIELD_VARIABLES}


def _rewrite(path: Path, variable: str, change) -> None:
    ds = _load(path)
    ds[variable].values = change(ds[variable].values).astype(ds[variable].dtype)
    path.unlink()
    ds.to_netcdf(path, engine="netcdf4")


# --- masks -----------------------------------------------------------------------------------


def test_land_mask_is_the_status_flag_land(tiny_data, statistics) -> None:
    _, flag = read_osisaf_file(tiny_data.raw_sic_dir(2004) / osisaf_filename("north", pd.Timestamp("2004-07-01").date()))
    flag_land = (flag & STATUS_LAND).astype(bool)
    assert 0 < flag_land.sum() < flag_land.size
    np.testing.assert_array_equal(flag_land, idealised_land(tiny_data.grid.lon, tiny_data.grid.lat, "north"))
    for year in tiny_data.years:
        interim = _load(tiny_data.interim("sic", year))
        np.testing.assert_array_equal(interim["land"].values.astype(bool), flag_land)
        # SIC is undefined exactly over land, every day
        np.testing.assert_array_equal(np.isnan(interim["sic"].values).all(axis=0), flag_land)
        assert not np.isnan(interim["sic"].values[:, ~flag_land]).any()
    np.testing.assert_array_equal(statistics["land"].values.astype(bool), flag_land)


def test_active_mask_is_ice_seen_in_training_months(tiny_data, statistics) -> None:
    land = statistics["land"].values.astype(bool)
    active = statistics["active"].values.astype(bool)
    sic = xr.concat([_load(tiny_data.interim("sic", y))["sic"] for y in tiny_data.train_years], dim="time")
    months = sic["time"].dt.month.values
    for month in range(1, 13):
        ice = (np.nan_to_num(sic.values[months == month]) > 0.15).any(axis=0)
        np.testing.assert_array_equal(active[month - 1], ice & ~land, err_msg=f"month {month}")
    assert not active[:, land].any()
    # more of the ocean is active in March than in September
    assert active[2].sum() > active[8].sum() > 0


def test_active_mask_ignores_the_test_year(tiny_data, interim_copy, tmp_path) -> None:
    """Ice only in a non-training year (2005) does not make a cell active."""
    _rewrite(interim_copy / "sic" / "2005.nc", "sic", lambda v: np.where(np.isnan(v), v, 1.0))
    stats = fit_statistics(*_paths(interim_copy, tiny_data.train_years), tmp_path / "stats.nc")
    land = stats["land"].values.astype(bool)
    assert not stats["active"].values.astype(bool)[:, ~land].all()  # some ocean stays inactive every month


# --- no leak of test years into the statistics ------------------------------------------------


def test_changing_a_test_year_leaves_statistics_identical(tiny_data, interim_copy, tmp_path) -> None:
    train = _paths(interim_copy, tiny_data.train_years)
    fit_statistics(*train, tmp_path / "before.nc")
    assert _sha256(tmp_path / "before.nc") == _sha256(tiny_data.statistics)
    _rewrite(interim_copy / "t2m" / "2005.nc", "t2m", lambda v: v * 1.05 + 10.0)
    _rewrite(interim_copy / "u10" / "2005.nc", "u10", lambda v: v * 3.0)
    _rewrite(interim_copy / "sic" / "2005.nc", "sic", lambda v: np.where(np.isnan(v), v, 1.0 - v))
    fit_statistics(*train, tmp_path / "after.nc")
    assert _sha256(tmp_path / "after.nc") == _sha256(tmp_path / "before.nc")
    assert json.loads(_load(tmp_path / "after.nc").attrs["training_years"]) == [2003, 2004]


def test_changing_a_training_year_changes_statistics(tiny_data, interim_copy, tmp_path) -> None:
    train = _paths(interim_copy, tiny_data.train_years)
    before = _load(tiny_data.statistics)
    _rewrite(interim_copy / "t2m" / "2004.nc", "t2m", lambda v: v + 2.0)
    after = fit_statistics(*train, tmp_path / "after.nc")
    assert _sha256(tmp_path / "after.nc") != _sha256(tiny_data.statistics)
    # 2004 is one of two training years: the t2m climatology rises by 1 K (by up to 2/31 K more near
    # 31 December, where day of year 366 exists in the leap year 2004 only and enters the 31-day smoothing)
    rise = after["t2m_clim"].values - before["t2m_clim"].values
    np.testing.assert_allclose(rise[20:340], 1.0, atol=1e-3)
    np.testing.assert_allclose(rise, 1.0, atol=2.0 / 31 + 1e-3)
    norm_before, norm_after = json.loads(before.attrs["normalisation"]), json.loads(after.attrs["normalisation"])
    assert norm_after["t2m_anom"][1] > norm_before["t2m_anom"][1]  # the two years now differ by 2 K
    assert norm_after["u10"] == norm_before["u10"]


# --- regridding --------------------------------------------------------------------------------


def _copy_days(tiny_data, days: pd.DatetimeIndex, target: Path) -> Path:
    target.mkdir()
    for day in days:
        name = osisaf_filename("north", day.date())
        shutil.copy(tiny_data.raw_sic_dir(day.year) / name, target / name)
    return target


def test_missing_day_is_interpolated_and_flagged(tiny_data, tmp_path) -> None:
    days = pd.date_range("2004-03-01", "2004-03-10")
    raw = _copy_days(tiny_data, days, tmp_path / "raw")
    (raw / osisaf_filename("north", pd.Timestamp("2004-03-05").date())).unlink()
    (raw / osisaf_filename("north", pd.Timestamp("2004-03-06").date())).unlink()
    ds = regrid_sic_year(raw, tmp_path / "sic.nc", tiny_data.grid)
    np.testing.assert_array_equal(ds["time"].values, days.values)
    np.testing.assert_array_equal(ds["filled"].values, [0, 0, 0, 0, 1, 1, 0, 0, 0, 0])
    sic = ds["sic"].values
    land = ds["land"].values.astype(bool)
    np.testing.assert_allclose(sic[4][~land], (2 * sic[3] + sic[6])[~land] / 3, atol=1e-6)
    np.testing.assert_allclose(sic[5][~land], (sic[3] + 2 * sic[6])[~land] / 3, atol=1e-6)
    assert np.isnan(sic[4][land]).all()
    # the kept days are the files' values, and the written file is what was returned
    original = _load(tiny_data.interim("sic", 2004))["sic"].sel(time=days).values
    np.testing.assert_array_equal(sic[[0, 1, 2, 3, 6, 7, 8, 9]], original[[0, 1, 2, 3, 6, 7, 8, 9]])
    written = _load(tmp_path / "sic.nc")
    np.testing.assert_array_equal(written["sic"].values, sic)
    np.testing.assert_array_equal(written["filled"].values, ds["filled"].values)


def test_file_on_the_wrong_grid_is_rejected(tiny_data, tmp_path) -> None:
    raw = _copy_days(tiny_data, pd.date_range("2004-03-01", "2004-03-02"), tmp_path / "raw")
    other = Ease2Grid("north", 24)  # 18 x 18
    name = osisaf_filename("north", pd.Timestamp("2004-03-03").date())
    write_osisaf_file(raw / name, other, pd.Timestamp("2004-03-03").date(), np.zeros(other.shape), np.zeros(other.shape))
    with pytest.raises(ValueError, match=re.escape(name)) as err:
        regrid_sic_year(raw, tmp_path / "sic.nc", tiny_data.grid)
    assert "(18, 18)" in str(err.value) and "(16, 16)" in str(err.value)
    assert not (tmp_path / "sic.nc").exists()


def test_field_file_on_the_wrong_grid_is_rejected(tiny_data, tmp_path) -> None:
    other = Ease2Grid("north", 24)
    path = tmp_path / "t2m_2004.nc"
    write_era5_like(path, other, "t2m", pd.date_range("2004-01-01", periods=3), np.full((3, *other.shape), 260.0))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        regrid_field([path], tmp_path / "out.nc", tiny_data.grid, "t2m", "era5")


def test_regrid_field_passes_ease2_fields_through(tiny_data) -> None:
    for name in DEFAULT_FIELD_VARIABLES:
        with xr.open_dataset(tiny_data.raw_atmos(name, 2003)) as raw, xr.open_dataset(tiny_data.interim(name, 2003)) as out:
            np.testing.assert_array_equal(out[name].values, raw[name].values)
            np.testing.assert_array_equal(out["time"].values, raw["valid_time"].values)
            np.testing.assert_array_equal(out["yc"].values, tiny_data.grid.yc)


def test_polar_hole_by_era_is_ice_and_recorded(tmp_path: Path) -> None:
    assert polar_hole_radius_km(dt.date(1985, 1, 1), "north") == 700.0
    assert polar_hole_radius_km(dt.date(1999, 1, 1), "north") == 275.0
    assert polar_hole_radius_km(dt.date(2010, 1, 1), "north") == 75.0
    assert polar_hole_radius_km(dt.date(2020, 1, 1), "north") == 0.0
    assert polar_hole_radius_km(dt.date(1985, 1, 1), "south") == 0.0
    grid = Ease2Grid("north", 8)  # 200 km cells
    raw = tmp_path / "raw"
    raw.mkdir()
    land = np.zeros(grid.shape, dtype=np.int16)
    for day in (dt.date(1987, 6, 30), dt.date(1987, 7, 1)):
        sic = np.full(grid.shape, 0.5)
        write_osisaf_file(raw / osisaf_filename("north", day), grid, day, sic, land)
    ds = regrid_sic_year(raw, tmp_path / "sic.nc", grid)
    np.testing.assert_array_equal(ds["polar_hole_km"].values, [700.0, 275.0])
    x, y = np.meshgrid(grid.xc, grid.yc)
    r_km = np.hypot(x, y) / 1000.0
    first, second = ds["sic"].values
    assert (first[r_km < 700] == 1.0).all() and np.allclose(first[r_km >= 700], 0.5)
    assert (second[r_km < 275] == 1.0).all() and np.allclose(second[r_km >= 275], 0.5)


def test_missing_days_at_the_year_edges_are_filled_from_the_nearest_day(tmp_path: Path) -> None:
    grid = Ease2Grid("north", 27)
    raw = tmp_path / "raw"
    raw.mkdir()
    land = np.zeros(grid.shape, dtype=np.int16)
    for day, value in ((dt.date(2021, 1, 2), 0.2), (dt.date(2021, 1, 4), 0.6)):
        write_osisaf_file(raw / osisaf_filename("north", day), grid, day, np.full(grid.shape, value), land)
    ds = regrid_sic_year(raw, tmp_path / "sic.nc", grid, (dt.date(2021, 1, 1), dt.date(2021, 1, 6)))
    assert list(ds["time"].dt.day.values) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(ds["filled"].values, [1, 0, 1, 0, 1, 1])
    np.testing.assert_allclose(ds["sic"].values[:, 5, 5], [0.2, 0.2, 0.4, 0.6, 0.6, 0.6], atol=1e-6)
