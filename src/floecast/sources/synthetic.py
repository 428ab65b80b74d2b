"""The embedded default source: synthetic sea ice and atmosphere with real predictability.

Geography is idealised (continents south of about 70N cut by the North Atlantic, the
Bering Sea and Hudson Bay, plus Greenland). Each day:

* winds are smooth random fields (AR(1), a few days' memory);
* the 2 m temperature anomaly T' is AR(1) (about 4 days' memory), forced by noise and by
  poleward winds (warm advection);
* the sea-ice thickness anomaly h' (m) is AR(1) with about 90 days' memory, thinned by
  warm anomalies T' and by noise;
* the ice-edge displacement d (degrees of latitude, positive = edge retreats poleward)
  is AR(1) with about 20 days' memory, driven by the previous day's T' and h' (thin ice
  retreats);
* the ice extent equals the NSIDC-calibrated extent of that day (``nsidc.py``): the
  observed anomaly where the record has it, an AR(1) anomaly with the record's variance
  and memory elsewhere; the ice occupies the cells of highest ``effective latitude - d``.

So SIC anomalies persist for weeks and follow earlier temperature anomalies and, for
months, the thickness anomaly; the seasonal cycle and trend are those of the real Arctic.
The ocean fields follow: SST is the freezing point under ice and rises with the distance
from the ice edge in open water; the upper-300 m heat content follows the SST; the
mixed layer deepens in winter and with the wind. :data:`SYNTHETIC_FIELDS` maps each
catalogue variable with a synthetic counterpart to its field; the writers put them in
the layout of their real source (ERA5 daily, ORAS5 monthly, CMIP6 by table). Every day's random draws come
from a generator keyed by (seed, stream, day), so any period is reproducible on its own.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter
from scipy.special import expit, logit

from floecast.fill import month_ends
from floecast.grid import Ease2Grid
from floecast.io import atomic_path
from floecast.sources.cmip6 import CMIP6_VARIABLES, write_cmip6_like
from floecast.sources.era5 import write_era5_like
from floecast.sources.nsidc import fit_extent_model
from floecast.sources.oras5 import months_ended, write_oras5_like
from floecast.sources.osisaf import STATUS_LAND, write_osisaf_file
from floecast.sources.sicchain import SicChain
from floecast.variables import FREEZING_POINT_K
from floecast.variables import variable as catalogue_variable

SPINUP_DAYS = 600  # memory of the slowest gridded process (h') is ~90 days: e^(-600/90) < 0.002
EXTENT_SPINUP_DAYS = 1500  # the extent anomaly remembers ~90 days
ICE_THRESHOLD = 0.15
CMIP6_COAST_SHIFT_DEG = 2.0
RHO_CP = 4.1e6  # J m-3 K-1, sea water's volumetric heat capacity


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
    thickness_memory_days: float = 90.0
    thickness_anomaly_m: float = 0.35
    thinning_per_kelvin: float = 0.6  # share of the thickness forcing that is the (unit) temperature anomaly
    edge_per_metre: float = 0.08  # degrees of latitude the edge retreats per metre of thinning per day
    coast_shift_deg: float = 0.0  # a model's own coastline: the wavy coast moved poleward


def idealised_land(lon: np.ndarray, lat: np.ndarray, hemisphere: str, coast_shift_deg: float = 0.0) -> np.ndarray:
    """Boolean land mask of the idealised geography; ``coast_shift_deg`` moves the wavy coast poleward
    (a climate model's coarser, different coastline)."""
    if hemisphere != "north":
        raise ValueError(
            "the synthetic source is calibrated on the NSIDC Northern Hemisphere record only; "
            "use hemispheres: [north] with the synthetic source"
        )
    coast = 69.0 + coast_shift_deg + 2.5 * np.cos(np.radians(3 * lon)) + 1.5 * np.sin(np.radians(5 * lon))
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
    sst: np.ndarray  # K, NaN over land
    sithick: np.ndarray  # m, the floe thickness where SIC >= 15 %, else 0; NaN over land
    ohc300: np.ndarray  # J m-2 (0 C reference), NaN over land
    mld: np.ndarray  # m, NaN over land


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
    land = idealised_land(lon, lat, grid.hemisphere, params.coast_shift_deg)
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

    # sea-ice thickness anomaly: months of memory, thinned by warm anomalies
    thin = params.thinning_per_kelvin * t_anom / params.temperature_noise_k
    h_noise = _smooth_unit(_daily_normals(params.seed, 5, spin, shape), sigma) * np.sqrt(1 - params.thinning_per_kelvin**2)
    h_anom = _ar1(h_noise - thin, params.thickness_memory_days) * params.thickness_anomaly_m

    # ice-edge displacement: follows the previous day's temperature anomaly and thickness anomaly
    rho = np.exp(-1.0 / params.edge_memory_days)
    edge_noise = _smooth_unit(_daily_normals(params.seed, 3, spin, shape), sigma) * params.edge_noise_deg
    d = np.zeros_like(t_anom)
    for t in range(1, len(spin)):
        d[t] = rho * d[t - 1] + params.edge_per_kelvin * t_anom[t - 1] - params.edge_per_metre * h_anom[t - 1] + edge_noise[t]

    keep = slice(SPINUP_DAYS, None)
    u10, v10, t_anom, d, h_anom = u10[keep], v10[keep], t_anom[keep], d[keep], h_anom[keep]
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
    ice = np.nan_to_num(sic) >= ICE_THRESHOLD
    # open-water SST rises with the distance from the ice edge (in degrees of effective latitude)
    outside = np.clip(threshold[:, None, None] - score, 0.0, 35.0)
    sst = np.where(ice, FREEZING_POINT_K, np.maximum(FREEZING_POINT_K, FREEZING_POINT_K + 0.7 * outside + 0.3 * t_anom))
    phase = np.cos(2 * np.pi * (dates.day_of_year.to_numpy() - 105) / 365.25)[:, None, None]  # thickest mid-April
    polar = np.clip((lat - 65.0) / 25.0, 0.0, 1.0)[None]
    floe = np.clip((1.0 + 2.0 * polar) * (1.0 + 0.3 * phase) + h_anom, 0.05, None)
    winter = np.maximum(0.0, np.cos(2 * np.pi * (dates.day_of_year.to_numpy() - 60) / 365.25))[:, None, None]
    mld = 20.0 + 80.0 * winter + 4.0 * np.hypot(u10, v10)

    def ocean_only(values: np.ndarray) -> np.ndarray:
        return np.where(land[None], np.nan, values).astype(np.float32)

    return SyntheticDays(
        dates=dates,
        sic=sic,
        t2m=t2m.astype(np.float32),
        u10=u10.astype(np.float32),
        v10=v10.astype(np.float32),
        land=land,
        extent_target_km2=target,
        sst=ocean_only(sst),
        sithick=ocean_only(np.where(ice, floe, 0.0)),
        ohc300=ocean_only(RHO_CP * 300.0 * (sst - 273.15)),
        mld=ocean_only(mld),
    )


# each catalogue variable with a synthetic counterpart -> its daily field in canonical units (NaN where the
# real source has no value: land); adding a variable to the catalogue with a synthetic counterpart adds it here
SYNTHETIC_FIELDS: dict[str, Callable[[SyntheticDays], np.ndarray]] = {
    "sic": lambda days: days.sic,
    "t2m": lambda days: days.t2m,
    "u10": lambda days: days.u10,
    "v10": lambda days: days.v10,
    "sst": lambda days: days.sst,
    "sithick": lambda days: days.sithick,
    "ohc300": lambda days: days.ohc300,
    "mld": lambda days: days.mld,
}


def synthetic_field(days: SyntheticDays, variable: str) -> np.ndarray:
    """The daily field of ``variable`` (canonical units); an error when it has no synthetic counterpart."""
    if variable not in SYNTHETIC_FIELDS:
        raise ValueError(
            f"the synthetic source has no {variable}: give it a counterpart in SYNTHETIC_FIELDS "
            f"(src/floecast/sources/synthetic.py), or use a real source; it has {sorted(SYNTHETIC_FIELDS)}"
        )
    return SYNTHETIC_FIELDS[variable](days)


def monthly_means(dates: pd.DatetimeIndex, values: np.ndarray, months: Sequence[int]) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Means of the daily ``values`` over each of ``months`` (of the year of ``dates``), over the days a cell
    has a value ("mean where"; NaN where it has none); (first days, means)."""
    firsts = pd.DatetimeIndex([pd.Timestamp(dates[0].year, m, 1) for m in months])
    with warnings.catch_warnings():  # a cell without a value all month (land; no ice) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        means = [np.nanmean(values[dates.month == m], axis=0) for m in months]
    return firsts, np.stack(means) if means else np.zeros((0, *values.shape[1:]), values.dtype)


def cmip6_like_params(seed: int, member_index: int) -> SyntheticParams:
    """The same generator as a biased climate-model run: more ice, colder, own weather, and its own
    coastline (2 degrees further north, as a coarse model's land differs from the observations')."""
    return SyntheticParams(
        seed=seed + 1000 + member_index,
        extent_bias_km2=0.8e6,
        temperature_bias_k=-1.0,
        replay_observed_anomaly=False,
        coast_shift_deg=CMIP6_COAST_SHIFT_DEG,
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
    write_era5_like(path, grid, variable, days.dates, synthetic_field(days, variable))


def write_ocean_year(
    path: str | Path, grid: Ease2Grid, variable: str, year: int, last_day: dt.date, params: SyntheticParams
) -> int:
    """Write one ORAS5-like variable: the monthly means of the months of ``year`` that have ended by
    ``last_day``; returns how many."""
    months = months_ended(year, last_day)
    end = month_ends(pd.DatetimeIndex([pd.Timestamp(year, months[-1], 1)]))[0].date() if months else dt.date(year, 1, 1)
    days = simulate(grid, dt.date(year, 1, 1), end, params)
    firsts, means = monthly_means(days.dates, synthetic_field(days, variable), months)
    write_oras5_like(path, grid, variable, firsts, means)
    return len(months)


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
    """Write one CMOR variable of a CMIP6-like run over whole years, in CMOR units, daily or as the monthly
    means of a monthly table; a sea-ice variable of a monthly table (``sithick``) is missing where there is no
    ice, as the CMIP6 data request defines it."""
    item = catalogue_variable(CMIP6_VARIABLES[variable][2])
    days = simulate(grid, dt.date(first_year, 1, 1), dt.date(last_year, 12, 31), params)
    values = synthetic_field(days, item.name)
    if item.name == "sithick":
        values = np.where(values > 0, values, np.nan)  # "area: time: mean where sea_ice"
    values = (values - item.cmip6.offset) / item.cmip6.scale
    dates = days.dates
    if item.cmip6.frequency == "monthly":
        pieces = [
            monthly_means(dates[dates.year == y], values[dates.year == y], range(1, 13)) for y in range(first_year, last_year + 1)
        ]
        dates = pd.DatetimeIndex(np.concatenate([p[0].values for p in pieces]))
        values = np.concatenate([p[1] for p in pieces])
    write_cmip6_like(path, grid, variable, dates, values, source_id, member)
