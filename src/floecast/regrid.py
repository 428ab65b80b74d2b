"""Regridding onto EASE2 from regular latitude/longitude grids (ERA5, CMIP6), curvilinear ocean grids (ORCA025
and the CMIP6 models' native ocean grids: 2-D latitude/longitude, tripolar with a north fold) and projected polar
grids (OSI-SAF).

Weights are computed once per (source grid, target grid, method) as a sparse matrix of shape (target cells,
source cells), cached on disk, and applied to every time step as a float32 sparse product, so a year of daily
fields costs one weight build plus one cheap product per day instead of a full re-interpolation per day.

Methods for latitude/longitude grids: ``bilinear`` (point values at the cell centres; for sources as fine as or
finer than the target) and ``conservative`` (area shares of the source cells in each equal-area EASE2 cell,
estimated by subsampling; keeps area integrals such as sea-ice area when the source is coarser than the target).
``method="auto"`` picks by the source spacing.

Curvilinear grids have no axes to bracket, so their weights come from a nearest-neighbour search on the sphere
(a k-d tree of the source cell centres as unit vectors, which knows no seam, pole or fold): ``nearest`` (each
target cell takes its nearest source cell) and ``conservative`` (each target cell's equal-area subpoints take
their nearest source cell, i.e. the source cells are their Voronoi cells on the sphere; where the source is finer
than the target the subpoints are made dense enough to reach every source cell, so the weights are a box average
in that case and area shares of the larger source cells in the other). ``auto`` is ``conservative``. A subpoint
farther from its nearest source centre than 1.5 times the local source spacing lies outside the source.

Winds are rotated from east/north to the EASE2 x/y axes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyproj
import scipy.sparse as sp

from floecast.grid import Ease2Grid
from floecast.io import atomic_path

try:  # scipy's compiled y += A x, writing into a given row; the public ``@`` allocates and copies per field
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover - a future scipy may move it; ``@`` gives the same numbers
    _csr_matvec = None

METHODS = ("bilinear", "conservative")
CURVILINEAR_METHODS = ("nearest", "conservative")
WEIGHTS_FORMAT = 2  # bump when the weights computed for the same grids change
DEFAULT_SAMPLES = 8  # per axis: 64 subpoints per EASE2 cell, area shares to about 1/64 of a cell
EARTH_RADIUS_KM = 6371.0
KM_PER_DEGREE = np.pi * EARTH_RADIUS_KM / 180.0
MAX_SAMPLES = 32  # per axis, for a curvilinear source much finer than the target
OUTSIDE_SPACINGS = 1.5  # a point farther than this many local source spacings from the source is outside it


def _normalised_longitudes(lon: np.ndarray) -> np.ndarray:
    return np.mod(np.asarray(lon, dtype=np.float64), 360.0)


def _unwrapped_longitudes(src_lon: np.ndarray) -> tuple[np.ndarray, bool]:
    """Source longitudes (source order) as one run once sorted, starting after the widest gap, and whether they
    close the circle: a sector across 0E (e.g. -30..60) stays one sector, a global grid starts at its first column."""
    lon = _normalised_longitudes(src_lon)
    if lon.size < 2:
        raise ValueError("a source axis needs at least two points")
    srt = np.sort(lon)
    gaps = np.diff(np.append(srt, srt[0] + 360.0))
    periodic = bool(np.isclose(gaps.max(), np.median(gaps), rtol=1e-3))
    origin = srt[0] if periodic else srt[(int(np.argmax(gaps)) + 1) % srt.size]
    return origin + np.mod(lon - origin, 360.0), periodic


def _wrapped(lon: np.ndarray, start: float) -> np.ndarray:
    """Longitudes moved by whole turns into [start, start + 360)."""
    return start + np.mod(np.asarray(lon, dtype=np.float64) - start, 360.0)


def _axis_bilinear(
    axis: np.ndarray, points: np.ndarray, periodic: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bracketing indices (into ``axis`` as given, any order), weight of the upper one, and inside mask."""
    axis = np.asarray(axis, dtype=np.float64)
    if len(axis) < 2:
        raise ValueError("a source axis needs at least two points")
    order = np.argsort(axis)
    srt = axis[order]
    n = len(srt)
    if periodic:
        ext = np.append(srt, srt[0] + 360.0)
        i = np.clip(np.searchsorted(ext, points, side="right") - 1, 0, n - 1)
        lo, hi = ext[i], ext[i + 1]
        upper = (i + 1) % n
        inside = np.isfinite(points)
    else:
        i = np.clip(np.searchsorted(srt, points, side="right") - 1, 0, n - 2)
        lo, hi = srt[i], srt[i + 1]
        upper = i + 1
        inside = (points >= srt[0]) & (points <= srt[-1])
    with np.errstate(invalid="ignore"):
        weight = (points - lo) / (hi - lo)
    return order[i], order[upper], weight, inside


def _bilinear_matrix(
    outer: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    inner: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    n_outer: int,
    n_inner: int,
) -> sp.csr_matrix:
    """CSR weights from per-axis brackets; the source is flattened (outer, inner) row-major.

    Each row lists its four corners in coordinate order (low/high outer, then low/high inner), not in column
    order, so the float32 sums in ``apply`` do not depend on whether the source axes ascend or descend.
    """
    o0, o1, wo, inside_o = outer
    i0, i1, wi, inside_i = inner
    inside = inside_o & inside_i
    cols = np.stack([o0 * n_inner + i0, o0 * n_inner + i1, o1 * n_inner + i0, o1 * n_inner + i1], axis=1)[inside].ravel()
    vals = np.stack([(1 - wo) * (1 - wi), (1 - wo) * wi, wo * (1 - wi), wo * wi], axis=1)[inside].ravel()
    indptr = np.concatenate([[0], np.cumsum(4 * inside)])
    return sp.csr_matrix((vals, cols, indptr), shape=(inside.size, n_outer * n_inner))


def bilinear_weights(src_lat: np.ndarray, src_lon: np.ndarray, grid: Ease2Grid) -> sp.csr_matrix:
    """Sparse bilinear interpolation weights from a regular lat/lon grid onto ``grid``.

    ``src_lat`` may be ascending or descending; ``src_lon`` covers the globe (periodic) or a
    sector. Target cells outside the source coverage get no weights (NaN after ``apply``).
    """
    lon, periodic = _unwrapped_longitudes(src_lon)
    tlon, tlat = grid.lonlat
    lat_brackets = _axis_bilinear(src_lat, tlat.ravel())
    lon_brackets = _axis_bilinear(lon, _wrapped(tlon.ravel(), lon.min()), periodic=periodic)
    return _bilinear_matrix(lat_brackets, lon_brackets, np.size(src_lat), lon.size)


def projected_bilinear_weights(
    src_x: np.ndarray, src_y: np.ndarray, src_crs: pyproj.CRS | str | int, grid: Ease2Grid
) -> sp.csr_matrix:
    """Bilinear weights from a regular x/y grid in a projected CRS (e.g. OSI-SAF polar stereographic) onto ``grid``.

    The EASE2 cell centres are transformed into the source CRS, so no lat/lon detour or curvilinear search is
    needed. Axes may be ascending or descending; the source is flattened (y, x) row-major; cells outside the
    source get no weights (NaN after ``apply``).
    """
    to_src = pyproj.Transformer.from_crs(grid.crs, pyproj.CRS.from_user_input(src_crs), always_xy=True)
    xx, yy = np.meshgrid(grid.xc, grid.yc)
    sx, sy = (np.asarray(v, dtype=np.float64).ravel() for v in to_src.transform(xx, yy))
    return _bilinear_matrix(_axis_bilinear(src_y, sy), _axis_bilinear(src_x, sx), np.size(src_y), np.size(src_x))


def _latitude_edges(lat_sorted: np.ndarray) -> np.ndarray:
    """Cell edges halfway between sorted centres, the outer ones half a step out, clipped to the poles."""
    mid = (lat_sorted[1:] + lat_sorted[:-1]) / 2
    edges = np.concatenate([[2 * lat_sorted[0] - mid[0]], mid, [2 * lat_sorted[-1] - mid[-1]]])
    return np.clip(edges, -90.0, 90.0)


def _longitude_cells(lon: np.ndarray, lon_sorted: np.ndarray, periodic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Index (into ``lon_sorted``, an unwrapped run) of the source longitude cell of each point, and whether it is in one."""
    mid = (lon_sorted[1:] + lon_sorted[:-1]) / 2
    if periodic:
        edges = np.concatenate([[(lon_sorted[-1] - 360.0 + lon_sorted[0]) / 2], mid])
        j = np.searchsorted(edges, _wrapped(lon, edges[0]), side="right") - 1
        return np.clip(j, 0, len(lon_sorted) - 1), np.isfinite(lon)
    edges = np.concatenate([[2 * lon_sorted[0] - mid[0]], mid, [2 * lon_sorted[-1] - mid[-1]]])
    lon = _wrapped(lon, edges[0])
    j = np.searchsorted(edges, lon, side="right") - 1
    return np.clip(j, 0, len(lon_sorted) - 1), lon <= edges[-1]


def conservative_weights(
    src_lat: np.ndarray, src_lon: np.ndarray, grid: Ease2Grid, samples: int = DEFAULT_SAMPLES
) -> sp.csr_matrix:
    """Area-conservative weights from a regular lat/lon grid onto ``grid``, by subsampling each target cell.

    Each EASE2 cell is equal-area, so its ``samples`` x ``samples`` subpoints (a regular pattern in projected
    x/y) stand for equal areas; a weight is the share of the cell's subpoints falling in a source cell (edges
    halfway between centres, clipped at the poles). Area integrals are thus kept to subsampling accuracy.
    A cell with any subpoint outside the source gets no weights (NaN after ``apply``).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    src_lat = np.asarray(src_lat, dtype=np.float64)
    lon, periodic = _unwrapped_longitudes(src_lon)
    if src_lat.size < 2:
        raise ValueError("a source axis needs at least two points")
    lat_order, lon_order = np.argsort(src_lat), np.argsort(lon)
    lat_edges = _latitude_edges(src_lat[lat_order])
    lon_sorted = lon[lon_order]
    n, nlon, nsrc = grid.size, lon.size, src_lat.size * lon.size
    per_cell = samples * samples
    offsets = ((np.arange(samples) + 0.5) / samples - 0.5) * grid.cell_m
    to_geo = pyproj.Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    rows_per_chunk = max(1, 400_000 // (n * per_cell))
    keys, counts = [], []
    for r0 in range(0, n, rows_per_chunk):
        yc = grid.yc[r0 : r0 + rows_per_chunk]
        # (rows, cols, sub-y, sub-x): subpoints grouped per target cell, target cells row-major
        shape = (len(yc), n, samples, samples)
        xx = np.broadcast_to(grid.xc[None, :, None, None] + offsets[None, None, None, :], shape).ravel()
        yy = np.broadcast_to(yc[:, None, None, None] - offsets[None, None, :, None], shape).ravel()
        plon, plat = (np.asarray(v, dtype=np.float64) for v in to_geo.transform(xx, yy))
        i = np.clip(np.searchsorted(lat_edges, plat, side="right") - 1, 0, src_lat.size - 1)
        j, ok = _longitude_cells(plon, lon_sorted, periodic)
        ok &= (plat >= lat_edges[0]) & (plat <= lat_edges[-1])
        cell_ok = ok.reshape(-1, per_cell).all(axis=1)
        target = r0 * n + np.repeat(np.arange(cell_ok.size), per_cell)
        key = target * nsrc + lat_order[i] * nlon + lon_order[j]
        unique, count = np.unique(key[np.repeat(cell_ok, per_cell)], return_counts=True)
        keys.append(unique)
        counts.append(count)
    key, count = np.concatenate(keys), np.concatenate(counts)
    return sp.csr_matrix((count / per_cell, (key // nsrc, key % nsrc)), shape=(n * n, nsrc))


def source_spacing_km(src_lat: np.ndarray, src_lon: np.ndarray, grid: Ease2Grid) -> float:
    """Typical source cell size (km, square root of its area) at the latitudes of the target cells it covers."""
    lat = np.sort(np.asarray(src_lat, dtype=np.float64))
    lon = np.sort(_normalised_longitudes(src_lon))
    dlat, dlon = np.median(np.diff(lat)), np.median(np.diff(lon))
    tlat = grid.lat.ravel()
    tlat = tlat[(tlat >= lat[0]) & (tlat <= lat[-1])]
    if tlat.size == 0:
        return float("nan")
    return float(np.median(KM_PER_DEGREE * np.sqrt(dlat * dlon * np.cos(np.radians(tlat)))))


def choose_method(src_lat: np.ndarray, src_lon: np.ndarray, grid: Ease2Grid) -> str:
    """``conservative`` where the source is coarser than the target cells (keeps area integrals), else ``bilinear``."""
    spacing = source_spacing_km(src_lat, src_lon, grid)
    return "conservative" if spacing > grid.cell_m / 1000.0 else "bilinear"


# --- curvilinear sources (2-D latitude/longitude) ------------------------------------------------


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """(n, 3) points on the unit sphere."""
    lon, lat = np.radians(np.ravel(lon).astype(np.float64)), np.radians(np.ravel(lat).astype(np.float64))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)


def _chord_to_km(chord: np.ndarray) -> np.ndarray:
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(np.asarray(chord) / 2.0, 0.0, 1.0))


def curvilinear_spacing_km(src_lat: np.ndarray, src_lon: np.ndarray) -> np.ndarray:
    """(ny, nx): each source cell's spacing, the largest distance to its neighbours along either grid axis.

    Duplicated points (ORCA's halo columns, the rows either side of the north fold) have a zero distance to
    their twin, which the maximum ignores."""
    xyz = _unit_vectors(src_lon, src_lat).reshape(*np.shape(src_lat), 3)
    spacing = np.zeros(np.shape(src_lat))
    for axis in (0, 1):
        step = _chord_to_km(np.linalg.norm(np.diff(xyz, axis=axis), axis=-1))
        lead = [slice(None)] * 2
        lead[axis] = slice(1, None)
        spacing[tuple(lead)] = np.maximum(spacing[tuple(lead)], step)
        lead[axis] = slice(None, -1)
        spacing[tuple(lead)] = np.maximum(spacing[tuple(lead)], step)
    return spacing


def _curvilinear_samples(spacing_km: np.ndarray, grid: Ease2Grid, samples: int) -> int:
    """Subpoints per axis: at least ``samples``, and dense enough (two per source cell) to reach every
    source cell inside a target cell when the source is finer."""
    fine = float(np.median(spacing_km[spacing_km > 0])) if (spacing_km > 0).any() else grid.cell_m / 1000.0
    return int(min(MAX_SAMPLES, max(samples, np.ceil(2.0 * grid.cell_m / 1000.0 / fine))))


def curvilinear_weights(
    src_lat: np.ndarray, src_lon: np.ndarray, grid: Ease2Grid, method: str = "conservative", samples: int = DEFAULT_SAMPLES
) -> sp.csr_matrix:
    """Weights from a curvilinear source (2-D ``src_lat``/``src_lon``, flattened row-major) onto ``grid``.

    ``nearest``: each EASE2 cell centre takes its nearest source cell. ``conservative``: each cell's subpoints
    (``samples`` per axis or more, see :func:`_curvilinear_samples`) take their nearest source cell and a weight
    is the share of the cell's subpoints. A point farther than OUTSIDE_SPACINGS local spacings from its nearest
    source centre is outside the source: a cell with such a point (its centre, or any subpoint) gets no weights.
    """
    from scipy.spatial import cKDTree  # scipy's k-d tree; imported here, the lat/lon paths do not need it

    if method not in CURVILINEAR_METHODS:
        raise ValueError(f"curvilinear regrid method must be one of {CURVILINEAR_METHODS}, got {method!r}")
    src_lat, src_lon = np.asarray(src_lat, np.float64), np.asarray(src_lon, np.float64)
    if src_lat.ndim != 2 or src_lat.shape != src_lon.shape:
        raise ValueError(f"a curvilinear grid needs 2-D latitude and longitude alike, got {src_lat.shape}, {src_lon.shape}")
    tree = cKDTree(_unit_vectors(src_lon, src_lat))
    limit = OUTSIDE_SPACINGS * curvilinear_spacing_km(src_lat, src_lon).ravel()
    n = grid.size
    per_axis = 1 if method == "nearest" else _curvilinear_samples(limit / OUTSIDE_SPACINGS, grid, samples)
    per_cell = per_axis * per_axis
    offsets = ((np.arange(per_axis) + 0.5) / per_axis - 0.5) * grid.cell_m
    to_geo = pyproj.Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    rows_per_chunk = max(1, 400_000 // (n * per_cell))
    keys, counts = [], []
    nsrc = src_lat.size
    for r0 in range(0, n, rows_per_chunk):
        yc = grid.yc[r0 : r0 + rows_per_chunk]
        shape = (len(yc), n, per_axis, per_axis)  # subpoints grouped per target cell, target cells row-major
        xx = np.broadcast_to(grid.xc[None, :, None, None] + offsets[None, None, None, :], shape).ravel()
        yy = np.broadcast_to(yc[:, None, None, None] - offsets[None, None, :, None], shape).ravel()
        plon, plat = to_geo.transform(xx, yy)
        chord, nearest = tree.query(_unit_vectors(plon, plat))
        inside = _chord_to_km(chord) <= limit[nearest]
        cell_ok = inside.reshape(-1, per_cell).all(axis=1)
        target = r0 * n + np.repeat(np.arange(cell_ok.size), per_cell)
        key = (target * nsrc + nearest)[np.repeat(cell_ok, per_cell)]
        unique, count = np.unique(key, return_counts=True)
        keys.append(unique)
        counts.append(count)
    key, count = np.concatenate(keys), np.concatenate(counts)
    return sp.csr_matrix((count / per_cell, (key // nsrc, key % nsrc)), shape=(n * n, nsrc))


def _weights(src_lat: np.ndarray, src_lon: np.ndarray, grid: Ease2Grid, method: str, samples: int) -> sp.csr_matrix:
    if np.ndim(src_lat) == 2:
        return curvilinear_weights(src_lat, src_lon, grid, method, samples)
    if method == "bilinear":
        return bilinear_weights(src_lat, src_lon, grid)
    return conservative_weights(src_lat, src_lon, grid, samples=samples)


def cache_key(src_lat: np.ndarray, src_lon: np.ndarray, grid: Ease2Grid, method: str, samples: int = DEFAULT_SAMPLES) -> str:
    """Cache key of the weights: both grids, the method and the weights' format version."""
    key = hashlib.sha256()
    for array in (np.asarray(src_lat, np.float64), np.asarray(src_lon, np.float64)):
        if array.ndim == 2:  # a curvilinear grid: the same points in another shape are another grid
            key.update(str(array.shape).encode())
        key.update(array.tobytes())
    suffix = method if method in ("bilinear", "nearest") else f"{method}{samples}"
    # WEIGHTS_FORMAT changes with the algorithm, so old cached weights are never reused
    key.update(f"{grid.hemisphere}-{grid.coarsen}-{suffix}-v{WEIGHTS_FORMAT}".encode())
    return key.hexdigest()[:16]


def cached_weights(
    src_lat: np.ndarray,
    src_lon: np.ndarray,
    grid: Ease2Grid,
    cache_dir: str | Path | None,
    method: str = "bilinear",
    samples: int = DEFAULT_SAMPLES,
) -> sp.csr_matrix:
    """Weights by ``method`` (bilinear, conservative or auto; curvilinear sources: nearest, conservative or auto),
    read from / written to ``cache_dir`` keyed by both grids."""
    curvilinear = np.ndim(src_lat) == 2
    allowed = CURVILINEAR_METHODS if curvilinear else METHODS
    if method == "auto":
        method = "conservative" if curvilinear else choose_method(src_lat, src_lon, grid)
    if method not in allowed:
        kind = "a curvilinear" if curvilinear else "a latitude/longitude"
        raise ValueError(f"regrid method for {kind} source must be one of {[*allowed, 'auto']}, got {method!r}")
    if cache_dir is None:
        return _weights(src_lat, src_lon, grid, method, samples)
    path = Path(cache_dir) / f"weights_{cache_key(src_lat, src_lon, grid, method, samples)}.npz"
    if path.exists():
        return sp.load_npz(path).tocsr()
    weights = _weights(src_lat, src_lon, grid, method, samples)
    with atomic_path(path) as tmp:
        sp.save_npz(tmp.with_suffix(".npz"), weights)
        tmp.with_suffix(".npz").rename(tmp)
    return weights


def weights_for(
    src_lat: np.ndarray,
    src_lon: np.ndarray,
    grid: Ease2Grid,
    cache_dir: str | Path | None = None,
    method: str = "auto",
    samples: int = DEFAULT_SAMPLES,
) -> sp.csr_matrix:
    """Weights for a lat/lon or curvilinear source, the method chosen from the source unless given (cached if ``cache_dir``)."""
    return cached_weights(src_lat, src_lon, grid, cache_dir, method=method, samples=samples)


def covered(weights: sp.csr_matrix, grid: Ease2Grid) -> np.ndarray:
    """(y, x) bool: target cells the source covers (cells with weights)."""
    return (np.diff(sp.csr_matrix(weights).indptr) > 0).reshape(grid.shape)


def _matvec(weights: sp.csr_matrix, field: np.ndarray, row: np.ndarray) -> None:
    """row += weights @ field, in place where scipy allows it."""
    ntarget, nsource = weights.shape
    if _csr_matvec is None:
        row += weights @ field
    else:  # y += A x in place: no temporary and no copy per field
        _csr_matvec(ntarget, nsource, weights.indptr, weights.indices, weights.data, field, row)


def apply(weights: sp.csr_matrix, fields: np.ndarray, grid: Ease2Grid, batch: int = 32, skip_nan: bool = False) -> np.ndarray:
    """Regrid (time, lat, lon) fields to (time, y, x) float32; cells without weights are NaN.

    Float32 weights and data (no float64 copy of the input), one sparse product per field written straight
    into the output, and the input converted ``batch`` fields at a time, so memory stays at the output plus
    one batch whatever the input's dtype or layout. (Several fields per product, as columns, measured 2x
    slower here: the transposes cost more than they save.) A NaN in a source cell with weight reaches the
    target cell, unless ``skip_nan``: then the weights of the finite source cells are renormalised (an
    ocean field's mean over the sea part of a coastal cell) and only a target cell whose source cells are
    all NaN is NaN. That costs a second product per field with NaNs.
    """
    weights = sp.csr_matrix(weights, dtype=np.float32)
    ntarget, nsource = weights.shape
    ntime = fields.shape[0]
    out = np.empty((ntime, ntarget), dtype=np.float32)
    # rows without weights (known from the CSR layout, no weights.sum): NaN; the product adds to the rest
    start_row = np.where(np.diff(weights.indptr) > 0, np.float32(0), np.float32(np.nan))
    share = np.empty(ntarget, np.float32)
    for start in range(0, ntime, batch):
        chunk = np.ascontiguousarray(fields[start : start + batch], dtype=np.float32).reshape(-1, nsource)
        block = out[start : start + len(chunk)]
        block[...] = start_row
        for row, field in zip(block, chunk, strict=True):
            finite = np.isfinite(field) if skip_nan else None
            if finite is None or finite.all():
                _matvec(weights, field, row)
                continue
            _matvec(weights, np.where(finite, field, np.float32(0)), row)
            share[...] = 0
            _matvec(weights, finite.astype(np.float32), share)
            with np.errstate(invalid="ignore", divide="ignore"):
                row /= share
            row[share < 1e-6] = np.nan
    return out.reshape(ntime, *grid.shape)


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
