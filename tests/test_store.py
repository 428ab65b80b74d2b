"""The zarr store: one part per year, channels declared in config, the trend channel,
content hashes, no test-year leakage, and appending a day."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr
from conftest import SPEC

from floecast import __version__
from floecast.dataset import SampleStore
from floecast.preprocess import ATMOS_VARIABLES
from floecast.store import StoreIntegrityError, build_year_store, combined_hash, linear_trend, part_content_hash, read_store

CELL_AREA = 455625.0


def _load(path: Path) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()


def _part(path: Path) -> xr.Dataset:
    with xr.open_zarr(path, consolidated=True) as ds:
        return ds.load()


@pytest.fixture(scope="module")
def parts(tiny_data) -> dict[int, xr.Dataset]:
    return {year: _part(tiny_data.store / f"{year}.zarr") for year in tiny_data.years}


@pytest.fixture
def interim_copy(tiny_data, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_data.root / "interim", tmp_path / "interim"))


def _build(root: Path, year: int, statistics: Path, out: Path, years: tuple[int, ...] = (2003, 2004, 2005)) -> str:
    sic = [root / "sic" / f"{y}.nc" for y in years if y <= year]
    atmos = {v: [root / v / f"{year}.nc"] for v in ATMOS_VARIABLES}
    return build_year_store(year, sic, atmos, statistics, out, SPEC, "north", CELL_AREA)


def test_parts_are_zarr_v3_chunked_by_days_with_consolidated_metadata(tiny_data, parts) -> None:
    assert sorted(p.name for p in tiny_data.store.iterdir()) == ["2003.zarr", "2004.zarr", "2005.zarr"]
    path = tiny_data.store / "2004.zarr"
    root = json.loads((path / "zarr.json").read_text())
    assert root["zarr_format"] == 3 and root["node_type"] == "group"
    assert {"sic", "atmos", "sic_trend", "filled", "polar_hole_km", "time", "trend_time"} <= set(
        root["consolidated_metadata"]["metadata"]
    )
    group = zarr.open_group(path, mode="r")
    # one chunk = 32 whole days of a channel group: a ~100-day sample reads a few of each
    assert group["sic"].chunks == (32, 16, 16) and group["sic_trend"].chunks == (32, 16, 16)
    assert group["atmos"].chunks == (32, 1, 16, 16)
    assert group["atmos"].attrs["channels"] == ["t2m_anom", "u10", "v10"]
    ds = parts[2004]
    assert ds["atmos"].dims == ("time", "channel", "yc", "xc")
    assert pd.DatetimeIndex(ds["time"].values).equals(pd.date_range("2004-01-01", "2004-12-31"))
    # the trend runs past the year by the horizon and a day: a forecast from 1 January has it
    trend_days = pd.DatetimeIndex(ds["trend_time"].values)
    assert trend_days[0] == pd.Timestamp("2004-01-01")
    assert trend_days[-1] == pd.Timestamp("2004-12-31") + pd.Timedelta(days=SPEC.leads + 1)
    assert ds.attrs["year"] == 2004 and ds.attrs["floecast_version"] == __version__
    assert json.loads(ds.attrs["training_years"]) == [2003, 2004]
    assert ds.attrs["cell_area_km2"] == CELL_AREA and ds.attrs["hemisphere"] == "north"


def test_channels_are_normalised_and_sic_stays_a_fraction(tiny_data, parts) -> None:
    stats = _load(tiny_data.statistics)
    norm = json.loads(stats.attrs["normalisation"])
    train = xr.concat([parts[2003]["atmos"], parts[2004]["atmos"]], dim="time").values.astype(np.float64)
    for c, key in enumerate(["t2m_anom", "u10", "v10"]):
        assert abs(train[:, c].mean()) < 1e-3, key
        assert train[:, c].std() == pytest.approx(1.0, abs=1e-3), key
    # the formula, recomputed from the interim file and the statistics
    interim = _load(tiny_data.interim("t2m", 2005))
    doy = interim["time"].dt.dayofyear.values
    expected = (interim["t2m"].values - stats["t2m_clim"].values[doy - 1] - norm["t2m_anom"][0]) / norm["t2m_anom"][1]
    np.testing.assert_allclose(parts[2005]["atmos"].values[:, 0], expected, atol=1e-5)
    sic = _load(tiny_data.interim("sic", 2004))
    np.testing.assert_array_equal(parts[2004]["sic"].values, np.nan_to_num(sic["sic"].values, nan=0.0))
    np.testing.assert_array_equal(parts[2004]["filled"].values, sic["filled"].values)
    np.testing.assert_array_equal(parts[2004]["polar_hole_km"].values, sic["polar_hole_km"].values)


def test_linear_trend_by_hand() -> None:
    fallback = np.array([0.7], np.float32)
    # years -1, -2, -3 at 0.5, 0.4, 0.3: 0.1 a year, so 0.6 in year 0
    assert linear_trend(np.array([[0.5], [0.4], [0.3]]), fallback) == pytest.approx([0.6])
    # a missing year is left out: -1 and -3 still give the same line
    assert linear_trend(np.array([[0.5], [np.nan], [0.3]]), fallback) == pytest.approx([0.6])
    assert linear_trend(np.array([[0.45], [np.nan], [np.nan]]), fallback) == pytest.approx([0.45])  # one year: its value
    assert linear_trend(np.full((3, 1), np.nan), fallback) == pytest.approx([0.7])  # none: the fallback
    assert linear_trend(np.array([[0.9], [0.5]]), fallback) == pytest.approx([1.0])  # 1.3, clipped


def test_trend_channel_uses_only_earlier_years(tiny_data, parts) -> None:
    stats = _load(tiny_data.statistics)
    land = stats["land"].values.astype(bool)
    s03, s04 = (np.nan_to_num(_load(tiny_data.interim("sic", y))["sic"]) for y in (2003, 2004))
    day = pd.Timestamp("2005-03-01")
    i03, i04 = (int(d.day_of_year) - 1 for d in (pd.Timestamp("2003-03-01"), pd.Timestamp("2004-03-01")))
    expected = np.where(land, 0.0, np.clip(2 * s04[i04] - s03[i03], 0, 1))  # the line through 2003 and 2004
    np.testing.assert_allclose(parts[2005]["sic_trend"].sel(trend_time=day).values, expected, atol=1e-6)
    # its first year has no earlier year: the training climatology of the day
    clim = stats["sic_clim"].sel(dayofyear=pd.Timestamp("2003-06-01").day_of_year).values
    np.testing.assert_allclose(parts[2003]["sic_trend"].sel(trend_time="2003-06-01").values, clim, atol=1e-6)
    # days after the data (2005-05 on) have their trend too: it needs no data of the day itself
    assert np.isfinite(parts[2005]["sic_trend"].sel(trend_time="2005-12-31").values).all()


def test_store_hash_is_recorded_and_reproducible(tiny_data, parts, tmp_path) -> None:
    hashes = [parts[y].attrs["content_sha256"] for y in tiny_data.years]
    assert all(re.fullmatch("[0-9a-f]{64}", h) for h in hashes) and len(set(hashes)) == 3
    assert combined_hash(hashes) == tiny_data.store_hash
    assert SampleStore.open(tiny_data.store, SPEC).attrs["content_sha256"] == tiny_data.store_hash
    again = _build(tiny_data.root / "interim", 2004, tiny_data.statistics, tmp_path / "2004.zarr")
    assert again == hashes[1]


def test_reader_without_torch_agrees_with_the_training_cache(tiny_data) -> None:
    """Verification reads the store through floecast.store (no torch): the same days, targets and
    masks as the training loader's cache, which it builds from the same reader."""
    days = read_store(tiny_data.store, leads=SPEC.leads)
    samples = SampleStore.open(tiny_data.store, SPEC)
    assert days.dates.equals(samples.dates) and days.attrs["content_sha256"] == tiny_data.store_hash
    np.testing.assert_array_equal(days.trend, samples.trend.numpy())
    dates = pd.date_range("2004-01-20", "2005-03-01", freq="9D")
    targets, weights = samples.targets(dates)
    for k in (1, SPEC.leads):
        fields = days.lead(dates, k)
        np.testing.assert_allclose(fields["observed"], targets[:, k - 1], atol=1e-6)  # / 250 here, * (1 / 250) there
        np.testing.assert_array_equal(fields["mask"], weights[:, k - 1].astype(bool))
        assert fields["mask"].any() and not fields["mask"].all()
    with pytest.raises(KeyError, match="lead 10 runs past the store's last day 2005-04-30"):
        days.lead(pd.DatetimeIndex(["2005-04-25"]), 10)
    assert not days.atmos  # verification reads no atmospheric channel


def test_training_years_parts_do_not_depend_on_the_test_year(tiny_data, parts, interim_copy, tmp_path) -> None:
    """A changed test year changes its own part only; the statistics never read it."""
    path = interim_copy / "t2m" / "2005.nc"
    ds = _load(path)
    ds["t2m"] = ds["t2m"] + 15.0
    path.unlink()
    ds.to_netcdf(path)
    for year in (2003, 2004):
        digest = _build(interim_copy, year, tiny_data.statistics, tmp_path / f"{year}.zarr")
        assert digest == parts[year].attrs["content_sha256"]
    digest = _build(interim_copy, 2005, tiny_data.statistics, tmp_path / "2005.zarr")
    assert digest != parts[2005].attrs["content_sha256"]
    std = json.loads(_load(tiny_data.statistics).attrs["normalisation"])["t2m_anom"][1]
    changed = _part(tmp_path / "2005.zarr")["atmos"].values[:, 0] - parts[2005]["atmos"].values[:, 0]
    np.testing.assert_allclose(changed, 15.0 / std, rtol=1e-4)


def _append_day(path: Path) -> None:
    """The interim file with one more day (a copy of its last), as the daily run adds one."""
    ds = _load(path)
    last = ds.isel(time=[-1])
    last = last.assign_coords(time=last["time"] + np.timedelta64(1, "D"))
    grown = xr.concat([ds, last], dim="time", data_vars="minimal")
    path.unlink()
    grown.to_netcdf(path)


def test_appending_a_day_rebuilds_only_the_current_year(tiny_data, interim_copy, tmp_path) -> None:
    store = tmp_path / "store" / "obs"
    shutil.copytree(tiny_data.store, store)
    shutil.copy(tiny_data.statistics, store.parent / "statistics.nc")
    before = SampleStore.open(store, SPEC)
    mtimes = {y: (store / f"{y}.zarr" / "zarr.json").stat().st_mtime_ns for y in (2003, 2004)}
    for variable in ("sic", *ATMOS_VARIABLES):
        _append_day(interim_copy / variable / "2005.nc")
    _build(interim_copy, 2005, tiny_data.statistics, store / "2005.zarr")
    after = SampleStore.open(store, SPEC)
    assert after.dates[-1] == before.dates[-1] + pd.Timedelta(days=1) == pd.Timestamp("2005-05-01")
    assert after.attrs["content_sha256"] != before.attrs["content_sha256"]
    assert {y: (store / f"{y}.zarr" / "zarr.json").stat().st_mtime_ns for y in (2003, 2004)} == mtimes
    # the new day is the last input of the next forecast; earlier samples are unchanged
    np.testing.assert_array_equal(
        after.inputs(pd.DatetimeIndex(["2005-05-02"]))[2][0, 0], after.inputs(pd.DatetimeIndex(["2005-05-01"]))[2][0, 0]
    )
    dates = before.init_dates((2004, 2004), stride=30)
    for a, b in zip(before.targets(dates), after.targets(dates), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_missing_or_bad_day_names_the_file_and_the_day(tiny_data, interim_copy, tmp_path) -> None:
    path = interim_copy / "u10" / "2004.nc"
    ds = _load(path)
    ds["u10"][40, 3, 3] = np.nan
    path.unlink()
    ds.to_netcdf(path)
    with pytest.raises(ValueError, match=r"u10/2004\.nc: u10 is missing or not finite on 2004-02-10"):
        _build(interim_copy, 2004, tiny_data.statistics, tmp_path / "2004.zarr")
    assert not (tmp_path / "2004.zarr").exists()  # nothing partial left under the final name
    ds["u10"][40, 3, 3] = 0.0
    ds.isel(time=slice(0, 100)).to_netcdf(tmp_path / "short.nc")  # the year stops on 9 April
    path.unlink()
    shutil.copy(tmp_path / "short.nc", path)
    with pytest.raises(ValueError, match=r"u10/2004\.nc: u10 is missing or not finite on 2004-04-10"):
        _build(interim_copy, 2004, tiny_data.statistics, tmp_path / "2004.zarr")


@pytest.fixture
def store_copy(tiny_data, tmp_path) -> Path:
    store = Path(shutil.copytree(tiny_data.store, tmp_path / "store" / "obs"))
    shutil.copy(tiny_data.statistics, store.parent / "statistics.nc")
    return store


def test_every_chunk_is_in_the_manifest_and_absent_float_chunks_read_as_nan(tiny_data) -> None:
    path = tiny_data.store / "2004.zarr"
    group = zarr.open_group(path, mode="r")
    manifest = dict(group.attrs["chunk_sha256"])
    on_disk = {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and "/c/" in f"/{p.relative_to(path)}"}
    assert set(manifest) == on_disk  # every chunk written, and every chunk written is listed
    assert {"sic/c/11/0/0", "atmos/c/11/2/0/0", "filled/c/0", "time/c/0"} <= set(manifest)
    assert np.isnan(group["sic"].fill_value) and np.isnan(group["atmos"].fill_value)
    assert read_store(path, leads=SPEC.leads).attrs.keys().isdisjoint({"chunk_sha256"})


@pytest.mark.parametrize("reader", ["read_store", "training cache"])
def test_a_missing_chunk_is_refused_naming_the_part_and_the_chunk(store_copy, reader) -> None:
    """zarr reads an absent chunk as the fill value: without the manifest those days would be SIC 0."""
    (store_copy / "2004.zarr" / "sic" / "c" / "4" / "0" / "0").unlink()
    with pytest.raises(StoreIntegrityError, match=r"2004\.zarr: chunk sic/c/4/0/0 is missing; the part is incomplete"):
        if reader == "read_store":
            read_store(store_copy, leads=SPEC.leads)
        else:
            SampleStore.open(store_copy, SPEC)


def test_a_changed_value_or_byte_is_refused_naming_the_chunk(store_copy) -> None:
    part = store_copy / "2004.zarr"
    zarr.open_group(part, mode="r+")["atmos"][100, 1, 5, 5] = 0.25  # a value that decodes: caught by its hash
    with pytest.raises(StoreIntegrityError, match=r"2004\.zarr: chunk atmos/c/3/1/0/0 differs from what was written"):
        read_store(store_copy, leads=SPEC.leads, atmos=["u10"])
    read_store(store_copy, leads=SPEC.leads)  # a reader that skips the channels does not read that chunk

    chunk = part / "sic" / "c" / "2" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte of the compressed chunk
    chunk.write_bytes(bytes(data))
    with pytest.raises(StoreIntegrityError, match=r"2004\.zarr: chunk sic/c/2/0/0 (cannot be read|differs)"):
        read_store(store_copy, leads=SPEC.leads)


def test_a_part_without_a_manifest_is_checked_by_its_content_hash(store_copy, tiny_data) -> None:
    """Parts written before the manifest: the content hash over every array catches a missing chunk."""
    part = store_copy / "2004.zarr"
    group = zarr.open_group(part, mode="r+")
    del group.attrs["chunk_sha256"]
    assert part_content_hash(part) == group.attrs["content_sha256"]
    assert read_store(store_copy, leads=SPEC.leads).attrs["content_sha256"] == tiny_data.store_hash
    (part / "sic_trend" / "c" / "3" / "0" / "0").unlink()
    with pytest.raises(StoreIntegrityError, match=r"2004\.zarr: its content hash differs from the recorded content_sha256"):
        read_store(store_copy, leads=SPEC.leads)
