"""The ESGF client against a local index node and two data nodes (tests/servers/esgf.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import xarray as xr
from servers.esgf import MODEL_COAST_LAT, MRI_SICONCA, EsgfTestbed, IndexNode, publish_sample

from floecast.grid import Ease2Grid
from floecast.io import DailyReader
from floecast.preprocess import regrid_cmip6_sic
from floecast.sources.cmip6 import assemble_run
from floecast.sources.esgf import (
    EsgfError,
    EsgfFile,
    cmip6_table,
    default_grid_label,
    download_file,
    experiments_for_years,
    fetch_variable,
    files_for_years,
    parse_filename,
    search_files,
)
from floecast.sources.synthetic import idealised_land
from floecast.store import coast_fill_share

MRI_TITLES = [f"siconca_SIday_MRI-ESM2-0_{exp}_r1i1p1f1_gn_{start}-{end}.nc" for exp, start, end in MRI_SICONCA]
BOTH = ["historical", "ssp245"]


@pytest.fixture(scope="module")
def esgf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EsgfTestbed, dict]]:
    with EsgfTestbed(tmp_path_factory.mktemp("esgf")) as testbed:
        yield testbed, publish_sample(testbed)


@pytest.fixture
def bed(esgf: tuple[EsgfTestbed, dict]) -> EsgfTestbed:
    """The shared testbed with every node up, nothing corrupted and the counters at zero."""
    testbed = esgf[0]
    for server in (testbed.index, testbed.primary, testbed.replica):
        server.mode = "up"
    testbed.primary.corrupted.clear()
    testbed.replica.corrupted.clear()
    testbed.primary.requests.clear()
    testbed.replica.requests.clear()
    testbed.index.queries.clear()
    return testbed


@pytest.fixture
def sample(esgf: tuple[EsgfTestbed, dict]) -> dict:
    return esgf[1]


def mri_siconca(bed: EsgfTestbed, **kwargs) -> list[EsgfFile]:
    return search_files(bed.index.url, "MRI-ESM2-0", "r1i1p1f1", BOTH, "SIday", "siconca", "gn", **kwargs)


def find(files: list[EsgfFile], period: str) -> EsgfFile:
    (match,) = [f for f in files if period in f.title]
    return match


# --- search -----------------------------------------------------------------------------


def test_search_pages_through_every_file_of_both_experiments(bed: EsgfTestbed, sample: dict) -> None:
    files = mri_siconca(bed, page_size=5)

    assert [f.title for f in files] == MRI_TITLES
    # 6 files x 2 data nodes + the superseded version's 2 records, which latest=true leaves out
    assert [int(q["offset"][0]) for q in bed.index.queries] == [0, 5, 10]
    for query in bed.index.queries:
        assert query["project"] == ["CMIP6"] and query["type"] == ["File"] and query["latest"] == ["true"]
        assert query["format"] == ["application/solr+json"] and query["limit"] == ["5"]
        assert query["experiment_id"] == BOTH and query["grid_label"] == ["gn"]
        assert "replica" not in query  # replica records are wanted
    for f in files:
        published = sample[f.title]
        assert f.version == "20190603"
        assert f.checksum == published.sha256 and f.checksum_type == "SHA256" and f.size == published.size
        assert f.instance_id == published.instance_id and ".v20190603." in f.instance_id
        assert f.name.source_id == "MRI-ESM2-0" and f.name.member_id == "r1i1p1f1" and f.name.table_id == "SIday"


def test_search_one_experiment_at_a_time_gives_the_same_files(bed: EsgfTestbed) -> None:
    both = mri_siconca(bed)
    historical = search_files(bed.index.url, "MRI-ESM2-0", "r1i1p1f1", "historical", "SIday", "siconca", "gn", page_size=2)
    scenario = search_files(bed.index.url, "MRI-ESM2-0", "r1i1p1f1", "ssp245", "SIday", "siconca", "gn", page_size=2)

    assert [f.title for f in historical] == MRI_TITLES[:4]
    assert [f.title for f in scenario] == MRI_TITLES[4:]
    assert historical + scenario == both


def test_search_respects_the_index_nodes_limit_cap(bed: EsgfTestbed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bed.index, "max_limit", 4)
    files = mri_siconca(bed, page_size=500)

    assert [f.title for f in files] == MRI_TITLES
    assert [int(q["offset"][0]) for q in bed.index.queries] == [0, 4, 8]


def test_replicas_are_grouped_with_the_original_node_first(bed: EsgfTestbed, sample: dict) -> None:
    raw = requests.get(
        bed.index.url,
        params={"type": "File", "format": "application/solr+json", "latest": "true", "variable_id": "siconca", "limit": 100},
        timeout=5,
    ).json()["response"]["docs"]
    first_seen = {}
    for doc in raw:
        first_seen.setdefault(doc["instance_id"], doc["replica"])
    assert True in first_seen.values()  # the index lists some replicas before their original

    files = mri_siconca(bed)
    for f in files:
        urls = sample[f.title].urls
        assert f.urls == (urls[bed.primary.name], urls[bed.replica.name])
        assert f.data_nodes == (bed.primary.name, bed.replica.name)
        assert f.urls[0].startswith(f"{bed.primary.base_url}/thredds/fileServer/esg_dataroot/CMIP6/CMIP/MRI/MRI-ESM2-0/") or (
            f.urls[0].startswith(f"{bed.primary.base_url}/thredds/fileServer/esg_dataroot/CMIP6/ScenarioMIP/MRI/MRI-ESM2-0/")
        )

    ec_earth = search_files(
        bed.index.url, "EC-Earth3", "r2i1p1f1", BOTH, "SIday", "siconca", default_grid_label("EC-Earth3", "siconca")
    )
    assert [f.title for f in ec_earth] == [
        "siconca_SIday_EC-Earth3_historical_r2i1p1f1_gr_20140101-20141231.nc",
        "siconca_SIday_EC-Earth3_ssp245_r2i1p1f1_gr_20150101-20151231.nc",
    ]
    assert all(f.data_nodes == (bed.replica.name, bed.primary.name) for f in ec_earth)  # published there first


def test_search_selects_by_member_table_variable_and_grid(bed: EsgfTestbed) -> None:
    r2 = search_files(bed.index.url, "MRI-ESM2-0", "r2i1p1f1", BOTH, "SIday", "siconca", "gn")
    assert [f.title for f in r2] == ["siconca_SIday_MRI-ESM2-0_historical_r2i1p1f1_gn_20000101-20141231.nc"]

    winds = search_files(bed.index.url, "MRI-ESM2-0", "r1i1p1f1", BOTH, "day", ["uas", "vas"], "gn")
    assert [f.name.variable_id for f in winds] == ["uas", "vas"]
    assert all(f.name.table_id == "day" and f.start == dt.date(2010, 1, 1) and f.end == dt.date(2014, 12, 31) for f in winds)

    assert search_files(bed.index.url, "MRI-ESM2-0", "r1i1p1f1", BOTH, "SIday", "siconca", "gr") == []
    assert search_files(bed.index.url, "MRI-ESM2-0", "r9i1p1f1", BOTH, "SIday", "siconca") == []
    anygrid = search_files(bed.index.url, "EC-Earth3", "r2i1p1f1", "historical", "SIday", "siconca", grid_label=None)
    assert [f.name.grid_label for f in anygrid] == ["gr"]


def test_index_url_is_configurable(bed: EsgfTestbed, tmp_path: Path) -> None:
    expected = [f.title for f in mri_siconca(bed)]
    base = search_files(bed.index.base_url + "/", "MRI-ESM2-0", "r1i1p1f1", BOTH, "SIday", "siconca", "gn")
    assert [f.title for f in base] == expected

    closed = IndexNode()
    closed.stop()
    troubled = IndexNode()
    troubled.mode = "503"
    try:
        with requests.Session() as session:
            files = search_files(
                [closed.base_url, troubled.url, bed.index.url], "MRI-ESM2-0", "r1i1p1f1", BOTH, "SIday", "siconca", "gn", session
            )
        assert [f.title for f in files] == expected
        assert len(troubled.queries) == 1

        with pytest.raises(EsgfError) as failure:
            search_files([closed.base_url, troubled.url], "MRI-ESM2-0", "r1i1p1f1", BOTH, "SIday", "siconca", "gn")
        message = str(failure.value)
        assert closed.url in message and troubled.url in message and "503" in message and "ConnectionError" in message
    finally:
        troubled.stop()


# --- file names, years, grid labels -------------------------------------------------------


def test_parse_filename() -> None:
    name = parse_filename("/data/siconca_SIday_MRI-ESM2-0_historical_r1i1p1f1_gn_20000101-20141231.nc")
    assert (name.variable_id, name.table_id, name.source_id, name.experiment_id, name.member_id, name.grid_label) == (
        "siconca",
        "SIday",
        "MRI-ESM2-0",
        "historical",
        "r1i1p1f1",
        "gn",
    )
    assert (name.start, name.end) == (dt.date(2000, 1, 1), dt.date(2014, 12, 31))
    monthly = parse_filename("siconc_SImon_EC-Earth3_ssp245_r14i1p1f1_gn_201502-201602.nc")
    assert (monthly.start, monthly.end) == (dt.date(2015, 2, 1), dt.date(2016, 2, 29))
    fixed = parse_filename("sftlf_fx_EC-Earth3_historical_r1i1p1f1_gr.nc")
    assert fixed.grid_label == "gr" and fixed.start is None and fixed.end is None
    with pytest.raises(ValueError, match="not a CMIP6 file name"):
        parse_filename("ice_conc_nh_ease2-250_cdr-v3p0_200001011200.nc")


def test_files_for_years_across_the_historical_scenario_boundary(bed: EsgfTestbed) -> None:
    files = mri_siconca(bed)

    def periods(first: int, last: int) -> list[str]:
        return [f.title.rsplit("_", 1)[1].removesuffix(".nc") for f in files_for_years(files, first, last)]

    assert periods(1970, 2014) == ["19500101-19991231", "20000101-20141231"]
    assert periods(2014, 2015) == ["20000101-20141231", "20150101-20641231"]
    assert periods(2015, 2020) == ["20150101-20641231"]
    assert periods(2014, 2014) == ["20000101-20141231"]
    assert periods(1850, 2100) == [t.rsplit("_", 1)[1].removesuffix(".nc") for t in MRI_TITLES]
    assert periods(1800, 1849) == [] and periods(2101, 2200) == []
    assert files_for_years(reversed(files), 1979, 2020) == files_for_years(files, 1979, 2020)


def test_experiments_grid_labels_and_tables() -> None:
    assert experiments_for_years(1970, 2014) == ["historical"]
    assert experiments_for_years(1979, 2020) == ["historical", "ssp245"]
    assert experiments_for_years(2015, 2030) == ["ssp245"]
    with pytest.raises(ValueError):
        experiments_for_years(2020, 2019)
    assert default_grid_label("MRI-ESM2-0", "siconca") == "gn"
    assert default_grid_label("MRI-ESM2-0", "tos") == "gr"
    assert default_grid_label("EC-Earth3", "tas") == "gr"
    # the tables are the catalogue's: daily where the model has it, monthly for the ocean and ice state
    tables = [cmip6_table(v) for v in ("siconca", "tos", "tas", "uas", "vas", "sithick", "mlotst")]
    assert tables == ["SIday", "Oday", "day", "day", "day", "SImon", "Omon"]
    with pytest.raises(ValueError, match="no catalogue variable has the CMIP6 name 'zg'"):
        cmip6_table("zg")


# --- download -----------------------------------------------------------------------------


def hits(bed: EsgfTestbed, sample: dict, title: str) -> tuple[int, int]:
    rel = sample[title].rel
    return bed.primary.hits(rel[bed.primary.name]), bed.replica.hits(rel[bed.replica.name])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_from_the_original_node_then_not_again(bed: EsgfTestbed, sample: dict, tmp_path: Path) -> None:
    wanted = find(mri_siconca(bed), "20000101-20141231")
    path = download_file(wanted, tmp_path / "raw")

    assert path == tmp_path / "raw" / wanted.title
    assert path.read_bytes() == sample[wanted.title].path.read_bytes()
    assert hits(bed, sample, wanted.title) == (1, 0)
    assert sorted(p.name for p in path.parent.iterdir()) == [wanted.title]  # no partial file left

    mtime = path.stat().st_mtime_ns
    assert download_file(wanted, tmp_path / "raw") == path
    assert hits(bed, sample, wanted.title) == (1, 0)
    assert bed.primary.hits() + bed.replica.hits() == 1
    assert path.stat().st_mtime_ns == mtime


def test_download_skips_a_node_answering_503(bed: EsgfTestbed, sample: dict, tmp_path: Path) -> None:
    wanted = find(mri_siconca(bed), "20150101-20641231")
    bed.primary.mode = "503"
    path = download_file(wanted, tmp_path)

    assert sha256(path) == sample[wanted.title].sha256
    assert hits(bed, sample, wanted.title) == (1, 1)


def test_download_skips_a_node_that_does_not_answer(bed: EsgfTestbed, sample: dict, tmp_path: Path) -> None:
    wanted = find(mri_siconca(bed), "20000101-20141231")
    bed.primary.mode = "hang"
    bed.primary.hang_seconds = 2.0
    path = download_file(wanted, tmp_path, timeout=0.3)

    assert sha256(path) == sample[wanted.title].sha256
    assert hits(bed, sample, wanted.title) == (1, 1)


def test_checksum_mismatch_falls_back_to_the_replica(bed: EsgfTestbed, sample: dict, tmp_path: Path) -> None:
    wanted = find(mri_siconca(bed), "19500101-19991231")
    bed.primary.corrupt(sample[wanted.title].rel[bed.primary.name])
    assert requests.get(wanted.urls[0], timeout=5).content != sample[wanted.title].path.read_bytes()
    bed.primary.requests.clear()

    path = download_file(wanted, tmp_path)
    assert sha256(path) == wanted.checksum
    assert hits(bed, sample, wanted.title) == (1, 1)


def test_corrupt_everywhere_fails_and_leaves_no_file(bed: EsgfTestbed, sample: dict, tmp_path: Path) -> None:
    wanted = find(mri_siconca(bed), "19500101-19991231")
    for node in (bed.primary, bed.replica):
        node.corrupt(sample[wanted.title].rel[node.name])

    with pytest.raises(EsgfError) as failure:
        download_file(wanted, tmp_path)
    message = str(failure.value)
    assert wanted.title in message and message.count("SHA256 mismatch") == 2
    assert wanted.urls[0] in message and wanted.urls[1] in message
    assert list(tmp_path.iterdir()) == []


def test_an_invalid_existing_file_is_fetched_again(bed: EsgfTestbed, sample: dict, tmp_path: Path) -> None:
    wanted = find(mri_siconca(bed), "20650101-21001231")
    stale = tmp_path / wanted.title
    stale.write_bytes(b"truncated")

    path = download_file(wanted, tmp_path)
    assert path == stale and sha256(path) == wanted.checksum
    assert hits(bed, sample, wanted.title) == (1, 0)


def test_download_with_the_original_node_port_closed(tmp_path: Path) -> None:
    with EsgfTestbed(tmp_path / "esgf") as own:
        published = own.publish("siconca", "EC-Earth3", "r7i1p1f1", "historical", "20140101", "20141231", grid="gr")
        md5 = own.publish("tas", "EC-Earth3", "r7i1p1f1", "ssp245", "20150101", "20151231", grid="gr", checksum_type="MD5")
        sic, tas = (
            search_files(own.index.url, "EC-Earth3", "r7i1p1f1", BOTH, table, variable, "gr")
            for table, variable in (("SIday", "siconca"), ("day", "tas"))
        )
        assert [f.title for f in sic] == [published.title] and [f.checksum_type for f in tas] == ["MD5"]

        own.primary.stop()
        path = download_file(sic[0], tmp_path / "raw")
        assert sha256(path) == published.sha256
        assert own.replica.hits(published.rel[own.replica.name]) == 1

        path = download_file(tas[0], tmp_path / "raw")  # verified with MD5
        assert sha256(path) == md5.sha256

        own.replica.stop()
        (tmp_path / "raw" / published.title).unlink()
        with pytest.raises(EsgfError) as failure:
            download_file(sic[0], tmp_path / "raw")
        message = str(failure.value)
        assert message.startswith(published.title)
        assert published.urls[own.primary.name] in message and published.urls[own.replica.name] in message
        assert message.count("ConnectionError") == 2


def test_search_keeps_the_newest_version_and_skips_unusable_records(tmp_path: Path) -> None:
    with EsgfTestbed(tmp_path / "esgf") as own:
        args = ("siconca", "EC-Earth3", "r10i1p1f1", "historical", "20140101", "20141231")
        new = own.publish(*args, grid="gr", version="20200918", nodes=(own.primary,))
        own.publish(*args, grid="gr", version="20200310", nodes=(own.replica,))  # a stale node still says latest
        odd = dict(own.index.docs[0], id="odd|x", instance_id="odd", title="../" + new.title)
        newer = f"CMIP6.CMIP.EC-Earth-Consortium.EC-Earth3.historical.r10i1p1f1.SIday.siconca.gr.v20991231.{new.title}"
        no_http = dict(own.index.docs[0], id=newer + "|x", instance_id=newer, url=[own.index.docs[0]["url"][1]])  # OPeNDAP only
        own.index.docs += [odd, no_http]

        (found,) = search_files(own.index.base_url, "EC-Earth3", "r10i1p1f1", "historical", "SIday", "siconca", "gr")
        assert found.version == "20200918" and found.instance_id == new.instance_id
        assert found.urls == (new.urls[own.primary.name],) and found.checksum == new.sha256


# --- a model coastline unlike the observations' -------------------------------------------


def test_model_land_that_is_observed_ocean_is_filled_from_the_nearest_model_ocean(tmp_path: Path) -> None:
    """The ESGF path end to end (search, download, assembly, regridding, the store's accounting) for a
    model whose land reaches south of MODEL_COAST_LAT: its SIC is missing where the observations have
    ocean. Those cells take the nearest model-ocean value, and the share filled is recorded."""
    grid = Ease2Grid("north", 27)
    with EsgfTestbed(tmp_path / "esgf") as own:
        own.publish("siconca", "MRI-ESM2-0", "r1i1p1f1", "historical", "20140101", "20141231", coverage="north")
        paths = fetch_variable(own.index.url, "MRI-ESM2-0", "r1i1p1f1", "siconca", 2014, 2014, tmp_path / "files")
    assemble_run(paths, "siconca", 2014, 2014, "north", tmp_path / "raw.nc")
    regrid_cmip6_sic(tmp_path / "raw.nc", tmp_path / "sic.nc", grid)

    with xr.open_dataset(tmp_path / "sic.nc") as ds:
        sic, source_land = ds["sic"].values, ds["source_land"].values.astype(bool)
    lon, lat = grid.lonlat
    observed_land = idealised_land(lon, lat, "north")
    assert np.isfinite(sic).all() and 0.0 <= sic.min() and sic.max() <= 1.0
    # the model's land is the cells whose source points all lie south of its coast
    assert source_land[lat < MODEL_COAST_LAT - 5].all() and not source_land[lat > MODEL_COAST_LAT + 5].any()
    mismatch = source_land & ~observed_land
    assert mismatch.sum() > 10  # observed ocean that the model calls land
    # each filled cell holds the value of its nearest model-ocean cell, day by day
    yy, xx = np.nonzero(~source_land)
    for y, x in zip(*np.nonzero(mismatch), strict=False):
        nearest = np.argmin((yy - y) ** 2 + (xx - x) ** 2)
        np.testing.assert_array_equal(sic[:, y, x], sic[:, yy[nearest], xx[nearest]])

    reader = DailyReader([tmp_path / "sic.nc"], "sic")
    try:
        share = coast_fill_share(reader, observed_land)
    finally:
        reader.close()
    assert share == pytest.approx(mismatch.sum() / (~observed_land).sum(), abs=1e-4)
