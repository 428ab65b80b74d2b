"""The synthetic source: calibrated extent, determinism, predictability and file layouts."""

from __future__ import annotations

import datetime as dt

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.ndimage import uniform_filter1d

from floecast.grid import Ease2Grid
from floecast.sources.era5 import ERA5_VARIABLES, VALID_RANGE, read_era5_variable, write_era5_like
from floecast.sources.nsidc import read_nsidc_extent
from floecast.sources.osisaf import ICE_CONC_FILL, STATUS_LAND, osisaf_filename, read_osisaf_file
from floecast.sources.synthetic import (
    SyntheticDays,
    SyntheticParams,
    idealised_land,
    simulate,
    temperature_climatology,
    write_atmos_year,
    write_sic_year,
)

GRID_300KM = Ease2Grid("north", 12)  # 36 x 36 cells of 90 000 km2: fine enough for extent and edge statistics


def _extent(sic: np.ndarray, grid: Ease2Grid) -> np.ndarray:
    return (np.nan_to_num(sic) > 0.15).sum(axis=(1, 2)) * grid.cell_area_km2


@pytest.fixture(scope="module", params=[42, 7], ids=lambda seed: f"seed{seed}")
def six_years(request: pytest.FixtureRequest) -> SyntheticDays:
    """Six simulated years (2007-2012, observed extent anomalies replayed) on the 300 km grid."""
    return simulate(GRID_300KM, dt.date(2007, 1, 1), dt.date(2012, 12, 31), SyntheticParams(seed=request.param))


# --- (a) extent ------------------------------------------------------------------------------


def test_gridded_extent_follows_target(six_years: SyntheticDays) -> None:
    cells = (_extent(six_years.sic, GRID_300KM) - six_years.extent_target_km2) / GRID_300KM.cell_area_km2
    # rounding to whole cells (+-0.5) and the retrieval noise at the edge cell (about -0.5 on average)
    assert np.mean(np.abs(cells) <= 1.5) > 0.75
    assert np.mean(np.abs(cells) <= 2.5) > 0.95
    assert abs(cells.mean()) < 1.0
    assert np.abs(cells).max() < 10


def test_target_replays_the_nsidc_record(six_years: SyntheticDays) -> None:
    record = read_nsidc_extent()
    year = six_years.dates.year == 2012
    observed = record.reindex(six_years.dates[year])
    assert observed.notna().all()  # 2012 is complete in the record
    # seasonal cycle + trend + observed anomaly = the observed extent itself
    np.testing.assert_allclose(six_years.extent_target_km2[year], observed.to_numpy(), rtol=1e-9)


def test_2012_minimum_and_march_maximum(six_years: SyntheticDays) -> None:
    record = read_nsidc_extent()
    record_min = record["2012-09"].min()
    assert record_min == pytest.approx(3.34e6, abs=0.05e6)  # the record low of September 2012
    extent = pd.Series(_extent(six_years.sic, GRID_300KM), index=six_years.dates)
    assert abs(extent["2012-09"].min() - record_min) < 0.3e6
    assert abs(extent["2012-03"].max() - record["2012-03"].max()) < 0.3e6
    assert extent["2012-03"].max() > extent["2012-09"].min() + 10e6
    # every year has its minimum in August-October and its maximum in February-April
    for _, one in extent.groupby(extent.index.year):
        assert one.idxmin().month in (8, 9, 10)
        assert one.idxmax().month in (2, 3, 4)


# --- (b) determinism -------------------------------------------------------------------------


def _assert_days_equal(a: SyntheticDays, b: SyntheticDays) -> None:
    for name in ("sic", "t2m", "u10", "v10", "extent_target_km2"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.land, b.land)


def test_same_seed_same_fields(tiny_grid: Ease2Grid) -> None:
    start, end = dt.date(2024, 3, 1), dt.date(2024, 3, 20)  # after the record: the extent anomaly is drawn too
    first = simulate(tiny_grid, start, end, SyntheticParams(seed=5))
    _assert_days_equal(first, simulate(tiny_grid, start, end, SyntheticParams(seed=5)))
    other = simulate(tiny_grid, start, end, SyntheticParams(seed=6))
    ocean = ~first.land
    assert not np.allclose(first.sic[:, ocean], other.sic[:, ocean], atol=1e-3)
    assert np.abs(first.t2m - other.t2m).max() > 1.0
    assert np.abs(first.u10 - other.u10).max() > 1.0
    assert np.abs(first.extent_target_km2 - other.extent_target_km2).max() > 1e4
    np.testing.assert_array_equal(first.land, other.land)


def test_sub_period_matches_longer_run() -> None:
    params = SyntheticParams(seed=42)
    june = simulate(GRID_300KM, dt.date(2012, 6, 1), dt.date(2012, 6, 30), params)
    year = simulate(GRID_300KM, dt.date(2012, 1, 1), dt.date(2012, 12, 31), params)
    cut = year.dates.get_indexer(june.dates)
    assert (cut >= 0).all()
    np.testing.assert_allclose(june.sic, year.sic[cut], atol=2e-3)
    np.testing.assert_allclose(june.t2m, year.t2m[cut], atol=0.05)
    np.testing.assert_allclose(june.u10, year.u10[cut], atol=0.05)
    np.testing.assert_array_equal(june.extent_target_km2, year.extent_target_km2[cut])
    # most cells agree far better than the bound above
    assert np.nanmean(np.abs(june.sic - year.sic[cut])) < 1e-4


def test_drawn_extent_anomaly_is_keyed_by_day(tiny_grid: Ease2Grid) -> None:
    """Outside the record the extent anomaly is drawn per day, with a long spin-up."""
    params = SyntheticParams(seed=3)
    short = simulate(tiny_grid, dt.date(2030, 9, 1), dt.date(2030, 9, 10), params)
    long = simulate(tiny_grid, dt.date(2029, 6, 1), dt.date(2030, 12, 31), params)
    cut = long.dates.get_indexer(short.dates)
    np.testing.assert_allclose(short.extent_target_km2, long.extent_target_km2[cut], rtol=0, atol=1.0)


def test_sub_period_matches_longer_run_exactly() -> None:
    params = SyntheticParams(seed=42)
    june = simulate(GRID_300KM, dt.date(2012, 6, 1), dt.date(2012, 6, 30), params)
    year = simulate(GRID_300KM, dt.date(2012, 1, 1), dt.date(2012, 12, 31), params)
    np.testing.assert_allclose(june.u10, year.u10[year.dates.get_indexer(june.dates)], rtol=0, atol=1e-4)


# --- (c) predictability ----------------------------------------------------------------------


def _anomalies(days: SyntheticDays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(SIC, SIC anomaly from the day-of-year climatology of the run, edge-cell mask)."""
    sic = np.nan_to_num(days.sic)
    doy = np.minimum(days.dates.day_of_year.to_numpy(), 365) - 1
    clim = np.stack([sic[doy == k].mean(axis=0) for k in range(365)])
    clim = uniform_filter1d(clim, 15, axis=0, mode="wrap")
    edge = (((clim > 0.05) & (clim < 0.95)).mean(axis=0) > 0.2) & ~days.land
    return sic, sic - clim[doy], edge


def test_sic_anomalies_persist_for_weeks(six_years: SyntheticDays) -> None:
    _, anomaly, edge = _anomalies(six_years)
    assert edge.sum() > 100

    def lag_corr(lag: int) -> float:
        return float(np.corrcoef(anomaly[:-lag][:, edge].ravel(), anomaly[lag:][:, edge].ravel())[0, 1])

    lag7, lag14, lag60 = lag_corr(7), lag_corr(14), lag_corr(60)
    assert lag7 > 0.6  # ~0.75
    assert lag14 > 0.3  # ~0.5 (edge memory 20 days, fed by a 4-day temperature memory)
    assert lag7 > lag14 > lag60


def _t2m_anomaly(days: SyntheticDays, grid: Ease2Grid) -> np.ndarray:
    """t2m minus the generator's seasonal climatology and trend (bias 0): the internal anomaly T'."""
    years = days.dates.year.to_numpy()[:, None, None] - 2000
    return days.t2m - temperature_climatology(grid.lat, days.dates) - 0.05 * years


def test_warm_anomaly_is_followed_by_less_ice(six_years: SyntheticDays) -> None:
    sic, _, _ = _anomalies(six_years)
    t_anom = _t2m_anomaly(six_years, GRID_300KM)
    ocean = ~six_years.land
    assert abs(t_anom[:, ocean].mean()) < 0.1
    assert 1.5 < t_anom[:, ocean].std() < 2.5  # 1.6 K noise plus warm advection
    horizon = 7
    change = sic[horizon:] - sic[:-horizon]
    at_edge = (sic[:-horizon] > 0.05) & (sic[:-horizon] < 0.95)  # cells at the ice edge on day t
    corr = np.corrcoef(t_anom[:-horizon][at_edge], change[at_edge])[0, 1]
    assert corr < -0.15  # ~ -0.3
    # a cold anomaly is followed by more ice, a warm one by less, by a clear margin
    cold, warm = t_anom[:-horizon] < -2.0, t_anom[:-horizon] > 2.0
    assert change[at_edge & warm].mean() < -0.02 < 0.02 < change[at_edge & cold].mean()


# --- (d) OSI-SAF layout ----------------------------------------------------------------------


def test_osisaf_file_names(tiny_data, tmp_path) -> None:
    names = sorted(p.name for p in tiny_data.raw_sic_dir(2003).iterdir())
    expected = [f"ice_conc_nh_ease2-250_cdr-v3p1_{day:%Y%m%d}1200.nc" for day in pd.date_range("2003-01-01", "2003-12-31")]
    assert names == expected  # OSI-450-a1, the chain's product for 2003
    count = write_sic_year(str(tmp_path), tiny_data.grid, 2021, dt.date(2021, 1, 3), tiny_data.params)
    assert count == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ice_conc_nh_ease2-250_icdr-v3p0_2021010{d}1200.nc" for d in (1, 2, 3)]
    assert osisaf_filename("north", dt.date(2020, 12, 31)) == "ice_conc_nh_ease2-250_cdr-v3p1_202012311200.nc"
    assert osisaf_filename("south", dt.date(2021, 1, 1)) == "ice_conc_sh_ease2-250_icdr-v3p0_202101011200.nc"
    # the current product: OSI-438 nominal files (the fast-track files replaced by them are not simulated)
    assert osisaf_filename("north", dt.date(2026, 1, 5)) == "ice_conc_nh_ease2-250_icdr-v3p0-amsr_202601051200.nc"
    with netCDF4.Dataset(tmp_path / "ice_conc_nh_ease2-250_icdr-v3p0_202101011200.nc") as nc:
        assert (nc.product_id, nc.product_version) == ("OSI-430-a", "3.0")


def test_osisaf_file_contents(tiny_data) -> None:
    grid = tiny_data.grid
    path = tiny_data.raw_sic_dir(2003) / osisaf_filename("north", dt.date(2003, 3, 15))
    land = idealised_land(grid.lon, grid.lat, "north")
    with netCDF4.Dataset(path) as nc:
        conc = nc["ice_conc"]
        assert conc.dimensions == ("time", "yc", "xc")
        assert conc.units == "%"
        assert conc.standard_name == "sea_ice_area_fraction"
        assert conc.scale_factor == pytest.approx(0.01)
        assert conc.dtype.kind == "i"
        assert conc.getncattr("_FillValue") == ICE_CONC_FILL == -32767
        assert conc.grid_mapping == "Lambert_Azimuthal_Grid"
        conc.set_auto_maskandscale(False)
        raw = np.asarray(conc[0])
        assert (raw[land] == -32767).all()
        assert ((raw[~land] >= 0) & (raw[~land] <= 10000)).all()
        flag = np.asarray(nc["status_flag"][0])
        np.testing.assert_array_equal(flag == STATUS_LAND, land)
        np.testing.assert_array_equal(flag[~land], 0)
        assert nc["xc"].units == "km" and nc["yc"].units == "km"
        np.testing.assert_allclose(nc["xc"][:], grid.xc / 1000.0)
        np.testing.assert_allclose(nc["yc"][:], grid.yc / 1000.0)
        assert (np.diff(nc["yc"][:]) < 0).all() and (np.diff(nc["xc"][:]) > 0).all()
        mapping = nc["Lambert_Azimuthal_Grid"]
        assert mapping.grid_mapping_name == "lambert_azimuthal_equal_area"
        assert mapping.latitude_of_projection_origin == 90.0
        assert "6931" in mapping.crs_wkt or "EASE-Grid 2.0 North" in mapping.crs_wkt
        seconds = float(nc["time"][0])
        assert dt.datetime(1978, 1, 1) + dt.timedelta(seconds=seconds) == dt.datetime(2003, 3, 15, 12)
        # with automatic unpacking, percent values and a mask over land
        conc.set_auto_maskandscale(True)
        percent = conc[0]
        np.testing.assert_array_equal(np.ma.getmaskarray(percent), land)


def test_read_osisaf_file_returns_the_fraction(tiny_data) -> None:
    grid = tiny_data.grid
    days = simulate(grid, dt.date(2003, 1, 1), dt.date(2003, 12, 31), tiny_data.params)  # as write_sic_year did
    for day in (dt.date(2003, 1, 1), dt.date(2003, 3, 15), dt.date(2003, 9, 20)):
        sic, flag = read_osisaf_file(tiny_data.raw_sic_dir(2003) / osisaf_filename("north", day))
        expected = days.sic[days.dates.get_loc(pd.Timestamp(day))]
        assert sic.dtype == np.float32
        np.testing.assert_array_equal(np.isnan(sic), days.land)
        np.testing.assert_allclose(sic, expected, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(flag, np.where(days.land, STATUS_LAND, 0))
        assert 0.0 <= np.nanmin(sic) and np.nanmax(sic) <= 1.0
        assert (sic > 0.15).sum() > 5  # the tiny grid still has ice on every day


# --- (e) ERA5-like files and the hemisphere guard -----------------------------------------------


def test_era5_like_files(tiny_data) -> None:
    path = tiny_data.raw_atmos("t2m", 2003)
    with xr.open_dataset(path) as ds:
        assert ds["t2m"].dims == ("valid_time", "yc", "xc")
        assert "time" not in ds.dims
        np.testing.assert_array_equal(ds["valid_time"].values, pd.date_range("2003-01-01", "2003-12-31").values)
        for key, value in ERA5_VARIABLES["t2m"].items():
            assert ds["t2m"].attrs[key] == value
        assert ds["t2m"].attrs["units"] == "K"
        t2m = ds["t2m"].values
        assert ds["expver"].values[0] == "0001" and int(ds["number"]) == 0
    assert np.isfinite(t2m).all()
    assert 200.0 < t2m.min() and t2m.max() < 315.0
    lat = tiny_data.grid.lat
    polar = lat > 85
    winter, summer = t2m[:31][:, polar].mean(), t2m[180:211][:, polar].mean()
    assert 235.0 < winter < 255.0 and 265.0 < summer < 280.0  # about -30 C / 0 C at the pole
    for name in ("u10", "v10"):
        with xr.open_dataset(tiny_data.raw_atmos(name, 2003)) as ds:
            assert ds[name].attrs == ERA5_VARIABLES[name]
            assert ds[name].attrs["units"] == "m s**-1"
            values = ds[name].values
        assert np.isfinite(values).all() and np.abs(values).max() < VALID_RANGE[name][1]
        assert 2.0 < np.sqrt(np.mean(values**2)) < 6.0  # wind_scale_ms = 5 m/s over both components
    da = read_era5_variable(path, "t2m")
    assert da.dims == ("time", "yc", "xc")
    np.testing.assert_array_equal(da.values, t2m)


def test_era5_writer_and_reader_reject_bad_data(tiny_data, tmp_path) -> None:
    grid = tiny_data.grid
    dates = pd.date_range("2003-01-01", periods=2)
    with pytest.raises(ValueError, match="unknown ERA5 variable 'sst'"):
        write_era5_like(tmp_path / "sst.nc", grid, "sst", dates, np.zeros((2, *grid.shape)))
    write_era5_like(tmp_path / "hot.nc", grid, "t2m", dates, np.full((2, *grid.shape), 400.0))
    with pytest.raises(ValueError, match="outside"):
        read_era5_variable(tmp_path / "hot.nc", "t2m")


def test_south_hemisphere_is_rejected(tmp_path) -> None:
    south = Ease2Grid("south", 27)
    with pytest.raises(ValueError, match="Northern Hemisphere"):
        simulate(south, dt.date(2010, 1, 1), dt.date(2010, 1, 5), SyntheticParams())
    with pytest.raises(ValueError, match="hemispheres: \\[north\\]"):
        write_sic_year(str(tmp_path / "sic"), south, 2010, dt.date(2010, 1, 5), SyntheticParams())
    with pytest.raises(ValueError, match="Northern Hemisphere"):
        write_atmos_year(str(tmp_path / "t2m.nc"), south, "t2m", 2010, dt.date(2010, 1, 5), SyntheticParams())
    assert not any(tmp_path.rglob("*.nc"))
