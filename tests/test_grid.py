"""EASE-Grid 2.0 geometry: the 25 km grid, its exact coarsenings and the block means."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from floecast.grid import Ease2Grid, coarsen_blocks


@pytest.fixture(scope="module")
def base_north() -> Ease2Grid:
    return Ease2Grid("north")


def test_base_grid_has_432_cells_of_25_km(base_north: Ease2Grid) -> None:
    assert base_north.shape == (432, 432)
    assert base_north.cell_m == 25_000.0
    assert base_north.cell_area_km2 == 625.0
    assert base_north.xc[0] == -5_387_500.0
    assert base_north.xc[-1] == 5_387_500.0
    np.testing.assert_array_equal(np.diff(base_north.xc), 25_000.0)
    # the centres are symmetric about the pole: the two middle cells are +-12.5 km
    assert base_north.xc[215] == -12_500.0 and base_north.xc[216] == 12_500.0


def test_xc_ascending_yc_descending(base_north: Ease2Grid) -> None:
    assert (np.diff(base_north.xc) > 0).all()
    assert (np.diff(base_north.yc) < 0).all()
    assert base_north.yc[0] == 5_387_500.0 and base_north.yc[-1] == -5_387_500.0
    np.testing.assert_array_equal(base_north.yc, -base_north.xc)


def test_hemisphere_crs() -> None:
    north, south = Ease2Grid("north"), Ease2Grid("south")
    assert north.epsg == 6931 and north.crs.to_epsg() == 6931
    assert south.epsg == 6932 and south.crs.to_epsg() == 6932
    assert north.grid_mapping_attrs()["latitude_of_projection_origin"] == 90.0
    assert south.grid_mapping_attrs()["latitude_of_projection_origin"] == -90.0
    assert north.grid_mapping_attrs()["grid_mapping_name"] == "lambert_azimuthal_equal_area"
    with pytest.raises(ValueError, match="hemisphere"):
        Ease2Grid("east")


@pytest.mark.parametrize(("row", "col"), [(215, 216), (216, 215), (0, 0), (0, 431), (431, 0), (100, 300)])
def test_lonlat_matches_pyproj(base_north: Ease2Grid, row: int, col: int) -> None:
    to_geo = pyproj.Transformer.from_crs("EPSG:6931", "EPSG:4326", always_xy=True)
    x, y = base_north.xc[col], base_north.yc[row]
    lon, lat = to_geo.transform(x, y)
    assert base_north.lon[row, col] == pytest.approx(lon, abs=1e-9)
    assert base_north.lat[row, col] == pytest.approx(lat, abs=1e-9)
    # polar azimuthal projection with lon_0 = 0: the azimuth of (x, y) is the longitude
    assert base_north.lon[row, col] == pytest.approx(np.degrees(np.arctan2(x, -y)), abs=1e-9)


def test_lonlat_known_points(base_north: Ease2Grid) -> None:
    lat, lon = base_north.lat, base_north.lon
    # the four cells around the pole are 17.7 km from it
    centre = lat[215:217, 215:217]
    assert (centre > 89.8).all() and (centre < 89.9).all()
    assert lat.max() == centre.max()
    # the top-left corner cell is (-5387.5, +5387.5) km: azimuth -135 deg, about 29.7 N (spherical estimate)
    assert lon[0, 0] == pytest.approx(-135.0, abs=1e-9)
    rho = np.hypot(5_387_500.0, 5_387_500.0)
    spherical_lat = 90.0 - 2 * np.degrees(np.arcsin(rho / (2 * 6_371_007.2)))
    assert lat[0, 0] == pytest.approx(spherical_lat, abs=0.3)
    assert lat.min() == pytest.approx(lat[0, 0], abs=1e-9)  # the corners are the farthest cells


def test_south_grid_uses_epsg_6932() -> None:
    south = Ease2Grid("south", 27)
    to_geo = pyproj.Transformer.from_crs("EPSG:6932", "EPSG:4326", always_xy=True)
    lon, lat = to_geo.transform(south.xc[3], south.yc[5])
    assert south.lat[5, 3] == pytest.approx(lat, abs=1e-9)
    assert south.lon[5, 3] == pytest.approx(lon, abs=1e-9)
    assert (south.lat < 0).all()
    # the four cells around the south pole (477 km from it) are the southernmost
    np.testing.assert_allclose(south.lat[7:9, 7:9], south.lat.min())
    assert south.lat.min() == pytest.approx(-85.7, abs=0.1)


@pytest.mark.parametrize("factor", [2, 12, 27, 432])
def test_coarse_grid_is_block_mean_of_25_km_grid(base_north: Ease2Grid, factor: int) -> None:
    grid = Ease2Grid("north", factor)
    assert grid.size == 432 // factor
    assert grid.cell_area_km2 == 625.0 * factor**2
    np.testing.assert_allclose(grid.xc, base_north.xc.reshape(-1, factor).mean(axis=1), rtol=0, atol=1e-6)
    np.testing.assert_allclose(grid.yc, base_north.yc.reshape(-1, factor).mean(axis=1), rtol=0, atol=1e-6)
    # the same through coarsen_blocks on the 2D coordinate fields
    xx, yy = np.meshgrid(base_north.xc, base_north.yc)
    cx, cy = np.meshgrid(grid.xc, grid.yc)
    np.testing.assert_allclose(coarsen_blocks(xx, factor), cx, atol=1e-6)
    np.testing.assert_allclose(coarsen_blocks(yy, factor), cy, atol=1e-6)
    # consecutive coarse centres are exactly one coarse cell apart
    if grid.size > 1:
        np.testing.assert_allclose(np.diff(grid.xc), grid.cell_m)


def test_coarse_lonlat_is_projected_coarse_centre() -> None:
    grid = Ease2Grid("north", 12)
    to_geo = pyproj.Transformer.from_crs("EPSG:6931", "EPSG:4326", always_xy=True)
    lon, lat = to_geo.transform(grid.xc[7], grid.yc[30])
    assert grid.lon[30, 7] == pytest.approx(lon, abs=1e-9)
    assert grid.lat[30, 7] == pytest.approx(lat, abs=1e-9)
    assert grid.xc[7] == pytest.approx((7 * 12 + 5.5 - 215.5) * 25_000.0)


def test_coarsen_blocks_exact_mean() -> None:
    field = np.arange(16, dtype=float).reshape(4, 4)
    np.testing.assert_array_equal(coarsen_blocks(field, 2), [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(coarsen_blocks(field, 4), [[7.5]])
    np.testing.assert_array_equal(coarsen_blocks(field, 1), field)


def test_coarsen_blocks_leading_axes_and_nan() -> None:
    field = np.arange(2 * 4 * 6, dtype=float).reshape(2, 4, 6)
    out = coarsen_blocks(field, 2)
    assert out.shape == (2, 2, 3)
    assert out[1, 1, 2] == np.mean(field[1, 2:4, 4:6])
    field[0, 0, 0] = np.nan  # block (0, 0, 0) holds 0, 1, 6, 7 -> mean of 1, 6, 7
    assert coarsen_blocks(field, 2)[0, 0, 0] == pytest.approx(14.0 / 3.0)


def test_coarsen_blocks_rejects_indivisible_shape() -> None:
    with pytest.raises(ValueError, match="not divisible by 3"):
        coarsen_blocks(np.zeros((4, 6)), 3)


@pytest.mark.parametrize("factor", [0, -2, 5, 7, 10, 864])
def test_invalid_coarsen_raises(factor: int) -> None:
    with pytest.raises(ValueError, match="grid.coarsen must divide 432"):
        Ease2Grid("north", factor)
