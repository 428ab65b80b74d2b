"""The real OSI-SAF client over HTTP, against a local THREDDS fileServer (tests/servers/thredds.py).

Fixtures are written with ``write_osisaf_file`` (the provider's names, variables,
attributes, packing and fill value); one test uses the full 25 km grid (432 x 432) as the
real files do, the others a coarsened grid for speed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr
from servers.thredds import PREFIX, ThreddsServer

from floecast.grid import Ease2Grid
from floecast.preprocess import regrid_sic_year
from floecast.sources import http
from floecast.sources.osisaf import (
    STATUS_LAND,
    fetch_sic_period,
    osisaf_filename,
    read_osisaf_file,
    validate_osisaf_file,
    write_osisaf_file,
)
from floecast.sources.sicchain import SicChain
from floecast.sources.synthetic import idealised_land

SMALL = Ease2Grid("north", 24)  # 18 x 18
FAST = {"backoff": 0.0, "retries": 3, "timeout": 5.0}


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreddsServer]:
    with ThreddsServer(tmp_path / "thredds") as srv:
        yield srv


def rel(grid: Ease2Grid, day: dt.date) -> str:
    """The path of one day's file (of the product serving it) below the fileServer base."""
    chain = SicChain.default()
    return chain.nominal(day).url_for({"thredds": "", "ftp": ""}, grid.hemisphere, day).lstrip("/")


def fetch(server: ThreddsServer, grid: Ease2Grid, first: dt.date, last: dt.date, out: Path, **options) -> dict[str, int]:
    """The default chain's days from the local fileServer, checked against ``grid``; the counts."""
    chain = SicChain.default().with_servers({"thredds": server.base_url})
    result = fetch_sic_period(chain, grid.hemisphere, first, last, out, grid=grid, **options)
    return {key: n for key, n in result.counts.items() if key != "replaced"}


def sic_field(grid: Ease2Grid, day: dt.date) -> np.ndarray:
    """Ice poleward of 62N, its concentration linear in time (so interpolation is exact)."""
    k = (day - dt.date(2020, 12, 1)).days
    sic = np.clip((grid.lat - 62.0) / 12.0, 0.0, 1.0) * (0.5 + 0.01 * k)
    return np.where(idealised_land(grid.lon, grid.lat, grid.hemisphere), np.nan, sic)


def status_flag(grid: Ease2Grid) -> np.ndarray:
    if grid.hemisphere == "south":
        return np.zeros(grid.shape, np.int16)
    return np.where(idealised_land(grid.lon, grid.lat, grid.hemisphere), STATUS_LAND, 0).astype(np.int16)


def publish(
    server: ThreddsServer, grid: Ease2Grid, day: dt.date, sic: np.ndarray | None = None, file_grid: Ease2Grid | None = None
) -> Path:
    """Write one day's file into the server's tree (``file_grid`` to serve a file on another grid)."""
    file_grid = file_grid or grid
    sic = sic_field(file_grid, day) if sic is None else sic
    path = server.path(rel(grid, day))
    write_osisaf_file(path, file_grid, day, sic, status_flag(file_grid))
    return path


def days(first: dt.date, n: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(n)]


def missing_json(out_dir: Path) -> list[dict[str, str]]:
    return json.loads((out_dir / "missing.json").read_text())


def leftovers(out_dir: Path) -> list[str]:
    return sorted(p.name for p in out_dir.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------- URLs


def test_urls_follow_the_product_chain_across_the_cdr_icdr_switch() -> None:
    chain = SicChain.default()

    def url(hemisphere: str, day: dt.date) -> str:
        return chain.nominal(day).url_for(chain.servers, hemisphere, day)

    assert url("north", dt.date(2020, 12, 31)) == (
        "https://thredds.met.no/thredds/fileServer/osisaf/met.no/reprocessed/ice/"
        "conc_450a1_files/2020/12/ice_conc_nh_ease2-250_cdr-v3p1_202012311200.nc"
    )
    assert url("south", dt.date(2021, 1, 1)) == (
        "https://thredds.met.no/thredds/fileServer/osisaf/met.no/reprocessed/ice/"
        "conc_cra_files/2021/01/ice_conc_sh_ease2-250_icdr-v3p0_202101011200.nc"
    )
    assert url("north", dt.date(2025, 10, 17)) == (
        "https://thredds.met.no/thredds/fileServer/osisaf/met.no/reprocessed/ice/"
        "conc_438_files/2025/10/ice_conc_nh_ease2-250_icdr-v3p0-amsr_202510171200.nc"
    )
    fast = chain.product("OSI-438-fast-track")
    assert fast.url_for(chain.servers, "north", dt.date(2026, 1, 5)) == (
        "ftp://osisaf.met.no/reprocessed/ice/conc-cont-reproc-amsr/v3p0/2026/01/"
        "ice_conc_nh_ease2-250_icdrft-v3p0-amsr_202601051200.nc"
    )
    assert url("north", dt.date(1987, 3, 4)).endswith("/conc_450a1_files/1987/03/ice_conc_nh_ease2-250_cdr-v3p1_198703041200.nc")


# ---------------------------------------------------------------- end to end


def test_full_grid_days_across_cdr_and_icdr_are_fetched_with_real_names(server: ThreddsServer, tmp_path: Path) -> None:
    grid = Ease2Grid("north", 1)
    period = days(dt.date(2020, 12, 30), 4)
    for day in period:
        publish(server, grid, day)
    out = tmp_path / "raw"

    counts = fetch(server, grid, period[0], period[-1], out, **FAST)

    assert counts == {"fetched": 4, "skipped": 0, "missing": 0}
    assert sorted(server.counts) == [
        "reprocessed/ice/conc_450a1_files/2020/12/ice_conc_nh_ease2-250_cdr-v3p1_202012301200.nc",
        "reprocessed/ice/conc_450a1_files/2020/12/ice_conc_nh_ease2-250_cdr-v3p1_202012311200.nc",
        "reprocessed/ice/conc_cra_files/2021/01/ice_conc_nh_ease2-250_icdr-v3p0_202101011200.nc",
        "reprocessed/ice/conc_cra_files/2021/01/ice_conc_nh_ease2-250_icdr-v3p0_202101021200.nc",
    ]
    assert sorted(p.name for p in out.glob("ice_conc_*.nc")) == [osisaf_filename("north", d) for d in period]
    assert missing_json(out) == []
    assert leftovers(out) == []
    for day in period:
        sic, flag = read_osisaf_file(out / osisaf_filename("north", day))
        assert sic.shape == flag.shape == (432, 432)
        np.testing.assert_allclose(sic, sic_field(grid, day), atol=6e-5)
        with netCDF4.Dataset(out / osisaf_filename("north", day)) as nc:
            assert nc.product_id == ("OSI-450-a1" if day.year == 2020 else "OSI-430-a")

    again = fetch(server, grid, period[0], period[-1], out, **FAST)
    assert again == {"fetched": 0, "skipped": 4, "missing": 0}
    assert all(n == 1 for n in server.counts.values()) and server.total_requests() == 4


def test_a_day_the_provider_lacks_is_recorded_and_later_filled_in_time(server: ThreddsServer, tmp_path: Path) -> None:
    period = days(dt.date(2020, 12, 29), 5)  # 2020-12-31 is absent (404)
    for day in period:
        if day != dt.date(2020, 12, 31):
            publish(server, SMALL, day)
    out = tmp_path / "raw"

    counts = fetch(server, SMALL, period[0], period[-1], out, **FAST)

    assert counts == {"fetched": 4, "skipped": 0, "missing": 1}
    assert missing_json(out) == [{"date": "2020-12-31", "reason": "OSI-450-a1: not on the server (HTTP 404)"}]
    assert server.requests_for(rel(SMALL, dt.date(2020, 12, 31))) == 1  # a 404 is not retried
    ds = regrid_sic_year(out, tmp_path / "interim.nc", SMALL)
    assert [str(t)[:10] for t in ds.time.values] == [d.isoformat() for d in period]
    assert ds["filled"].values.tolist() == [0, 0, 1, 0, 0]
    ocean = ds["land"].values == 0
    np.testing.assert_allclose(ds["sic"].values[2][ocean], sic_field(SMALL, period[2])[ocean], atol=1.5e-4)
    np.testing.assert_allclose(ds["sic"].values[3][ocean], sic_field(SMALL, period[3])[ocean], atol=6e-5)

    # the day appears later: the next run fetches only it and clears it from missing.json
    publish(server, SMALL, dt.date(2020, 12, 31))
    counts = fetch(server, SMALL, period[0], period[-1], out, **FAST)
    assert counts == {"fetched": 1, "skipped": 4, "missing": 0}
    assert missing_json(out) == []


def test_a_second_run_fetches_nothing(server: ThreddsServer, tmp_path: Path) -> None:
    period = days(dt.date(2021, 2, 1), 6)
    for day in period[:-1]:
        publish(server, SMALL, day)  # the newest day is not published yet
    out = tmp_path / "raw"
    first = fetch(server, SMALL, period[0], period[-1], out, **FAST)
    before = dict(server.counts)

    second = fetch(server, SMALL, period[0], period[-1], out, **FAST)

    assert first == {"fetched": 5, "skipped": 0, "missing": 1}
    assert second == {"fetched": 0, "skipped": 5, "missing": 1}
    for day in period[:-1]:
        assert server.requests_for(rel(SMALL, day)) == before[rel(SMALL, day)] == 1
    assert server.requests_for(rel(SMALL, period[-1])) == 2  # only the missing day is asked for again


def test_missing_json_keeps_other_periods(server: ThreddsServer, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    publish(server, SMALL, dt.date(2021, 3, 2))
    fetch(server, SMALL, dt.date(2021, 3, 1), dt.date(2021, 3, 2), out, **FAST)
    fetch(server, SMALL, dt.date(2021, 3, 3), dt.date(2021, 3, 4), out, known_bad_days=["2021-03-04"], **FAST)
    assert missing_json(out) == [
        {"date": "2021-03-01", "reason": "OSI-430-a: not on the server (HTTP 404)"},
        {"date": "2021-03-03", "reason": "OSI-430-a: not on the server (HTTP 404)"},
        {"date": "2021-03-04", "reason": "known bad day (config), not requested"},
    ]


def test_known_bad_days_are_not_requested_and_an_old_copy_is_moved_aside(server: ThreddsServer, tmp_path: Path) -> None:
    bad = dt.date(2022, 11, 9)
    period = days(dt.date(2022, 11, 8), 3)
    for day in period:
        publish(server, SMALL, day)
    out = tmp_path / "raw"
    out.mkdir()
    (out / osisaf_filename("north", bad)).write_bytes(server.path(rel(SMALL, bad)).read_bytes())  # fetched before it was listed

    counts = fetch(server, SMALL, period[0], period[-1], out, known_bad_days=[bad], **FAST)

    assert counts == {"fetched": 2, "skipped": 0, "missing": 1}
    assert server.requests_for(rel(SMALL, bad)) == 0
    assert not (out / osisaf_filename("north", bad)).exists()
    assert (out / "rejected" / osisaf_filename("north", bad)).is_file()
    assert "known bad day" in (out / "rejected" / f"{osisaf_filename('north', bad)}.reason.txt").read_text()
    assert missing_json(out) == [{"date": "2022-11-09", "reason": "known bad day (config), not requested"}]


# ---------------------------------------------------------------- retries


@pytest.mark.parametrize(("status", "retry_after"), [(503, None), (502, None), (429, "0"), (429, "7")])
def test_transient_answers_are_retried_with_backoff(
    server: ThreddsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int, retry_after: str | None
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(http.time, "sleep", waits.append)
    day = dt.date(2021, 1, 5)
    publish(server, SMALL, day)
    server.fail(rel(SMALL, day), "status", times=2, status=status, retry_after=retry_after)
    out = tmp_path / "raw"

    counts = fetch(server, SMALL, day, day, out, retries=3, backoff=0.5, timeout=5.0)

    assert counts == {"fetched": 1, "skipped": 0, "missing": 0}
    assert server.requests_for(rel(SMALL, day)) == 3
    assert waits == ([0.5, 1.0] if retry_after is None else [float(retry_after)] * 2)
    validate_osisaf_file(out / osisaf_filename("north", day), day, SMALL)


def test_retries_are_bounded_and_leave_nothing(server: ThreddsServer, tmp_path: Path) -> None:
    day = dt.date(2021, 1, 5)
    publish(server, SMALL, day)
    server.fail(rel(SMALL, day), "status", times=None, status=503, retry_after="0")
    out = tmp_path / "raw"
    with pytest.raises(http.DownloadError, match=r"gave up after 3 attempts; last error: HTTP 503") as info:
        fetch(server, SMALL, day, day, out, retries=2, backoff=0.0)
    assert info.value.status == 503
    assert server.url(rel(SMALL, day)) in str(info.value)
    assert server.requests_for(rel(SMALL, day)) == 3
    assert sorted(p.name for p in out.iterdir()) == []  # no file, no temp file, no missing.json for an unfinished day


def test_a_broken_transfer_is_retried_and_never_leaves_a_partial_file(server: ThreddsServer, tmp_path: Path) -> None:
    day = dt.date(2020, 6, 1)
    source = publish(server, SMALL, day)
    server.fail(rel(SMALL, day), "truncate", times=2, fraction=0.5)
    target = tmp_path / "raw" / osisaf_filename("north", day)

    result = http.download(server.url(rel(SMALL, day)), target, backoff=0.0, retries=3)

    assert (result.status, result.attempts, result.nbytes) == ("fetched", 3, source.stat().st_size)
    assert target.read_bytes() == source.read_bytes()
    assert leftovers(target.parent) == []


def test_a_transfer_that_always_breaks_fails_without_a_partial_file(server: ThreddsServer, tmp_path: Path) -> None:
    day = dt.date(2020, 6, 1)
    publish(server, SMALL, day)
    server.fail(rel(SMALL, day), "truncate", times=None, fraction=0.3)
    target = tmp_path / "raw" / osisaf_filename("north", day)
    with pytest.raises(http.DownloadError, match="gave up after 2 attempts") as info:
        http.download(server.url(rel(SMALL, day)), target, backoff=0.0, retries=1)
    assert "ChunkedEncodingError" in str(info.value) or "short transfer" in str(info.value)
    assert list(target.parent.iterdir()) == []


def test_a_read_timeout_is_retried(server: ThreddsServer, tmp_path: Path) -> None:
    day = dt.date(2020, 6, 1)
    source = publish(server, SMALL, day)
    server.fail(rel(SMALL, day), "stall", times=1, seconds=1.0)
    target = tmp_path / "raw" / osisaf_filename("north", day)
    result = http.download(server.url(rel(SMALL, day)), target, backoff=0.0, retries=2, timeout=(2.0, 0.3))
    assert result.attempts == 2
    assert target.read_bytes() == source.read_bytes()


def test_a_refused_connection_is_retried_then_reported(tmp_path: Path) -> None:
    with ThreddsServer(tmp_path / "gone") as srv:
        url = srv.url("conc_450a_files/2020/01/x.nc")
    with pytest.raises(http.DownloadError, match=r"gave up after 2 attempts; last error: ConnectionError"):
        http.download(url, tmp_path / "x.nc", backoff=0.0, retries=1, timeout=2.0)


# ---------------------------------------------------------------- permanent failures


def test_a_permanent_403_stops_with_a_message_naming_the_url(server: ThreddsServer, tmp_path: Path) -> None:
    period = days(dt.date(2021, 1, 1), 3)
    for day in period:
        publish(server, SMALL, day)
    server.fail(rel(SMALL, period[1]), "status", times=None, status=403)
    out = tmp_path / "raw"
    with pytest.raises(http.DownloadError) as info:
        fetch(server, SMALL, period[0], period[-1], out, **FAST)
    message = str(info.value)
    assert server.url(rel(SMALL, period[1])) in message
    assert "HTTP 403" in message and "not retried" in message
    assert not isinstance(info.value, http.NotAvailable)
    assert server.requests_for(rel(SMALL, period[1])) == 1
    assert server.requests_for(rel(SMALL, period[2])) == 0  # stops at the first permanent error
    assert sorted(p.name for p in out.glob("ice_conc_*")) == [osisaf_filename("north", period[0])]
    assert missing_json(out) == []  # written for the days done before the stop


def test_credentials_and_query_tokens_never_appear_in_messages_or_logs(
    server: ThreddsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    relpath = "conc_450a_files/2020/01/x.nc"
    server.path(relpath).write_bytes(b"x" * 100)
    server.fail(relpath, "status", times=1, status=503, retry_after="0")
    server.fail(relpath, "status", times=None, status=401)
    url = f"http://alice:s3cret@127.0.0.1:{server.port}{PREFIX}/{relpath}?access_token=T0KEN&sig=abc"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(http.DownloadError) as info:
        http.download(url, tmp_path / "x.nc", backoff=0.0, retries=2)
    text = str(info.value) + "\n" + caplog.text
    assert f"http://127.0.0.1:{server.port}{PREFIX}/{relpath}?<redacted>" in str(info.value)
    assert "HTTP 401" in str(info.value)
    for secret in ("alice", "s3cret", "T0KEN", "abc"):
        assert secret not in text
    assert server.authorization  # the credentials were still used
    assert http.redact_text("Max retries exceeded with url: /a/b?token=T (Caused by x)") == (
        "Max retries exceeded with url: /a/b?<redacted> (Caused by x)"
    )


def test_not_available_is_raised_at_once_without_a_file(server: ThreddsServer, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    with pytest.raises(http.NotAvailable, match="HTTP 404") as info:
        http.download(server.url("conc_cra_files/2030/01/none.nc"), out / "none.nc", backoff=0.0)
    assert info.value.status == 404
    assert server.requests_for("conc_cra_files/2030/01/none.nc") == 1
    assert list(out.iterdir()) == []


# ---------------------------------------------------------------- invalid deliveries


def _truncated(path: Path) -> bytes:
    data = path.read_bytes()
    return data[: len(data) // 2]


def _zero_field(server: ThreddsServer, day: dt.date) -> None:
    publish(server, SMALL, day, sic=np.where(np.isnan(sic_field(SMALL, day)), np.nan, 0.0))


def _all_missing(server: ThreddsServer, day: dt.date) -> None:
    publish(server, SMALL, day, sic=np.full(SMALL.shape, np.nan))


INVALID: dict[str, tuple[Callable[[ThreddsServer, dt.date], None], str]] = {
    "truncated": (
        lambda s, d: s.fail(rel(SMALL, d), "body", times=None, body=_truncated(s.path(rel(SMALL, d)))),
        "not a readable NetCDF",
    ),
    "zero bytes": (lambda s, d: s.fail(rel(SMALL, d), "body", times=None, body=b""), "empty file (0 bytes)"),
    "html page": (
        lambda s, d: s.fail(rel(SMALL, d), "body", times=None, body=b"<html>maintenance</html>"),
        "not a readable NetCDF",
    ),
    "wrong grid": (lambda s, d: publish(s, SMALL, d, file_grid=Ease2Grid("north", 27)), "do not match the configured grid"),
    "wrong hemisphere": (
        lambda s, d: publish(s, SMALL, d, file_grid=Ease2Grid("south", 24), sic=np.full(SMALL.shape, 0.5)),
        "does not match the north hemisphere",
    ),
    "all zero": (_zero_field, "zero over the whole ocean"),
    "all missing": (_all_missing, "missing over the whole ocean"),
}


@pytest.mark.parametrize("kind", list(INVALID))
def test_an_invalid_delivery_is_rejected_with_a_reason_and_treated_as_missing(
    server: ThreddsServer, tmp_path: Path, kind: str
) -> None:
    period = days(dt.date(2021, 1, 10), 3)
    for day in period:
        publish(server, SMALL, day)
    make_bad, reason = INVALID[kind]
    make_bad(server, period[1])
    out = tmp_path / "raw"

    counts = fetch(server, SMALL, period[0], period[-1], out, **FAST)

    name = osisaf_filename("north", period[1])
    assert counts == {"fetched": 2, "skipped": 0, "missing": 1}
    assert server.requests_for(rel(SMALL, period[1])) == 1  # a bad file is not fetched again and again
    assert not (out / name).exists() and leftovers(out) == []
    assert (out / "rejected" / name).is_file()
    note = (out / "rejected" / f"{name}.reason.txt").read_text()
    assert reason in note and f"url: {server.url(rel(SMALL, period[1]))}" in note
    [entry] = missing_json(out)
    assert entry["date"] == period[1].isoformat()
    assert entry["reason"].startswith("OSI-430-a: invalid file, moved to rejected/") and reason in entry["reason"]
    ds = regrid_sic_year(out, tmp_path / "interim.nc", SMALL)
    assert ds["filled"].values.tolist() == [0, 1, 0]


def test_an_invalid_existing_file_is_moved_aside_and_fetched_again(server: ThreddsServer, tmp_path: Path) -> None:
    day = dt.date(2021, 1, 10)
    source = publish(server, SMALL, day)
    out = tmp_path / "raw"
    out.mkdir()
    (out / osisaf_filename("north", day)).write_bytes(_truncated(source))
    counts = fetch(server, SMALL, day, day, out, **FAST)
    assert counts == {"fetched": 1, "skipped": 0, "missing": 0}
    assert (out / osisaf_filename("north", day)).read_bytes() == source.read_bytes()
    assert "existing file failed validation" in (out / "rejected" / f"{osisaf_filename('north', day)}.reason.txt").read_text()


# ---------------------------------------------------------------- the validator itself


def _set_attr(var: str, attr: str, value: object) -> Callable[[netCDF4.Dataset], None]:
    return lambda nc: nc[var].setncattr(attr, value)


def _shift_time(nc: netCDF4.Dataset) -> None:
    nc["time"][0] = nc["time"][0] + 86400.0


def _rename_status_flag(nc: netCDF4.Dataset) -> None:
    nc.renameVariable("status_flag", "flags")


def _out_of_range(nc: netCDF4.Dataset) -> None:
    nc["ice_conc"].set_auto_maskandscale(False)
    values = nc["ice_conc"][0]
    values[0, 0] = 12000
    nc["ice_conc"][0] = values


def _xc_in_metres(nc: netCDF4.Dataset) -> None:
    nc["xc"][:] = nc["xc"][:] * 1000.0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_set_attr("xc", "units", "m"), "xc units 'm', expected 'km'"),
        (_xc_in_metres, "xc does not hold the EASE2 cell centres"),
        (_set_attr("ice_conc", "scale_factor", 1.0), "scale_factor 1.0, expected 0.01"),
        (_set_attr("ice_conc", "valid_max", 100), "valid range (0, 100)"),
        (_shift_time, "time variable says 2021-01-11, the file name 2021-01-10"),
        (_rename_status_flag, "missing variables ['status_flag']"),
        (_out_of_range, "1 values outside the valid range"),
        (_set_attr("Lambert_Azimuthal_Grid", "latitude_of_projection_origin", -90.0), "does not match the north hemisphere"),
    ],
)
def test_validator_names_the_file_and_the_reason(tmp_path: Path, change: Callable[[netCDF4.Dataset], None], reason: str) -> None:
    day = dt.date(2021, 1, 10)
    path = tmp_path / osisaf_filename("north", day)
    write_osisaf_file(path, SMALL, day, sic_field(SMALL, day), status_flag(SMALL))
    validate_osisaf_file(path, day, SMALL)  # the fixture itself passes
    with netCDF4.Dataset(path, "a") as nc:
        change(nc)
    with pytest.raises(ValueError) as info:
        validate_osisaf_file(path, day, SMALL)
    assert str(info.value).startswith(f"{path}: ")
    assert reason in str(info.value)


def test_validator_checks_the_name_against_the_expected_day(tmp_path: Path) -> None:
    day = dt.date(2021, 1, 10)
    path = tmp_path / osisaf_filename("north", day)
    write_osisaf_file(path, SMALL, day, sic_field(SMALL, day), status_flag(SMALL))
    with pytest.raises(ValueError, match="file name is for 20210110, expected 20210111"):
        validate_osisaf_file(path, dt.date(2021, 1, 11), SMALL)


def test_fetched_files_open_with_xarray_as_percent(server: ThreddsServer, tmp_path: Path) -> None:
    day = dt.date(2021, 1, 10)
    publish(server, SMALL, day)
    out = tmp_path / "raw"
    fetch(server, SMALL, day, day, out, **FAST)
    with xr.open_dataset(out / osisaf_filename("north", day)) as ds:
        assert ds["ice_conc"].attrs["units"] == "%"
        np.testing.assert_allclose(ds["ice_conc"].values[0] / 100.0, sic_field(SMALL, day), atol=6e-5)
