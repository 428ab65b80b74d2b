"""ECMWF SEAS5 daily sea-ice cover from the Copernicus Climate Data Store, and SEAS5-like synthetic forecasts.

What is fetched (:func:`seas5_request`): dataset ``seasonal-original-single-levels``, ``originating_centre``
``ecmwf``, ``system`` (``"51"``: SEAS5.1, the only system of real-time forecasts from November 2022, with its own
hindcasts; the real-time forecasts of November 2017 to October 2022 exist as system ``"5"`` only, which
``system: auto`` picks by init date), ``variable`` ``sea_ice_cover``, the init date as ``year``/``month``/``day``
(SEAS5 starts on the 1st of each month, 00 UTC), every ``leadtime_hour`` up to the horizon, ``data_format``
``grib`` and the hemisphere's ``area``. Every ensemble member comes with every request (51 for forecasts, 25 for
hindcasts). Request keys checked against C3S's documentation and public scripts that use this dataset.

The GRIB layout this module reads (:func:`read_seas5_grib`): GRIB2 messages, one per (member, day), of the sea-ice
area fraction (discipline 10, category 2, number 0; ecCodes names it ``ci`` (paramId 31) or, with its newer
tables, ``avg_ci`` (paramId 235083)), ``number`` the member, ``dataDate``/``dataTime`` the start (00 UTC of the init
date), ``stepType`` ``avg`` over a ``stepRange`` of 24 h (C3S: "daily mean, computed from instantaneous values at
00, 06, 12 and 18 UTC"), land missing through the bitmap, a regular latitude/longitude grid (SEAS5.1: 1 degree,
points at half degrees). Not verified against a real file: which of the two paramIds ecCodes gives, and whether
the CDS writes one message per member and step (both are accepted).

Time alignment, the IceNet off-by-one (icenet issue 289) made explicit: floecast's lead k of init date D is the day
D + k (inputs are the days before D). The SEAS5 mean over the step range ``24 k``-``24 (k + 1)`` h covers 00 UTC of
D + k to 00 UTC of D + k + 1, i.e. the day D + k, so its ``leadtime_hour`` (the end of the range, what the CDS and
cfgrib's ``step`` label it by) is ``24 (k + 1)``: lead 1 is ``leadtime_hour`` 48; the range 0-24 h (the init day
itself, which floecast does not forecast) is not fetched.

Fetching reuses the ERA5 client (:func:`floecast.sources.era5.make_cds_client`: credentials from ``~/.cdsapirc``
or ``CDSAPI_URL``/``CDSAPI_KEY``, cdsapi's own retries); the delivered GRIB is checked and kept as delivered in
``data/raw/seas5/cds/<hemi>/<year>/<init>.grib``, or moved to ``rejected/`` with the reason.

The synthetic source (:func:`write_synthetic_seas5`) writes the same layout for the offline demo: a SEAS5-LIKE
forecast made from the synthetic truth, biased towards too much ice and with an error that grows with lead (a
part shared by every member, so the ensemble is overconfident as dynamical systems are), sampled onto a
latitude/longitude grid. It is labelled synthetic in the files and wherever it is scored.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyproj  # noqa: F401  before ecCodes, always (see floecast.sources.ecmwf_opendata._read_grib)
import xarray as xr

from floecast.sources.era5 import era5_area
from floecast.sources.grib import GRID_KEYS, regular_grid_values

log = logging.getLogger(__name__)

DATASET = "seasonal-original-single-levels"
VARIABLE = "sea_ice_cover"
ORIGINATING_CENTRE = "ecmwf"
SYSTEMS = ("5", "51")
SYSTEM_51_REALTIME_FROM = dt.date(2022, 11, 1)  # before it, real-time forecasts are system 5 only
HINDCAST_LAST_YEAR = 2016  # SEAS5 hindcasts: 1981-2016 (25 members)
SEA_ICE_FRACTION = (10, 2, 0)  # GRIB2 discipline, parameterCategory, parameterNumber
PARAM_IDS = {31: "ci", 235083: "avg_ci"}
HOURS_PER_DAY = 24
DEFAULT_GRID_DEG = 1.0
SYNTHETIC_LABEL = "SYNTHETIC SEAS5-like forecast made by floecast from the synthetic truth; not ECMWF data"


class Seas5Error(RuntimeError):
    """A SEAS5 request failed at the CDS."""


class InvalidSeas5(ValueError):
    """A SEAS5 GRIB file is not usable; the message names the file and the reason."""


def system_for(init: dt.date, configured: str = "auto") -> str:
    """The CDS ``system`` of a SEAS5 start: the configured one, or by date (hindcast years and from November 2022:
    51; real-time starts of 2017 to October 2022: 5)."""
    if configured != "auto":
        if configured not in SYSTEMS:
            raise ValueError(f"seas5.system: {configured!r} is not one of {SYSTEMS} or 'auto'")
        return configured
    if init.year <= HINDCAST_LAST_YEAR or init >= SYSTEM_51_REALTIME_FROM:
        return "51"
    return "5"


def start_dates(first: dt.date, last: dt.date) -> list[dt.date]:
    """SEAS5's init dates in first..last: the 1st of each month."""
    months = pd.date_range(pd.Timestamp(first).to_period("M").to_timestamp(), last, freq="MS")
    return [d.date() for d in months if d.date() >= first]


def leadtime_hours(leads: int) -> list[str]:
    """The ``leadtime_hour`` values of leads 1..leads: the end of each day's 24 h mean, 24 (k + 1)."""
    if leads < 1:
        raise ValueError(f"leads must be >= 1, got {leads}")
    return [str(HOURS_PER_DAY * (k + 1)) for k in range(1, leads + 1)]


def lead_of_step_range(start_step: int, end_step: int) -> int:
    """floecast's lead k of a daily mean over ``start_step``-``end_step`` hours: the day D + start_step / 24."""
    if end_step - start_step != HOURS_PER_DAY or start_step % HOURS_PER_DAY:
        raise ValueError(f"step range {start_step}-{end_step} h is not one day from 00 UTC")
    return start_step // HOURS_PER_DAY


def seas5_request(
    init: dt.date, leads: int, hemisphere: str, area_lat: float, system: str = "auto", grid_deg: float | None = None
) -> dict[str, Any]:
    """The CDS request for every member and every lead 1..leads of the SEAS5 start ``init`` (a 1st of the month)."""
    if init.day != 1:
        raise ValueError(f"SEAS5 starts on the 1st of each month, not on {init}")
    request: dict[str, Any] = {
        "originating_centre": ORIGINATING_CENTRE,
        "system": system_for(init, system),
        "variable": [VARIABLE],
        "year": [f"{init.year:04d}"],
        "month": [f"{init.month:02d}"],
        "day": [f"{init.day:02d}"],
        "leadtime_hour": leadtime_hours(leads),
        "data_format": "grib",
        "area": era5_area(hemisphere, area_lat),
    }
    if grid_deg is not None:
        request["grid"] = [float(grid_deg), float(grid_deg)]
    return request


# ---------------------------------------------------------------------------------------
# reading and checking
# ---------------------------------------------------------------------------------------

# the grid keys read from each message: those of the open-data reader (a regular lat/lon grid and its scanning)
_MESSAGE_KEYS = ("discipline", "parameterCategory", "parameterNumber", "paramId", "stepType", "dataDate", "dataTime")


@dataclass(frozen=True)
class _Message:
    keys: tuple[Any, ...]
    number: int
    start_step: int
    end_step: int
    grid: tuple[Any, ...]
    values: np.ndarray


def _decode(path: Path) -> list[_Message]:
    import eccodes

    messages = []
    with path.open("rb") as f:
        while (h := eccodes.codes_grib_new_from_file(f)) is not None:
            try:
                grid = tuple(eccodes.codes_get(h, k) for k in GRID_KEYS)
                values = np.asarray(eccodes.codes_get_values(h), dtype=np.float64)
                if eccodes.codes_get(h, "bitmapPresent"):
                    values[values == eccodes.codes_get(h, "missingValue")] = np.nan
                messages.append(
                    _Message(
                        keys=tuple(eccodes.codes_get(h, k) for k in _MESSAGE_KEYS),
                        number=int(eccodes.codes_get(h, "number")),
                        start_step=int(eccodes.codes_get(h, "startStep")),
                        end_step=int(eccodes.codes_get(h, "endStep")),
                        grid=grid,
                        values=values,
                    )
                )
            finally:
                eccodes.codes_release(h)
    return messages


def _axes(grid: tuple[Any, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latitudes (descending), longitudes (-180..180, ascending) and the orders that give them."""
    grid_type, ni, nj, lat0, lon0, di, dj, i_neg, j_pos, j_consecutive = grid
    if grid_type != "regular_ll":
        raise InvalidSeas5(f"gridType {grid_type!r}, expected regular_ll")
    if j_consecutive:
        raise InvalidSeas5("unsupported scanning mode (j points consecutive)")
    lat = lat0 + (1 if j_pos else -1) * dj * np.arange(nj)
    lon = (lon0 + (-1 if i_neg else 1) * di * np.arange(ni) + 180.0) % 360.0 - 180.0
    lat_order, lon_order = np.argsort(-lat, kind="stable"), np.argsort(lon, kind="stable")
    return lat[lat_order], lon[lon_order], lat_order, lon_order


def read_seas5_grib(path: str | Path, init: dt.date | None = None, leads: int | None = None) -> xr.Dataset:
    """A SEAS5 sea-ice cover GRIB as ``sic`` (member, leadtime, latitude, longitude), a fraction, NaN on land.

    Checks (an :class:`InvalidSeas5` names the file and the first problem): the sea-ice area fraction only, one
    start at 00 UTC (``init`` if given), daily means over 24 h from 00 UTC, one grid, every member with every lead
    and nothing twice (leads 1..``leads`` exactly if given), values in [0, 1], not all missing. Coordinates:
    ``init_time`` (scalar), ``leadtime`` (days), ``valid_time`` (init + lead days), ``member``.
    """
    path = Path(path)
    try:
        if not path.exists() or path.stat().st_size == 0:
            raise InvalidSeas5("missing or empty file")
        try:
            messages = _decode(path)
        except InvalidSeas5:
            raise
        except Exception as exc:  # ecCodes errors for truncated or corrupt messages
            raise InvalidSeas5(f"not readable GRIB ({type(exc).__name__}: {exc})") from None
        if not messages:
            raise InvalidSeas5("no GRIB messages")
        starts = set()
        for m in messages:
            discipline, category, number, param_id, step_type, date, time = m.keys
            if (discipline, category, number) != SEA_ICE_FRACTION:
                raise InvalidSeas5(f"a message of parameter {param_id} ({discipline}/{category}/{number}), not sea-ice cover")
            if step_type != "avg":
                raise InvalidSeas5(f"stepType {step_type!r} at step {m.end_step} h, expected daily means (avg)")
            starts.add((int(date), int(time)))
        if len(starts) != 1:
            raise InvalidSeas5(f"several starts {sorted(starts)}")
        date, time = starts.pop()
        start = dt.datetime.strptime(str(date), "%Y%m%d").date()
        if time != 0:
            raise InvalidSeas5(f"start time {time:04d}, expected 00 UTC")
        if init is not None and start != init:
            raise InvalidSeas5(f"start {start}, expected {init}")
        if len({m.grid for m in messages}) != 1:
            raise InvalidSeas5("the messages are on different grids")
        lat, lon, lat_order, lon_order = _axes(messages[0].grid)
        ny, nx = lat.size, lon.size
        try:
            cells = {(m.number, lead_of_step_range(m.start_step, m.end_step)): m for m in messages}
        except ValueError as exc:
            raise InvalidSeas5(str(exc)) from None
        if len(cells) != len(messages):
            raise InvalidSeas5("a member's day is there twice")
        members = sorted({n for n, _ in cells})
        days = sorted({k for _, k in cells})
        if len(cells) != len(members) * len(days):
            gaps = [(n, k) for n in members for k in days if (n, k) not in cells]
            raise InvalidSeas5(f"member {gaps[0][0]} lacks lead {gaps[0][1]} (every member needs every lead)")
        if days[0] < 1:
            raise InvalidSeas5(f"lead {days[0]} (step range {HOURS_PER_DAY * days[0]}-{HOURS_PER_DAY * (days[0] + 1)} h)")
        if leads is not None and days != list(range(1, leads + 1)):
            raise InvalidSeas5(f"leads {days[0]}..{days[-1]} ({len(days)}), expected 1..{leads}")
        if days != list(range(days[0], days[0] + len(days))):
            raise InvalidSeas5(f"the leads are not consecutive days: {days}")
        sic = np.empty((len(members), len(days), ny, nx), np.float32)
        for (n, k), m in cells.items():
            field = m.values.reshape(ny, nx)[np.ix_(lat_order, lon_order)]
            sic[members.index(n), days.index(k)] = field
        finite = sic[np.isfinite(sic)]
        if not finite.size:
            raise InvalidSeas5("every value is missing")
        if finite.min() < -1e-3 or finite.max() > 1 + 1e-3:
            raise InvalidSeas5(f"sea-ice cover outside [0, 1] ({finite.min():.4g} .. {finite.max():.4g})")
    except InvalidSeas5 as exc:
        raise InvalidSeas5(f"{path}: {exc}") from None
    leads_days = np.asarray(days, np.int32)
    init_time = pd.Timestamp(start)
    return xr.Dataset(
        {"sic": (("member", "leadtime", "latitude", "longitude"), np.clip(sic, 0.0, 1.0), {"units": "1"})},
        coords={
            "member": np.asarray(members, np.int32),
            "leadtime": ("leadtime", leads_days, {"units": "days"}),
            "valid_time": ("leadtime", (init_time + pd.to_timedelta(leads_days, "D")).values),
            "init_time": init_time.to_datetime64(),
            "latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon, {"units": "degrees_east"}),
        },
        attrs={"source_file": path.name, "param_id": int(messages[0].keys[3])},
    )


# ---------------------------------------------------------------------------------------
# fetching
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seas5Fetch:
    path: Path
    status: Literal["fetched", "skipped"]


def fetch_seas5(
    init: dt.date,
    leads: int,
    hemisphere: str,
    target: str | Path,
    *,
    area_lat: float,
    system: str = "auto",
    grid_deg: float | None = None,
    client: Any = None,
) -> Seas5Fetch:
    """One SEAS5 start into ``target`` (GRIB as delivered, checked); a valid existing file is kept."""
    from floecast.sources.era5 import make_cds_client
    from floecast.sources.http import reject

    target = Path(target)
    what = f"SEAS5 {DATASET} {VARIABLE} start {init} {hemisphere}"
    if target.exists():
        try:
            read_seas5_grib(target, init, leads)
        except InvalidSeas5 as exc:
            moved = reject(target, f"existing file invalid: {exc}")
            log.warning("%s: existing %s is invalid, moved to %s; fetching again", what, target, moved)
        else:
            log.info("%s: %s is there and valid, nothing fetched", what, target)
            return Seas5Fetch(target, "skipped")
    request = seas5_request(init, leads, hemisphere, area_lat, system, grid_deg)
    if client is None:
        try:
            client = make_cds_client()
        except Exception as exc:  # cdsapi raises a bare Exception for missing credentials
            raise Seas5Error(f"{what}: cannot set up the CDS client: {exc}") from None
    secret = getattr(client, "key", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    delivery = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.cds.grib"
    try:
        try:
            client.retrieve(DATASET, request, str(delivery))
        except Exception as exc:  # a failed job, HTTP errors, retries used up
            detail = f"{type(exc).__name__}: {exc}"
            if secret and len(secret) >= 4:
                detail = detail.replace(secret, "<redacted>")
            raise Seas5Error(f"{what}: CDS request failed: {detail}") from None
        try:
            read_seas5_grib(delivery, init, leads)
        except InvalidSeas5 as exc:
            reason = str(exc).split(": ", 1)[-1]
            moved = reject(delivery, reason, name=target.name)
            raise InvalidSeas5(f"{what}: invalid delivery ({reason}); moved to {moved}") from None
        delivery.replace(target)
    finally:
        for leftover in (delivery, delivery.with_name(delivery.name + ".download")):
            leftover.unlink(missing_ok=True)
    log.info("%s: wrote %s", what, target)
    return Seas5Fetch(target, "fetched")


def raw_name(init: dt.date) -> str:
    """A start's raw file name: ``<init>.grib``."""
    return f"{init.isoformat()}.grib"


# ---------------------------------------------------------------------------------------
# writing (the synthetic source)
# ---------------------------------------------------------------------------------------


def grib_messages(
    sic: np.ndarray, init: dt.date, lat: np.ndarray, lon: np.ndarray, members: Sequence[int], leads: Sequence[int]
) -> bytes:
    """GRIB2 messages of daily-mean sea-ice cover (member, lead, lat, lon) in the layout :func:`read_seas5_grib` reads;
    NaN is missing (bitmap). ``lat`` descending, ``lon`` ascending, equally spaced."""
    import eccodes

    out = []
    for i, number in enumerate(members):
        for j, lead in enumerate(leads):
            h = eccodes.codes_grib_new_from_samples("GRIB2")
            try:
                eccodes.codes_set(h, "centre", "ecmf")
                eccodes.codes_set(h, "productDefinitionTemplateNumber", 11)  # ensemble member, statistics over time
                eccodes.codes_set_key_vals(
                    h, {"discipline": 10, "parameterCategory": 2, "parameterNumber": 0, "typeOfFirstFixedSurface": 1}
                )
                eccodes.codes_set(h, "typeOfStatisticalProcessing", 0)  # average
                eccodes.codes_set(h, "dataDate", int(f"{init:%Y%m%d}"))
                eccodes.codes_set(h, "dataTime", 0)
                eccodes.codes_set(h, "stepUnits", 1)
                eccodes.codes_set(h, "stepRange", f"{HOURS_PER_DAY * lead}-{HOURS_PER_DAY * (lead + 1)}")
                eccodes.codes_set(h, "typeOfEnsembleForecast", 3 if number else 1)
                eccodes.codes_set(h, "perturbationNumber", int(number))
                eccodes.codes_set(h, "numberOfForecastsInEnsemble", len(members))
                eccodes.codes_set_key_vals(h, regular_grid_values(lat, lon))
                eccodes.codes_set(h, "packingType", "grid_simple")
                eccodes.codes_set(h, "bitsPerValue", 12)
                values = np.asarray(sic[i, j], dtype=np.float64).ravel()
                if np.isnan(values).any():
                    eccodes.codes_set(h, "bitmapPresent", 1)
                    eccodes.codes_set(h, "missingValue", 9999.0)
                    values = np.where(np.isnan(values), 9999.0, values)
                eccodes.codes_set_values(h, values)
                out.append(eccodes.codes_get_message(h))
            finally:
                eccodes.codes_release(h)
    return b"".join(out)


def latlon_axes(hemisphere: str, area_lat: float, grid_deg: float = DEFAULT_GRID_DEG) -> tuple[np.ndarray, np.ndarray]:
    """The cell centres of SEAS5.1's grid over the hemisphere's area: half-grid-step points, lat descending."""
    north, _, south, _ = era5_area(hemisphere, area_lat)
    half = grid_deg / 2.0
    lat = np.arange(north - half, south - 1e-9, -grid_deg)
    lon = np.arange(-180.0 + half, 180.0, grid_deg)
    return lat, lon


@dataclass(frozen=True)
class SyntheticSeas5Params:
    """How the synthetic SEAS5-like forecast departs from the synthetic truth (in logit units of SIC)."""

    members: int = 5
    bias: float = 0.6  # more ice than observed, as SEAS5 has in the melt season
    error_growth_days: float = 20.0  # e-folding time of the error's growth towards its saturated size
    shared_error: float = 1.6  # saturated size of the error every member shares (model error)
    member_error: float = 0.8  # saturated size of each member's own error (the ensemble spread)
    smoothing_km: float = 600.0
    seed: int = 42


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_cells: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    noise = gaussian_filter(rng.standard_normal(shape), sigma=(0, sigma_cells, sigma_cells), mode="reflect")
    return noise / noise.std()


def synthetic_seas5_fields(truth: np.ndarray, cell_km: float, init: dt.date, params: SyntheticSeas5Params) -> np.ndarray:
    """(members, leads, H, W) SEAS5-like SIC from the truth (leads, H, W) of the days D + 1 .. D + leads.

    logit(SIC) + bias + g(k) (shared error + member error), g(k) = sqrt(1 - exp(-k / growth)): no error at the
    start, saturating later; each error is a smooth random field evolving over leads (AR(1), 10 days' memory).
    """
    from scipy.special import expit, logit

    leads = truth.shape[0]
    sigma = params.smoothing_km / cell_km / 2.0
    growth = np.sqrt(1.0 - np.exp(-np.arange(1, leads + 1) / params.error_growth_days))[:, None, None]
    rho = np.exp(-1.0 / 10.0)

    def evolving(stream: int) -> np.ndarray:
        rng = np.random.default_rng([params.seed, 5000 + stream, init.toordinal()])
        shocks = _smooth_noise(rng, truth.shape, sigma)
        out = np.empty_like(shocks)
        out[0] = shocks[0]
        for k in range(1, leads):
            out[k] = rho * out[k - 1] + np.sqrt(1 - rho**2) * shocks[k]
        return out

    base = logit(np.clip(np.nan_to_num(truth), 1e-3, 1 - 1e-3)) + params.bias
    shared = params.shared_error * evolving(0)
    members = [expit(base + growth * (shared + params.member_error * evolving(1 + m))) for m in range(params.members)]
    return np.where(np.isnan(truth)[None], np.nan, np.stack(members)).astype(np.float32)


def sample_to_latlon(fields: np.ndarray, grid: Any, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Fields on the EASE2 ``grid`` (..., H, W) at the lat/lon points (nearest cell); NaN outside the grid."""
    to_grid = pyproj.Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
    lon2, lat2 = np.meshgrid(lon, lat)
    x, y = to_grid.transform(lon2, lat2)
    col = np.rint((x - grid.xc[0]) / grid.cell_m).astype(int)
    row = np.rint((grid.yc[0] - y) / grid.cell_m).astype(int)
    inside = (col >= 0) & (col < grid.size) & (row >= 0) & (row < grid.size)
    out = np.full((*fields.shape[:-2], *lat2.shape), np.nan, np.float32)
    out[..., inside] = fields[..., row[inside], col[inside]]
    return out


def write_synthetic_seas5(
    path: str | Path,
    grid: Any,
    init: dt.date,
    leads: int,
    area_lat: float,
    params: SyntheticSeas5Params,
    grid_deg: float = DEFAULT_GRID_DEG,
    truth_seed: int = 42,
) -> None:
    """A SEAS5-like GRIB of the start ``init`` from the synthetic truth (see :func:`synthetic_seas5_fields`)."""
    from floecast.io import atomic_path
    from floecast.sources import synthetic

    days = synthetic.simulate(
        grid, init + dt.timedelta(days=1), init + dt.timedelta(days=leads), synthetic.SyntheticParams(seed=truth_seed)
    )
    fields = synthetic_seas5_fields(days.sic, grid.cell_m / 1000.0, init, params)
    lat, lon = latlon_axes(grid.hemisphere, area_lat, grid_deg)
    data = grib_messages(sample_to_latlon(fields, grid, lat, lon), init, lat, lon, range(params.members), range(1, leads + 1))
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
