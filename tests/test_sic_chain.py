"""The SIC product chain: config checks, every product fetched from local THREDDS and FTP servers
in its documented layout, fast-track files replaced by the nominal ones, the near-real-time
polar stereographic product regridded, and the poll's replacement triggers."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import yaml
from servers.osisaf import OsisafServers, sic_field

from floecast import config as cfg
from floecast.grid import Ease2Grid
from floecast.poll import find_replacements
from floecast.preprocess import regrid_sic_year
from floecast.sources import http
from floecast.sources.osisaf import POLSTERE_GRIDS, fetch_sic_period, period_manifest, validate_osisaf_file
from floecast.sources.remote import Probe
from floecast.sources.sicchain import SicChain

REPO = Path(__file__).resolve().parents[1]
SMALL = Ease2Grid("north", 24)  # 18 x 18: fast files for the fetch logic
FAST = {"backoff": 0.0, "retries": 2, "timeout": 5.0}
NRT = {  # the optional near-real-time stand-in of config/config.yaml
    "name": "OSI-408-a",
    "product_id": "OSI-408-a",
    "version": "4.1",
    "first_day": "2025-10-17",
    "last_day": None,
    "url": "{thredds}/ice/amsr2_conc/{date:%Y}/{date:%m}/ice_conc_{hemi}_polstere-100_amsr2_{date:%Y%m%d}1200.nc",
    "grid": "polstere-100",
    "latency_days": 1,
    "replaced_by": "OSI-438-fast-track",
}


def _schema_osisaf() -> dict:
    return copy.deepcopy(cfg.load_schema()["properties"]["osisaf"]["properties"])


def chain_with_nrt() -> SicChain:
    defaults = _schema_osisaf()
    return SicChain.from_config({"servers": defaults["servers"]["default"], "products": [*defaults["products"]["default"], NRT]})


def base_config(**changes) -> dict:
    config = yaml.safe_load((REPO / "tests/config/tiny.yaml").read_text())
    config.update(sources={"sic": "osisaf", "atmos": "synthetic", "cmip6": "synthetic"}, **changes)
    return config


# ---------------------------------------------------------------- config


def test_production_config_declares_the_chain_and_check_config_accepts_it(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "floecast.cli", "check-config", str(REPO / "config/config.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # no poll state there: date today is estimated from the latencies
    )
    assert proc.returncode == 0, proc.stderr
    checked = json.loads(proc.stdout)
    names = [p["name"] for p in checked["osisaf"]["products"]]
    assert names == ["OSI-450-a1", "OSI-430-a", "OSI-438", "OSI-438-fast-track"]
    assert "date: today ->" in proc.stderr  # the resolved init date is printed
    # the schema's default chain is the production chain (declared twice: kept equal here)
    production = yaml.safe_load((REPO / "config/config.yaml").read_text())["osisaf"]
    assert production["products"] == _schema_osisaf()["products"]["default"]
    assert production["servers"] == _schema_osisaf()["servers"]["default"]


def test_the_chain_serves_each_day_with_its_product_best_first() -> None:
    chain = chain_with_nrt()
    assert [p.name for p in chain.candidates(dt.date(2020, 12, 31))] == ["OSI-450-a1"]
    assert [p.name for p in chain.candidates(dt.date(2025, 10, 16))] == ["OSI-430-a"]
    assert [p.name for p in chain.candidates(dt.date(2026, 2, 1))] == ["OSI-438", "OSI-438-fast-track", "OSI-408-a"]
    name = "ice_conc_nh_ease2-250_icdrft-v3p0-amsr_202602011200.nc"
    assert chain.identify(name, "north").name == "OSI-438-fast-track"
    assert chain.identify("ice_conc_nh_ease2-250_cdr-v3p0_202002011200.nc", "north") is None  # OSI-450-a: not in the chain


def _chain_error(osisaf: dict, match: str) -> None:
    config = base_config(osisaf=osisaf)
    with pytest.raises(cfg.ConfigError, match=match):
        cfg.validate(config)


def test_a_gap_or_an_overlap_in_the_chain_names_the_products_and_days() -> None:
    products = _schema_osisaf()["products"]["default"]
    gap = copy.deepcopy(products)
    gap[1]["first_day"] = "2021-01-04"
    _chain_error(
        {"products": gap},
        r"config key osisaf.products: no product serves 2021-01-01..2021-01-03 \(a gap between OSI-450-a1, which ends "
        r"2020-12-31, and OSI-430-a, which starts 2021-01-04\)",
    )
    overlap = copy.deepcopy(products)
    overlap[2]["first_day"] = "2025-10-10"
    overlap[3]["first_day"] = "2025-10-10"
    _chain_error(
        {"products": overlap}, r"OSI-438 \(from 2025-10-10\) overlaps OSI-430-a \(to 2025-10-16\) on 2025-10-10..2025-10-16"
    )
    closed = copy.deepcopy(products)
    closed[1]["last_day"] = None
    _chain_error({"products": closed}, r"OSI-430-a\): only the last product may be open-ended")


def test_days_no_product_serves_are_refused_naming_the_product_and_day() -> None:
    config = base_config(data={"start": "1978-01-01", "end": "2006-06-30"})
    config["splits"] = {"train": [1978, 2003], "validate": [2004, 2005], "test": [2006, 2006]}
    with pytest.raises(
        cfg.ConfigError, match=r"data.start: no SIC product serves 1978-01-01: .* starts with OSI-450-a1 on 1978-10-25"
    ):
        cfg.validate(config)
    ended = _schema_osisaf()["products"]["default"][:2]  # the chain ends with OSI-430-a on 2025-10-16
    config = base_config(
        date="2026-01-10",
        data={"start": "2024-01-01", "end": "2026-01-09"},
        splits={"train": [2024, 2024], "validate": [2025, 2025], "test": [2026, 2026]},
        osisaf={"products": ended, "consistency": {"candidate": "OSI-430-a"}, "mapping": {"apply_to": []}},
    )
    with pytest.raises(
        cfg.ConfigError, match=r"data.end: no SIC product serves 2025-10-17: .* ends with OSI-430-a on 2025-10-16"
    ):
        cfg.validate(config)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("{thredds}/x/{date:%Y}/ice_conc_{hemi}_{date:%Y%m%d}1200.nc{", "is malformed"),
        ("{thredds}/x/ice_conc_{hemi}_{day:%Y%m%d}1200.nc", r"unknown field\(s\) \['day'\]"),
        ("{thredds}/x/{date:%Y%m%d}/ice_conc_nh_1200.nc", r"must hold \{hemi\} and \{date:...\}"),
        ("{thredds}/x/ice_conc_{hemi}_{date}1200.nc", r"write the day as \{date:<strftime>\}"),
        ("sftp://host/ice_conc_{hemi}_{date:%Y%m%d}1200.nc", "must start with http://, https:// or ftp://"),
        ("{thredds}/x/ice_conc_{hemi}_{date:%d%m%Y}1200.nc", r"ending with the day as _YYYYMMDD"),
    ],
)
def test_a_malformed_url_template_names_the_product(url: str, message: str) -> None:
    products = _schema_osisaf()["products"]["default"]
    products[2]["url"] = url
    _chain_error({"products": products}, rf"config key osisaf.products\[2\] \(OSI-438\): url template .*{message}")


def test_replaced_by_and_report_keys_must_name_products_of_the_chain() -> None:
    products = _schema_osisaf()["products"]["default"]
    products[3]["replaced_by"] = "OSI-439"
    _chain_error(
        {"products": products}, r"osisaf.products\[3\] \(OSI-438-fast-track\): replaced_by 'OSI-439' is not another product"
    )
    _chain_error({"consistency": {"candidate": "OSI-458"}}, r"osisaf.consistency.candidate: 'OSI-458' is not a product")
    _chain_error({"mapping": {"apply_to": ["OSI-458"]}}, r"osisaf.mapping.apply_to: 'OSI-458' is not a product")


# ---------------------------------------------------------------- every product, fetched


@pytest.fixture
def osisaf(tmp_path: Path):
    with OsisafServers(tmp_path / "srv", chain_with_nrt()) as servers:
        yield servers


def test_every_product_is_fetched_from_its_server_in_its_layout(osisaf: OsisafServers, tmp_path: Path) -> None:
    """One day of each product: OSI-450-a1 and OSI-430-a and OSI-438 from THREDDS, the OSI-438 fast-track
    file over FTP, OSI-408-a (10 km polar stereographic) from THREDDS; each under the provider's name,
    validated, and recorded in the manifest with its product and version."""
    chain = osisaf.chain
    days = {
        "OSI-450-a1": dt.date(2020, 12, 31),
        "OSI-430-a": dt.date(2025, 10, 16),
        "OSI-438": dt.date(2025, 10, 17),
        "OSI-438-fast-track": dt.date(2025, 10, 18),
        "OSI-408-a": dt.date(2025, 10, 19),
    }
    for name, day in days.items():
        osisaf.publish(name, "north", day, grid=SMALL)
    out = tmp_path / "raw"
    served, fetched = {}, 0
    for day in [*days.values(), dt.date(2025, 10, 20)]:
        result = fetch_sic_period(chain, "north", day, day, out, grid=SMALL, **FAST)
        served.update(result.served)
        fetched += result.counts["fetched"]
    assert {name: day for day, name in served.items()} == days
    assert fetched == 5
    for name, day in days.items():
        product = chain.product(name)
        assert (out / product.filename("north", day)).is_file()
        assert osisaf.requests(name, "north", day) == 1
    assert osisaf.ftp.retrievals(osisaf.relpath(chain.product("OSI-438-fast-track"), "north", days["OSI-438-fast-track"])) == 1
    # days none of the chain has are missing, with each candidate's answer
    missing = json.loads((out / "missing.json").read_text())
    gap = next(item for item in missing if item["date"] == "2025-10-20")
    assert gap["reason"] == (
        "OSI-438: not on the server (HTTP 404); OSI-438-fast-track: not on the server (FTP 550); "
        "OSI-408-a: not on the server (HTTP 404)"
    )
    manifest = period_manifest(out, chain, "north", "osisaf", dt.date(2025, 10, 1), dt.date(2025, 10, 31), "test")
    assert manifest["days"]["2025-10-18"] == {
        "product": "OSI-438-fast-track",
        "product_id": "OSI-438",
        "version": "3.0",
        "file": "ice_conc_nh_ease2-250_icdrft-v3p0-amsr_202510181200.nc",
        "replaced_later": True,
    }
    assert manifest["days"]["2025-10-16"]["product"] == "OSI-430-a" and not manifest["days"]["2025-10-16"]["replaced_later"]
    with netCDF4.Dataset(out / chain.product("OSI-408-a").filename("north", days["OSI-408-a"])) as nc:
        assert nc["Polar_Stereographic_Grid"].grid_mapping_name == "polar_stereographic"
        assert nc["ice_conc"].shape == (1, 1120, 760) and nc.product_id == "OSI-408-a"
    again = fetch_sic_period(chain, "north", dt.date(2025, 10, 16), dt.date(2025, 10, 19), out, grid=SMALL, **FAST)
    assert again.counts["fetched"] == 0 and again.counts["skipped"] == 4  # nothing valid is fetched twice
    assert again.served[dt.date(2025, 10, 19)] == "OSI-408-a"  # still the stand-in: nothing better has appeared


def test_a_fast_track_day_is_replaced_when_its_nominal_file_appears(osisaf: OsisafServers, tmp_path: Path) -> None:
    chain = osisaf.chain
    day, later = dt.date(2026, 1, 5), dt.date(2026, 1, 6)
    osisaf.publish("OSI-438-fast-track", "north", day, grid=SMALL)
    osisaf.publish("OSI-438-fast-track", "north", later, grid=SMALL)
    out = tmp_path / "raw"
    first = fetch_sic_period(chain, "north", day, later, out, grid=SMALL, **FAST)
    assert first.served == {day: "OSI-438-fast-track", later: "OSI-438-fast-track"}
    fast_name = chain.product("OSI-438-fast-track").filename("north", day)

    osisaf.publish("OSI-438", "north", day, grid=SMALL)  # 16 days on, the nominal file of the first day
    second = fetch_sic_period(chain, "north", day, later, out, grid=SMALL, **FAST)

    assert second.served == {day: "OSI-438", later: "OSI-438-fast-track"}
    assert second.counts == {"fetched": 1, "skipped": 1, "missing": 0, "replaced": 1}
    nominal_name = chain.product("OSI-438").filename("north", day)
    assert sorted(p.name for p in out.glob("ice_conc_*.nc")) == sorted(
        [nominal_name, chain.product("OSI-438-fast-track").filename("north", later)]
    )
    assert (out / "replaced" / fast_name).is_file()  # kept aside, never read again
    [record] = json.loads((out / "replaced.json").read_text())
    assert (record["date"], record["file"], record["product"], record["by"]) == (
        day.isoformat(),
        fast_name,
        "OSI-438-fast-track",
        "OSI-438",
    )
    manifest = period_manifest(out, chain, "north", "osisaf", dt.date(2026, 1, 1), dt.date(2026, 1, 31), "test")
    assert manifest["days"][day.isoformat()]["product"] == "OSI-438"
    assert manifest["days"][later.isoformat()]["product"] == "OSI-438-fast-track"
    assert manifest["replaced"][0]["file"] == fast_name
    # the fast-track file is downloaded once; the next run asks for the nominal file of the later day only
    assert osisaf.requests("OSI-438-fast-track", "north", day) == 1
    third = fetch_sic_period(chain, "north", day, later, out, grid=SMALL, **FAST)
    assert third.counts == {"fetched": 0, "skipped": 2, "missing": 0, "replaced": 0}


def test_a_broken_ftp_transfer_resumes_and_a_bad_fast_track_file_is_rejected(osisaf: OsisafServers, tmp_path: Path) -> None:
    chain = osisaf.chain
    fast = chain.product("OSI-438-fast-track")
    day, bad = dt.date(2026, 2, 1), dt.date(2026, 2, 2)
    source = osisaf.publish(fast, "north", day, grid=SMALL)
    osisaf.ftp.fail(osisaf.relpath(fast, "north", day), "truncate", fraction=0.4)
    osisaf.ftp.fail(osisaf.relpath(fast, "north", day), "busy", code="421")
    bad_path = osisaf.publish(fast, "north", bad, np.zeros(SMALL.shape), np.zeros(SMALL.shape, np.int16), SMALL)  # all zero
    out = tmp_path / "raw"

    result = fetch_sic_period(chain, "north", day, bad, out, grid=SMALL, **FAST)

    assert result.served == {day: "OSI-438-fast-track"}
    assert (out / fast.filename("north", day)).read_bytes() == source.read_bytes()
    assert osisaf.ftp.retrievals(osisaf.relpath(fast, "north", day)) == 3  # truncated, refused, then the rest
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no .part left
    assert (out / "rejected" / bad_path.name).is_file()
    assert "all-zero field" in json.loads((out / "missing.json").read_text())[-1]["reason"]


def test_a_down_thredds_server_passes_to_the_fast_track_file(osisaf: OsisafServers, tmp_path: Path) -> None:
    """THREDDS answers 503 to the nominal files (retries used up): the fast-track files on the FTP
    server serve those days, the nominal product is not asked for again in the run, and the days stay
    stand-ins, replaced later. With no stand-in for a day, the failure is raised."""
    chain = osisaf.chain
    days = [dt.date(2026, 2, 10), dt.date(2026, 2, 11)]
    for day in days:
        osisaf.publish("OSI-438-fast-track", "north", day, grid=SMALL)
        osisaf.thredds.fail(osisaf.relpath(chain.product("OSI-438"), "north", day), "status", times=None, status=503)
    out = tmp_path / "raw"

    result = fetch_sic_period(chain, "north", days[0], days[1], out, grid=SMALL, **FAST)

    assert result.served == dict.fromkeys(days, "OSI-438-fast-track")
    nominal = [osisaf.requests("OSI-438", "north", day) for day in days]
    assert nominal == [1 + FAST["retries"], 0]  # given up on after the first day's retries
    manifest = period_manifest(out, chain, "north", "osisaf", days[0], days[1], "test")
    assert all(manifest["days"][d.isoformat()]["replaced_later"] for d in days)
    alone = chain.with_servers({"ftp": "ftp://127.0.0.1:9"})  # no FTP server there: nothing serves the day
    with pytest.raises(http.DownloadError, match="gave up after"):
        fetch_sic_period(alone, "north", dt.date(2026, 2, 12), dt.date(2026, 2, 12), tmp_path / "none", grid=SMALL, **FAST)


def test_an_ftp_login_refusal_stops_the_fetch_with_a_clear_error(osisaf: OsisafServers, tmp_path: Path) -> None:
    chain = osisaf.chain.with_servers({"ftp": osisaf.ftp.base_url.replace("ftp://", "ftp://nobody:wrong@")})
    day = dt.date(2026, 2, 3)
    osisaf.publish("OSI-438-fast-track", "north", day, grid=SMALL)
    with pytest.raises(http.DownloadError, match="login refused") as info:
        fetch_sic_period(chain, "north", day, day, tmp_path / "raw", grid=SMALL, **FAST)
    assert "wrong" not in str(info.value)  # the password is never shown


def test_the_near_real_time_product_is_regridded_onto_ease2(osisaf: OsisafServers, tmp_path: Path) -> None:
    """OSI-408-a (10 km polar stereographic) beside an OSI-438 day: bilinear onto the 25 km EASE2 grid,
    then block-averaged to the configured grid; the interim file says which product served each day."""
    chain = osisaf.chain
    grid = Ease2Grid("north", 12)
    day1, day2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
    osisaf.publish("OSI-438", "north", day1)
    path = osisaf.publish("OSI-408-a", "north", day2)
    validate_osisaf_file(path, day2, Ease2Grid("north", 1), chain.product("OSI-408-a"))
    out = tmp_path / "raw"
    fetch_sic_period(chain, "north", day1, day2, out, **FAST)

    ds = regrid_sic_year(out, tmp_path / "sic.nc", grid, chain=chain)

    assert list(ds["sic_product"].values) == ["OSI-438 v3.0", "OSI-408-a v4.1"]
    expected, _ = sic_field(grid.lon, grid.lat, day2)
    ocean = (ds["land"].values == 0) & np.isfinite(expected)
    error = np.abs(ds["sic"].values[1] - expected)[ocean]
    assert np.nanmean(error) < 0.03 and np.nanpercentile(error, 90) < 0.06  # interpolation, 10 km -> 25 km -> 300 km
    assert ds["filled"].values.tolist()[0] == 0


def test_polar_stereographic_grids_match_their_documented_extents() -> None:
    north, south = POLSTERE_GRIDS["north"], POLSTERE_GRIDS["south"]
    assert (north.xc[0], north.xc[-1], north.yc[0], north.yc[-1]) == (-3845.0, 3745.0, 5845.0, -5345.0)
    assert (south.xc[0], south.xc[-1], south.yc[0], south.yc[-1]) == (-3945.0, 3945.0, 4345.0, -3945.0)
    lon, lat = north.lonlat
    assert lat.max() > 89.9 and 30 < lat.min() < 32


# ---------------------------------------------------------------- poll: replacement triggers


def test_poll_writes_a_trigger_when_the_nominal_file_of_a_fast_track_day_appears(osisaf: OsisafServers, tmp_path: Path) -> None:
    root = tmp_path / "root"
    chain = osisaf.chain
    day = dt.date(2026, 1, 30)
    osisaf.publish("OSI-438-fast-track", "north", day, grid=SMALL)
    folder = root / "data/raw/osisaf/ice_conc/north/2026/01"
    fetch_sic_period(chain, "north", day, day, folder, grid=SMALL, **FAST)
    manifest = period_manifest(folder, chain, "north", "osisaf", dt.date(2026, 1, 1), dt.date(2026, 1, 31), "test")
    folder.with_suffix(".json").write_text(json.dumps(manifest))
    config = {
        "hemispheres": ["north"],
        "sources": {"sic": "osisaf"},
        "osisaf": {"servers": osisaf.servers, "products": [*_schema_osisaf()["products"]["default"], NRT]},
    }
    trigger = root / "data/poll/replace/osisaf/north/2026/01.json"
    with Probe() as probe:
        assert find_replacements(config, root, dt.date(2026, 2, 17), probe) == {}
        assert not trigger.exists()
        osisaf.publish("OSI-438", "north", day, grid=SMALL)
        found = find_replacements(config, root, dt.date(2026, 2, 17), probe)
    assert found == {"data/raw/osisaf/ice_conc/north/2026/01.json": ["2026-01-30"]}
    assert json.loads(trigger.read_text())["days"] == ["2026-01-30"]
    stamp = trigger.stat().st_mtime_ns
    with Probe() as probe:  # the same news again: the trigger is kept as it is
        find_replacements(config, root, dt.date(2026, 2, 18), probe)
    assert trigger.stat().st_mtime_ns == stamp
