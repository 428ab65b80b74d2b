"""The workflow's ingest and preprocess rules on real protocols: OSI-SAF over a local
THREDDS fileServer, ERA5 through cdsapi from a local CDS server (its newest day filled
from a local ECMWF open-data server), and CMIP6 over a local ESGF index with two data
nodes. A second run fetches nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from servers.cds import CdsServer
from servers.esgf import EsgfTestbed
from servers.opendata import OpendataServer
from servers.thredds import ThreddsServer
from test_workflow import snakemake

from floecast.grid import Ease2Grid
from floecast.sources.osisaf import STATUS_LAND, osisaf_filename, osisaf_url, write_osisaf_file
from floecast.sources.synthetic import idealised_land

pytestmark = pytest.mark.workflow
DAYS = [dt.date(2019, 12, 31), dt.date(2021, 1, 1), dt.date(2021, 1, 2)]  # OSI-450-a1, then OSI-430-a
NOT_PUBLISHED = dt.date(2021, 1, 1)
TARGETS = [
    "data/interim/north/obs/sic/2019.nc",
    "data/interim/north/obs/sic/2021.nc",
    "data/interim/north/obs/t2m/2021.nc",
    "data/interim/north/obs/u10/2019.nc",
    "data/interim/north/cmip6/MRI-ESM2-0_r1i1p1f1/sic.nc",
]
CDS_KEY = "00000000-test-key-0000"


def _sic_field(grid: Ease2Grid) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = grid.lonlat
    land = idealised_land(lon, lat, "north")
    sic = np.clip((lat - 70.0) / 10.0, 0.0, 1.0)
    return np.where(land, np.nan, sic), np.where(land, STATUS_LAND, 0)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("services")
    full = Ease2Grid("north", 1)  # OSI-SAF files are on the 25 km grid
    sic, status = _sic_field(full)
    with (
        ThreddsServer(root / "thredds") as thredds,
        EsgfTestbed(root / "esgf") as esgf,
        CdsServer(root / "cds", key=CDS_KEY, polls_accepted=0, polls_running=0) as cds,
        OpendataServer() as opendata,
    ):
        cds.era5_end = "2021-01-01T23:00:00Z"  # ERA5 lacks 2021-01-02: HRES fills it
        opendata.add_run(dt.date(2021, 1, 2))
        for day in DAYS:
            if day != NOT_PUBLISHED:
                rel = osisaf_url("", "north", day).lstrip("/")
                write_osisaf_file(thredds.path(rel), full, day, sic, status)
        esgf.publish("siconca", "MRI-ESM2-0", "r1i1p1f1", "historical", "20140101", "20141231")
        esgf.publish("siconca", "MRI-ESM2-0", "r1i1p1f1", "ssp245", "20150101", "20151231")
        yield thredds, esgf, cds, opendata


def write_config(workdir: Path, services) -> Path:
    """The tiny config switched to the real sources at the local servers' addresses."""
    thredds, esgf, _, opendata = services
    config = yaml.safe_load((Path(__file__).parent / "config" / "tiny.yaml").read_text())
    config.update(
        run="real",
        date="2021-01-03",
        data={"start": "2019-12-31", "end": "2021-01-02"},
        splits={"train": [2019, 2019], "validate": [2020, 2020], "test": [2021, 2021]},
        sources={"sic": "osisaf", "atmos": "era5", "cmip6": "esgf"},
        osisaf={"servers": {"thredds": thredds.base_url, "ftp": "ftp://127.0.0.1:9"}, "known_bad_days": []},
        esgf={"index_url": esgf.index.url},
        era5={"area_lat": 15, "realtime_url": opendata.base_url},
        cmip6={"runs": [{"model": "MRI-ESM2-0", "member": "r1i1p1f1"}], "years": [2014, 2015]},
    )
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    return configfile


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ updated for the with-block (Snakemake's jobs inherit it)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def cds_environment(workdir: Path, services) -> AbstractContextManager[None]:
    """cdsapi reads its address and key from the environment (never from the config)."""
    cds = services[2]
    return environment({"CDSAPI_URL": cds.base_url, "CDSAPI_KEY": CDS_KEY, "CDSAPI_RC": str(workdir / "no-cdsapirc")})


@pytest.fixture(scope="module")
def fetched(services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    workdir = tmp_path_factory.mktemp("real_sources")
    configfile = write_config(workdir, services)
    with cds_environment(workdir, services):
        snakemake(workdir, *TARGETS, configfile=configfile)
        yield workdir, configfile


def test_osisaf_days_fetched_gaps_filled(fetched: tuple[Path, Path], services) -> None:
    workdir, _ = fetched
    thredds, _, _, _ = services
    raw = workdir / "data/raw/osisaf/ice_conc/north"
    assert (raw / "2019/12" / osisaf_filename("north", DAYS[0])).exists()
    assert sorted(p.name for p in (raw / "2021/01").glob("*.nc")) == [osisaf_filename("north", DAYS[2])]
    missing = json.loads((raw / "2021/01/missing.json").read_text())
    assert [entry["date"] for entry in missing] == [NOT_PUBLISHED.isoformat()]
    grid = Ease2Grid("north", 27)
    with xr.open_dataset(workdir / TARGETS[0]) as ds:
        assert ds["sic"].shape == (1, *grid.shape)
        # the 25 km field coarsened by 27x27 blocks: ice where the block's mean latitude is high
        _, lat = grid.lonlat
        ocean = ds["land"].values == 0
        assert np.nanmax(ds["sic"].values) > 0.9 and np.nanmin(ds["sic"].values[0][ocean & (lat < 60)]) == 0.0
    with xr.open_dataset(workdir / TARGETS[1]) as ds:
        # 2021-01-01 was not published: the year's first day is filled from the nearest
        # day and flagged (a gap inside a year is interpolated: test_osisaf_http)
        assert list(ds["time"].dt.strftime("%Y-%m-%d").values) == ["2021-01-01", "2021-01-02"]
        assert list(ds["filled"].values) == [1, 0]
        np.testing.assert_array_equal(ds["sic"].values[0], ds["sic"].values[1])
    assert thredds.requests_for(osisaf_url("", "north", NOT_PUBLISHED).lstrip("/")) == 1


def test_cmip6_from_esgf(fetched: tuple[Path, Path]) -> None:
    workdir, _ = fetched
    files = sorted(p.name for p in (workdir / "data/raw/esgf/cmip6/MRI-ESM2-0_r1i1p1f1/siconca/files").glob("*.nc"))
    assert files == [
        "siconca_SIday_MRI-ESM2-0_historical_r1i1p1f1_gn_20140101-20141231.nc",
        "siconca_SIday_MRI-ESM2-0_ssp245_r1i1p1f1_gn_20150101-20151231.nc",
    ]
    with xr.open_dataset(workdir / "data/interim/north/cmip6/MRI-ESM2-0_r1i1p1f1/sic.nc") as ds:
        days = ds["time"].dt.strftime("%Y-%m-%d").values
        assert days[0] == "2014-01-01" and days[-1] == "2015-12-31" and len(days) == 730
        sic = ds["sic"].values
        assert np.nanmin(sic) >= 0 and np.nanmax(sic) <= 1  # CMIP6 percent -> fraction
        assert np.isfinite(sic).any()


def test_era5_fetched_regridded_rotated(fetched: tuple[Path, Path], services) -> None:
    workdir, _ = fetched
    _, _, cds, opendata = services
    raw = workdir / "data/raw/era5"
    assert sorted(p.name for p in (raw / "t2m/north/2021").glob("*.nc")) == ["01.nc", "hres_20210102.nc"]
    with xr.open_dataset(raw / "t2m/north/2021.nc") as ds:
        assert list(ds["valid_time"].dt.strftime("%Y-%m-%d").values) == ["2021-01-01", "2021-01-02"]
        assert {"latitude", "longitude"} <= set(ds.dims)
        assert [str(v) for v in ds["expver"].values] == ["0001", "hres"]  # ERA5, then the HRES forecast
    assert (raw / "t2m/north/2021/hres_20210102.nc").exists()
    assert opendata.requests() and not [r for r in opendata.requests() if "20210101" in r.path]
    grid = Ease2Grid("north", 27)
    with xr.open_dataset(workdir / "data/interim/north/obs/t2m/2021.nc") as ds:
        assert ds["t2m"].shape == (2, *grid.shape)
        assert 200 < float(ds["t2m"].min()) and float(ds["t2m"].max()) < 320
    with xr.open_dataset(workdir / "data/interim/north/obs/u10/2019.nc") as ds:
        assert ds["u10"].shape == (1, *grid.shape) and np.isfinite(ds["u10"].values).all()
    assert list((workdir / "data/interim/north/weights").glob("weights_*.npz"))  # cached once per source grid
    submitted = [r for r in cds.records if r.method == "POST" and r.path.endswith("/execution")]
    # t2m 2021-01, u10 and v10 for 2019-12 (for the u10 rotation, v10 is fetched too)
    assert len(submitted) == 3
    logs = "".join(p.read_text() for p in (workdir / "logs").rglob("*.log"))
    assert CDS_KEY not in logs


def test_second_run_fetches_nothing(fetched: tuple[Path, Path], services) -> None:
    workdir, configfile = fetched
    thredds, esgf, cds, opendata = services

    def counts() -> tuple[int, ...]:
        return thredds.total_requests(), esgf.primary.hits(), esgf.replica.hits(), len(cds.records), len(opendata.requests())

    before = counts()
    proc = snakemake(workdir, *TARGETS, configfile=configfile)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert counts() == before


def test_rerun_of_a_month_fetches_only_what_is_missing(fetched: tuple[Path, Path], services) -> None:
    """A month's job run again (its manifest removed and asked for): the files already in
    the month's folder are kept and not fetched again."""
    workdir, configfile = fetched
    thredds, _, _, _ = services
    manifest = workdir / "data/raw/osisaf/ice_conc/north/2021/01.json"
    listed = json.loads(manifest.read_text())
    assert listed["files"] == [osisaf_filename("north", DAYS[2])]
    assert [entry["date"] for entry in listed["missing"]] == [NOT_PUBLISHED.isoformat()]
    manifest.unlink()
    present = osisaf_url("", "north", DAYS[2]).lstrip("/")
    absent = osisaf_url("", "north", NOT_PUBLISHED).lstrip("/")
    before = (thredds.requests_for(present), thredds.requests_for(absent))
    snakemake(workdir, str(manifest.relative_to(workdir)), configfile=configfile)
    assert thredds.requests_for(present) == before[0]  # kept, not fetched again
    assert thredds.requests_for(absent) == before[1] + 1  # still asked for: it may have appeared
    assert json.loads(manifest.read_text())["files"] == listed["files"]
