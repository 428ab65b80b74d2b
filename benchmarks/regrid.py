"""Regridding a year of daily ERA5-like 2 m temperature (0.25 deg, 30-90N, float32) onto the 25 km EASE2 north
grid on one core: precomputed sparse weights (``floecast.regrid.apply``) against re-interpolating every field
with pyproj + scipy's RegularGridInterpolator, which is also the accuracy reference."""

from __future__ import annotations

import os
from collections.abc import Callable

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core: set before numpy/scipy load their thread pools

import time  # noqa: E402

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from scipy.interpolate import RegularGridInterpolator  # noqa: E402

from floecast import regrid  # noqa: E402
from floecast.grid import Ease2Grid  # noqa: E402

DAYS = 365
BASELINE_FIELDS = 5
ROUNDS = 5
LAT = np.linspace(90.0, 30.0, 241)  # descending, as ERA5 delivers
LON = np.arange(1440) * 0.25
LON_PERIODIC = np.append(LON, 360.0)
Baseline = Callable[[np.ndarray, np.ndarray], np.ndarray]


def synthetic_year(rng: np.random.Generator) -> np.ndarray:
    """(day, lat, lon) float32 K: a seasonal, smooth analytic field plus 0.5 K noise, built a day at a time."""
    la, lo = np.meshgrid(np.radians(LAT), np.radians(LON), indexing="ij")
    base = (250.0 + 30.0 * np.cos(la) ** 2 + 8.0 * np.cos(la) * np.sin(2 * lo)).astype(np.float32)
    wave = (5.0 * np.sin(3 * la) * np.cos(lo)).astype(np.float32)
    fields = np.empty((DAYS, len(LAT), len(LON)), dtype=np.float32)
    for day in range(DAYS):
        season = np.float32(10.0 * np.cos(2 * np.pi * day / DAYS))
        fields[day] = base + season * np.cos(la).astype(np.float32) + np.float32(np.sin(day / 9.0)) * wave
        fields[day] += rng.standard_normal(base.shape, dtype=np.float32) * np.float32(0.5)
    return fields


def interpolate(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The baseline and reference: one field re-interpolated at the EASE2 centres (longitude made periodic).

    Cast to float64 first: that is scipy's compiled 2-D linear path, the fastest way to call it."""
    values = np.concatenate([field, field[:, :1]], axis=1)[::-1].astype(np.float64)
    return RegularGridInterpolator((LAT[::-1], LON_PERIODIC), values, bounds_error=False, fill_value=np.nan)(points)


def interpolate_float32(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The same, given the float32 field as delivered (scipy then takes its generic, slower path)."""
    values = np.concatenate([field, field[:, :1]], axis=1)[::-1]
    return RegularGridInterpolator((LAT[::-1], LON_PERIODIC), values, bounds_error=False, fill_value=np.nan)(points)


def xarray_interp(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The same through ``xarray.DataArray.interp`` at the cell centres."""
    da = xr.DataArray(np.concatenate([field, field[:, :1]], axis=1), coords={"lat": LAT, "lon": LON_PERIODIC})
    return da.interp(lat=xr.DataArray(points[:, 0], dims="cell"), lon=xr.DataArray(points[:, 1], dims="cell")).values


def time_baseline(method: Baseline, fields: np.ndarray, days: np.ndarray, points: np.ndarray) -> float:
    """Seconds per field, each result kept as float32 (as a year of output would be)."""
    stored = np.empty((len(days), points.shape[0]), dtype=np.float32)
    started = time.perf_counter()
    for k, day in enumerate(days):
        stored[k] = method(fields[day], points)
    return (time.perf_counter() - started) / len(days)


def main() -> None:
    grid = Ease2Grid("north", 1)
    fields = synthetic_year(np.random.default_rng(0))

    started = time.perf_counter()
    weights = regrid.bilinear_weights(LAT, LON, grid)
    build_s = time.perf_counter() - started

    tlon, tlat = grid.lonlat  # pyproj, as in any direct approach; computed once, not timed
    points = np.stack([tlat.ravel(), np.mod(tlon.ravel(), 360.0)], axis=1)
    days = np.linspace(0, DAYS - 1, BASELINE_FIELDS).astype(int)

    baselines = {"interp": interpolate, "interp_float32": interpolate_float32, "xarray_interp": xarray_interp}
    out = regrid.apply(weights, fields, grid)  # warm-up (also has the output's pages mapped once)
    for method in baselines.values():
        method(fields[0], points)
    apply_s, baseline_s = [], {name: [] for name in baselines}
    for _ in range(ROUNDS):  # interleaved, best of each: the machine may be shared
        del out
        started = time.perf_counter()
        out = regrid.apply(weights, fields, grid)
        apply_s.append((time.perf_counter() - started) / DAYS)
        for name, method in baselines.items():
            baseline_s[name].append(time_baseline(method, fields, days, points))
    apply_best = min(apply_s)

    ref = np.stack([interpolate(fields[day], points) for day in days])  # float64, the accuracy reference
    ours = out[days].reshape(BASELINE_FIELDS, -1).astype(np.float64)
    if not np.array_equal(np.isnan(ours), np.isnan(ref)):
        raise SystemExit("coverage differs from the reference")
    valid = ~np.isnan(ref)
    abs_err = np.abs(ours[valid] - ref[valid])
    rounding = np.abs(ref[valid].astype(np.float32).astype(np.float64) - ref[valid])  # float32 output's own floor

    print(f"BENCH regrid_fields_per_s {1 / apply_best:.0f} fields/s")
    print(f"BENCH regrid_speedup_vs_interp {min(baseline_s['interp']) / apply_best:.1f} x")
    print(f"BENCH regrid_max_abs_err {abs_err.max():.2e} K")
    print(f"BENCH regrid_max_rel_err {(abs_err / np.abs(ref[valid])).max():.2e} 1")
    print(f"BENCH regrid_float32_rounding_floor_abs {rounding.max():.2e} K")
    print(f"BENCH regrid_apply_ms_per_field {apply_best * 1e3:.3f} ms")
    print(f"BENCH regrid_apply_ms_per_field_median {np.median(apply_s) * 1e3:.3f} ms")
    for name, seconds in baseline_s.items():
        if name != "interp":
            print(f"BENCH regrid_speedup_vs_{name} {min(seconds) / apply_best:.1f} x")
        print(f"BENCH regrid_{name}_ms_per_field {min(seconds) * 1e3:.2f} ms")
        print(f"BENCH regrid_{name}_ms_per_field_median {np.median(seconds) * 1e3:.2f} ms")
    print(f"BENCH regrid_weights_build_s {build_s:.2f} s")
    started = time.perf_counter()
    regrid.conservative_weights(np.arange(29.5, 90.0, 1.0), np.arange(0.5, 360.0, 1.0), grid)
    print(f"BENCH regrid_conservative_weights_build_s {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
