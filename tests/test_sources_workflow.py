"""The workflow's ingest and preprocess rules on real protocols: OSI-SAF over a local
THREDDS fileServer and CMIP6 over a local ESGF index with two data nodes. A second run
fetches nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from servers.esgf import EsgfTestbed
from servers.thredds import ThreddsServer
from test_workflow import snakemake

from floecast.grid import Ease2Grid
from floecast.sources.osisaf import STATUS_LAND, osisaf_filename, osisaf_url, write_osisaf_file
from floecast.sources.synthetic import idealised_land

pytestmark = pytest.mark.workflow
DAYS = [dt.date(2019, 12, 31), dt.date(2021, 1, 1), dt.date(2021, 1, 2)]  # OSI-450-a, then OSI-430-a
NOT_PUBLISHED = dt.date(2021, 1, 1)
TARGETS = [
    "data/interim/north/obs/sic/2019.nc",
    "data/interim/north/obs/sic/2021.nc",
    "data/interim/north/cmip6/MRI-ESM2-0_r1i1p1f1/sic.nc",
]


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
    with ThreddsServer(root / "thredds") as thredds, EsgfTestbed(root / "esgf") as esgf:
        for day in DAYS:
            if day != NOT_PUBLISHED:
                rel = osisaf_url("", "north", day).lstrip("/")
                write_osisaf_file(thredds.path(rel), full, day, sic, status)
        esgf.publish("siconca", "MRI-ESM2-0", "r1i1p1f1", "historical", "20140101", "20141231")
        esgf.publish("siconca", "MRI-ESM2-0", "r1i1p1f1", "ssp245", "20150101", "20151231")
        yield thredds, esgf


@pytest.fixture(scope="module")
def fetched(services, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    thredds, esgf = services
    workdir = tmp_path_factory.mktemp("real_sources")
    config = yaml.safe_load((Path(__file__).parent / "config" / "tiny.yaml").read_text())
    config.update(
        run="real",
        date="2021-01-03",
        data={"start": "2019-12-31", "end": "2021-01-02"},
        splits={"train": [2019, 2019], "validate": [2020, 2020], "test": [2021, 2021]},
        sources={"sic": "osisaf", "atmos": "synthetic", "cmip6": "esgf"},
        osisaf={"base_url": thredds.base_url, "known_bad_days": []},
        esgf={"index_url": esgf.index.url},
        cmip6={"runs": [{"model": "MRI-ESM2-0", "member": "r1i1p1f1"}], "years": [2014, 2015]},
    )
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    snakemake(workdir, *TARGETS, configfile=configfile)
    return workdir, configfile


def test_osisaf_days_fetched_gaps_filled(fetched: tuple[Path, Path], services) -> None:
    workdir, _ = fetched
    thredds, _ = services
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
        # 2021-01-01 was not published: the year's folder holds 2021-01-02 only, so the
        # year starts there; a gap inside a year is filled and flagged (test_osisaf_http)
        assert list(ds["time"].dt.strftime("%Y-%m-%d").values) == ["2021-01-02"]
    assert thredds.requests_for(osisaf_url("", "north", NOT_PUBLISHED).lstrip("/")) == 1


def test_cmip6_from_esgf(fetched: tuple[Path, Path]) -> None:
    workdir, _ = fetched
    files = sorted(p.name for p in (workdir / "data/raw/esgf/cmip6/MRI-ESM2-0_r1i1p1f1/siconca/files").glob("*.nc"))
    assert files == [
        "siconca_SIday_MRI-ESM2-0_historical_r1i1p1f1_gn_20140101-20141231.nc",
        "siconca_SIday_MRI-ESM2-0_ssp245_r1i1p1f1_gn_20150101-20151231.nc",
    ]
    with xr.open_dataset(workdir / TARGETS[2]) as ds:
        days = ds["time"].dt.strftime("%Y-%m-%d").values
        assert days[0] == "2014-01-01" and days[-1] == "2015-12-31" and len(days) == 730
        sic = ds["sic"].values
        assert np.nanmin(sic) >= 0 and np.nanmax(sic) <= 1  # CMIP6 percent -> fraction
        assert np.isfinite(sic).any()


def test_second_run_fetches_nothing(fetched: tuple[Path, Path], services) -> None:
    workdir, configfile = fetched
    thredds, esgf = services
    before = (thredds.total_requests(), esgf.primary.hits(), esgf.replica.hits())
    proc = snakemake(workdir, *TARGETS, configfile=configfile)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert (thredds.total_requests(), esgf.primary.hits(), esgf.replica.hits()) == before
