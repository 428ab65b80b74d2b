"""Regridding from latitude/longitude grids onto EASE2: weights, caching, winds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

from floecast import regrid
from floecast.grid import Ease2Grid
from floecast.preprocess import regrid_atmos

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
    regrid_atmos(tmp_path / "v.nc", tmp_path / "v_out.nc", GRID, "v10", partner_path=tmp_path / "u.nc", cache_dir=tmp_path)
    regrid_atmos(tmp_path / "u.nc", tmp_path / "u_out.nc", GRID, "u10", partner_path=tmp_path / "v.nc", cache_dir=tmp_path)
    ux = xr.open_dataset(tmp_path / "u_out.nc")["u10"].values
    uy = xr.open_dataset(tmp_path / "v_out.nc")["v10"].values
    x, y = np.meshgrid(GRID.xc, GRID.yc)
    np.testing.assert_allclose(-(ux * x + uy * y) / np.hypot(x, y), 6.0, atol=1e-4)
    with pytest.raises(ValueError, match="needs the v10 file"):
        regrid_atmos(tmp_path / "u.nc", tmp_path / "bad.nc", GRID, "u10")
    assert not (tmp_path / "bad.nc").exists()
