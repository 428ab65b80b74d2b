"""Regridding from latitude/longitude grids onto EASE2: weights, caching, winds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

from floecast import regrid
from floecast.grid import Ease2Grid
from floecast.preprocess import regrid_field

GRID = Ease2Grid("north", 8)  # 54 x 54, 200 km
LAT = np.arange(90.0, 14.9, -0.5)  # descending, as ERA5 delivers
LON = np.arange(-180.0, 180.0, 0.5)


def smooth_field(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.meshgrid(np.radians(lat), np.radians(lon), indexing="ij")
    return 250 + 20 * np.cos(la) * np.sin(2 * lo) + 5 * np.sin(3 * la)


def reference(field: np.ndarray, grid: Ease2Grid) -> np.ndarray:
    """scipy's bilinear interpolation at the cell centres (longitude made periodic)."""
    lon = np.mod(LON, 360.0)
    order = np.argsort(lon)
    lon_ext = np.append(lon[order], lon[order][0] + 360.0)
    f = field[:, order]
    f_ext = np.concatenate([f, f[:, :1]], axis=1)
    interp = RegularGridInterpolator((LAT[::-1], lon_ext), f_ext[::-1], bounds_error=False)
    tlon, tlat = grid.lonlat
    return interp(np.stack([tlat.ravel(), np.mod(tlon.ravel(), 360.0)], axis=1)).reshape(grid.shape)


def test_bilinear_agrees_with_scipy() -> None:
    field = smooth_field(LAT, LON)
    out = regrid.apply(regrid.bilinear_weights(LAT, LON, GRID), field[None], GRID)[0]
    ref = reference(field, GRID)
    assert np.isfinite(out).all()  # 15N and north covers every cell of the north grid
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)  # float32 output of values ~250
    assert np.abs(out.astype(np.float64) - ref).max() / 250 < 1e-6


def test_latitude_order_and_coverage() -> None:
    field = smooth_field(LAT, LON)
    descending = regrid.apply(regrid.bilinear_weights(LAT, LON, GRID), field[None], GRID)
    ascending = regrid.apply(regrid.bilinear_weights(LAT[::-1], LON, GRID), field[::-1][None], GRID)
    np.testing.assert_array_equal(descending, ascending)
    north_of_60 = LAT >= 60
    partial = regrid.apply(regrid.bilinear_weights(LAT[north_of_60], LON, GRID), field[north_of_60][None], GRID)[0]
    _, tlat = GRID.lonlat
    assert np.isnan(partial[tlat < 60]).all() and np.isfinite(partial[tlat > 60.01]).all()


def test_weights_are_cached(tmp_path: Path) -> None:
    first = regrid.cached_weights(LAT, LON, GRID, tmp_path)
    files = list(tmp_path.glob("weights_*.npz"))
    assert len(files) == 1
    again = regrid.cached_weights(LAT, LON, GRID, tmp_path)
    assert (first != again).nnz == 0
    other = regrid.cached_weights(LAT[:-2], LON, GRID, tmp_path)
    assert len(list(tmp_path.glob("weights_*.npz"))) == 2 and other.shape[0] == first.shape[0]


@pytest.mark.parametrize("hemisphere", ["north", "south"])
def test_wind_rotation(hemisphere: str) -> None:
    grid = Ease2Grid(hemisphere, 8)
    x, y = np.meshgrid(grid.xc, grid.yc)
    r = np.hypot(x, y)
    ux, uy = regrid.rotate_winds(np.zeros(grid.shape), np.ones(grid.shape), grid)
    poleward = -(ux * x + uy * y) / r if hemisphere == "north" else (ux * x + uy * y) / r
    np.testing.assert_allclose(poleward, 1.0, atol=1e-6)  # a northward wind points to (or away from) the pole
    ux, uy = regrid.rotate_winds(np.full(grid.shape, 3.0), np.full(grid.shape, 4.0), grid)
    np.testing.assert_allclose(np.hypot(ux, uy), 5.0, atol=1e-9)  # speed is kept


def _era5_file(path: Path, variable: str, values: np.ndarray) -> None:
    days = pd.date_range("2020-01-01", periods=values.shape[0])
    xr.Dataset(
        {variable: (("valid_time", "latitude", "longitude"), values.astype(np.float32), {"units": "m s**-1"})},
        coords={"valid_time": days, "latitude": LAT, "longitude": LON},
    ).to_netcdf(path)


def test_regrid_atmos_rotates_latlon_winds(tmp_path: Path) -> None:
    shape = (2, len(LAT), len(LON))
    _era5_file(tmp_path / "u.nc", "u10", np.zeros(shape))
    _era5_file(tmp_path / "v.nc", "v10", np.full(shape, 6.0))  # a uniform northward wind
    regrid_field([tmp_path / "v.nc"], tmp_path / "v_out.nc", GRID, "v10", "era5", [tmp_path / "u.nc"], cache_dir=tmp_path)
    regrid_field([tmp_path / "u.nc"], tmp_path / "u_out.nc", GRID, "u10", "era5", [tmp_path / "v.nc"], cache_dir=tmp_path)
    ux = xr.open_dataset(tmp_path / "u_out.nc")["u10"].values
    uy = xr.open_dataset(tmp_path / "v_out.nc")["v10"].values
    x, y = np.meshgrid(GRID.xc, GRID.yc)
    np.testing.assert_allclose(-(ux * x + uy * y) / np.hypot(x, y), 6.0, atol=1e-4)
    with pytest.raises(ValueError, match="needs the v10 file"):
        regrid_field([tmp_path / "u.nc"], tmp_path / "bad.nc", GRID, "u10", "era5")
    assert not (tmp_path / "bad.nc").exists()


# --- analytic checks: bilinear, conservative, projected sources, method choice, apply ----------------------------

GRID4 = Ease2Grid("north", 4)  # 108 x 108, 100 km
LAT1 = np.arange(-89.5, 90.0, 1.0)  # a CMIP6-like global 1 degree grid (cell edges on whole degrees)
LON1 = np.arange(0.5, 360.0, 1.0)
WGS84_A, WGS84_E2 = 6378137.0, 0.00669437999014


def analytic(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A smooth field of order 1 (so absolute tolerances are relative ones too)."""
    la, lo = np.radians(lat), np.radians(lon)
    return 1.0 + 0.2 * np.cos(la) * np.sin(2 * lo) + 0.1 * np.sin(3 * la)


def band_area_m2(lat_south: np.ndarray, lat_north: np.ndarray, dlon_deg: float | np.ndarray) -> np.ndarray:
    """Exact area on the WGS84 ellipsoid between two latitudes over ``dlon_deg`` of longitude."""

    def s(lat: np.ndarray) -> np.ndarray:
        e, sin = np.sqrt(WGS84_E2), np.sin(np.radians(lat))
        return (WGS84_A**2 * (1 - WGS84_E2) / 2) * (
            sin / (1 - WGS84_E2 * sin**2) + np.log((1 + e * sin) / (1 - e * sin)) / (2 * e)
        )

    return np.radians(dlon_deg) * (s(lat_north) - s(lat_south))


def test_bilinear_reproduces_an_analytic_field() -> None:
    la, lo = np.meshgrid(LAT, LON, indexing="ij")
    out = regrid.apply(regrid.bilinear_weights(LAT, LON, GRID), analytic(la, lo)[None], GRID)[0]
    assert out.dtype == np.float32 and np.isfinite(out).all()
    tlon, tlat = GRID.lonlat
    # bilinear error <= h^2/8 (|f_lonlon| + |f_latlat|) with h = 0.5 deg: |f_lonlon| <= 0.8, |f_latlat| <= 0.2 + 0.9
    bound = np.radians(0.5) ** 2 / 8 * (0.8 + 1.1)
    error = np.abs(out - analytic(tlat, tlon))
    assert error.max() <= bound + 1e-6 and error.max() > bound / 100  # consistent with the spacing, not exact
    np.testing.assert_allclose(out, reference(analytic(la, lo), GRID), atol=1e-5, rtol=0)  # pyproj + scipy


def test_bilinear_across_the_date_line_and_prime_meridian() -> None:
    # centres at 0.5 .. 359.5: targets between 359.5E and 0.5E interpolate across 0E (no extrapolation)
    full = Ease2Grid("north", 1)
    weights = regrid.bilinear_weights(LAT1, LON1, full)
    assert weights.data.min() >= 0 and weights.data.max() <= 1
    out = regrid.apply(weights, analytic(*np.meshgrid(LAT1, LON1, indexing="ij"))[None], full)[0]
    tlon, tlat = full.lonlat
    near_0e = (np.mod(tlon + 0.5, 360.0) < 1.0) & (tlat < 89.0)
    assert near_0e.sum() > 100
    np.testing.assert_allclose(out[near_0e], analytic(tlat, tlon)[near_0e], atol=np.radians(1.0) ** 2 / 8 * 1.9 + 1e-6)
    # a sector across 0E (-30 .. 60) is one sector, not a global grid with a gap
    lat, lon = np.arange(50.0, 90.1, 1.0), np.arange(-30.0, 60.1, 1.0)
    sector = regrid.apply(regrid.bilinear_weights(lat, lon, GRID), analytic(*np.meshgrid(lat, lon, indexing="ij"))[None], GRID)[0]
    tlon, tlat = GRID.lonlat
    inside = (tlat > 50.01) & (tlat < 89.0) & (np.abs(tlon - 15.0) < 44.9)
    outside = (np.abs(np.mod(tlon + 180.0, 360.0) - 180.0 - 15.0) > 45.1) & (tlat < 89.0)
    assert np.isfinite(sector[inside]).all() and np.isnan(sector[outside]).all()


def test_conservative_keeps_a_constant_and_sums_to_one() -> None:
    weights = regrid.conservative_weights(LAT1, LON1, GRID4)
    np.testing.assert_allclose(np.asarray(weights.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    out = regrid.apply(weights, np.full((2, LAT1.size, LON1.size), 1.0), GRID4)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, 1.0, atol=1e-6)
    # a source north of 60N: cells wholly inside keep the constant, cells reaching south of 60N (its edge) are NaN
    north = LAT1 > 60
    weights = regrid.conservative_weights(LAT1[north], LON1, GRID4)
    partial = regrid.apply(weights, np.full((1, north.sum(), LON1.size), 3.0), GRID4)[0]
    _, tlat = GRID4.lonlat
    np.testing.assert_allclose(partial[tlat > 61.0], 3.0, atol=1e-6)
    assert np.isnan(partial[tlat < 59.5]).all()


def test_conservative_keeps_the_area_integral() -> None:
    # a smooth bump north of 65N (zero south of it, so the whole field lies inside the EASE2 square)
    lat_edges = np.arange(-90.0, 90.1, 1.0)
    la, lo = np.meshgrid(LAT1, LON1, indexing="ij")
    bump = np.where(la > 65, np.sin(np.radians(la - 65) * 180 / 50) ** 2, 0.0) * (1 + 0.3 * np.sin(np.radians(lo)))
    area = band_area_m2(lat_edges[:-1], lat_edges[1:], 1.0)[:, None]  # exact source cell areas (all 1 degree wide)
    source_integral = float((bump * area).sum())
    cell_area = GRID4.cell_m**2  # EASE2 is equal-area on the WGS84 ellipsoid
    errors = {}
    for method in ("conservative", "bilinear"):
        out = regrid.apply(regrid.cached_weights(LAT1, LON1, GRID4, None, method=method), bump[None], GRID4)[0]
        errors[method] = abs(float(out.astype(np.float64).sum()) * cell_area / source_integral - 1)
    assert errors["conservative"] < 2e-4  # measured 6e-5: subsampling at 12.5 km
    assert errors["conservative"] < errors["bilinear"] / 3  # point values do not keep it (measured 4.5e-4)


def test_conservative_step_gives_area_fractions() -> None:
    # 1 north of 70N, 0 south of it, on the 1 degree grid (70N is a cell edge): EASE2 cells straddling the circle get
    # the share of their area north of it; in projected x/y (Lambert azimuthal) the circle is centred on the pole
    step = np.where(LAT1[:, None] > 70, 1.0, 0.0) * np.ones(LON1.size)
    out = regrid.apply(regrid.conservative_weights(LAT1, LON1, GRID4), step[None], GRID4)[0]
    x70, y70 = pyproj.Transformer.from_crs("EPSG:4326", GRID4.crs, always_xy=True).transform(0.0, 70.0)
    radius = np.hypot(x70, y70)
    fine = ((np.arange(64) + 0.5) / 64 - 0.5) * GRID4.cell_m
    xx = GRID4.xc[None, :, None, None] + fine[None, None, None, :]
    yy = GRID4.yc[:, None, None, None] + fine[None, None, :, None]
    truth = (np.hypot(xx, yy) < radius).mean(axis=(2, 3))
    straddling = (truth > 0.05) & (truth < 0.95)
    assert straddling.sum() > 50
    assert np.all((out[straddling] > 0) & (out[straddling] < 1))
    assert np.abs(out - truth).max() < 0.06 and np.abs(out - truth)[straddling].mean() < 0.02  # measured 0.04, 0.01
    np.testing.assert_array_equal(out[truth == 1], 1.0)
    np.testing.assert_array_equal(out[truth == 0], 0.0)
    cap = band_area_m2(np.array(70.0), np.array(90.0), 360.0)  # the whole cap's area, kept to subsampling accuracy
    assert abs(out.astype(np.float64).sum() * GRID4.cell_m**2 / cap - 1) < 5e-4  # measured 1.6e-4


OSI_CRS = "+proj=stere +lat_0=90 +lat_ts=70 +lon_0=-45 +k=1 +x_0=0 +y_0=0 +a=6378273 +b=6356889.449 +units=m"
OSI_X = np.arange(-3850e3 + 12.5e3, 3750e3, 25e3)  # the 25 km NSIDC/OSI-SAF polar stereographic grid
OSI_Y = np.arange(5850e3 - 12.5e3, -5350e3, -25e3)  # descending, as delivered


@pytest.mark.parametrize("flip", [False, True])
def test_projected_source_reproduces_a_linear_field(flip: bool) -> None:
    src_x, src_y = OSI_X, (OSI_Y[::-1] if flip else OSI_Y)
    xx, yy = np.meshgrid(src_x, src_y)
    linear = 1.0 + 1e-7 * xx - 5e-8 * yy  # between about 0.3 and 1.7 on this grid
    out = regrid.apply(regrid.projected_bilinear_weights(src_x, src_y, OSI_CRS, GRID), linear[None], GRID)[0]
    to_src = pyproj.Transformer.from_crs(GRID.crs, OSI_CRS, always_xy=True)
    tx, ty = to_src.transform(*np.meshgrid(GRID.xc, GRID.yc))
    inside = (tx >= src_x.min()) & (tx <= src_x.max()) & (ty >= src_y.min()) & (ty <= src_y.max())
    assert inside.sum() > 1000 and (~inside).sum() > 100
    np.testing.assert_array_equal(np.isfinite(out), inside)
    np.testing.assert_allclose(out[inside], (1.0 + 1e-7 * tx - 5e-8 * ty)[inside], atol=1e-5, rtol=0)


def test_auto_method_and_cache_key(tmp_path: Path) -> None:
    full = Ease2Grid("north", 1)
    era5_lat, era5_lon = np.arange(90.0, 29.9, -0.25), np.arange(0.0, 360.0, 0.25)
    assert regrid.choose_method(LAT1, LON1, full) == "conservative"  # ~90 km cells onto 25 km
    assert regrid.choose_method(era5_lat, era5_lon, full) == "bilinear"  # ~20 km cells onto 25 km
    assert regrid.choose_method(LAT1, LON1, GRID) == "bilinear"  # 1 degree onto the 200 km demo-like grid
    keys = {m: regrid.cache_key(LAT1, LON1, GRID4, m) for m in ("bilinear", "conservative")}
    assert keys["bilinear"] != keys["conservative"] != regrid.cache_key(LAT1, LON1, GRID4, "conservative", samples=4)
    auto = regrid.weights_for(LAT1, LON1, GRID4, tmp_path)  # 100 km cells: 1 degree is not coarser -> bilinear
    assert (auto != regrid.bilinear_weights(LAT1, LON1, GRID4)).nnz == 0
    conservative = regrid.weights_for(LAT1, LON1, GRID4, tmp_path, method="conservative")
    assert (conservative != regrid.conservative_weights(LAT1, LON1, GRID4)).nnz == 0
    names = sorted(p.name for p in tmp_path.glob("weights_*.npz"))
    assert names == sorted(f"weights_{k}.npz" for k in keys.values())
    again = regrid.cached_weights(LAT1, LON1, GRID4, tmp_path, method="conservative")  # read back from the cache
    assert (again != conservative).nnz == 0
    assert (regrid.cached_weights(LAT1, LON1, GRID4, tmp_path) != auto).nnz == 0  # the default is still bilinear
    with pytest.raises(ValueError, match="regrid method"):
        regrid.cached_weights(LAT1, LON1, GRID4, None, method="nearest")


def test_apply_batches_dtypes_and_layouts(monkeypatch: pytest.MonkeyPatch) -> None:
    north_of_60 = LAT >= 60
    weights = regrid.bilinear_weights(LAT[north_of_60], LON, GRID)
    rng = np.random.default_rng(1)
    fields = 250 + rng.standard_normal((7, north_of_60.sum(), LON.size))  # float64
    expected = (weights @ fields.reshape(7, -1).T).T.reshape(7, *GRID.shape)
    expected[:, np.diff(weights.indptr).reshape(GRID.shape) == 0] = np.nan
    for batch in (1, 3, 32):
        out = regrid.apply(weights, fields, GRID, batch=batch)
        assert out.dtype == np.float32 and out.shape == (7, *GRID.shape)
        np.testing.assert_allclose(out, expected, rtol=1e-6)
        assert np.array_equal(np.isnan(out), np.isnan(expected))
    transposed = np.ascontiguousarray(fields.transpose(0, 2, 1)).transpose(0, 2, 1)  # a non-contiguous view
    np.testing.assert_array_equal(regrid.apply(weights, transposed, GRID), regrid.apply(weights, fields, GRID))
    compiled = regrid.apply(weights, fields, GRID)
    monkeypatch.setattr(regrid, "_csr_matvec", None)  # the public sparse product gives the same numbers
    np.testing.assert_array_equal(regrid.apply(weights, fields.astype(np.float32), GRID), compiled)
    with_nan = fields.astype(np.float32)
    with_nan[0, 5, :] = np.nan  # a missing source row reaches only the targets that use it
    out = regrid.apply(weights, with_nan, GRID)
    assert np.isnan(out[0]).sum() > np.isnan(out[1]).sum() and np.isfinite(out[1][np.isfinite(expected[1])]).all()
