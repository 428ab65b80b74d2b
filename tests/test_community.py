"""Exports for the community: per-member output, SIPN South and the Sea Ice Outlook, with numbers worked out by hand,
and the SIPN rules through Snakemake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from conftest import TinyData
from test_export import as_south
from test_forecast_file import INIT, LEADS, assert_compliant, write_members

from floecast import community
from floecast.combine import combine_forecast
from floecast.metrics import SOUTH_SECTORS, sector_mask

REPO = Path(__file__).resolve().parents[1]
CELL_KM2 = 675.0**2  # the tiny grid's cells
VALUES = (0.1, 0.5, 0.8)  # each member's SIC everywhere on the ocean, in April; in May member 0 has 0.3


def member_field(k: int) -> np.ndarray:
    valid = INIT + pd.to_timedelta(LEADS, "D")
    values = np.where(valid.month == 5, 0.3 if k == 0 else VALUES[k], VALUES[k])
    return np.broadcast_to(values[:, None, None], (len(LEADS), 16, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def north(tiny_data: TinyData, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], np.ndarray]:
    root = tmp_path_factory.mktemp("community")
    with xr.open_dataset(tiny_data.statistics) as stats:
        land = stats["land"].values.astype(bool)
    members = write_members(root / "members", tiny_data.grid, land, member_field, tiny_data.store_hash)
    forecast = root / f"{INIT:%Y-%m-%d}.nc"
    combine_forecast(members, tiny_data.store, tiny_data.grid, "tiny", forecast)
    return forecast, members, land


def test_members_file_holds_each_member(north, tmp_path: Path) -> None:
    forecast, members, land = north
    out = tmp_path / "members.nc"
    community.members_file(forecast, members, out)
    with xr.open_dataset(out) as ds:
        assert ds["sic_member"].dims == ("time", "member", "leadtime", "yc", "xc")
        assert ds["member"].values.tolist() == [0, 1, 2] and ds["member"].attrs["standard_name"] == "realization"
        for k in range(3):
            np.testing.assert_allclose(ds["sic_member"].values[0, k][:, ~land], member_field(k)[:, ~land], rtol=1e-6)
        assert np.isnan(ds["sic_member"].values[..., land]).all()
        # the published mean is the members' mean
        np.testing.assert_allclose(ds["sic_member"].values[0].mean(axis=0), ds["sic"].sel(quantity="mean").values[0], atol=1e-6)
    assert_compliant(out)


def test_members_follow_the_spread_calibration(north, tmp_path: Path) -> None:
    forecast, members, land = north
    with xr.open_dataset(forecast) as ds:
        ds = ds.load()
    ds.attrs["spread_calibration"] = json.dumps([2.0] * len(LEADS))
    calibrated = tmp_path / "calibrated.nc"
    ds.to_netcdf(calibrated)
    with xr.open_dataset(calibrated) as ds:
        widened = community.forecast_members(ds.load(), members)
    # April: members 0.1, 0.5, 0.8 (mean 0.4667) widened twice about the mean: -0.2333 -> 0, 0.5333, 1.1333 -> 1
    ocean = np.flatnonzero(~land.ravel())[0]
    april = widened.values[:, 0].reshape(3, -1)[:, ocean]
    np.testing.assert_allclose(april, [0.0, 0.5 + 0.5 - 0.4666667 + 0.0333333 - 0.0333333, 1.0], atol=1e-5)


def test_sipn_south_files_by_hand(north, tmp_path: Path) -> None:
    forecast, members, _ = north
    south = as_south(forecast, tmp_path / "south.nc")
    out = tmp_path / "sipn"
    written = community.sipn_south(south, members, out, "floecast")
    stem = "floecast_{:03d}_20050426-20050505"
    expected = {
        f"{stem.format(n)}_{kind}" for n in (1, 2, 3) for kind in ("total-area.txt", "regional-area.txt", "concentration.nc")
    }
    assert {p.name for p in out.iterdir()} == expected and {p.name for p in written} == expected
    with xr.open_dataset(south) as ds:
        ocean = ds["land"].values == 0
        lon = ds["lon"].values
    n_ocean = int(ocean.sum())
    for k in range(3):
        total = np.array([float(v) for v in (out / f"{stem.format(k + 1)}_total-area.txt").read_text().split(",")])
        assert total.shape == (10,)
        # 10^6 km^2: SIC x ocean cells x 455,625 km^2; member 0 is 0.1 in April (5 days), 0.3 in May (5 days)
        april, may = VALUES[k] * n_ocean * CELL_KM2 / 1e6, (0.3 if k == 0 else VALUES[k]) * n_ocean * CELL_KM2 / 1e6
        np.testing.assert_allclose(total, [april] * 5 + [may] * 5, atol=5e-5)
        rows = (out / f"{stem.format(k + 1)}_regional-area.txt").read_text().strip().split("\n")
        regional = np.array([[float(v) for v in row.split(",")] for row in rows])
        assert regional.shape == (36, 10)
        np.testing.assert_allclose(regional.sum(axis=0), total, atol=5e-4)  # the bins tile the circle
        first_bin = (sector_mask(lon, SOUTH_SECTORS[0]) & ocean).sum()  # row 1: 0-10 E
        assert regional[0, 0] == pytest.approx(VALUES[k] * first_bin * CELL_KM2 / 1e6, abs=5e-5)
    with xr.open_dataset(out / f"{stem.format(2)}_concentration.nc") as ds:
        assert ds["siconc"].attrs["units"] == "%" and ds["siconc"].dims == ("time", "yc", "xc")
        assert ds.sizes["time"] == 10 and pd.Timestamp(ds["time"].values[0]) == pd.Timestamp("2005-04-26")
        np.testing.assert_allclose(ds["siconc"].values[:, ocean], 50.0, rtol=1e-6)
        assert set(np.unique(ds["sftof"].values)) == {0.0, 100.0} and (ds["sftof"].values == 100.0).sum() == n_ocean
        assert ds["areacello"].attrs["units"] == "m2" and np.allclose(ds["areacello"].values, CELL_KM2 * 1e6)
        assert {"latitude", "longitude"} <= set(ds.variables) and float(ds["latitude"].max()) < 0
    with pytest.raises(ValueError, match="Southern Hemisphere"):
        community.sipn_south(forecast, members, tmp_path / "north_sipn", "floecast")


def test_sea_ice_outlook_table_and_sip(north, tmp_path: Path) -> None:
    forecast, members, land = north
    table = community.sea_ice_outlook(forecast, members, tmp_path / "sio.csv", tmp_path / "sip.nc")
    full = int((~land).sum()) * CELL_KM2 / 1e6
    rows = table.set_index(["member", "month"])
    assert rows.loc[(0, "2005-04"), "extent_1e6km2"] == 0.0  # 0.1 is below 15 %
    assert rows.loc[(0, "2005-05"), "extent_1e6km2"] == pytest.approx(full)
    assert rows.loc[(1, "2005-04"), "extent_1e6km2"] == pytest.approx(full)
    assert (table["days"] == 5).all() and not table["complete"].any()
    assert pd.read_csv(tmp_path / "sio.csv")["extent_1e6km2"].tolist() == pytest.approx(table["extent_1e6km2"].tolist(), abs=1e-4)
    with xr.open_dataset(tmp_path / "sip.nc") as ds:
        sip = ds["sip"].values
        np.testing.assert_allclose(sip[0][~land], 2 / 3)  # April: members 1 and 2 of 3
        np.testing.assert_allclose(sip[1][~land], 1.0)
        assert np.isnan(sip[:, land]).all() and ds["days"].values.tolist() == [5, 5]
        assert np.allclose(ds["cell_area"].values, CELL_KM2 * 1e6)


def snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(config), "--cores", "1", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.workflow
def test_sipn_and_sio_rules(north, tmp_path: Path) -> None:
    """The export rules through Snakemake, from a run's forecast and member files (the rest of the run not rebuilt)."""
    forecast, members, _ = north
    config = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text())
    config.update(run="r", hemispheres=["north", "south"], sources={"sic": "osisaf", "atmos": "era5", "cmip6": "esgf"})
    config.pop("seas5")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    date = f"{INIT:%Y-%m-%d}"
    for hemi, path in (("north", forecast), ("south", as_south(forecast, tmp_path / "south.nc"))):
        folder = tmp_path / "results" / hemi / "r"
        (folder / "forecasts").mkdir(parents=True)
        (folder / "forecasts" / f"{date}.nc").write_bytes(path.read_bytes())
        (folder / "members" / date).mkdir(parents=True)
        for member in members:
            (folder / "members" / date / member.name).write_bytes(member.read_bytes())
    sipn = f"results/south/r/export/{date}/sipn_south"
    sio = f"results/north/r/export/{date}/sio/{date}_extent.csv"
    proc = snakemake(tmp_path, config_path, sipn, sio, "--allowed-rules", "export_sipn_south", "export_sio")
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.name for p in (tmp_path / sipn).iterdir() if not p.name.startswith("."))  # Snakemake's own stamp
    assert len(names) == 9 and names[0] == "floecast_001_20050426-20050505_concentration.nc"
    table = pd.read_csv(tmp_path / sio)
    assert set(table["month"]) == {"2005-04", "2005-05"} and set(table["member"]) == {0, 1, 2}
    assert (tmp_path / f"results/north/r/export/{date}/sio/{date}_sip.nc").exists()
