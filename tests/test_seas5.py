"""SEAS5 through the real ``cdsapi`` against the local CDS server (GRIB fixtures in SEAS5's layout), the alignment
of init dates, leads and valid dates, the EASE2 interim files, and the synthetic SEAS5-like source."""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from servers import seas5 as fixture
from servers.cds import CdsServer

from floecast.grid import Ease2Grid
from floecast.seas5_benchmark import Seas5Hindcast, hindcast_init_dates, method_name, regrid_seas5
from floecast.sources import seas5
from floecast.sources.era5 import make_cds_client

KEY = "c0ffee00-1234-5678-9abc-def012345678"
FAST = {"retry_max": 3, "sleep_max": 0.01, "timeout": 5.0}
START = dt.date(2023, 3, 1)
LEADS = 4
TOL = 1e-4  # 16-bit packing of values in [0, 1]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("CDSAPI_URL", "CDSAPI_KEY", "ECMWF_DATASTORES_URL", "ECMWF_DATASTORES_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CDSAPI_RC", str(tmp_path / "no-cdsapirc"))
    monkeypatch.setenv("ECMWF_DATASTORES_RC_FILE", str(tmp_path / "no-datastoresrc"))


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CdsServer]:
    from ecmwf.datastores import processing

    monkeypatch.setattr(processing, "time", types.SimpleNamespace(sleep=lambda s: None))
    with CdsServer(tmp_path / "srv", key=KEY) as srv:
        monkeypatch.setenv("CDSAPI_URL", srv.base_url)
        monkeypatch.setenv("CDSAPI_KEY", KEY)
        yield srv


def test_request_keys_and_systems() -> None:
    request = seas5.seas5_request(START, 3, "north", 60.0)
    assert request == {
        "originating_centre": "ecmwf",
        "system": "51",
        "variable": ["sea_ice_cover"],
        "year": ["2023"],
        "month": ["03"],
        "day": ["01"],
        "leadtime_hour": ["48", "72", "96"],  # lead k is the mean over 24k-24(k+1) h: lead 1 ends at 48 h
        "data_format": "grib",
        "area": [90.0, -180.0, 60.0, 180.0],
    }
    assert seas5.seas5_request(dt.date(2019, 6, 1), 1, "south", 50.0, grid_deg=2.0)["system"] == "5"
    assert seas5.system_for(dt.date(2010, 6, 1)) == "51"  # hindcast years: SEAS5.1's hindcasts
    assert seas5.system_for(dt.date(2022, 10, 1)) == "5" and seas5.system_for(dt.date(2022, 11, 1)) == "51"
    assert seas5.system_for(dt.date(2019, 6, 1), "51") == "51"
    with pytest.raises(ValueError, match="1st of each month"):
        seas5.seas5_request(dt.date(2023, 3, 2), 3, "north", 60.0)


def test_lead_of_a_step_range() -> None:
    assert seas5.leadtime_hours(2) == ["48", "72"]
    assert seas5.lead_of_step_range(24, 48) == 1  # 00 UTC of D + 1 to 00 UTC of D + 2: the day D + 1
    assert seas5.lead_of_step_range(0, 24) == 0  # the init day itself (not fetched)
    with pytest.raises(ValueError, match="not one day"):
        seas5.lead_of_step_range(18, 42)


def test_hindcast_dates_include_the_month_starts() -> None:
    candidates = pd.date_range("2017-01-03", "2017-04-20", freq="D")
    dates = hindcast_init_dates(candidates, 7)
    every_week = pd.date_range("2017-01-03", "2017-04-20", freq="7D")
    assert every_week.isin(dates).all()
    assert set(dates.difference(every_week)) == {pd.Timestamp(f"2017-0{m}-01") for m in (2, 3, 4)}
    assert hindcast_init_dates(candidates, 7, month_starts=False).equals(every_week)


def test_fetch_through_cdsapi(server: CdsServer, tmp_path: Path) -> None:
    target = tmp_path / "raw" / "2023-03-01.grib"
    client = make_cds_client(**FAST)
    result = seas5.fetch_seas5(START, LEADS, "north", target, area_lat=60.0, client=client)
    assert result.status == "fetched" and target.exists()
    submitted = [r.body["inputs"] for r in server.records if r.kind == "submit"]
    assert submitted == [seas5.seas5_request(START, LEADS, "north", 60.0)]
    ds = seas5.read_seas5_grib(target, START, LEADS)
    assert ds.sizes == {"member": 51, "leadtime": LEADS, "latitude": 30, "longitude": 360}
    assert ds["latitude"].values[[0, -1]].tolist() == [89.5, 60.5] and ds["longitude"].values[0] == -179.5
    # the alignment: lead k is the mean over the day START + k, and is valid then
    valid = pd.DatetimeIndex(ds["valid_time"].values)
    assert valid.equals(pd.date_range("2023-03-02", periods=LEADS, freq="D"))
    lat, lon = ds["latitude"].values[:, None], ds["longitude"].values[None, :]
    for k in (1, LEADS):
        for member in (0, 50):
            expected = fixture.value(START + dt.timedelta(days=k), member, lat, lon)
            got = ds["sic"].sel(leadtime=k, member=member).values
            np.testing.assert_allclose(got, expected, atol=TOL, equal_nan=True)
    wrong_day = fixture.value(START + dt.timedelta(days=2), 0, lat, lon)  # what an off-by-one would read
    assert not np.allclose(ds["sic"].sel(leadtime=1, member=0).values, wrong_day, atol=TOL, equal_nan=True)
    before = len(server.records)
    assert seas5.fetch_seas5(START, LEADS, "north", target, area_lat=60.0, client=client).status == "skipped"
    assert len(server.records) == before  # a valid file is not fetched again


def test_hindcast_start_has_25_members(server: CdsServer, tmp_path: Path) -> None:
    target = tmp_path / "2010-01-01.grib"
    seas5.fetch_seas5(dt.date(2010, 1, 1), 2, "north", target, area_lat=80.0, client=make_cds_client(**FAST))
    assert seas5.read_seas5_grib(target)["member"].values.tolist() == list(range(25))
    assert [r.body["inputs"]["system"] for r in server.records if r.kind == "submit"] == ["51"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda request: fixture.make_seas5_grib(request, drop=(7, 72)), "member 7 lacks lead 2"),
        (lambda request: fixture.make_seas5_grib(request, step_type="instant"), "stepType 'instant'"),
        (lambda request: b"GRIB" + b"\0" * 100, "not readable GRIB"),
    ],
)
def test_bad_delivery_is_rejected(server: CdsServer, tmp_path: Path, tamper, reason: str) -> None:
    server.tamper = lambda ds, request: tamper(request)
    target = tmp_path / "raw" / "2023-03-01.grib"
    with pytest.raises(seas5.InvalidSeas5, match=reason):
        seas5.fetch_seas5(START, LEADS, "north", target, area_lat=70.0, client=make_cds_client(**FAST))
    assert not target.exists()
    assert (target.parent / "rejected" / target.name).exists()
    assert reason.split()[0] in (target.parent / "rejected" / f"{target.name}.reason.txt").read_text()


def test_interim_files_keep_the_alignment(server: CdsServer, tmp_path: Path) -> None:
    """Through the regridding onto EASE2 and back out by lead, lead k of D is still the day D + k."""
    client = make_cds_client(**FAST)
    raws = []
    for start in (dt.date(2023, 3, 1), dt.date(2023, 4, 1)):
        raws.append(tmp_path / f"{start}.grib")
        seas5.fetch_seas5(start, LEADS, "north", raws[-1], area_lat=60.0, client=client)
    grid = Ease2Grid("north", 24)  # 600 km cells
    out = tmp_path / "interim" / "2023.nc"
    regrid_seas5(raws, out, grid, "cds", cache_dir=tmp_path / "weights")
    bench = Seas5Hindcast([out])
    assert bench.method == "seas5" and bench.members == 51 and bench.leads == LEADS
    dates = pd.DatetimeIndex(["2023-03-01", "2023-03-08", "2023-04-01"])
    shared = bench.shared(dates)
    assert shared.equals(pd.DatetimeIndex(["2023-03-01", "2023-04-01"]))
    lat = grid.lat
    for k in (1, 3):
        fields = bench.lead(shared, k)
        assert fields.shape == (51, 2, *grid.shape)
        for i, start in enumerate(shared):
            expected = fixture.value((start + pd.Timedelta(days=k)).date(), 0, lat, 170.0)  # zonal: no land at 170 E
            deep = lat > 82.0  # far from the edge, where regridding cannot blur it
            np.testing.assert_allclose(fields[0, i][deep], expected[deep], atol=5e-3)
    with pytest.raises(KeyError, match="2023-03-08"):
        bench.lead(dates, 1)
    bench.close()


def test_synthetic_seas5_like_forecast(tmp_path: Path) -> None:
    grid = Ease2Grid("north", 24)
    params = seas5.SyntheticSeas5Params(members=3)
    raw = tmp_path / "2005-03-01.grib"
    seas5.write_synthetic_seas5(raw, grid, dt.date(2005, 3, 1), 20, 40.0, params, grid_deg=3.0)
    ds = seas5.read_seas5_grib(raw, dt.date(2005, 3, 1), 20)
    assert ds.sizes["member"] == 3 and ds.attrs["param_id"] in seas5.PARAM_IDS
    out = tmp_path / "2005.nc"
    regrid_seas5([raw], out, grid, "synthetic", cache_dir=tmp_path / "weights")
    bench = Seas5Hindcast([out])
    assert bench.method == method_name("synthetic") == "seas5_synthetic"
    assert "SYNTHETIC" in bench.files[0].attrs["source"] and "SYNTHETIC" in bench.files[0]["sic"].attrs["long_name"]
    from floecast.sources.synthetic import SyntheticParams, simulate

    truth = simulate(grid, dt.date(2005, 3, 2), dt.date(2005, 3, 21), SyntheticParams(seed=42)).sic
    ocean = np.isfinite(truth[0])
    date = pd.DatetimeIndex(["2005-03-01"])
    error = {k: np.sqrt(np.mean((bench.lead(date, k)[:, 0][:, ocean] - truth[k - 1][ocean]) ** 2)) for k in (1, 20)}
    assert error[20] > error[1]  # the error grows with lead
    extent = {k: (bench.lead(date, k)[:, 0][:, ocean] > 0.15).sum(axis=1).mean() for k in (1, 20)}
    observed = {k: (truth[k - 1][ocean] > 0.15).sum() for k in (1, 20)}
    assert extent[20] > observed[20]  # biased towards too much ice
    bench.close()
