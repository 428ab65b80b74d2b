"""The embedded default source: synthetic sea ice and atmosphere with real predictability.

Geography is idealised (continents south of about 70N cut by the North Atlantic, the
Bering Sea and Hudson Bay, plus Greenland). Each day:

* winds are smooth random fields (AR(1), a few days' memory);
* the 2 m temperature anomaly T' is AR(1) (about 4 days' memory), forced by noise and by
  poleward winds (warm advection);
* the ice-edge displacement d (degrees of latitude, positive = edge retreats poleward)
  is AR(1) with about 20 days' memory, driven by the previous day's T';
* the ice extent equals the NSIDC-calibrated extent of that day (``nsidc.py``): the
  observed anomaly where the record has it, an AR(1) anomaly with the record's variance
  and memory elsewhere; the ice occupies the cells of highest ``effective latitude - d``.

So SIC anomalies persist for weeks and follow earlier temperature anomalies, and the
seasonal cycle and trend are those of the real Arctic. Every day's random draws come
from a generator keyed by (seed, stream, day), so any period is reproducible on its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter
from scipy.special import expit, logit

from floecast.grid import Ease2Grid
from floecast.io import atomic_path
from floecast.sources.cmip6 import CMIP6_VARIABLES, write_cmip6_like
from floecast.sources.era5 import write_era5_like
from floecast.sources.nsidc import fit_extent_model
from floecast.sources.osisaf import STATUS_LAND, write_osisaf_file
from floecast.sources.sicchain import SicChain

SPINUP_DAYS = 200  # memory of the slowest gridded process (d) is ~20 days
EXTENT_SPINUP_DAYS = 1500  # the extent anomaly remembers ~90 days
ICE_THRESHOLD = 0.15


@dataclass(frozen=True)
class SyntheticParams:
    """Knobs of one synthetic run; ``cmip6_like`` differs by seed and bias only."""

    seed: int = 42
    extent_bias_km2: float = 0.0
    temperature_bias_k: float = 0.0
    replay_observed_anomaly: bool = True
    wind_memory_days: float = 3.0
    temperature_memory_days: float = 4.0
    edge_memory_days: float = 20.0
    edge_per_kelvin: float = 0.12  # degrees of latitude the edge moves per K per day
    edge_noise_deg: float = 0.25
    wind_scale_ms: float = 5.0
    temperature_noise_k: float = 1.6
    advection_k_per_ms: float = 0.35
    edge_width_deg: float = 1.2
    retrieval_noise: float = 0.02
    length_scale_km: float = 700.0


def idealised_land(lon: np.ndarray, lat: np.ndarray, hemisphere: str) -> np.ndarray:
    """Boolean land mask of the idealised geography."""
    if hemisphere != "north":
        raise ValueError(
            "the synthetic source is calibrated on the NSIDC Northern Hemisphere record only; "
            "use hemispheres: [north] with the synthetic source"
        )
    coast = 69.0 + 2.5 * np.cos(np.radians(3 * lon)) + 1.5 * np.sin(np.radians(5 * lon))
    land = lat < coast
    atlantic = (lon > -62) & (lon < 12) & (lat > 40)
    bering = ((lon > 162) | (lon < -158)) & (lat > 50)
    hudson = (lon > -95) & (lon < -77) & (lat > 52) & (lat < 66)
    greenland = (lon > -58 + 0.3 * (lat - 60)) & (lon < -22 - 0.2 * (lat - 60)) & (lat > 60) & (lat < 83.5)
    return (land & ~atlantic & ~bering & ~hudson) | greenland


def effective_latitude(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Latitude shifted by warm (Atlantic, Pacific) and cold (Siberian, Canadian) sectors."""
    atlantic = -9.0 * np.exp(-(((lon - 5.0) / 35.0) ** 2))
    pacific = -3.0 * np.exp(-(((np.mod(lon, 360.0) - 185.0) / 25.0) ** 2))
    hudson = 4.0 * np.exp(-(((lon + 85.0) / 15.0) ** 2)) * (lat < 66)
    return lat + atlantic + pacific + hudson


def _daily_normals(seed: int, stream: int, days: pd.DatetimeIndex, shape: tuple[int, ...]) -> np.ndarray:
    ordinals = [d.toordinal() for d in days.date]
    return np.stack([np.random.default_rng([seed, stream, o]).standard_normal(shape) for o in ordinals])


def _smooth_unit(noise: np.ndarray, sigma_cells: float) -> np.ndarray:
    """Spatially smooth white noise to unit variance (per field, 2D Gaussian kernel)."""
    smooth = gaussian_filter(noise, sigma=(0, sigma_cells, sigma_cells), mode="reflect")
    return smooth * np.sqrt(4 * np.pi) * sigma_cells


def _ar1(forcing: np.ndarray, memory_days: float) -> np.ndarray:
    """x[t] = rho x[t-1] + sqrt(1-rho^2) f[t]: unit variance for unit-variance forcing."""
    rho = np.exp(-1.0 / memory_days)
    gain = np.sqrt(1 - rho**2)
    out = np.empty_like(forcing)
    state = np.zeros(forcing.shape[1:])
    for t in range(forcing.shape[0]):
        state = rho * state + gain * forcing[t]
        out[t] = state
    return out


def temperature_climatology(lat: np.ndarray, days: pd.DatetimeIndex) -> np.ndarray:
    """Seasonal 2 m temperature (K) by latitude: -30 C winter / 0 C summer at the pole."""
    phase = np.cos(2 * np.pi * (days.day_of_year.to_numpy() - 200) / 365.25)[:, None, None]
    polar = np.clip((lat - 45.0) / 45.0, 0, 1)[None]
    annual = 283.0 - 25.0 * polar
    amplitude = 8.0 + 7.0 * polar
    return annual + amplitude * phase


@dataclass
class SyntheticDays:
    """Fields of a synthetic run over a period; SIC is a fraction, NaN over land."""

    dates: pd.DatetimeIndex
    sic: np.ndarray
    t2m: np.ndarray
    u10: np.ndarray
    v10: np.ndarray
    land: np.ndarray
    extent_target_km2: np.ndarray


def _extent_target(params: SyntheticParams, dates: pd.DatetimeIndex) -> np.ndarray:
    model = fit_extent_model()
    anomaly = np.full(len(dates), np.nan)
    if params.replay_observed_anomaly:
        anomaly = model.observed_anomaly(dates)
    if np.isnan(anomaly).any():
        spin = pd.date_range(dates[0] - pd.Timedelta(days=EXTENT_SPINUP_DAYS), dates[-1], freq="D")
        shocks = _daily_normals(params.seed, 9, spin, ())
        drawn = _ar1(shocks, -1.0 / np.log(model.anomaly_lag1))[EXTENT_SPINUP_DAYS:] * model.anomaly_std
        anomaly = np.where(np.isnan(anomaly), drawn, anomaly)
    return model.expected(dates) + anomaly + params.extent_bias_km2


def simulate(grid: Ease2Grid, start: dt.date, end: dt.date, params: SyntheticParams) -> SyntheticDays:
    """All fields for the days start..end (inclusive)."""
    dates = pd.date_range(start, end, freq="D")
    spin = pd.date_range(dates[0] - pd.Timedelta(days=SPINUP_DAYS), dates[-1], freq="D")
    lon, lat = grid.lonlat
    land = idealised_land(lon, lat, grid.hemisphere)
    sigma = params.length_scale_km * 1000.0 / grid.cell_m / 2.0
    shape = grid.shape

    # winds from a smooth stream function: u = -dpsi/dy, v = dpsi/dx (grid axes)
    psi = _ar1(_smooth_unit(_daily_normals(params.seed, 1, spin, shape), sigma), params.wind_memory_days)
    dpsi_dy, dpsi_dx = np.gradient(psi, axis=(1, 2))
    dpsi_dy = -dpsi_dy  # yc is descending
    # a unit-variance field smoothed with a Gaussian of sigma cells has E|grad|^2 = 1 / sigma^2:
    # a fixed scale, so each day's winds depend on (seed, day) only, not on the period
    wind_norm = params.wind_scale_ms * sigma
    u10, v10 = -dpsi_dy * wind_norm, dpsi_dx * wind_norm

    xx, yy = np.meshgrid(grid.xc, grid.yc)
    radius = np.hypot(xx, yy) + grid.cell_m
    poleward = -(u10 * xx + v10 * yy) / radius  # wind towards the pole, m/s
    forcing = _smooth_unit(_daily_normals(params.seed, 2, spin, shape), sigma)
    t_anom = _ar1(forcing, params.temperature_memory_days) * params.temperature_noise_k
    t_anom += params.advection_k_per_ms * poleward

    # ice-edge displacement: follows the previous day's temperature anomaly
    rho = np.exp(-1.0 / params.edge_memory_days)
    edge_noise = _smooth_unit(_daily_normals(params.seed, 3, spin, shape), sigma) * params.edge_noise_deg
    d = np.zeros_like(t_anom)
    for t in range(1, len(spin)):
        d[t] = rho * d[t - 1] + params.edge_per_kelvin * t_anom[t - 1] + edge_noise[t]

    keep = slice(SPINUP_DAYS, None)
    u10, v10, t_anom, d = u10[keep], v10[keep], t_anom[keep], d[keep]
    target = _extent_target(params, dates)
    n_ice = np.round(target / grid.cell_area_km2).astype(int)
    ocean = ~land
    if n_ice.max() >= ocean.sum():
        raise ValueError(f"grid too small for an extent of {target.max():.3g} km2")
    score = effective_latitude(lon, lat)[None] - d
    ocean_scores = np.sort(score[:, ocean], axis=1)[:, ::-1]
    threshold = ocean_scores[np.arange(len(dates)), n_ice - 1] - 1e-6
    sic = expit((score - threshold[:, None, None]) / params.edge_width_deg + logit(ICE_THRESHOLD))
    retrieval = _daily_normals(params.seed, 4, dates, shape) * params.retrieval_noise
    sic = np.clip(sic + retrieval * 4 * sic * (1 - sic), 0.0, 1.0)
    sic = np.where(land[None], np.nan, sic).astype(np.float32)

    years = dates.year.to_numpy()[:, None, None] - 2000
    t2m = temperature_climatology(lat, dates) + t_anom + params.temperature_bias_k + 0.05 * years
    return SyntheticDays(
        dates=dates,
        sic=sic,
        t2m=t2m.astype(np.float32),
        u10=u10.astype(np.float32),
        v10=v10.astype(np.float32),
        land=land,
        extent_target_km2=target,
    )


def cmip6_like_params(seed: int, member_index: int) -> SyntheticParams:
    """The same generator as a biased climate-model run: more ice, colder, own weather."""
    return SyntheticParams(
        seed=seed + 1000 + member_index,
        extent_bias_km2=0.8e6,
        temperature_bias_k=-1.0,
        replay_observed_anomaly=False,
    )


def write_sic_days(
    out_dir: str | Path,
    grid: Ease2Grid,
    first_day: dt.date,
    last_day: dt.date,
    params: SyntheticParams,
    chain: SicChain | None = None,
    product: str | None = None,
) -> int:
    """Write the daily SIC files of first_day..last_day into ``out_dir``, each under the name and with the
    product attributes of the chain's product for its day (default: the schema's chain), or of ``product``
    for every day; returns the count."""
    chain = chain or SicChain.default()
    if product is None:
        chain.check_covers(first_day, last_day)
    days = simulate(grid, first_day, last_day, params)
    status = np.where(days.land, STATUS_LAND, 0).astype(np.int16)
    with atomic_path(out_dir) as tmp:  # the period's directory appears complete or not at all
        tmp.mkdir()
        for i, day in enumerate(days.dates.date):
            served = chain.product(product) if product else chain.nominal(day)
            write_osisaf_file(tmp / served.filename(grid.hemisphere, day), grid, day, days.sic[i], status, served)
    return len(days.dates)


def write_sic_year(out_dir: str | Path, grid: Ease2Grid, year: int, last_day: dt.date, params: SyntheticParams) -> int:
    """``write_sic_days`` for one year, up to ``last_day``."""
    return write_sic_days(out_dir, grid, dt.date(year, 1, 1), min(dt.date(year, 12, 31), last_day), params)


def write_atmos_days(
    path: str | Path, grid: Ease2Grid, variable: str, first_day: dt.date, last_day: dt.date, params: SyntheticParams
) -> None:
    """Write one ERA5-like variable for first_day..last_day."""
    days = simulate(grid, first_day, last_day, params)
    write_era5_like(path, grid, variable, days.dates, getattr(days, variable))


def write_atmos_year(
    path: str | Path, grid: Ease2Grid, variable: str, year: int, last_day: dt.date, params: SyntheticParams
) -> None:
    """``write_atmos_days`` for one year, up to ``last_day``."""
    write_atmos_days(path, grid, variable, dt.date(year, 1, 1), min(dt.date(year, 12, 31), last_day), params)


def write_cmip6_like_run(
    path: str,
    grid: Ease2Grid,
    variable: str,
    first_year: int,
    last_year: int,
    source_id: str,
    member: str,
    params: SyntheticParams,
) -> None:
    """Write one CMOR variable of a CMIP6-like run over whole years."""
    days = simulate(grid, dt.date(first_year, 1, 1), dt.date(last_year, 12, 31), params)
    values = getattr(days, CMIP6_VARIABLES[variable][2])
    if variable == "siconca":
        values = values * 100.0
    write_cmip6_like(path, grid, variable, days.dates, values, source_id, member)
