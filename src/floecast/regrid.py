"""Regridding from regular latitude/longitude grids (ERA5, CMIP6) onto EASE2.

Bilinear weights are computed once per (source grid, target grid) as a sparse matrix of
shape (target cells, source cells), cached on disk, and applied to every time step as one
sparse product. Winds are rotated from east/north to the EASE2 x/y axes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyproj
import scipy.sparse as sp

from floecast.grid import Ease2Grid
from floecast.io import atomic_path


def _normalised_longitudes(lon: np.ndarray) -> np.ndarray:
    return np.mod(np.asarray(lon, dtype=np.float64), 360.0)


def bilinear_weights(src_lat: np.ndarray, src_lon: np.ndarray, grid: Ease2Grid) -> sp.csr_matrix:
    """Sparse bilinear interpolation weights from a regular lat/lon grid onto ``grid``.

    ``src_lat`` may be ascending or descending; ``src_lon`` covers the globe (periodic) or a
    sector. Target cells outside the source coverage get no weights (NaN after ``apply``).
    """
    src_lat = np.asarray(src_lat, dtype=np.float64)
    lon_sorted = _normalised_longitudes(src_lon)
    lon_order = np.argsort(lon_sorted)
    lon_sorted = lon_sorted[lon_order]
    lat_order = np.argsort(src_lat)
    lat_sorted = src_lat[lat_order]
    nlat, nlon = len(src_lat), len(lon_sorted)
    step = np.diff(lon_sorted)
    periodic = np.isclose(360.0 - (lon_sorted[-1] - lon_sorted[0]), np.median(step), rtol=1e-3) if nlon > 1 else False

    tlon, tlat = grid.lonlat
    tlon = _normalised_longitudes(tlon.ravel())
    tlat = tlat.ravel()

    i = np.clip(np.searchsorted(lat_sorted, tlat, side="right") - 1, 0, nlat - 2)
    lat0, lat1 = lat_sorted[i], lat_sorted[i + 1]
    wy = (tlat - lat0) / (lat1 - lat0)
    inside = (tlat >= lat_sorted[0]) & (tlat <= lat_sorted[-1])

    if periodic:
        ext = np.append(lon_sorted, lon_sorted[0] + 360.0)
        j = np.clip(np.searchsorted(ext, tlon, side="right") - 1, 0, nlon - 1)
        lon0, lon1 = ext[j], ext[j + 1]
        j1 = (j + 1) % nlon
    else:
        j = np.clip(np.searchsorted(lon_sorted, tlon, side="right") - 1, 0, nlon - 2)
        lon0, lon1 = lon_sorted[j], lon_sorted[j + 1]
        j1 = j + 1
        inside &= (tlon >= lon_sorted[0]) & (tlon <= lon_sorted[-1])
    wx = (tlon - lon0) / (lon1 - lon0)

    # source index in the original (unsorted) flattened (lat, lon) layout
    def flat(lat_idx: np.ndarray, lon_idx: np.ndarray) -> np.ndarray:
        return lat_order[lat_idx] * nlon + lon_order[lon_idx]

    rows = np.repeat(np.nonzero(inside)[0], 4)
    cols = np.stack([flat(i, j), flat(i, j1), flat(i + 1, j), flat(i + 1, j1)], axis=1)[inside].ravel()
    vals = np.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx], axis=1)[inside].ravel()
    return sp.csr_matrix((vals, (rows, cols)), shape=(tlat.size, nlat * nlon))


def cached_weights(src_lat: np.ndarray, src_lon: np.ndarray, grid: Ease2Grid, cache_dir: str | Path | None) -> sp.csr_matrix:
    """``bilinear_weights``, read from / written to ``cache_dir`` keyed by both grids."""
    if cache_dir is None:
        return bilinear_weights(src_lat, src_lon, grid)
    key = hashlib.sha256()
    for array in (np.asarray(src_lat, np.float64), np.asarray(src_lon, np.float64)):
        key.update(array.tobytes())
    key.update(f"{grid.hemisphere}-{grid.coarsen}-bilinear".encode())
    path = Path(cache_dir) / f"weights_{key.hexdigest()[:16]}.npz"
    if path.exists():
        return sp.load_npz(path).tocsr()
    weights = bilinear_weights(src_lat, src_lon, grid)
    with atomic_path(path) as tmp:
        sp.save_npz(tmp.with_suffix(".npz"), weights)
        tmp.with_suffix(".npz").rename(tmp)
    return weights


def apply(weights: sp.csr_matrix, fields: np.ndarray, grid: Ease2Grid) -> np.ndarray:
    """Regrid (time, lat, lon) fields to (time, y, x); cells without weights are NaN."""
    flat = fields.reshape(fields.shape[0], -1).astype(np.float64)
    out = (weights @ flat.T).T
    covered = np.asarray(weights.sum(axis=1)).ravel() > 0
    out[:, ~covered] = np.nan
    return out.reshape(fields.shape[0], *grid.shape).astype(np.float32)


def wind_rotation(grid: Ease2Grid) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin) of the angle from east to the grid's x axis at every cell.

    Derived numerically from the projection (a small step east), so it holds for both
    hemispheres: u_x = u cos - v sin ... with the signs of a rotation by that angle.
    """
    to_grid = pyproj.Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
    lon, lat = grid.lonlat
    step = 1e-3
    x0, y0 = to_grid.transform(lon, lat)
    x1, y1 = to_grid.transform(lon + step, lat)
    angle = np.arctan2(np.asarray(y1) - y0, np.asarray(x1) - x0)
    return np.cos(angle), np.sin(angle)


def rotate_winds(u_east: np.ndarray, v_north: np.ndarray, grid: Ease2Grid) -> tuple[np.ndarray, np.ndarray]:
    """East/north wind components on the EASE2 cells -> components along the grid's x/y axes."""
    cos, sin = wind_rotation(grid)
    return u_east * cos - v_north * sin, u_east * sin + v_north * cos
