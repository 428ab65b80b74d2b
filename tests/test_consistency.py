"""Consistency across sensors on fixtures with an injected, known bias: the report measures it
(bias, 15 % edge disagreement) and the quantile mapping fitted on the overlap removes it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from floecast.cli import main
from floecast.consistency import SicMapping, read_table
from floecast.grid import Ease2Grid
from floecast.preprocess import regrid_sic_year
from floecast.sources.osisaf import STATUS_LAND, read_osisaf_file, write_osisaf_file
from floecast.sources.sicchain import SicChain
from floecast.sources.synthetic import idealised_land

GRID = Ease2Grid("north", 12)  # 36 x 36, 300 km cells
BIAS = {1: 0.05, 7: -0.04}  # injected: candidate = reference + BIAS[month]
DAYS = [dt.date(2021, month, day) for month in BIAS for day in range(1, 11)]
# the mapping recovers the reference within these (SIC fractions): the stated tolerance
TOLERANCE_MEAN = 0.002  # |mean(mapped - reference)| per month
TOLERANCE_MAE = 0.005  # mean |mapped - reference|


def reference_field(day: dt.date) -> np.ndarray:
    """SIC in [0.1, 0.9] over the whole ocean (so the injected shift is never clipped), crossing 15 %."""
    k = day.toordinal() % 97
    wave = 0.5 + 0.4 * np.sin(np.radians(GRID.lat * 6.0 + GRID.lon + 7.0 * k))
    land = idealised_land(GRID.lon, GRID.lat, "north")
    return np.where(land, np.nan, np.clip(wave, 0.1, 0.9))


@pytest.fixture(scope="module")
def overlap(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("overlap")
    chain = SicChain.default()
    flag = np.where(idealised_land(GRID.lon, GRID.lat, "north"), STATUS_LAND, 0).astype(np.int16)
    folders = {name: root / name for name in ("OSI-430-a", "OSI-438")}
    for day in DAYS:
        ref = reference_field(day)
        for name, field in (("OSI-430-a", ref), ("OSI-438", ref + BIAS[day.month])):
            product = chain.product(name)
            write_osisaf_file(folders[name] / product.filename("north", day), GRID, day, field, flag, product)
    return folders


@pytest.fixture(scope="module")
def report(overlap: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("report")
    paths = {"table": out / "table.csv", "plot": out / "plot.png", "mapping": out / "mapping.nc"}
    options = {
        "hemisphere": "north",
        "coarsen": "12",
        "reference": "OSI-430-a",
        "candidate": "OSI-438",
        "reference-raw": str(overlap["OSI-430-a"]),
        "candidate-raw": str(overlap["OSI-438"]),
        "first-day": "2021-01-01",
        "last-day": "2025-10-16",
        **{key: str(path) for key, path in paths.items()},
    }
    status = main(["sic-consistency", *(item for key, value in options.items() for item in (f"--{key}", value))])
    assert status == 0
    return paths


def test_the_report_measures_the_injected_bias_per_month(report: dict[str, Path]) -> None:
    table = read_table(report["table"])
    assert list(table.index) == ["2021-01", "2021-07"] and list(table["days"]) == [10, 10]
    np.testing.assert_allclose(table["bias_pct"], [5.0, -4.0], atol=0.01)  # packing: 0.01 % steps
    np.testing.assert_allclose(table["rmsd_pct"], [5.0, 4.0], atol=0.01)
    assert "reference: OSI-430-a" in report["table"].read_text() and "candidate: OSI-438" in report["table"].read_text()
    assert report["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_edge_disagreement_is_the_area_that_changes_side_of_15_percent(
    report: dict[str, Path], overlap: dict[str, Path]
) -> None:
    chain = SicChain.default()
    expected = {}
    for month in BIAS:
        areas = []
        for day in (d for d in DAYS if d.month == month):
            ref, _ = read_osisaf_file(overlap["OSI-430-a"] / chain.product("OSI-430-a").filename("north", day))
            cand, _ = read_osisaf_file(overlap["OSI-438"] / chain.product("OSI-438").filename("north", day))
            valid = np.isfinite(ref) & np.isfinite(cand)
            ref, cand = np.round(ref * 1e4), np.round(cand * 1e4)  # as stored: 0.01 % steps; 15.00 % is not ice
            areas.append(((ref > 1500) != (cand > 1500))[valid].sum() * GRID.cell_area_km2)
        expected[month] = np.mean(areas)
    table = read_table(report["table"])
    assert expected[1] > 0 and expected[7] > 0  # the shift moves cells across the edge both ways
    np.testing.assert_allclose(table["edge_disagreement_km2"], [expected[1], expected[7]], rtol=1e-6)


def test_the_quantile_mapping_recovers_the_reference_within_the_tolerance(
    report: dict[str, Path], overlap: dict[str, Path]
) -> None:
    chain = SicChain.default()
    mapping = SicMapping.load(report["mapping"], ["OSI-438"])
    assert (mapping.reference, mapping.candidate) == ("OSI-430-a", "OSI-438")
    for month in BIAS:
        errors = []
        for day in (d for d in DAYS if d.month == month):
            ref, _ = read_osisaf_file(overlap["OSI-430-a"] / chain.product("OSI-430-a").filename("north", day))
            cand, _ = read_osisaf_file(overlap["OSI-438"] / chain.product("OSI-438").filename("north", day))
            mapped = mapping.apply(cand, month)
            errors.append((mapped - ref)[np.isfinite(ref)])
        errors = np.concatenate(errors)
        assert abs(errors.mean()) < TOLERANCE_MEAN, (month, errors.mean())
        assert np.abs(errors).mean() < TOLERANCE_MAE, (month, np.abs(errors).mean())
    # a month without overlap days is left as it is
    field = reference_field(dt.date(2021, 3, 1))
    np.testing.assert_array_equal(mapping.apply(field, 3), field)


def test_open_water_and_full_ice_stay_as_they_are() -> None:
    """A candidate with more open water and more full ice than the reference: 0 and 1 are kept, so the
    mapping never puts ice into the open ocean nor takes it from the pack."""
    levels = np.linspace(0, 1, 101)
    cand = np.clip((levels - 0.3) / 0.5, 0, 1)  # 30 % of the cells open water, 20 % full ice
    ref = np.clip((levels - 0.2) / 0.7, 0, 1)
    mapping = SicMapping("R", "C", np.tile(cand, (12, 1)), np.tile(ref, (12, 1)), apply_to=("C",))
    field = np.array([0.0, 0.0001, 0.5, 0.9999, 1.0, np.nan], dtype=np.float32)
    out = mapping.apply(field, 1)
    assert out[0] == 0.0 and out[4] == 1.0 and np.isnan(out[5])
    assert 0.0 <= out[1] < 0.2 and 0.8 < out[3] <= 1.0 and np.all(np.diff(out[:5]) >= 0)


def test_the_mapping_is_applied_where_the_sic_is_regridded_to_its_products_only(
    report: dict[str, Path], overlap: dict[str, Path], tmp_path: Path
) -> None:
    chain = SicChain.default()
    mapping = SicMapping.load(report["mapping"], ["OSI-438"])
    folder = tmp_path / "raw"
    folder.mkdir()
    jan = [d for d in DAYS if d.month == 1][:2]
    ref_name = chain.product("OSI-430-a").filename("north", jan[0])
    (folder / ref_name).write_bytes((overlap["OSI-430-a"] / ref_name).read_bytes())  # served by the reference
    cand_name = chain.product("OSI-438").filename("north", jan[1])
    (folder / cand_name).write_bytes((overlap["OSI-438"] / cand_name).read_bytes())  # served by the candidate

    ds = regrid_sic_year(folder, tmp_path / "sic.nc", GRID, chain=chain, mapping=mapping)

    assert list(ds["sic_product"].values) == ["OSI-430-a v3.0", "OSI-438 v3.0 mapped to OSI-430-a"]
    ocean = ds["land"].values == 0
    np.testing.assert_allclose(ds["sic"].values[0][ocean], reference_field(jan[0])[ocean], atol=6e-5)  # untouched
    error = ds["sic"].values[1][ocean] - reference_field(jan[1])[ocean]
    assert abs(error.mean()) < TOLERANCE_MEAN and np.abs(error).mean() < TOLERANCE_MAE
