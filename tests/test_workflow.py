"""The workflow through the `snakemake` command: a tiny end-to-end run, forcing one
artefact, bad configs, and the production DAG."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "config" / "tiny.yaml"
RESULTS = Path("results/north/tiny")
INIT = "2006-07-01"

pytestmark = pytest.mark.workflow


def snakemake(
    workdir: Path, *args: str, configfile: Path = TINY, check: bool = True, path: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess:
    """Snakemake on the workflow in ``workdir``; ``path``: folders put first on PATH."""
    folders = [*path, Path(sys.executable).parent]
    env = dict(os.environ, PATH=os.pathsep.join([*map(str, folders), os.environ["PATH"]]))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(configfile), "--cores", "2", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def test_forecast_file(tiny_run: Path) -> None:
    with xr.open_dataset(tiny_run / RESULTS / "forecasts" / f"{INIT}.nc") as ds:
        assert ds["sic"].dims == ("time", "leadtime", "quantity", "yc", "xc")
        assert list(ds["quantity"].values) == ["mean", "std"]
        assert ds.sizes["leadtime"] == 10 and ds.sizes["yc"] == ds.sizes["xc"] == 16
        assert pd.Timestamp(ds["time"].values[0]) == pd.Timestamp(INIT)
        assert pd.Timestamp(ds["valid_time"].values[0]) == pd.Timestamp(INIT) + pd.Timedelta(days=1)
        assert ds["sic"].attrs["standard_name"] == "sea_ice_area_fraction"
        assert ds["Lambert_Azimuthal_Grid"].attrs["grid_mapping_name"] == "lambert_azimuthal_equal_area"
        assert {"lat", "lon"} <= set(ds.coords)
        mean = ds["sic"].sel(quantity="mean").values
        std = ds["sic"].sel(quantity="std").values
        ocean = ds["land"].values == 0
        assert np.isfinite(mean[..., ocean]).all() and np.isnan(mean[..., ~ocean]).all()
        assert 0.0 <= np.nanmin(mean) and np.nanmax(mean) <= 1.0
        assert np.nanmin(std) >= 0.0 and np.nanmax(std) > 0.0
        assert ds.attrs["model_run"] == "tiny" and ds.attrs["members"] == "[0, 1, 2]"
        assert ds.attrs["source_data_last_date"] == "2006-06-30"
    members = [xr.open_dataset(tiny_run / RESULTS / "members" / INIT / f"member_{k}.nc")["sic"].values for k in range(3)]
    assert not np.allclose(members[0], members[1], equal_nan=True)
    assert not np.allclose(members[1], members[2], equal_nan=True)


def test_scorecard_and_plots(tiny_run: Path) -> None:
    table = pd.read_csv(tiny_run / RESULTS / "verification" / "scorecard.csv")
    assert list(table.columns) == [
        *("lead_days", "method", "rmse", "binary_accuracy", "n_init_dates"),  # the skeleton's, first
        *("mae", "sie_error_km2", "iiee_km2", "sps_km2", "crps", "spread_skill", "spread_skill_raw"),
        *("brier", "bss", "edge_distance_km", "month", "date_set", "floecast_version"),
    ]
    deterministic_methods = {"persistence", "anomaly_persistence", "climatology", "linear_trend"}
    references = {"climatological_ensemble", "dressed_anomaly_persistence"}
    methods = {"ensemble_mean", *deterministic_methods, *references}
    hindcast = table[table["date_set"] == "hindcast"]
    assert set(hindcast["method"]) == methods
    # SEAS5 (here its synthetic stand-in, labelled so) only on the 1st of each month, next to every other method
    shared = table[table["date_set"] == "seas5"]
    assert set(shared["method"]) == methods | {"seas5_synthetic"}
    assert (shared["month"].astype(str) == "all").all()
    assert (shared["n_init_dates"] == 6).all()  # the starts 2006-01-01 .. 2006-06-01 (the data end 2006-06-30)
    by_month = hindcast[hindcast["month"].astype(str) != "all"]
    assert set(by_month["month"].astype(int)) <= set(range(1, 13)) and len(by_month) > 0
    table = hindcast[hindcast["month"].astype(str) == "all"]
    # CRPS for every method (a deterministic one's is its MAE), the spread-skill ratios for the ensembles only (the
    # dressed anomaly persistence has one member here: the first training year lacks the December before it)
    assert table["crps"].notna().all()
    ensemble = table["method"].isin(["ensemble_mean", "climatological_ensemble"])
    assert table.loc[ensemble, ["spread_skill", "spread_skill_raw"]].notna().all().all()
    assert table.loc[~ensemble, ["spread_skill", "spread_skill_raw"]].isna().all().all()
    deterministic = table[table["method"].isin(deterministic_methods)]
    np.testing.assert_allclose(deterministic["crps"], deterministic["mae"], rtol=1e-5)
    # a 0/1 probability: its SPS is its IIEE, its Brier score 1 - accuracy
    np.testing.assert_allclose(deterministic["sps_km2"], deterministic["iiee_km2"], rtol=1e-5)
    np.testing.assert_allclose(deterministic["brier"], 1 - deterministic["binary_accuracy"], rtol=1e-4)
    assert table["bss"].notna().all() and (table["bss"] <= 1).all()
    assert (table["edge_distance_km"] >= 0).all()
    assert sorted(table["lead_days"].unique()) == list(range(1, 11))
    assert table["rmse"].between(0, 1).all() and table["binary_accuracy"].between(0, 1).all()
    persistence = table[table["method"] == "persistence"].set_index("lead_days")["rmse"]
    assert persistence.loc[10] > persistence.loc[1]  # persistence decays with lead
    verification = tiny_run / RESULTS / "verification"
    reliability = pd.read_csv(verification / "reliability.csv")
    assert set(reliability["method"]) == {"ensemble_mean", "seas5_synthetic", *references}
    assert set(reliability["lead_group"]) == {"1-7", "8-10"}
    regions = pd.read_csv(verification / "scores_by_region.csv")
    assert regions["region"].nunique() == 7 and set(regions["method"]) == methods | {"seas5_synthetic"}
    assert (verification / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for png in ("plots/2006-07-01_maps.png", "plots/2006-07-01_extent.png", "verification/skill.png"):
        assert (tiny_run / RESULTS / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pretraining_runs_where_the_models_coastline_differs(tiny_run: Path) -> None:
    """The synthetic climate model's coast lies further north than the observations': its SIC is
    missing on observed ocean cells, which take the nearest model-ocean value; the share is recorded
    in each part of its store and in every member's meta.json."""
    with xr.open_dataset(tiny_run / "data/interim/north/cmip6/SYN-ESM_r1i1p1f1/sic.nc") as ds:
        assert ds["source_land"].values.any() and np.isfinite(ds["sic"].values).all()
    parts = sorted((tiny_run / "data/store/north/cmip6_SYN-ESM_r1i1p1f1").glob("*.zarr"))
    shares = []
    for part in parts:
        with xr.open_zarr(part) as store:
            shares.append(store.attrs["coast_fill_share"])
    assert len(parts) == 2 and shares[0] == shares[1] and 0 < shares[0]["sic"] < 0.2
    meta = json.loads((tiny_run / "models/north/tiny/member_0/meta.json").read_text())
    assert meta["pretrain_coast_fill_share"] == {"data/store/north/cmip6_SYN-ESM_r1i1p1f1": shares[0]}


def test_rerun_is_a_no_op(tiny_run: Path) -> None:
    assert "Nothing to be done" in snakemake(tiny_run, "-n").stdout


def _mtimes(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for d in ("data", "models", "results") for p in (root / d).rglob("*") if p.is_file()}


def test_force_one_artefact_touches_nothing_else(tiny_run: Path) -> None:
    target = RESULTS / "verification" / "scorecard.csv"
    before = _mtimes(tiny_run)
    time.sleep(0.05)
    snakemake(tiny_run, str(target), "--force")
    after = _mtimes(tiny_run)
    changed = {p.relative_to(tiny_run) for p in after if after[p] != before.get(p)}
    outputs = ("skill.png", "skill_by_month.png", "reliability.csv", "reliability.png", "scores_by_region.csv")
    assert changed == {target, *(RESULTS / "verification" / name for name in outputs)}  # the scorecard rule's own


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (["--config", "no_such_key=1"], "'no_such_key' was unexpected"),
        (["--config", "date=2021-02-30"], "config key date: '2021-02-30' is not a valid date"),
        (["--config", "date=2010-03-01"], "config key date: init date 2010-03-01 is outside the data"),
        (["--config", "run=bad/name"], "On instance['run']"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path: Path, override: list[str], expected: str) -> None:
    proc = snakemake(tmp_path, *override, check=False)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr
    assert not any((tmp_path / d).exists() for d in ("data", "models", "results", "logs"))


def test_bad_config_file_names_the_key(tmp_path: Path) -> None:
    config = yaml.safe_load(TINY.read_text())
    config["grid"]["coarsen"] = 5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "-n", configfile=bad, check=False)
    assert proc.returncode != 0
    assert "config key grid.coarsen: 5 does not divide 432" in proc.stdout + proc.stderr


def test_production_dag_builds_fast(tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    started = time.perf_counter()
    proc = snakemake(tmp_path, "-n", "--config", f"date={today}", configfile=REPO / "config" / "config.yaml")
    seconds = time.perf_counter() - started
    jobs = int(re.search(r"^total\s+(\d+)", proc.stdout, re.MULTILINE).group(1))
    # both hemispheres, 1979 to today, per-year jobs per variable: low thousands at most
    assert 500 < jobs < 5000, jobs
    assert seconds < 60, seconds
    assert "ingest_sic" in proc.stdout and f"results/south/prod-v1/forecasts/{today}.nc" in proc.stdout


def test_egress_publishes_once(tiny_run: Path, tmp_path: Path) -> None:
    """The egress rule publishes the forecast and its plots with a manifest; running it again
    (its receipt gone) republishes nothing, and a changed forecast is refused unless forced."""
    store = tmp_path / "store"
    receipt = RESULTS / "egress" / f"{INIT}.json"
    override = ["--config", f"egress={{'url': 'file://{store}'}}"]
    snakemake(tiny_run, str(receipt), *override)
    published = store / "north" / "tiny" / INIT
    manifest = json.loads((published / "manifest.json").read_text())
    assert {f["name"] for f in manifest["files"]} == {f"{INIT}.nc", f"{INIT}_maps.png", f"{INIT}_extent.png"}
    for entry in manifest["files"]:
        assert hashlib.sha256((published / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]
    assert json.loads((tiny_run / receipt).read_text()) == manifest
    mtimes = {p: p.stat().st_mtime_ns for p in published.iterdir()}
    (tiny_run / receipt).unlink()
    snakemake(tiny_run, str(receipt), *override)
    assert {p: p.stat().st_mtime_ns for p in published.iterdir()} == mtimes


def test_check_data_passes_then_names_a_corrupted_day(tiny_run: Path, tmp_path: Path) -> None:
    """The check_data rule as an operator meets it: clean data pass; a store part changed after writing fails the
    job, and its log names the part and the day."""
    import shutil

    import zarr

    target = "data/checks/north/data_check.csv"
    snakemake(tiny_run, target)
    findings = pd.read_csv(tiny_run / target)
    assert not (findings["severity"] == "error").any()
    assert "known_bad_days: []" in (tiny_run / "data/checks/north/known_bad_days.yaml").read_text()
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy, symlinks=True, ignore=shutil.ignore_patterns(".snakemake"))
    part = copy / "data/store/north/obs/2005.zarr"
    group = zarr.open_group(str(part), mode="r+")
    day = 40  # 2005-02-10
    group["sic"][day] = np.minimum(group["sic"][day] + 0.3, 1.0)
    proc = snakemake(copy, target, "--forcerun", "check_data", check=False)
    assert proc.returncode != 0
    log = (copy / "logs/check_data/north.log").read_text()
    assert "hash_mismatch" in log and "2005-02-10" in log and "2005.zarr" in log
