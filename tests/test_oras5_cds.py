"""ORAS5 (``reanalysis-oras5``) and ERA5 SST through the real ``cdsapi`` client against the local CDS
(tests/servers/cds.py): the request keys, the zip of ORCA-layout month files, what a re-run fetches,
the newest months the CDS lacks, and the days after ERA5's newest for a variable open data lacks."""

from __future__ import annotations

import datetime as dt
import json
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from servers.cds import ORAS5_GRID, CdsServer, oras5_land, oras5_value

from floecast.fill import causal_daily
from floecast.grid import Ease2Grid
from floecast.preprocess import regrid_field
from floecast.sources import atmos, oras5
from floecast.sources.era5 import EXPVER_PERSISTED, CdsRequestError, era5_request, fetch_era5_month, make_cds_client
from floecast.sources.oras5 import fetch_oras5_year, oras5_request, read_oras5_variable, validate_oras5_month

KEY = "c0ffee00-1234-5678-9abc-def012345678"
FAST = {"retry_max": 4, "sleep_max": 0.01, "timeout": 5.0}
GRID = Ease2Grid("north", 27)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CdsServer]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CDSAPI_RC", str(tmp_path / "no-cdsapirc"))
    monkeypatch.setenv("ECMWF_DATASTORES_RC_FILE", str(tmp_path / "no-datastoresrc"))
    from ecmwf.datastores import processing

    monkeypatch.setattr(processing, "time", types.SimpleNamespace(sleep=lambda s: None))  # no real poll sleeps
    with CdsServer(tmp_path / "srv", key=KEY, polls_accepted=1, polls_running=1) as srv:
        monkeypatch.setenv("CDSAPI_URL", srv.base_url)
        monkeypatch.setenv("CDSAPI_KEY", KEY)
        yield srv


def submitted(server: CdsServer) -> list[tuple[str, dict]]:
    return [
        (r.path.split("/")[-2], r.body["inputs"]) for r in server.records if r.method == "POST" and r.path.endswith("/execution")
    ]


def test_request_keys() -> None:
    assert oras5_request("sithick", 2014, [1, 2, 3]) == {
        "product_type": ["consolidated"],
        "vertical_resolution": "single_level",
        "variable": ["sea_ice_thickness"],
        "year": ["2014"],
        "month": ["01", "02", "03"],
        "download_format": "zip",
    }
    assert oras5_request("ohc300", 2015, [12])["product_type"] == ["operational"]
    assert oras5_request("ohc300", 2015, [12])["variable"] == ["ocean_heat_content_for_the_upper_300m"]
    with pytest.raises(ValueError, match="no ORAS5 counterpart"):
        oras5_request("t2m", 2015, [1])
    assert era5_request("sst", 2020, 2, "north")["variable"] == ["sea_surface_temperature"]


def test_a_year_of_months_in_one_request_on_the_orca_grid(server: CdsServer, tmp_path: Path) -> None:
    target = tmp_path / "oras5/sithick/north/2014.nc"
    counts = fetch_oras5_year("sithick", 2014, "north", dt.date(2014, 12, 31), target, client=make_cds_client(**FAST))
    assert counts == {"months": list(range(1, 13)), "missing": [], "fetched": list(range(1, 13))}
    (dataset, request), *others = submitted(server)
    assert not others and dataset == "reanalysis-oras5"
    assert request == oras5_request("sithick", 2014, range(1, 13))
    files = sorted(p.name for p in (tmp_path / "oras5/sithick/files").glob("*.nc"))
    assert files[0] == "iicethic_control_monthly_highres_2D_201401_CONS_v0.1.nc" and len(files) == 12
    lat, lon = ORAS5_GRID
    rows = (lat >= 15).any(axis=1)
    with xr.open_dataset(target) as ds:
        da = ds["iicethic"]
        assert da.dims == ("time", "y", "x") and ds["nav_lat"].dims == ("y", "x")
        assert da.sizes["y"] == rows.sum() < lat.shape[0]  # the grid rows south of 15N are cut
        expected = oras5_value("iicethic", 2014, 3, lat[rows], lon[rows])
        np.testing.assert_allclose(da.values[2], expected, rtol=1e-6, equal_nan=True)
        assert json.loads(ds.attrs["floecast_months_missing"]) == []
    read = read_oras5_variable(target, "sithick")
    assert read.dims == ("time", "y", "x") and pd.Timestamp(read["time"].values[0]) == pd.Timestamp("2014-01-15")


def test_a_rerun_requests_only_the_months_not_there_and_the_newest_come_later(server: CdsServer, tmp_path: Path) -> None:
    """ORAS5's newest month is about two weeks old: months after the catalogue's newest are not asked for
    and are listed as missing; once published, a re-run fetches just them."""
    server.oras5_end = "2026-08-31T00:00:00Z"
    target = tmp_path / "oras5/ohc300/north/2026.nc"
    client = make_cds_client(**FAST)
    counts = fetch_oras5_year("ohc300", 2026, "north", dt.date(2026, 11, 20), target, client=client)
    assert counts["months"] == list(range(1, 9)) and counts["missing"] == [9, 10]
    assert submitted(server)[-1][1]["month"] == [f"{m:02d}" for m in range(1, 9)]
    assert submitted(server)[-1][1]["product_type"] == ["operational"]
    server.oras5_end = "2026-10-31T00:00:00Z"
    counts = fetch_oras5_year("ohc300", 2026, "north", dt.date(2026, 11, 20), target, client=client)
    assert counts == {"months": list(range(1, 11)), "missing": [], "fetched": [9, 10]}
    assert submitted(server)[-1][1]["month"] == ["09", "10"]
    before = len(server.records)
    fetch_oras5_year("ohc300", 2026, "north", dt.date(2026, 11, 20), target, client=client)
    assert len(server.records) == before  # nothing new: nothing asked, the catalogue not even read


def test_a_month_the_cds_lacks_fails_the_job_with_its_reason(server: CdsServer, tmp_path: Path) -> None:
    server.oras5_end = "2026-08-31T00:00:00Z"
    with pytest.raises(CdsRequestError, match="No data available for 2026-09"):
        fetch_oras5_year("mld", 2026, "north", dt.date(2026, 10, 5), tmp_path / "mld/north/2026.nc", newest=(2026, 9))


def test_a_bad_month_is_rejected_with_its_reason(server: CdsServer, tmp_path: Path) -> None:
    server.tamper = lambda ds, request: ds.assign(iicethic=ds["iicethic"].assign_attrs(units="cm"))
    with pytest.raises(ValueError, match=r"iicethic units 'cm', expected 'm'.*moved to") as failure:
        fetch_oras5_year("sithick", 2014, "north", dt.date(2014, 2, 28), tmp_path / "sithick/north/2014.nc", newest=(2020, 1))
    assert "rejected" in str(failure.value)
    assert not list((tmp_path / "sithick/files").glob("*.nc")) and not (tmp_path / "sithick/north/2014.nc").exists()


def test_month_files_are_validated(server: CdsServer, tmp_path: Path) -> None:
    from servers.cds import make_oras5_month

    path = tmp_path / "m.nc"
    make_oras5_month("sea_ice_thickness", 2014, 5).to_netcdf(path)
    validate_oras5_month(path, "sithick", 2014, 5)
    with pytest.raises(ValueError, match="is not in 2014-06"):
        validate_oras5_month(path, "sithick", 2014, 6)
    make_oras5_month("sea_ice_thickness", 2014, 5).drop_vars("nav_lat").to_netcdf(tmp_path / "bad.nc")
    with pytest.raises(ValueError, match="no 2-D nav_lat"):
        validate_oras5_month(tmp_path / "bad.nc", "sithick", 2014, 5)


def test_orca_months_become_causal_days_on_ease2(server: CdsServer, tmp_path: Path) -> None:
    """The regrid step: ORCA (curvilinear) onto EASE2 by area shares, ice-free ocean 0, and days that use
    only months ended by then; the newest days persist the last month, flagged."""
    client = make_cds_client(**FAST)
    raw = [tmp_path / f"oras5/sithick/north/{y}.nc" for y in (2013, 2014)]
    fetch_oras5_year("sithick", 2013, "north", dt.date(2013, 12, 31), raw[0], client=client, newest=(2014, 2))
    fetch_oras5_year("sithick", 2014, "north", dt.date(2014, 12, 31), raw[1], client=client, newest=(2014, 2))
    out = tmp_path / "interim/sithick/2014.nc"
    regrid_field(
        raw, out, GRID, "sithick", "oras5", cache_dir=tmp_path / "weights", period=(dt.date(2014, 1, 1), dt.date(2014, 6, 30))
    )
    with xr.open_dataset(out) as ds:
        values, persisted = ds["sithick"].values, ds["persisted"].values.astype(bool)
        days = pd.DatetimeIndex(ds["time"].values)
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() > 1.0
    # January's mean (the last month) is known from the end of February: after that, persisted
    assert not persisted[days <= "2014-03-31"].any() and persisted[days > "2014-03-31"].all()
    # against the fixture's own monthly values at the cell centres, interpolated alike
    months = pd.DatetimeIndex([pd.Timestamp(2013, m, 15) for m in range(1, 13)] + [pd.Timestamp(2014, m, 15) for m in (1, 2)])
    tlon, tlat = GRID.lonlat
    ice = (tlat > 80.0) & ~oras5_land(tlat, tlon)
    monthly = np.stack([oras5_value("iicethic", t.year, t.month, tlat, tlon) for t in months])
    reference, _ = causal_daily(months, monthly, days)
    # the fixture field is smooth where the ice is thick: cell means agree with the centre values
    np.testing.assert_allclose(values[:, ice], reference[:, ice], atol=0.25)


def test_era5_sst_month_is_fetched_with_its_land_missing(server: CdsServer, tmp_path: Path) -> None:
    from servers.cds import land

    client = make_cds_client(**FAST)
    fetch_era5_month("sst", 2020, 2, "north", tmp_path / "sst/02.nc", client=client)
    assert submitted(server)[-1] == ("reanalysis-era5-single-levels", era5_request("sst", 2020, 2, "north"))
    with xr.open_dataset(tmp_path / "sst/02.nc") as ds:
        sst = ds["sst"].values
        lat, lon = np.meshgrid(ds["latitude"].values, ds["longitude"].values, indexing="ij")
    assert np.isnan(sst[:, land(lat, lon)]).all() and np.isfinite(sst[:, ~land(lat, lon)]).all()


def test_sst_days_after_era5s_newest_persist_it_without_open_data(server: CdsServer, tmp_path: Path, monkeypatch) -> None:
    """The ECMWF open-data HRES has no SST: the days ERA5 lacks repeat its newest day, flagged, and no
    open-data request is made; the regrid step carries the flag."""
    server.era5_end = "2021-01-05T23:00:00Z"
    monkeypatch.setattr(atmos, "fetch_opendata_day", lambda *a, **k: pytest.fail("SST has no open-data parameter"))
    monkeypatch.setattr("floecast.sources.era5.make_cds_client", lambda **k: make_cds_client(**FAST))
    target = tmp_path / "era5/sst/north/2021.nc"
    counts = atmos.fetch_atmos_days(
        "sst", "north", dt.date(2021, 1, 1), dt.date(2021, 1, 8), target, realtime_url="http://127.0.0.1:1/unused"
    )
    assert counts == {"era5_days": 5, "hres_days": 0, "persisted_days": 3}
    with xr.open_dataset(target) as ds:
        assert [str(e) for e in ds["expver"].values] == ["0001"] * 5 + [EXPVER_PERSISTED] * 3
        np.testing.assert_array_equal(ds["sst"].values[5], ds["sst"].values[4])
        np.testing.assert_array_equal(ds["sst"].values[7], ds["sst"].values[4])
    out = tmp_path / "interim/sst/2021.nc"
    regrid_field([target], out, GRID, "sst", "era5", cache_dir=tmp_path / "weights")
    with xr.open_dataset(out) as ds:
        assert list(ds["persisted"].values) == [0] * 5 + [1] * 3
        assert np.isfinite(ds["sst"].values).all() and ds["source_land"].values.any()  # its land: the nearest SST
    assert oras5.DATASET == "reanalysis-oras5"


def test_the_delivery_is_a_zip_of_month_files(server: CdsServer, tmp_path: Path) -> None:
    client = make_cds_client(**FAST)
    client.retrieve("reanalysis-oras5", oras5_request("mld", 2015, [1, 2]), str(tmp_path / "d.zip"))
    with zipfile.ZipFile(tmp_path / "d.zip") as archive:
        assert sorted(archive.namelist()) == [
            "somxl010_control_monthly_highres_2D_201501_OPER_v0.1.nc",
            "somxl010_control_monthly_highres_2D_201502_OPER_v0.1.nc",
        ]
