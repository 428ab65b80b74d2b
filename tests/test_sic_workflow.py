"""Fast-track replacement through Snakemake, as an operator meets it: the workflow ingests the
chain from local THREDDS and FTP servers (the newest days from fast-track files); when the nominal
files of some of those days appear, `floecast poll` notes it, the next run replaces them and
rebuilds exactly the affected interim years and store parts, and a forecast already issued for an
earlier init date is not made again."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from servers.osisaf import OsisafServers
from test_workflow import snakemake

from floecast.cli import main
from floecast.grid import Ease2Grid

pytestmark = pytest.mark.workflow
REPO = Path(__file__).resolve().parents[1]
FIRST, LAST = dt.date(2024, 12, 31), dt.date(2026, 1, 2)  # three calendar years: train, validate, test
FAST_TRACK = [dt.date(2025, 12, 31), dt.date(2026, 1, 1), dt.date(2026, 1, 2)]
REPLACED = FAST_TRACK[:2]  # their nominal files appear 16 days on; 2026-01-02's not yet
INIT = "2026-01-03"
PARTS = [f"data/store/north/obs/{year}.zarr" for year in (2024, 2025, 2026)]
INTERIM = [f"data/interim/north/obs/sic/{year}.nc" for year in (2024, 2025, 2026)]


def publish_days(servers: OsisafServers, product: str, days: list[dt.date]) -> None:
    template = servers.publish(product, "north", days[0])
    for day in days[1:]:
        servers.publish_copy(template, product, "north", day)


def _mtimes(workdir: Path, paths: list[str]) -> dict[str, int]:
    return {path: (workdir / path).stat().st_mtime_ns for path in paths}


def _dummy_forecast(workdir: Path, configfile: Path) -> Path:
    """The files of an issued forecast for INIT (models, calibration, members, the file), newest last; each
    member's meta.json records the config's training spec, as a trained member's does (else it is retrained)."""
    from floecast.config import load, training_spec

    run = workdir / "models/north/t"
    results = workdir / "results/north/t"
    paths = [run / f"member_{k}" / name for k in range(3) for name in ("weights.pt", "meta.json", "history.csv")]
    paths += [results / f"hindcast/validate/member_{k}.nc" for k in range(3)] + [run / "spread.json"]
    paths += [results / f"members/{INIT}/member_{k}.nc" for k in range(3)] + [results / f"forecasts/{INIT}.nc"]
    meta = json.dumps({"spec": training_spec(load(configfile))})
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(meta if path.name == "meta.json" else "issued\n")
    return paths[-1]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory):
    with OsisafServers(tmp_path_factory.mktemp("osisaf")) as osisaf:
        publish_days(osisaf, "OSI-430-a", list(pd.date_range(FIRST, "2025-10-16").date))
        publish_days(osisaf, "OSI-438", list(pd.date_range("2025-10-17", "2025-12-30").date))
        publish_days(osisaf, "OSI-438-fast-track", FAST_TRACK)
        yield osisaf


def test_a_fast_track_day_replaced_by_its_nominal_file_rebuilds_the_right_parts(
    servers: OsisafServers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "work"
    config = yaml.safe_load((REPO / "tests/config/tiny.yaml").read_text())
    config.update(
        run="t",
        date=INIT,
        data={"start": FIRST.isoformat(), "end": LAST.isoformat()},
        splits={"train": [2024, 2024], "validate": [2025, 2025], "test": [2026, 2026]},
        sources={"sic": "osisaf", "atmos": "synthetic", "cmip6": "synthetic"},
        osisaf={"servers": servers.servers, "known_bad_days": []},
        cmip6={"runs": [], "years": [2000, 2001]},
    )
    # SIC is the point; one training day (2024-12-31) has no day-of-year climatology: t2m as it is
    config["channels"]["fields"] = {"t2m": {"lags": [1], "transform": "absolute", "norm": "zscore"}}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("FLOECAST_TODAY", "2026-01-04")  # the day after the init date: fast-track files only

    snakemake(workdir, *PARTS, configfile=configfile)

    raw = workdir / "data/raw/osisaf/ice_conc/north"
    december = json.loads((raw / "2025/12.json").read_text())
    january = json.loads((raw / "2026/01.json").read_text())
    assert december["days"]["2025-12-30"]["product"] == "OSI-438"
    assert december["days"]["2025-12-31"]["product"] == "OSI-438-fast-track"
    assert [january["days"][d]["product"] for d in ("2026-01-01", "2026-01-02")] == ["OSI-438-fast-track"] * 2
    assert json.loads((raw / "2025/06.json").read_text())["days"]["2025-06-15"]["version"] == "3.0"
    with xr.open_dataset(workdir / INTERIM[1]) as ds:
        assert str(ds["sic_product"].values[-1]) == "OSI-438 v3.0 (OSI-438-fast-track)"
    forecast = _dummy_forecast(workdir, configfile)
    issued = forecast.stat().st_mtime_ns
    assert "Nothing to be done" in snakemake(workdir, "-n", str(forecast.relative_to(workdir)), configfile=configfile).stdout
    before = _mtimes(workdir, PARTS + INTERIM + ["data/store/north/statistics.nc"])

    # 16 days on: the nominal files of 2025-12-31 and 2026-01-01 are out; the poll notes it
    publish_days(servers, "OSI-438", REPLACED)
    monkeypatch.setenv("FLOECAST_TODAY", "2026-01-18")
    assert main(["poll", "--config", str(configfile), "--date", INIT, "--state", str(workdir / "data/poll/state.json"),
                 "--root", str(workdir)]) == 0  # fmt: skip
    triggers = sorted(p.relative_to(workdir).as_posix() for p in (workdir / "data/poll/replace").rglob("*.json"))
    assert triggers == ["data/poll/replace/osisaf/north/2025/12.json", "data/poll/replace/osisaf/north/2026/01.json"]

    proc = snakemake(workdir, *PARTS, configfile=configfile)

    ran = set(re.findall(r"^(?:local)?rule (\w+):$", proc.stdout + proc.stderr, re.MULTILINE))
    assert ran == {"ingest_sic", "regrid_sic", "build_store_obs"}
    after = _mtimes(workdir, PARTS + INTERIM + ["data/store/north/statistics.nc"])
    changed = sorted(path for path in before if after[path] != before[path])
    # December 2025 changed: the 2025 year and the parts whose trend reads it; 2024 and the statistics stay
    assert changed == sorted([PARTS[1], PARTS[2], INTERIM[1], INTERIM[2]])
    december = json.loads((raw / "2025/12.json").read_text())
    january = json.loads((raw / "2026/01.json").read_text())
    assert december["days"]["2025-12-31"]["product"] == "OSI-438"
    assert [january["days"][d]["product"] for d in ("2026-01-01", "2026-01-02")] == ["OSI-438", "OSI-438-fast-track"]
    assert [r["date"] for r in december["replaced"]] == ["2025-12-31"] and january["replaced"][0]["by"] == "OSI-438"
    assert (raw / "2025/12/replaced/ice_conc_nh_ease2-250_icdrft-v3p0-amsr_202512311200.nc").is_file()
    with xr.open_dataset(workdir / INTERIM[1]) as ds:
        assert str(ds["sic_product"].values[-1]) == "OSI-438 v3.0"
        assert ds.sizes["time"] == 365 and int(ds["filled"].sum()) == 0
    grid = Ease2Grid("north", 27)
    with xr.open_zarr(workdir / PARTS[2]) as part:
        assert part.sizes["time"] == 2 and part["sic"].shape[-2:] == grid.shape

    # the forecast issued for INIT from the fast-track days is not made again behind the operator's back
    assert "Nothing to be done" in snakemake(workdir, "-n", str(forecast.relative_to(workdir)), configfile=configfile).stdout
    assert forecast.stat().st_mtime_ns == issued
    # and with the same news a run does nothing: the trigger is older than the manifests it caused
    assert main(["poll", "--config", str(configfile), "--date", INIT, "--state", str(workdir / "data/poll/state.json"),
                 "--root", str(workdir)]) == 0  # fmt: skip
    proc = snakemake(workdir, *PARTS, configfile=configfile)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert servers.ftp.total("RETR") == len(FAST_TRACK)  # each fast-track file was downloaded once
    assert np.all(np.isfinite(xr.open_zarr(workdir / PARTS[1])["sic"].values[-1]))


def test_the_mapping_enters_the_dag_only_for_years_its_products_serve(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "tests/config/tiny.yaml").read_text())
    config.update(
        date="2026-01-03",
        data={"start": "2024-01-01", "end": "2026-01-02"},
        splits={"train": [2024, 2024], "validate": [2025, 2025], "test": [2026, 2026]},
        sources={"sic": "osisaf", "atmos": "synthetic", "cmip6": "synthetic"},
        osisaf={"mapping": {"enabled": True}},
    )
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    mapped = snakemake(tmp_path, "-n", "-p", "data/interim/north/obs/sic/2026.nc", configfile=configfile).stdout
    assert "rule sic_consistency:" in mapped and "rule ingest_sic_product:" in mapped
    assert "--mapping data/interim/north/sic_mapping/OSI-438_to_OSI-430-a.nc --map-products OSI-438 OSI-438-fast-track" in mapped
    plain = snakemake(tmp_path, "-n", "-p", "data/interim/north/obs/sic/2024.nc", configfile=configfile).stdout
    assert "sic_consistency" not in plain and "--mapping" not in plain  # 2024: OSI-430-a only


def test_the_consistency_report_reads_the_products_its_target_names(tmp_path: Path) -> None:
    """Another pair than osisaf.consistency's: each side's manifests are of the product the path names."""
    config = yaml.safe_load((REPO / "tests/config/tiny.yaml").read_text())
    config["osisaf"] = {"consistency": {"first_day": "2026-01-01", "last_day": "2026-01-31"}}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    target = "results/north/sic_consistency/OSI-438-fast-track_vs_OSI-438.csv"
    planned = snakemake(tmp_path, "-n", "-p", target, configfile=configfile).stdout
    raw = "data/raw/synthetic/products/{}/north/2026/01.json"
    assert f"--reference-raw {raw.format('OSI-438')} --candidate-raw {raw.format('OSI-438-fast-track')}" in planned
    assert "OSI-430-a/" not in planned
