"""Brier score and skill, reliability, ice-edge distance and regions, on small hand-worked arrays."""

from __future__ import annotations

import numpy as np
import pytest

from floecast.metrics import (
    NORTH_SECTORS,
    SOUTH_SECTORS,
    binary_accuracy,
    brier_score,
    brier_skill_score,
    ice_edge,
    ice_edge_distance_km,
    reliability,
    sector_mask,
    sectors,
)


def test_brier_score_over_mask() -> None:
    probability = np.array([[0.2, 0.9], [0.5, 1.0]])
    observed = np.array([[0.0, 0.5], [0.3, 0.1]])  # ice: no, yes, yes, no
    mask = np.array([[True, True], [True, False]])  # the masked-out (1.0 - 0)^2 is ignored
    # (0.2 - 0)^2 + (0.9 - 1)^2 + (0.5 - 1)^2 = 0.04 + 0.01 + 0.25 over 3 cells
    assert brier_score(probability, observed, mask) == pytest.approx(0.30 / 3, rel=1e-12)
    assert brier_score(probability, observed, np.ones((2, 2))) == pytest.approx(1.30 / 4, rel=1e-12)


def test_brier_score_of_a_deterministic_forecast_is_its_misclassified_share() -> None:
    forecast = np.array([[[0.16, 0.15], [0.90, 0.10]], [[0.0, 0.5], [0.2, 0.2]]])
    observed = np.array([[[0.20, 0.00], [0.10, 0.14]], [[0.0, 0.0], [0.9, 0.2]]])
    mask = np.ones((2, 2), bool)
    probability = (forecast > 0.15).astype(float)
    # 2 of 8 cells wrong: (0.90 vs 0.10) and (0.5 vs 0.0)
    assert brier_score(probability, observed, mask) == pytest.approx(2 / 8)
    assert brier_score(probability, observed, mask) == pytest.approx(1 - binary_accuracy(forecast, observed, mask))


def test_brier_score_missing_and_range() -> None:
    observed = np.array([[0.5, np.nan]])
    assert np.isnan(brier_score(np.array([[0.5, 0.5]]), observed, np.ones((1, 2), bool)))
    assert brier_score(np.array([[0.5, 0.5]]), observed, np.array([[True, False]])) == pytest.approx(0.25)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        brier_score(np.array([[1.5, 0.0]]), observed, np.array([[True, False]]))


def test_brier_skill_score() -> None:
    assert brier_skill_score(0.1, 0.25) == pytest.approx(0.6)  # 1 - 0.1 / 0.25
    assert brier_skill_score(0.25, 0.25) == 0.0
    assert brier_skill_score(0.5, 0.25) == pytest.approx(-1.0)
    assert np.isnan(brier_skill_score(0.1, 0.0))  # a perfect reference leaves no room for skill


def test_reliability_table_by_hand() -> None:
    probability = np.array([[0.05, 0.05, 0.15, 0.95, 1.0, 0.7]])
    observed = np.array([[0.0, 0.9, 0.1, 0.9, 0.5, 0.9]])  # ice: no, yes, no, yes, yes, (masked out)
    mask = np.array([[True, True, True, True, True, False]])
    table = reliability(probability, observed, mask, bins=10)
    np.testing.assert_array_equal(table.count, [2, 1, 0, 0, 0, 0, 0, 0, 0, 2])  # 1.0 falls in the last (closed) bin
    assert table.forecast[0] == pytest.approx(0.05) and table.observed[0] == pytest.approx(0.5)
    assert table.forecast[1] == pytest.approx(0.15) and table.observed[1] == 0.0
    assert table.forecast[9] == pytest.approx(0.975) and table.observed[9] == 1.0
    assert np.isnan(table.forecast[2:9]).all() and np.isnan(table.observed[2:9]).all()
    np.testing.assert_allclose(table.lower[[0, 9]], [0.0, 0.9])
    np.testing.assert_allclose(table.upper[[0, 9]], [0.1, 1.0])


def _band(ice_columns: int, shape: tuple[int, int] = (5, 8)) -> np.ndarray:
    sic = np.zeros(shape)
    sic[:, :ice_columns] = 0.9
    return sic


def test_ice_edge_cells_and_coasts() -> None:
    mask = np.ones((5, 8), bool)
    edge = ice_edge(_band(3), mask)
    assert edge[:, 2].all() and edge.sum() == 5  # the last ice column borders water
    coast = mask.copy()
    coast[:, 3] = False  # land (outside the mask) next to the ice: a coast, not an ice edge
    assert not ice_edge(_band(3), coast).any()


def test_ice_edge_distance_shifted_edge() -> None:
    mask = np.ones((5, 8), bool)
    # observed edge in column 2, forecast edge in column 4: 2 cells of 25 km both ways
    assert ice_edge_distance_km(_band(5), _band(3), mask, 25.0) == pytest.approx(50.0)
    assert ice_edge_distance_km(_band(3), _band(3), mask, 25.0) == 0.0


def test_ice_edge_distance_is_averaged_over_both_directions() -> None:
    mask = np.ones((5, 8), bool)
    forecast = _band(3)
    forecast[2, 6] = 0.9  # an isolated floe: one more forecast edge cell, 4 cells from the observed edge
    # forecast -> observed: (5 x 0 + 4 cells) / 6 edge cells; observed -> forecast: 0; averaged: 1/3 cell
    assert ice_edge_distance_km(forecast, _band(3), mask, 25.0) == pytest.approx(0.5 * 4 / 6 * 25.0)


def test_ice_edge_distance_skips_grids_without_an_edge() -> None:
    mask = np.ones((5, 8), bool)
    forecast = np.stack([_band(5), _band(0)])  # the second forecast has no ice, hence no edge
    observed = np.stack([_band(3), _band(3)])
    assert ice_edge_distance_km(forecast, observed, mask, 10.0) == pytest.approx(20.0)
    assert np.isnan(ice_edge_distance_km(_band(0), _band(3), mask, 10.0))
    with pytest.raises(ValueError, match="cell_km"):
        ice_edge_distance_km(_band(3), _band(3), mask, 0.0)


def test_sectors_sipn_south_bins_and_north_seas() -> None:
    south = sectors("south")
    assert len(south) == 36 and south[0].lon_min == 0.0 and south[-1].lon_max == 360.0
    lon = np.array([5.0, -5.0, 180.0, 359.9, 10.0])
    assert sector_mask(lon, SOUTH_SECTORS[0]).tolist() == [True, False, False, False, False]
    assert sector_mask(lon, SOUTH_SECTORS[35]).tolist() == [False, True, False, True, False]
    assert sector_mask(lon, SOUTH_SECTORS[1]).tolist() == [False, False, False, False, True]  # 10 E opens bin 2
    # the north's sectors tile the circle once
    lons = np.arange(-180.0, 180.0, 0.5)
    counts = sum(sector_mask(lons, s).astype(int) for s in NORTH_SECTORS)
    assert (counts == 1).all()
    greenland = NORTH_SECTORS[-1]
    assert sector_mask(np.array([-30.0, 10.0, 20.0]), greenland).tolist() == [True, True, False]


def test_regional_table_agrees_with_the_scores_on_each_sector() -> None:
    from floecast.grid import Ease2Grid
    from floecast.metrics import brier_score, iiee, rmse, sie_error_km2
    from floecast.verify_tables import RegionalTable

    grid = Ease2Grid("south", 27)
    rng = np.random.default_rng(3)
    observed = rng.uniform(0, 1, (4, *grid.shape))
    forecast = np.clip(observed + rng.normal(0, 0.2, observed.shape), 0, 1)
    probability = rng.uniform(0, 1, observed.shape)
    mask = rng.uniform(size=grid.shape) > 0.3
    table = RegionalTable("south", grid.lon, grid.cell_area_km2)
    table.add("hindcast", 1, "m", forecast, probability, observed, mask)
    rows = table.frame().set_index("region")
    assert len(rows) == 36
    for sector in SOUTH_SECTORS[::7]:
        m = mask & sector_mask(grid.lon, sector)
        row = rows.loc[sector.name]
        assert row["rmse"] == pytest.approx(rmse(forecast, observed, m), rel=1e-9)
        assert row["brier"] == pytest.approx(brier_score(probability, observed, m), rel=1e-9)
        assert row["sie_error_km2"] == pytest.approx(sie_error_km2(forecast, observed, grid.cell_area_km2, m), rel=1e-9, abs=1e-6)
        assert row["iiee_km2"] == pytest.approx(iiee(forecast, observed, grid.cell_area_km2, m).iiee_km2, rel=1e-9)
