"""The forecast file as a CF-1.8 + ACDD-1.3 product: the IOOS compliance checker, variables, masks and provenance."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import TinyData

from floecast import __version__
from floecast.combine import DEFAULT_METADATA, combine_forecast
from floecast.grid import Ease2Grid

INIT = pd.Timestamp("2005-04-25")  # leads 1-10 run from April into May: two months of the active mask
LEADS = np.arange(1, 11)
CONFIG_HASH = hashlib.sha256(b"training spec").hexdigest()
OPERATOR = {
    "creator_name": "Sea Ice Desk",
    "creator_url": "https://ice.example.org",
    "creator_email": "ice@example.org",
    "publisher_name": "Sea Ice Desk",
    "publisher_url": "https://ice.example.org",
    "publisher_email": "ice@example.org",
    "license": "CC-BY-4.0",
    "acknowledgement": "OSI SAF sea-ice concentration, ERA5",
}
# The one high-priority result allowed: compliance-checker 6.1's §5.1 rule that a dimension *named* "time" has
# standard_name "time" (ioos/compliance-checker#1245; PR #1353 removes the rule). CF gives names no meaning; our
# `time` is the init date, whose CF standard name is forecast_reference_time (valid_time is the "time").
CHECKER_FALSE_POSITIVE = "Coordinate variable 'time' should have standard_name='time', found: 'forecast_reference_time'"


def write_members(
    out_dir: Path, grid: Ease2Grid, land: np.ndarray, field: Callable[[int], np.ndarray], store_hash: str = "abc"
) -> list[Path]:
    """Three member files as ``predict_member`` writes them; ``field(k)`` is member k's (leadtime, yc, xc) SIC."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(3):
        sic = np.where(land, np.nan, field(k))[None].astype(np.float32)
        ds = xr.Dataset(
            {"sic": (("init_time", "leadtime", "yc", "xc"), sic, {"units": "1", "long_name": "forecast SIC"})},
            coords={"init_time": [INIT.to_datetime64()], "leadtime": ("leadtime", LEADS, {"units": "days"}), **grid.coords()},
            attrs={"member": k, "weights": f"member_{k}/weights.pt", "store_sha256": store_hash},
        )
        paths.append(out_dir / f"member_{k}.nc")
        ds.to_netcdf(paths[-1], engine="netcdf4")
    return paths


def climatology_members(tiny_data: TinyData, out_dir: Path) -> list[Path]:
    """Members that differ: the valid days' SIC climatology, shifted by -0.1, 0, +0.1."""
    with xr.open_dataset(tiny_data.statistics) as stats:
        land = stats["land"].values.astype(bool)
        clim = stats["sic_clim"].values[(INIT + pd.to_timedelta(LEADS, "D")).day_of_year - 1]
    return write_members(out_dir, tiny_data.grid, land, lambda k: np.clip(clim + 0.1 * (k - 1), 0, 1), tiny_data.store_hash)


@pytest.fixture(scope="module")
def forecast(tiny_data: TinyData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("forecast")
    members = climatology_members(tiny_data, root / "members")
    out = root / f"{INIT:%Y-%m-%d}.nc"
    combine_forecast(members, tiny_data.store, tiny_data.grid, "tiny", out, members_expected=4, config_hash=CONFIG_HASH)
    return out


def _failed(results: list, level: str) -> list[str]:
    failed = [r for r in results if r.value[0] < r.value[1]]
    if level == "high":
        failed = [r for r in failed if set(r.msgs) != {CHECKER_FALSE_POSITIVE}]
    return [f"{r.name} {r.value}: {'; '.join(r.msgs)}" for r in failed]


def compliance(path: Path) -> dict[str, dict[str, list[str]]]:
    """Failed results by checker and priority ("high", "medium", "low"), and the checks that raised ("errors")."""
    from compliance_checker.runner import CheckSuite

    report: dict[str, dict[str, list[str]]] = {}
    with warnings.catch_warnings():  # the checker's own deprecations (ioos_sos, check signatures)
        warnings.simplefilter("ignore", DeprecationWarning)
        CheckSuite.load_all_available_checkers()
        suite = CheckSuite()
        ds = suite.load_dataset(str(path))
        try:
            for name in ("cf:1.8", "acdd:1.3"):
                for checker, (groups, errors) in suite.run_all(ds, [name], skip_checks=[]).items():
                    scored = suite.build_structure(checker, groups, str(path), 1)
                    failed = {level: _failed(scored[f"{level}_priorities"], level) for level in ("high", "medium", "low")}
                    report[checker] = {**failed, "errors": [f"{check}: {error[0]!r}" for check, error in errors.items()]}
        finally:
            ds.close()
    return report


def assert_compliant(path: Path) -> dict[str, dict[str, list[str]]]:
    """No high-priority failure and no checker error in cf:1.8 and acdd:1.3; the rest is in the message."""
    pytest.importorskip("compliance_checker")
    report = compliance(path)
    text = json.dumps(report, indent=1)
    print(text)  # the medium and low items, for information (pytest -s)
    assert set(report) == {"cf:1.8", "acdd:1.3"}, text
    for checker in report.values():
        assert checker["high"] == [] and checker["errors"] == [], text
    return report


def test_compliance_checker_default_metadata(forecast: Path) -> None:
    report = assert_compliant(forecast)
    # what stays at medium with floecast's defaults: contacts and licence are the operator's (metadata=...)
    acdd = " ".join(report["acdd:1.3"]["medium"])
    assert "license not present" in acdd and "creator_email not present" in acdd


def test_compliance_checker_operator_metadata(tiny_data: TinyData, tmp_path: Path) -> None:
    members = climatology_members(tiny_data, tmp_path / "members")
    out = tmp_path / "forecast.nc"
    combine_forecast(members, tiny_data.store, tiny_data.grid, "tiny", out, metadata=OPERATOR)
    report = assert_compliant(out)
    acdd = " ".join(report["acdd:1.3"]["medium"])
    assert not any(f"{key} not present" in acdd for key in OPERATOR)
    with xr.open_dataset(out) as ds:
        assert {k: ds.attrs[k] for k in OPERATOR} == OPERATOR
        assert ds.attrs["institution"] == DEFAULT_METADATA["institution"]  # defaults stay where not overridden
        assert "members_expected" not in ds.attrs and "config_sha256" not in ds.attrs  # not given, not made up


def test_opens_with_xarray(forecast: Path, tiny_data: TinyData) -> None:
    with xr.open_dataset(forecast) as ds:
        assert ds["sic"].dims == ("time", "leadtime", "quantity", "yc", "xc")
        assert list(ds["quantity"].values) == ["mean", "std"]
        assert pd.Timestamp(ds["time"].values[0]) == INIT
        assert list(pd.DatetimeIndex(ds["valid_time"].values)) == list(INIT + pd.to_timedelta(LEADS, "D"))
        assert {"lat", "lon", "forecast_period", "valid_time", "sic_threshold"} <= set(ds.coords)
        assert set(ds.data_vars) == {"sic", "sip", "land", "active", "Lambert_Azimuthal_Grid"}
        ocean = ds["land"].values == 0
        for field in (ds["sic"].sel(quantity="mean"), ds["sip"]):
            assert np.isfinite(field.values[..., ocean]).all() and np.isnan(field.values[..., ~ocean]).all()
        sip = ds["sip"].values[..., ocean]
        np.testing.assert_allclose(sip, np.round(sip * 3) / 3, atol=1e-7)  # k of 3 members
        assert ds["sip"].attrs["units"] == "1" and ds["sip"].attrs["long_name"]


def test_variables_are_cf(forecast: Path) -> None:
    with netCDF4.Dataset(forecast) as nc:
        for name in ("sic", "sip", "land", "active"):
            var = nc[name]
            assert var.grid_mapping == "Lambert_Azimuthal_Grid", name
            assert "coverage_content_type" in var.ncattrs() and "long_name" in var.ncattrs(), name
            assert all(c in nc.variables for c in var.coordinates.split()), name
        assert nc["sic"].coordinates.split() == ["forecast_period", "valid_time", "lat", "lon", "quantity"]
        assert nc["sic"].cell_methods == "area: mean where sea"
        assert nc["sip"].standard_name == "probability_of_sea_ice_area_fraction_above_threshold"
        assert "sic_threshold" in nc["sip"].coordinates.split()
        assert nc["sic_threshold"].standard_name == "sea_ice_area_fraction"
        assert float(nc["sic_threshold"][...]) == pytest.approx(0.15)
        assert nc["land"].standard_name == "land_binary_mask" and nc["land"].flag_meanings == "ocean land"
        assert nc["active"].flag_meanings == "inactive active" and list(nc["active"].flag_values) == [0, 1]
        assert nc["sic"].ancillary_variables == "land active"
        # CF-1.8 has no 64-bit integers; CF labels are character arrays
        assert nc["time"].dtype == np.int32 and nc["valid_time"].dtype == np.int32
        assert nc["quantity"].dimensions == ("quantity", "quantity_strlen")
        assert nc["time"].standard_name == "forecast_reference_time" and nc["valid_time"].standard_name == "time"
        for name in ("xc", "yc", "lat", "lon", "leadtime", "forecast_period", "time", "valid_time"):
            assert "_FillValue" not in nc[name].ncattrs(), name


def test_active_is_the_valid_months_mask(forecast: Path, tiny_data: TinyData) -> None:
    with xr.open_dataset(forecast) as ds, xr.open_dataset(tiny_data.statistics) as stats:
        months = pd.DatetimeIndex(ds["valid_time"].values).month
        assert set(months) == {4, 5}
        for k, month in enumerate(months):
            np.testing.assert_array_equal(ds["active"].isel(time=0, leadtime=k).values, stats["active"].sel(month=month).values)
        assert not (ds["active"].values.astype(bool) & ds["land"].values.astype(bool)).any()


def test_provenance_and_discovery_attributes(forecast: Path, tiny_data: TinyData) -> None:
    grid = tiny_data.grid
    with xr.open_dataset(forecast) as ds:
        attrs = ds.attrs
        lat, lon = ds["lat"].values, ds["lon"].values
    assert attrs["Conventions"] == "CF-1.8, ACDD-1.3"
    assert attrs["model_run"] == "tiny" and attrs["members"] == "[0, 1, 2]"
    assert attrs["members_used"] == 3 and attrs["members_expected"] == 4
    assert attrs["config_sha256"] == CONFIG_HASH and attrs["store_sha256"] == tiny_data.store_hash
    assert attrs["floecast_version"] == __version__ == attrs["product_version"]
    assert attrs["source_data_first_date"] == "2003-01-01" and attrs["source_data_last_date"] == "2005-04-24"
    assert attrs["id"] == "floecast_north_tiny_2005-04-25"
    assert (attrs["time_coverage_start"], attrs["time_coverage_end"]) == ("2005-04-26T00:00:00Z", "2005-05-05T00:00:00Z")
    assert (attrs["time_coverage_duration"], attrs["time_coverage_resolution"]) == ("P9D", "P1D")
    assert (attrs["geospatial_lat_min"], attrs["geospatial_lat_max"]) == (float(lat.min()), float(lat.max()))
    assert (attrs["geospatial_lon_min"], attrs["geospatial_lon_max"]) == (float(lon.min()), float(lon.max()))
    assert attrs["geospatial_bounds_crs"] == f"EPSG:{grid.epsg}"
    edge = round(grid.xc[-1] + grid.cell_m / 2)  # 5400 km: the 25 km grid's outer edge
    corners = [(-edge, -edge), (edge, -edge), (edge, edge), (-edge, edge), (-edge, -edge)]
    assert attrs["geospatial_bounds"] == "POLYGON((" + ", ".join(f"{x} {y}" for x, y in corners) + "))"
    for key in ("title", "summary", "keywords", "history", "date_created", "standard_name_vocabulary", "processing_level"):
        assert attrs[key], key


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metadata": {"model_run": "x"}}, "metadata: unknown keys \\['model_run'\\]"),
        ({"members_expected": 2}, "3 member files for 2 expected members"),
    ],
)
def test_bad_arguments(tiny_data: TinyData, tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    members = climatology_members(tiny_data, tmp_path / "members")
    with pytest.raises(ValueError, match=message):
        combine_forecast(members, tiny_data.store, tiny_data.grid, "tiny", tmp_path / "f.nc", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "f.nc").exists()


def test_repeated_member_number(tiny_data: TinyData, tmp_path: Path) -> None:
    members = climatology_members(tiny_data, tmp_path / "members")
    with pytest.raises(ValueError, match="repeat a member number"):
        combine_forecast([members[0], members[0]], tiny_data.store, tiny_data.grid, "tiny", tmp_path / "f.nc")
