"""The real ``ecmwf-opendata`` client against a local open-data portal (tests/servers/opendata.py).

The client is the installed ``ecmwf.opendata.Client`` pointed at the server's ``/forecasts``
root; it reads the ``.index`` files and fetches GRIB2 messages with byte ranges (several
ranges per request, answered ``multipart/byteranges``). Its retries are made fast with its own
constructor arguments (``maximum_retries``, ``retry_after``). The fixture GRIB2 fields are on
a coarse 2.5-degree grid with known daily means (packed at 16 bits, hence the tolerances).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from servers.opendata import OpendataServer, daily_mean, relpath

from floecast.sources import ecmwf_opendata as od
from floecast.sources.ecmwf_opendata import (
    EXPVER_OPENDATA,
    InvalidOpendata,
    OpendataError,
    OpendataNotAvailable,
    fetch_opendata_day,
    make_opendata_client,
    newest_opendata_day,
    validate_opendata_day,
)
from floecast.sources.era5 import read_era5_variable
from floecast.sources.http import NotAvailable

DAY = dt.date(2026, 11, 24)
STEPS = tuple(range(0, 28, 3))  # the run's files up to 27 h: steps past the day must not be used
FAST = {"maximum_tries": 3, "retry_after": 0.01, "timeout": 1.0}
ATOL = {"t2m": 2e-3, "u10": 1e-3, "v10": 1e-3, "msl": 0.05}  # 16-bit packing of the fixture
GRIB_NAME = {"t2m": "2t", "u10": "10u", "v10": "10v", "msl": "msl"}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[OpendataServer]:
    with OpendataServer() as srv:
        srv.add_run(DAY, steps=STEPS)
        yield srv


@pytest.fixture
def client(server: OpendataServer):
    return make_opendata_client(server.base_url, **FAST)


def expected(key: str, ds: xr.Dataset) -> np.ndarray:
    return daily_mean(GRIB_NAME[key], DAY, ds["latitude"].values[:, None], ds["longitude"].values[None, :])


def test_day_daily_means_in_era5_layout(server: OpendataServer, client, tmp_path: Path) -> None:
    target = tmp_path / "raw" / "ecmwf" / "north" / "2026-11-24.nc"
    result = fetch_opendata_day(DAY, ["t2m", "u10", "v10", "msl"], "north", target, area_lat=60.0, client=client)
    assert result.status == "fetched" and result.path == target

    # the protocol: one index per step 0..21 (not 24, 27), then the GRIB files by byte ranges
    steps = range(0, 24, 3)
    assert [r.path for r in server.requests("GET", ".index")] == [relpath(DAY, s, ext="index") for s in steps]
    gets = server.requests("GET", ".grib2")
    assert [r.path for r in gets] == [relpath(DAY, s) for s in steps] and {r.status for r in gets} == {206}
    assert all(r.range is not None and r.range.count(",") == 3 for r in gets)  # 4 messages, not contiguous
    assert list(result.urls) == [server.url(relpath(DAY, s)) for s in steps]

    with xr.open_dataset(target) as ds:
        assert set(ds.data_vars) == {"t2m", "u10", "v10", "msl", "number", "expver"}
        assert ds.sizes == {"valid_time": 1, "latitude": 13, "longitude": 144}
        assert ds["latitude"].values[[0, -1]].tolist() == [90.0, 60.0] and (np.diff(ds["latitude"].values) < 0).all()
        assert ds["longitude"].values[[0, -1]].tolist() == [-180.0, 177.5] and (np.diff(ds["longitude"].values) > 0).all()
        assert pd.DatetimeIndex(ds["valid_time"].values).equals(pd.DatetimeIndex(["2026-11-24"]))
        assert ds["expver"].dims == ("valid_time",) and ds["expver"].values.tolist() == [EXPVER_OPENDATA]
        assert int(ds["number"]) == 0
        units = {k: ds[k].attrs["units"] for k in ("t2m", "u10", "v10", "msl")}
        assert units == {"t2m": "K", "u10": "m s**-1", "v10": "m s**-1", "msl": "Pa"}
        assert ds["t2m"].attrs["GRIB_paramId"] == 167 and ds["msl"].attrs["GRIB_paramId"] == 151
        for key in ("t2m", "u10", "v10", "msl"):
            assert ds[key].dims == ("valid_time", "latitude", "longitude") and ds[key].dtype == np.float32
            np.testing.assert_allclose(ds[key].values[0], expected(key, ds), rtol=0, atol=ATOL[key], err_msg=key)
        # including step 24 (00 UTC of the next day) would have moved the mean by about 0.4 K
        assert ds.attrs["floecast_steps"] == "0,3,6,9,12,15,18,21"
    assert read_era5_variable(target, "t2m").dims == ("time", "latitude", "longitude")  # what the regrid step reads
    validate_opendata_day(target, DAY, ["t2m", "u10", "v10", "msl"], "north", area_lat=60.0)
    assert not [p for p in target.parent.iterdir() if p.name != target.name]  # no temporary files left

    # a second run requests nothing
    before = len(server.records)
    again = fetch_opendata_day(DAY, ["t2m", "u10", "v10", "msl"], "north", target, area_lat=60.0, client=client)
    assert again.status == "skipped" and again.urls == () and len(server.records) == before


def test_south_hemisphere_cut_and_six_hourly_steps(server: OpendataServer, client, tmp_path: Path) -> None:
    target = tmp_path / "south.nc"
    fetch_opendata_day(DAY, ["t2m", "v10"], "south", target, area_lat=50.0, client=client, steps=(0, 6, 12, 18))
    assert len(server.requests("GET", ".index")) == 4
    with xr.open_dataset(target) as ds:
        assert set(ds.data_vars) == {"t2m", "v10", "number", "expver"}
        assert ds["latitude"].values[[0, -1]].tolist() == [-50.0, -90.0] and ds.sizes["latitude"] == 17
        assert ds.sizes["longitude"] == 144
        for key in ("t2m", "v10"):
            np.testing.assert_allclose(ds[key].values[0], expected(key, ds), rtol=0, atol=ATOL[key])


def test_retries_after_503_and_read_timeout(server: OpendataServer, client, tmp_path: Path) -> None:
    server.fail("-0h-oper-fc.index", status=503)
    server.fail("-6h-oper-fc.grib2", status=503, times=2)
    server.fail("-12h-oper-fc.grib2", status=None, stall=1.5)  # longer than the client's 1 s read timeout
    target = tmp_path / "t2m.nc"
    fetch_opendata_day(DAY, ["t2m"], "north", target, area_lat=60.0, client=client)
    assert [r.status for r in server.requests("GET", "-0h-oper-fc.index")] == [503, 200]
    assert [r.status for r in server.requests("GET", "-6h-oper-fc.grib2")] == [503, 503, 206]
    assert [r.status for r in server.requests("GET", "-12h-oper-fc.grib2")] == [206, 206]  # the stalled one and its retry
    with xr.open_dataset(target) as ds:
        np.testing.assert_allclose(ds["t2m"].values[0], expected("t2m", ds), rtol=0, atol=ATOL["t2m"])


def test_retries_used_up(server: OpendataServer, client, tmp_path: Path) -> None:
    server.fail("-3h-oper-fc.grib2", status=503, times=10)
    with pytest.raises(OpendataError, match=r"HTTP 503 for http://127\.0\.0\.1:\d+/forecasts/20261124/00z/.*-3h-oper-fc\.grib2"):
        fetch_opendata_day(DAY, ["t2m"], "north", tmp_path / "x.nc", client=client)
    assert len(server.requests("GET", "-3h-oper-fc.grib2")) == FAST["maximum_tries"]
    assert list(tmp_path.iterdir()) == []


def test_missing_day_and_unfinished_run(server: OpendataServer, client, tmp_path: Path) -> None:
    target = tmp_path / "day.nc"
    missing = dt.date(2026, 11, 20)
    with pytest.raises(OpendataNotAvailable, match=r"2026-11-20 .*HTTP 404 for http://.*/20261120/00z/ifs/0p25/oper/") as info:
        fetch_opendata_day(missing, ["t2m", "u10"], "north", target, client=client)
    assert isinstance(info.value, NotAvailable) and info.value.day == missing and info.value.status == 404
    assert "20261120000000-0h-oper-fc.index" in info.value.url
    assert len(server.requests("GET", ".index")) == 1  # a 404 is not retried

    server.add_run(missing, steps=range(0, 13, 3))  # a run still being published: steps 0..12 only
    with pytest.raises(OpendataNotAvailable, match=r"20261120000000-15h-oper-fc\.index"):
        fetch_opendata_day(missing, ["t2m"], "north", target, client=client)
    assert list(tmp_path.iterdir()) == []


def test_bad_deliveries_are_rejected(server: OpendataServer, client, tmp_path: Path) -> None:
    # a run without msl: the client finds the other fields, the check names the missing one
    run = dt.date(2026, 11, 25)
    server.add_run(run, steps=range(0, 22, 3), params=("2t", "10u", "10v"))
    with pytest.raises(InvalidOpendata, match=r"msl \(msl\) missing at step\(s\) \[0, 3, .* 21\] h") as info:
        fetch_opendata_day(run, ["t2m", "msl"], "north", tmp_path / "a.nc", client=client)
    assert info.value.rejected == tmp_path / "rejected" / "a.nc.grib2" and info.value.rejected.exists()
    assert "missing" in (tmp_path / "rejected" / "a.nc.grib2.reason.txt").read_text()

    # 2 m temperature in degrees Celsius at one step
    run = dt.date(2026, 11, 26)
    server.add_run(run, steps=range(0, 22, 3), tamper=lambda p, s, v: v - 273.15 if (p, s) == ("2t", 9) else v)
    with pytest.raises(InvalidOpendata, match=r"t2m outside its valid range \[180, 340\] at step 9 h"):
        fetch_opendata_day(run, ["t2m"], "north", tmp_path / "b.nc", client=client)
    assert not (tmp_path / "a.nc").exists() and not (tmp_path / "b.nc").exists()

    with pytest.raises(ValueError, match="no open-data HRES field for \\['sst'\\]"):
        fetch_opendata_day(DAY, ["t2m", "sst"], "north", tmp_path / "c.nc", client=client)


def test_invalid_existing_target_is_fetched_again(server: OpendataServer, client, tmp_path: Path) -> None:
    target = tmp_path / "day.nc"
    fetch_opendata_day(DAY, ["t2m"], "north", target, area_lat=60.0, client=client)
    # another variable list: the file lacks u10, so it is set aside and fetched again
    fetch_opendata_day(DAY, ["t2m", "u10"], "north", target, area_lat=60.0, client=client)
    assert (tmp_path / "rejected" / "day.nc").exists()
    assert "no variable 'u10'" in (tmp_path / "rejected" / "day.nc.reason.txt").read_text()
    validate_opendata_day(target, DAY, ["t2m", "u10"], "north", area_lat=60.0)
    with pytest.raises(ValueError, match="valid_time"):
        validate_opendata_day(target, DAY + dt.timedelta(days=1), ["t2m"], "north", area_lat=60.0)


def test_newest_opendata_day(monkeypatch: pytest.MonkeyPatch) -> None:
    today = dt.datetime.now(dt.UTC).date()  # today's and yesterday's run are looked at
    yesterday = today - dt.timedelta(days=1)
    with OpendataServer() as srv:
        client = make_opendata_client(srv.base_url, **FAST)
        assert newest_opendata_day(client=client) is None  # nothing published
        srv.add_run(yesterday - dt.timedelta(days=1), steps=range(0, 22, 3))
        assert newest_opendata_day(client=client) is None  # too old for latest()
        srv.add_run(yesterday, steps=range(0, 22, 3))
        srv.add_run(today, steps=range(0, 10, 3))  # today's run is still being published
        before = len(srv.records)
        assert newest_opendata_day(client=client) == yesterday
        assert {r.method for r in srv.records[before:]} == {"HEAD"}  # nothing downloaded
        srv.add_run(today, steps=range(12, 22, 3))
        assert newest_opendata_day(client=client) == today
        assert newest_opendata_day(srv.base_url) == today  # the default client
        # on a simulated day (floecast.clock), the runs of that day and the day before
        monkeypatch.setenv("FLOECAST_TODAY", (yesterday - dt.timedelta(days=1)).isoformat())
        assert newest_opendata_day(client=client) == yesterday - dt.timedelta(days=1)
        monkeypatch.setenv("FLOECAST_TODAY", (yesterday - dt.timedelta(days=5)).isoformat())
        assert newest_opendata_day(client=client) is None


def test_request_and_defaults() -> None:
    assert od.opendata_request(DAY, ["t2m", "u10", "v10"]) == {
        "date": "20261124",
        "time": 0,
        "stream": "oper",
        "type": "fc",
        "step": [0, 3, 6, 9, 12, 15, 18, 21],
        "param": ["2t", "10u", "10v"],
    }
    with pytest.raises(ValueError, match="steps"):
        od.opendata_request(DAY, ["t2m"], steps=range(0, 25, 6))
    client = make_opendata_client("http://127.0.0.1:9/forecasts")
    assert client.url == "http://127.0.0.1:9/forecasts" and (client.model, client.resol) == ("ifs", "0p25")
    assert client.maximum_retries == od.MAXIMUM_TRIES and client.retry_after == od.RETRY_AFTER
    with pytest.raises(ValueError, match="hemisphere"):
        fetch_opendata_day(DAY, ["t2m"], "east", "/nonexistent/x.nc", client=client)


def test_grib_decoding_leaves_pyproj_working(server: OpendataServer, tmp_path: Path) -> None:
    """ecCodes' wheel loads eckit's own PROJ globally; pyproj must be loaded first (a fresh process)."""
    grib = tmp_path / "step0.grib2"
    grib.write_bytes(server.files[relpath(DAY, 0)])
    code = (
        "from pathlib import Path\n"
        "from floecast.sources import ecmwf_opendata as od\n"
        f"fields = od._read_grib(Path({str(grib)!r}))\n"
        "from floecast.grid import Ease2Grid\n"
        "grid = Ease2Grid('north', 27)\n"
        "print(len(fields), round(float(abs(grid.lat).min()), 1))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == "7"  # every message of the step's file decoded
