"""The real ERA5 client (``cdsapi`` -> ``ecmwf.datastores``) against a local CDS (tests/servers/cds.py).

The client is the installed ``cdsapi.Client``, configured through ``CDSAPI_URL`` and
``CDSAPI_KEY`` (a key without a colon: the new CDS API). Its retries are made fast with its
own constructor arguments (``sleep_max``, ``retry_max``, ``timeout``); its first poll sleep
(a fixed 1 s in ``ecmwf.datastores.processing``) is recorded instead of slept by replacing
that module's ``time`` name only. The server delivers 2.5-degree fixtures whose hourly
values have a known daily mean.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from servers.cds import CdsServer, daily_mean

from floecast.sources import era5
from floecast.sources.era5 import (
    CdsRequestError,
    InvalidDelivery,
    era5_request,
    era5t_days,
    fetch_era5_month,
    make_cds_client,
    read_era5_variable,
)

KEY = "c0ffee00-1234-5678-9abc-def012345678"  # the form of a new-CDS personal access token
FAST = {"retry_max": 4, "sleep_max": 0.01, "timeout": 5.0}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("CDSAPI_URL", "CDSAPI_KEY", "ECMWF_DATASTORES_URL", "ECMWF_DATASTORES_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CDSAPI_RC", str(tmp_path / "no-cdsapirc"))  # never read the user's ~/.cdsapirc
    monkeypatch.setenv("ECMWF_DATASTORES_RC_FILE", str(tmp_path / "no-datastoresrc"))


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CdsServer]:
    with CdsServer(tmp_path / "srv", key=KEY) as srv:
        monkeypatch.setenv("CDSAPI_URL", srv.base_url)
        monkeypatch.setenv("CDSAPI_KEY", KEY)
        yield srv


@pytest.fixture
def poll_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's poll sleeps, recorded instead of slept (only in its processing module)."""
    from ecmwf.datastores import processing

    sleeps: list[float] = []
    monkeypatch.setattr(processing, "time", types.SimpleNamespace(sleep=sleeps.append))
    return sleeps


@pytest.fixture
def client(server: CdsServer, poll_sleeps: list[float]):
    return make_cds_client(**FAST)


def expected_daily(request_name: str, level: float | None, ds: xr.Dataset) -> np.ndarray:
    days = pd.DatetimeIndex(ds["valid_time"].values).day.values
    return daily_mean(
        request_name, level, days[:, None, None], ds["latitude"].values[None, :, None], ds["longitude"].values[None, None, :]
    )


# ---------------------------------------------------------------------------------------


def test_request_dicts() -> None:
    req = era5_request("t2m", 2024, 2, "north", 60.0)
    assert req == {
        "product_type": ["reanalysis"],
        "variable": ["2m_temperature"],
        "year": ["2024"],
        "month": ["02"],
        "day": [f"{d:02d}" for d in range(1, 30)],
        "time": [f"{h:02d}:00" for h in range(24)],
        "data_format": "netcdf",
        "download_format": "unarchived",
        "area": [90.0, -180.0, 60.0, 180.0],
    }
    req = era5_request("z500", 2023, 11, "south", 50.0, last_day=dt.date(2023, 11, 10), grid_deg=1.0)
    assert era5.ERA5_CDS_VARIABLES["z500"].dataset == "reanalysis-era5-pressure-levels"
    assert req["variable"] == ["geopotential"] and req["pressure_level"] == ["500"]
    assert req["area"] == [-50.0, -180.0, -90.0, 180.0] and req["grid"] == [1.0, 1.0]
    assert req["day"] == [f"{d:02d}" for d in range(1, 11)]
    names = {k: (v.request_name, v.short_name, v.units) for k, v in era5.ERA5_CDS_VARIABLES.items()}
    assert names["ssrd"] == ("surface_solar_radiation_downwards", "ssrd", "J m**-2")
    assert names["t500"] == ("temperature", "t", "K") and names["z250"][:2] == ("geopotential", "z")
    with pytest.raises(ValueError, match="unknown ERA5 variable"):
        era5_request("2t", 2024, 1, "north")
    with pytest.raises(ValueError, match="hemisphere"):
        era5_request("t2m", 2024, 1, "east")
    assert era5.area_lat_for_grid(era5.Ease2Grid("north")) == era5.DEFAULT_AREA_LAT


def test_t2m_month_daily_means(server: CdsServer, client, poll_sleeps: list[float], tmp_path: Path) -> None:
    target = tmp_path / "raw" / "era5" / "t2m" / "2024-02.nc"
    result = fetch_era5_month("t2m", 2024, 2, "north", target, area_lat=60.0, client=client)
    assert result.status == "fetched" and result.path == target and result.era5t_days == []

    # the protocol: one submission with the request as inputs, queued -> running -> successful
    (submit,) = [r for r in server.records if r.kind == "submit"]
    assert submit.path == "/api/retrieve/v1/processes/reanalysis-era5-single-levels/execution"
    assert submit.body == {"inputs": era5_request("t2m", 2024, 2, "north", 60.0)}
    assert server.statuses_served()[:5] == ["accepted", "accepted", "running", "running", "successful"]
    assert poll_sleeps[0] == 1.0 and poll_sleeps[1:] == [0.01] * 3  # cdsapi's backoff, capped by sleep_max
    api = [r for r in server.records if r.path.startswith("/api/retrieve")]
    assert api and all(r.token_ok for r in api)
    assert server.count("download", "GET") == 1 and not any(r.token_sent for r in server.records if r.kind == "download")

    with xr.open_dataset(target) as ds:
        assert ds["t2m"].dims == ("valid_time", "latitude", "longitude") and ds["t2m"].dtype == np.float32
        assert ds.sizes == {"valid_time": 29, "latitude": 13, "longitude": 144}
        assert (np.diff(ds["latitude"].values) < 0).all() and ds["latitude"].values[[0, -1]].tolist() == [90.0, 60.0]
        assert pd.DatetimeIndex(ds["valid_time"].values).equals(pd.date_range("2024-02-01", "2024-02-29"))
        assert ds["t2m"].attrs["GRIB_paramId"] == 167 and ds["t2m"].attrs["units"] == "K"
        assert ds["expver"].dims == ("valid_time",) and set(ds["expver"].values) == {"0001"}
        assert int(ds["number"]) == 0
        np.testing.assert_allclose(ds["t2m"].values, expected_daily("2m_temperature", None, ds), rtol=0, atol=2e-4)
        assert json.loads(ds.attrs["floecast_request"])["variable"] == ["2m_temperature"]
    da = read_era5_variable(target, "t2m")  # what the regrid step reads
    assert da.dims == ("time", "latitude", "longitude")
    assert not list(target.parent.glob(".*"))  # no temporary files left


def test_pressure_level_z500_south(server: CdsServer, client, tmp_path: Path) -> None:
    target = tmp_path / "z500.nc"
    fetch_era5_month("z500", 2023, 11, "south", target, area_lat=50.0, client=client, grid_deg=5.0)
    (submit,) = [r for r in server.records if r.kind == "submit"]
    assert submit.path.endswith("/reanalysis-era5-pressure-levels/execution")
    assert submit.body["inputs"]["pressure_level"] == ["500"] and submit.body["inputs"]["grid"] == [5.0, 5.0]
    with xr.open_dataset(target) as ds:
        assert ds["z"].dims == ("valid_time", "latitude", "longitude")
        assert float(ds["pressure_level"]) == 500.0 and ds["pressure_level"].attrs["units"] == "hPa"
        assert ds["latitude"].values[[0, -1]].tolist() == [-50.0, -90.0] and ds.sizes["longitude"] == 72
        assert ds.sizes["valid_time"] == 30 and ds["z"].attrs["units"] == "m**2 s**-2"
        np.testing.assert_allclose(ds["z"].values, expected_daily("geopotential", 500.0, ds), rtol=1e-6)
    assert read_era5_variable(target, "z500").dims == ("time", "latitude", "longitude")


def test_transient_errors_are_retried_by_cdsapi(
    server: CdsServer, client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="multiurl")
    server.inject("submit", 429, times=2, retry_after="1")
    server.inject("job", 503, times=2)
    server.inject("results", 503)
    server.inject("download", 503)
    target = tmp_path / "t2m.nc"
    fetch_era5_month("t2m", 2024, 1, "north", target, area_lat=70.0, client=client)
    assert server.count("submit") == 3 and len(server.jobs) == 1  # one job, after two 429s
    assert [r.answered for r in server.records if r.kind == "download" and r.method == "GET"] == [503, 200]
    assert "Recovering from HTTP error [429" in caplog.text and "Retrying in 0.01 seconds" in caplog.text
    with xr.open_dataset(target) as ds:
        np.testing.assert_allclose(ds["t2m"].values, expected_daily("2m_temperature", None, ds), atol=2e-4)


def test_read_timeout_is_retried(server: CdsServer, poll_sleeps: list[float], tmp_path: Path) -> None:
    client = make_cds_client(retry_max=3, sleep_max=0.01, timeout=0.4)
    server.inject("job", None, stall=1.2)  # the first poll answers after the client gave up
    fetch_era5_month("msl", 2024, 1, "north", tmp_path / "msl.nc", area_lat=70.0, client=client)
    assert (tmp_path / "msl.nc").exists()


def test_retries_used_up_raise(server: CdsServer, client, tmp_path: Path) -> None:
    server.inject("submit", 503, times=10)
    with pytest.raises(CdsRequestError, match=r"reanalysis-era5-single-levels 10m_u_component_of_wind \(u10\) 2024-01") as err:
        fetch_era5_month("u10", 2024, 1, "north", tmp_path / "u10.nc", area_lat=70.0, client=client)
    assert "503" in str(err.value) and server.count("submit") == FAST["retry_max"]
    assert not (tmp_path / "u10.nc").exists()


def test_failed_job_names_dataset_variable_period(server: CdsServer, client, tmp_path: Path) -> None:
    server.fail_next_job("MARS returned no data, please check your selection")
    target = tmp_path / "sst" / "2024-03.nc"
    with pytest.raises(CdsRequestError) as err:
        fetch_era5_month("sst", 2024, 3, "north", target, area_lat=60.0, client=client)
    message = str(err.value)
    assert "reanalysis-era5-single-levels" in message and "sea_surface_temperature (sst)" in message and "2024-03" in message
    assert "The job has failed" in message and "MARS returned no data" in message
    assert server.statuses_served()[-1] == "failed"
    assert not target.exists() and not list(target.parent.iterdir())


def test_second_fetch_contacts_nothing(server: CdsServer, client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "v10.nc"
    assert fetch_era5_month("v10", 2024, 1, "north", target, area_lat=70.0, client=client).status == "fetched"
    seen, mtime = len(server.records), target.stat().st_mtime_ns
    monkeypatch.delenv("CDSAPI_KEY")  # no client can even be made now
    again = fetch_era5_month("v10", 2024, 1, "north", target, area_lat=70.0)
    assert again.status == "skipped" and len(server.records) == seen and target.stat().st_mtime_ns == mtime
    with pytest.raises(CdsRequestError, match=r"\(v10\) 2024-02 north: cannot set up the CDS client"):
        fetch_era5_month("v10", 2024, 2, "north", tmp_path / "v10-02.nc", area_lat=70.0)


def test_invalid_existing_target_is_moved_aside_and_fetched(server: CdsServer, client, tmp_path: Path) -> None:
    target = tmp_path / "t2m.nc"
    target.write_bytes(b"")
    assert fetch_era5_month("t2m", 2024, 1, "north", target, area_lat=70.0, client=client).status == "fetched"
    assert (tmp_path / "rejected" / "t2m.nc").stat().st_size == 0
    assert "existing file invalid" in (tmp_path / "rejected" / "t2m.nc.reason.txt").read_text()


def _scaled(ds: xr.Dataset, request: dict) -> xr.Dataset:
    return ds.assign(t2m=ds["t2m"] * 10)


def _all_nan_hour(ds: xr.Dataset, request: dict) -> xr.Dataset:
    values = ds["t2m"].values.copy()
    values[30] = np.nan
    return ds.assign(t2m=(ds["t2m"].dims, values, ds["t2m"].attrs))


def _fill_inside(ds: xr.Dataset, request: dict) -> xr.Dataset:
    ds["t2m"].encoding["_FillValue"] = np.float32(250.5)
    return ds


def _celsius(ds: xr.Dataset, request: dict) -> xr.Dataset:
    return ds.assign(t2m=(ds["t2m"].dims, ds["t2m"].values - 273.15, {**ds["t2m"].attrs, "units": "degC"}))


TAMPERS = {
    "out-of-range": (_scaled, "outside its valid range"),
    "transposed": (lambda ds, r: ds.transpose("valid_time", "longitude", "latitude"), "dims"),
    "old-time-name": (lambda ds, r: ds.rename(valid_time="time"), "dims"),
    "renamed-variable": (lambda ds, r: ds.rename(t2m="2t"), "no variable 't2m'"),
    "dates-outside-month": (
        lambda ds, r: ds.assign_coords(valid_time=ds["valid_time"] + np.timedelta64(1, "D")),
        "outside 2024-01",
    ),
    "missing-hours": (lambda ds, r: ds.isel(valid_time=slice(0, -3)), "without 24 time step"),
    "all-missing-field": (_all_nan_hour, "all missing at 1 time"),
    "fill-value-in-range": (_fill_inside, "_FillValue"),
    "wrong-units": (_celsius, "units 'degC'"),
    "no-expver": (lambda ds, r: ds.drop_vars("expver"), "no expver"),
    "zip": (lambda ds, r: b"PK\x03\x04" + bytes(200), "zip archive"),
    "area-too-small": (lambda ds, r: ds.sel(latitude=slice(90, 80)), "do not cover the requested area"),
}


@pytest.mark.parametrize("case", list(TAMPERS))
def test_invalid_delivery_is_rejected(server: CdsServer, client, tmp_path: Path, case: str) -> None:
    tamper, reason = TAMPERS[case]
    server.tamper = tamper
    target = tmp_path / "t2m" / "2024-01.nc"
    with pytest.raises(InvalidDelivery, match=r"reanalysis-era5-single-levels 2m_temperature \(t2m\) 2024-01") as err:
        fetch_era5_month("t2m", 2024, 1, "north", target, area_lat=70.0, client=client)
    assert isinstance(err.value, ValueError) and reason in err.value.reason
    assert not target.exists()
    moved = target.parent / "rejected" / target.name
    assert err.value.rejected == moved and moved.stat().st_size > 0
    assert reason in (target.parent / "rejected" / f"{target.name}.reason.txt").read_text()
    assert [p.name for p in target.parent.iterdir()] == ["rejected"]


def test_mixed_era5_era5t(server: CdsServer, client, tmp_path: Path) -> None:
    server.era5t_from = "2024-02-20T12:00"  # ERA5T from the middle of the 20th on
    target = tmp_path / "t2m.nc"
    era5t = [dt.date(2024, 2, d) for d in range(20, 30)]
    first = fetch_era5_month("t2m", 2024, 2, "north", target, area_lat=70.0, client=client)
    assert first.era5t_days == era5t and era5t_days(target) == era5t
    with xr.open_dataset(target) as ds:
        assert list(ds["expver"].values[18:20]) == ["0001", "0005"]

    seen = len(server.records)
    assert fetch_era5_month("t2m", 2024, 2, "north", target, area_lat=70.0, client=client).status == "skipped"
    assert len(server.records) == seen

    server.era5t_from = None  # final ERA5 has replaced ERA5T
    again = fetch_era5_month("t2m", 2024, 2, "north", target, area_lat=70.0, client=client, refetch_era5t=True)
    assert again.status == "fetched" and again.era5t_days == [] and era5t_days(target) == []


def test_key_never_logged_nor_stored(
    server: CdsServer,
    poll_sleeps: list[float],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_cds_client(**FAST)
    target = tmp_path / "ssrd.nc"
    fetch_era5_month("ssrd", 2024, 6, "north", target, area_lat=70.0, client=client)
    server.fail_next_job()
    with pytest.raises(CdsRequestError) as failed:
        fetch_era5_month("strd", 2024, 6, "north", tmp_path / "strd.nc", area_lat=70.0, client=client)
    out, errors = capfd.readouterr()
    assert caplog.records and KEY not in caplog.text and KEY not in out + errors and KEY not in str(failed.value)
    with xr.open_dataset(target) as ds:
        every_attr = [ds.attrs] + [ds[name].attrs for name in ds.variables]
        assert KEY not in json.dumps(every_attr, default=str)
        assert ds["ssrd"].attrs["GRIB_paramId"] == 169 and "3600" in ds["ssrd"].attrs["comment"]
    assert KEY.encode() not in target.read_bytes()


def test_wrong_key_is_refused(
    server: CdsServer, poll_sleeps: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDSAPI_KEY", "not-the-key")
    with pytest.raises(CdsRequestError, match="401") as err:
        fetch_era5_month("t2m", 2024, 1, "north", tmp_path / "t2m.nc", area_lat=70.0, client=make_cds_client(**FAST))
    assert "not-the-key" not in str(err.value)
    assert [r.answered for r in server.records if r.kind == "process"] == [401] and server.count("submit") == 0
    assert not server.jobs


def test_partial_month_and_job_delete(server: CdsServer, client, tmp_path: Path) -> None:
    target = tmp_path / "t2m.nc"
    fetch_era5_month("t2m", 2024, 3, "south", target, area_lat=70.0, client=client, last_day=dt.date(2024, 3, 10))
    assert era5.validate_era5_month(target, "t2m", 2024, 3, last_day=dt.date(2024, 3, 10)) is None
    with pytest.raises(ValueError, match="days missing"):
        era5.validate_era5_month(target, "t2m", 2024, 3)
    # the next day's run fetches the longer period; the shorter file is not "rejected"
    fetch_era5_month("t2m", 2024, 3, "south", target, area_lat=70.0, client=client, last_day=dt.date(2024, 3, 11))
    assert era5.validate_era5_month(target, "t2m", 2024, 3, last_day=dt.date(2024, 3, 11)) is None
    assert not (tmp_path / "rejected").exists() and len(server.jobs) == 2
    # the job can be deleted through the client's API (DELETE /retrieve/v1/jobs/<id>)
    job_id = next(iter(server.jobs))
    client.client.get_remote(job_id).delete()
    assert server.jobs[job_id].dismissed and server.count("delete", "DELETE") == 1


def test_the_cds_key_check_reports_retries_and_is_bounded(
    server: CdsServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 12: `floecast check-cds` logs each failed try with its wait, gives up within its time,
    accepts a good key and never tries a refused one again (the key never in a message)."""
    slept: list[float] = []
    clock = [1000.0]  # the check's clock, moved on by its sleeps only (the requests here take no time)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr("time.sleep", sleep)
    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    server.inject("process", 503, times=2)
    with caplog.at_level(logging.INFO, logger="floecast.sources.era5"):
        said = era5.check_cds_key(timeout_s=30, attempts=4)
    assert said.startswith(f"CDS key check: {server.base_url} accepted the key (reanalysis-era5-single-levels answered")
    assert [r.answered for r in server.records if r.kind == "process"] == [503, 503, 200] and slept == [2.0, 4.0]
    assert "attempt 1 of 4 failed (HTTP 503" in caplog.text and "trying again in 2 s" in caplog.text

    monkeypatch.setenv("CDSAPI_KEY", "not-the-key")
    with pytest.raises(CdsRequestError, match="refused the key .HTTP 401") as err:
        era5.check_cds_key(timeout_s=30, attempts=4)
    assert "not-the-key" not in str(err.value) and [r.answered for r in server.records][-1] == 401
    assert sum(r.kind == "process" for r in server.records) == 4  # the refusal was asked once

    monkeypatch.setenv("CDSAPI_URL", "http://127.0.0.1:9/api")  # nothing listens there
    slept.clear()
    with pytest.raises(CdsRequestError, match=r"did not answer after 3 attempts in 5 s .last: ConnectionError"):
        era5.check_cds_key(timeout_s=5, attempts=4)
    assert slept == [2.0, 3.0]  # bounded by the timeout, not by cdsapi's 30 tries 120 s apart
