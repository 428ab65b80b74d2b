"""The hindcast scorecard on the tiny store: members equal to the truth score perfectly, and
each baseline is what its definition says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import SPEC

from floecast import metrics
from floecast.dataset import SampleStore
from floecast.store import read_store
from floecast.verify import scorecard, skill_summary

LEADS = 5


def _members(tiny_data, tmp_path: Path, dates: pd.DatetimeIndex, offsets: tuple[float, ...]) -> list[Path]:
    """Member files whose forecasts are the observed SIC plus an offset each."""
    store = SampleStore.open(tiny_data.store, SPEC)
    observed, _ = store.targets(dates)
    paths = []
    for member, offset in enumerate(offsets):
        ds = xr.Dataset(
            {"sic": (("init_time", "leadtime", "yc", "xc"), np.clip(observed[:, :LEADS] + offset, 0, 1))},
            coords={"init_time": dates.values, "leadtime": np.arange(1, LEADS + 1)},
            attrs={"member": member},
        )
        paths.append(tmp_path / f"member_{member}.nc")
        ds.to_netcdf(paths[-1])
    return paths


@pytest.fixture(scope="module")
def dates() -> pd.DatetimeIndex:
    return pd.date_range("2004-01-10", "2004-12-20", freq="10D")


def test_perfect_members_score_perfectly(tiny_data, tmp_path, dates) -> None:
    table = scorecard(_members(tiny_data, tmp_path, dates, (0.0, 0.0)), tiny_data.store, tmp_path / "s.csv")
    ensemble = table[(table["method"] == "ensemble_mean") & (table["month"] == "all")]
    assert len(ensemble) == LEADS and (ensemble["n_init_dates"] == len(dates)).all()
    # the uint8 cache holds SIC to 1/250: "perfect" is within half a step
    assert (ensemble["rmse"] < 0.002).all() and (ensemble["crps"] < 0.002).all()
    assert (ensemble["binary_accuracy"] > 0.99).all() and (ensemble["sie_error_km2"].abs() < 1e6).all()
    on_disk = pd.read_csv(tmp_path / "s.csv")
    assert len(on_disk) == len(table) and list(on_disk.columns) == list(table.columns)


def test_baselines_are_their_definitions(tiny_data, tmp_path, dates) -> None:
    table = scorecard(_members(tiny_data, tmp_path, dates, (-0.05, 0.05)), tiny_data.store, tmp_path / "s.csv")
    store = read_store(tiny_data.store, leads=LEADS)
    stats = xr.open_dataset(tiny_data.statistics)
    k = 3
    fields = store.lead(dates, k)
    row = table[(table["lead_days"] == k) & (table["month"] == "all")].set_index("method")
    clim = stats["sic_clim"].values[(dates + pd.Timedelta(days=k)).day_of_year - 1]
    assert row.loc["climatology", "rmse"] == pytest.approx(metrics.rmse(clim, fields["observed"], fields["mask"]), rel=1e-5)
    latest = store.sic[store.dates.get_indexer(dates - pd.Timedelta(days=1))] / 250.0
    assert row.loc["persistence", "rmse"] == pytest.approx(metrics.rmse(latest, fields["observed"], fields["mask"]), rel=1e-5)
    # members at -0.05 and +0.05 around the truth (clipped to [0, 1]): a close mean, a real spread
    assert row.loc["ensemble_mean", "rmse"] < 0.02 and row.loc["ensemble_mean", "crps"] > 0.01
    assert row.loc["ensemble_mean", "spread_skill"] > 1
    # months: each target month's rows count its dates, and they add up to all
    months = table[(table["lead_days"] == k) & (table["month"] != "all") & (table["method"] == "climatology")]
    assert months["n_init_dates"].sum() == len(dates)
    lines = skill_summary(table)
    assert lines[2].startswith(f"spread-skill ratio at lead {LEADS} d:")


def _seas5_file(tiny_data, path: Path, starts: pd.DatetimeIndex, shift: int) -> Path:
    """A SEAS5 interim file whose lead k of start D is the observed SIC of D + k + ``shift`` (0: aligned)."""
    store = read_store(tiny_data.store, leads=LEADS)
    fields = np.stack([store.lead(starts + pd.Timedelta(days=shift), k)["observed"] for k in range(1, LEADS + 1)], axis=1)
    sic = np.repeat(fields[:, None], 2, axis=1)  # (init_time, member, leadtime, yc, xc): two identical members
    ds = xr.Dataset(
        {"sic": (("init_time", "member", "leadtime", "yc", "xc"), sic.astype(np.float32))},
        coords={"init_time": starts.values, "member": [0, 1], "leadtime": np.arange(1, LEADS + 1)},
        attrs={"seas5_source": "cds"},
    )
    ds.to_netcdf(path)
    return path


def test_seas5_is_scored_on_the_shared_starts_and_aligned(tiny_data, tmp_path, dates) -> None:
    hindcast = dates.union(pd.DatetimeIndex(["2004-02-01", "2004-03-01", "2004-06-01"]))  # plus SEAS5's starts
    members = _members(tiny_data, tmp_path, hindcast, (-0.05, 0.05))
    starts = pd.DatetimeIndex(["2004-02-01", "2004-03-01", "2004-06-01", "2005-01-01"])  # 2005-01-01: not a hindcast date
    aligned = _seas5_file(tiny_data, tmp_path / "aligned.nc", starts, 0)
    out = {name: tmp_path / f"{name}.csv" for name in ("s", "reliability", "regions")}
    table = scorecard(
        members, tiny_data.store, out["s"], seas5=[aligned], reliability_csv=out["reliability"], regions_csv=out["regions"]
    )
    shared = table[table["date_set"] == "seas5"]
    assert set(shared["method"]) == {
        "seas5",
        "ensemble_mean",
        "persistence",
        "anomaly_persistence",
        "climatology",
        "linear_trend",
    }
    assert (shared["n_init_dates"] == 3).all()  # the three starts the hindcast shares
    seas5 = shared[shared["method"] == "seas5"].set_index("lead_days")
    # SEAS5's lead k is the observed day D + k: a perfect forecast, whatever the lead
    assert (seas5["rmse"] < 0.002).all() and (seas5["edge_distance_km"] == 0).all() and (seas5["bss"] > 0.99).all()
    misaligned = _seas5_file(tiny_data, tmp_path / "misaligned.nc", starts, 1)  # the day after: an off-by-one
    late = scorecard(members, tiny_data.store, tmp_path / "late.csv", seas5=[misaligned])
    late = late[(late["date_set"] == "seas5") & (late["method"] == "seas5")].set_index("lead_days")
    assert (late["rmse"] > 0.005).all()
    assert (table[table["date_set"] == "hindcast"]["n_init_dates"].max()) == len(hindcast)
    reliability = pd.read_csv(out["reliability"])
    assert set(zip(reliability["date_set"], reliability["method"], strict=True)) == {
        ("hindcast", "ensemble_mean"), ("seas5", "ensemble_mean"), ("seas5", "seas5")
    }  # fmt: skip
    regions = pd.read_csv(out["regions"])
    assert regions["region"].nunique() == len(metrics.NORTH_SECTORS)
    one = regions[(regions["date_set"] == "hindcast") & (regions["lead_days"] == 1) & (regions["method"] == "climatology")]
    assert len(one) == len(metrics.NORTH_SECTORS) and one["rmse"].notna().any()
    lines = skill_summary(table)
    assert any(line.startswith("seas5 on its 3 starts: ensemble mean RMSE lower at") for line in lines)
