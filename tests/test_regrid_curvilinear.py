"""Curvilinear (tripolar-like) ocean grids onto EASE2, against direct references on the sphere.

The source grid (tests/servers/orca.py) has a north fold (column i and column ni - 1 - i of the top
row are the same point), a seam inside every row (longitudes jump from 180 to -180) and a halo
column repeating the first, as ORCA grids do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from servers.orca import tripolar_like

from floecast import regrid
from floecast.grid import Ease2Grid

EARTH_KM = regrid.EARTH_RADIUS_KM


def smooth_field(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """A field smooth on the sphere (a function of the 3-D position): no seam, pole or fold in it."""
    x, y, z = regrid._unit_vectors(lon, lat).T
    return (280.0 + 10.0 * z + 3.0 * x - 2.0 * y + 4.0 * x * y).reshape(np.shape(lat))


def great_circle_km(lon0: float, lat0: float, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    p0 = regrid._unit_vectors(np.array([lon0]), np.array([lat0]))[0]
    return EARTH_KM * np.arccos(np.clip(regrid._unit_vectors(lon, lat) @ p0, -1.0, 1.0))


@pytest.fixture(scope="module")
def source() -> tuple[np.ndarray, np.ndarray]:
    return tripolar_like()


def test_the_grid_has_a_fold_a_seam_and_a_halo(source) -> None:
    lat, lon = source
    np.testing.assert_allclose(lat[-1, :-1], lat[-1, -2::-1], atol=1e-9)  # the fold: i and ni - 1 - i coincide
    np.testing.assert_allclose(np.cos(np.radians(lon[-1, :-1])), np.cos(np.radians(lon[-1, -2::-1])), atol=1e-9)
    crossing = (np.abs(np.diff(lon[:, :-1], axis=1)) > 300).any(axis=1)
    assert crossing[: len(crossing) * 9 // 10].all()  # the seam lies inside every row but those hugging the fold
    np.testing.assert_array_equal(lat[:, 0], lat[:, -1])  # the halo column
    spacing = regrid.curvilinear_spacing_km(lat, lon)
    assert spacing.min() > 0 and np.median(spacing) < 700


def test_nearest_agrees_with_a_brute_force_search(source) -> None:
    lat, lon = source
    grid = Ease2Grid("north", 27)
    weights = regrid.curvilinear_weights(lat, lon, grid, method="nearest")
    field = smooth_field(lon, lat)
    out = regrid.apply(weights, field[None], grid)[0]
    tlon, tlat = grid.lonlat
    limit = regrid.OUTSIDE_SPACINGS * regrid.curvilinear_spacing_km(lat, lon).ravel()
    for y in range(grid.size):
        for x in range(grid.size):
            distance = great_circle_km(tlon[y, x], tlat[y, x], lon.ravel(), lat.ravel())
            nearest = int(np.argmin(distance))
            if distance[nearest] > limit[nearest]:
                assert np.isnan(out[y, x]), (y, x)  # outside the source (south of its edge)
            else:
                assert out[y, x] == pytest.approx(field.ravel()[nearest], abs=1e-3), (y, x)
    assert np.isnan(out).any() and np.isfinite(out).sum() > 0.6 * out.size  # the corners lie south of 30N


def test_conservative_matches_the_cell_average_of_a_smooth_field(source) -> None:
    """The reference is the exact mean of the field over each equal-area EASE2 cell (dense sampling of the
    analytic field itself). Cells on the seam and over the fold are as good as the others."""
    lat, lon = source
    grid = Ease2Grid("north", 27)
    weights = regrid.curvilinear_weights(lat, lon, grid, method="conservative")
    out = regrid.apply(weights, smooth_field(lon, lat)[None], grid)[0]
    dense = 24
    offsets = ((np.arange(dense) + 0.5) / dense - 0.5) * grid.cell_m
    xx = grid.xc[None, :, None, None] + offsets[None, None, None, :]
    yy = grid.yc[:, None, None, None] - offsets[None, None, :, None]
    xx, yy = np.broadcast_arrays(xx, yy)
    import pyproj

    plon, plat = pyproj.Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(xx, yy)
    reference = smooth_field(plon, plat).mean(axis=(2, 3))
    inside = np.isfinite(out)
    assert inside.sum() > 0.6 * out.size
    error = np.abs(out - reference)[inside]
    assert error.max() < 0.6, error.max()  # the field spans about 30 units; source cells are up to ~300 km
    tlon, tlat = grid.lonlat
    seam = inside & (np.abs(np.abs(tlon) - 180.0) < 25.0)
    fold = inside & (tlat > 76.0)
    assert seam.sum() >= 3 and fold.sum() >= 4
    assert np.abs(out - reference)[seam].max() < 0.6 and np.abs(out - reference)[fold].max() < 0.6


def test_conservative_keeps_a_constant_and_a_fine_source_reaches_every_cell() -> None:
    """A source much finer than the target: every target cell averages (nearly) every source cell whose
    centre lies inside it, so it is a box average, not a point sample."""
    lat, lon = tripolar_like(ni=480, nj=160, south_lat=45.0)
    grid = Ease2Grid("north", 27)  # 675 km cells; the source's spacing is 25 to 90 km
    weights = regrid.curvilinear_weights(lat, lon, grid, method="conservative")
    rows = np.flatnonzero(np.diff(weights.indptr) > 0)
    np.testing.assert_allclose(np.asarray(weights.sum(axis=1)).ravel()[rows], 1.0, rtol=1e-6)
    out = regrid.apply(weights, np.full((1, *lat.shape), 7.5), grid)[0]
    np.testing.assert_allclose(out[np.isfinite(out)], 7.5, rtol=1e-6)
    import pyproj

    sx, sy = pyproj.Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(lon.ravel(), lat.ravel())
    col = np.floor((sx - (grid.xc[0] - grid.cell_m / 2)) / grid.cell_m).astype(int)
    row = np.floor(((grid.yc[0] + grid.cell_m / 2) - sy) / grid.cell_m).astype(int)
    per_axis = regrid._curvilinear_samples(regrid.curvilinear_spacing_km(lat, lon), grid, regrid.DEFAULT_SAMPLES)
    assert per_axis > regrid.DEFAULT_SAMPLES
    reached = []
    for target in rows:
        centres = np.flatnonzero((row * grid.size + col) == target)
        used = weights.indices[weights.indptr[target] : weights.indptr[target + 1]]
        if len(centres) <= per_axis**2 / 2:  # not where the grid crowds round its poles (on land in ORCA)
            reached.append(len(np.intersect1d(used, centres)) / len(centres))
    assert len(reached) > 0.6 * len(rows)
    assert np.median(reached) > 0.95 and min(reached) > 0.8, sorted(reached)[:5]


def test_curvilinear_weights_are_cached_and_methods_checked(source, tmp_path: Path) -> None:
    lat, lon = source
    grid = Ease2Grid("north", 54)
    first = regrid.cached_weights(lat, lon, grid, tmp_path, method="auto")
    files = list(tmp_path.glob("weights_*.npz"))
    assert len(files) == 1
    again = regrid.cached_weights(lat, lon, grid, tmp_path, method="auto")
    assert (first != again).nnz == 0 and list(tmp_path.glob("weights_*.npz")) == files
    assert regrid.cache_key(lat, lon, grid, "nearest") != regrid.cache_key(lat, lon, grid, "conservative")
    assert regrid.cache_key(lat, lon, grid, "nearest") != regrid.cache_key(lat.T, lon.T, grid, "nearest")
    with pytest.raises(ValueError, match="curvilinear source must be one of"):
        regrid.cached_weights(lat, lon, grid, None, method="bilinear")
    assert isinstance(first, sp.csr_matrix)
