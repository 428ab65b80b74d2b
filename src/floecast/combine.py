"""The ensemble forecast file: the members combined into CF-1.8 + ACDD-1.3 NetCDF (design section 6).

Reads the member files (``floecast.members``), the statistics and the store's span; no torch.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from floecast import __version__
from floecast.calibrate import inflate, read_factors
from floecast.grid import Ease2Grid
from floecast.io import write_netcdf
from floecast.members import open_members
from floecast.metrics import ICE_THRESHOLD
from floecast.store import default_statistics, store_parts, store_span

# Descriptive ACDD-1.3 attributes an operator may set (``metadata`` of ``combine_forecast``). Contact addresses, URLs
# and the licence have no default: floecast cannot know them, and a made-up address is worse than none.
DEFAULT_METADATA: dict[str, str] = {
    "institution": "floecast",
    "creator_name": "floecast",
    "project": "floecast operational sea-ice forecasts",
    "naming_authority": "floecast",
}
METADATA_KEYS = frozenset(
    {
        *DEFAULT_METADATA,
        *(f"{role}_{field}" for role in ("creator", "publisher") for field in ("name", "type", "institution", "url", "email")),
        "contributor_name",
        "contributor_role",
        "program",
        "license",
        "acknowledgement",
        "references",
        "metadata_link",
    }
)
KEYWORDS = (
    "EARTH SCIENCE > CRYOSPHERE > SEA ICE > SEA ICE CONCENTRATION, EARTH SCIENCE > OCEANS > SEA ICE > SEA ICE CONCENTRATION"
)
STANDARD_NAME_VOCABULARY = "CF Standard Name Table v93"  # has probability_of_sea_ice_area_fraction_above_threshold
GRID_MAPPING = "Lambert_Azimuthal_Grid"


def _iso(day: pd.Timestamp) -> str:
    return day.strftime("%Y-%m-%dT%H:%M:%SZ")


def _active_by_lead(statistics: xr.Dataset, valid: pd.DatetimeIndex) -> np.ndarray:
    """The ``active`` mask of each lead's valid month, (leadtime, yc, xc): the cells the scorecard scores for that lead."""
    return statistics["active"].sel(month=xr.DataArray(valid.month, dims="leadtime")).values.astype(np.int8)


def _global_attrs(
    grid: Ease2Grid,
    init: pd.Timestamp,
    valid: pd.DatetimeIndex,
    lonlat: tuple[np.ndarray, np.ndarray],
    provenance: dict[str, object],
    metadata: dict[str, str],
) -> dict[str, object]:
    """CF-1.8 and ACDD-1.3 global attributes: discovery (what, where, when, who) then provenance (from what)."""
    lon, lat = lonlat
    half = abs(float(grid.xc[1] - grid.xc[0])) / 2
    x0, x1, y0, y1 = grid.xc[0] - half, grid.xc[-1] + half, grid.yc[-1] - half, grid.yc[0] + half
    created = dt.datetime.now(dt.UTC)
    n_members = provenance["members_used"]
    hemisphere = f"{grid.hemisphere}ern hemisphere"
    return {
        "Conventions": "CF-1.8, ACDD-1.3",
        "title": f"floecast daily sea-ice concentration forecast, {hemisphere}",
        "summary": (
            f"Daily sea-ice concentration forecast for the {hemisphere} from {init:%Y-%m-%d}, valid "
            f"{valid[0]:%Y-%m-%d} to {valid[-1]:%Y-%m-%d} ({len(valid)} daily leads): the mean and standard deviation of "
            f"an ensemble of {n_members} U-Net members and the sea-ice probability (share of members with more than 15 % "
            f"ice), on the {grid.cell_m / 1000:g} km EASE-Grid 2.0 (EPSG:{grid.epsg}). The last input day is "
            f"{provenance['source_data_last_date']}."
        ),
        "keywords": KEYWORDS,
        "keywords_vocabulary": "GCMD Science Keywords",
        "standard_name_vocabulary": STANDARD_NAME_VOCABULARY,
        "id": f"floecast_{grid.hemisphere}_{provenance['model_run']}_{init:%Y-%m-%d}",
        **metadata,
        "source": f"floecast {__version__} U-Net ensemble, run {provenance['model_run']}",
        "processing_level": "L4: model forecast from gridded observations",
        "product_version": __version__,
        "comment": (
            "Lead k is valid on the init date (time) + k days; the inputs are the days before the init date. Land is NaN "
            "in sic and sip; active marks the ocean cells where ice was seen in the valid month in a training year."
        ),
        "date_created": _iso(created),
        "date_modified": _iso(created),
        "date_metadata_modified": _iso(created),
        "history": f"{_iso(created)} floecast {__version__} combine_forecast: {n_members} members of run "
        f"{provenance['model_run']}",
        "geospatial_lat_min": float(lat.min()),
        "geospatial_lat_max": float(lat.max()),
        "geospatial_lon_min": float(lon.min()),
        "geospatial_lon_max": float(lon.max()),
        "geospatial_lat_units": "degrees_north",
        "geospatial_lon_units": "degrees_east",
        "geospatial_bounds": f"POLYGON(({x0:.0f} {y0:.0f}, {x1:.0f} {y0:.0f}, {x1:.0f} {y1:.0f}, {x0:.0f} {y1:.0f}, "
        f"{x0:.0f} {y0:.0f}))",
        "geospatial_bounds_crs": f"EPSG:{grid.epsg}",
        "time_coverage_start": _iso(valid[0]),
        "time_coverage_end": _iso(valid[-1]),
        "time_coverage_duration": f"P{(valid[-1] - valid[0]).days}D",
        "time_coverage_resolution": "P1D",
        "hemisphere": grid.hemisphere,
        **provenance,
    }


def combine_forecast(
    member_paths: Sequence[str | Path],
    store_path: str | Path | Sequence[str | Path],
    grid: Ease2Grid,
    run: str,
    out_path: str | Path,
    statistics: str | Path | None = None,
    *,
    members_expected: int | None = None,
    config_hash: str | None = None,
    metadata: Mapping[str, str] | None = None,
    quorum: int = 1,
    spread: str | Path | None = None,
    inputs: Callable[[dt.date], Mapping[str, str]] | None = None,
) -> xr.Dataset:
    """Ensemble mean and std (``quantity``), sea-ice probability, masks and provenance, as CF-1.8 + ACDD-1.3.

    ``members_expected`` (the members the run was meant to have) and ``config_hash`` (sha256 of the training spec)
    are recorded for checks downstream; ``metadata`` sets the descriptive ACDD attributes of ``METADATA_KEYS``.
    Members recorded as failed are left out while ``quorum`` remain (the file names them); a ``spread`` calibration
    (``floecast calibrate``) widens the members about their mean before the std and the SIP are taken.
    ``inputs(init date)`` gives attributes on the inputs: when the file was issued (``date_issued``) and each
    source's newest day with the product that served it (:func:`floecast.inputs.input_provenance`).
    """
    unknown = sorted(set(metadata or {}) - METADATA_KEYS)
    if unknown:
        raise ValueError(f"metadata: unknown keys {unknown} (allowed: {sorted(METADATA_KEYS)})")
    members = open_members(member_paths, quorum)
    failed = json.loads(members.attrs["failed_members"])
    if members.sizes["init_time"] != 1:
        raise ValueError(f"{member_paths[0]}: expected one init date, found {members.sizes['init_time']}")
    numbers = [int(m) for m in members["member"].values]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"member files {list(map(str, member_paths))} repeat a member number: {numbers}")
    if members_expected is not None and not 1 <= len(numbers) + len(failed) <= members_expected:
        raise ValueError(f"{len(numbers) + len(failed)} member files for {members_expected} expected members")
    sic = members.isel(init_time=0)
    init = pd.Timestamp(members["init_time"].values[0])
    leads = sic["leadtime"].values
    valid = init + pd.to_timedelta(leads, "D")
    parts = store_parts(store_path)
    with xr.open_dataset(statistics or default_statistics(parts), engine="netcdf4") as stats:
        land = stats["land"].values.astype(bool)
        active = _active_by_lead(stats, valid)
    store_first, store_last = (day.date() for day in store_span(parts))
    data_last = min(store_last, (init - pd.Timedelta(days=1)).date())
    mean = sic.mean("member").values
    factors = read_factors(spread, len(leads))
    calibrated = inflate(sic.values, factors[:, None, None])
    std = calibrated.std(axis=0, ddof=1) if sic.sizes["member"] > 1 else np.zeros_like(mean)
    sip = (calibrated > ICE_THRESHOLD).mean(axis=0)
    sip = np.where(land, np.nan, sip)
    lon, lat = (a.astype(np.float32) for a in grid.lonlat)
    provenance: dict[str, object] = {
        "model_run": run,
        "members": json.dumps(numbers),
        "members_used": np.int32(len(numbers)),
        "members_failed": json.dumps(failed),
        "quorum": np.int32(quorum),
        "spread_calibration": json.dumps([round(float(f), 4) for f in factors]) if spread else "none",
        **({"members_expected": np.int32(members_expected)} if members_expected is not None else {}),
        "source_data_first_date": str(store_first),
        "source_data_last_date": str(data_last),
        "store_sha256": members.attrs.get("store_sha256", ""),
        **({"config_sha256": config_hash} if config_hash is not None else {}),
        "floecast_version": __version__,
        **(dict(inputs(init.date())) if inputs is not None else {}),
    }
    fraction = {"units": "1", "valid_min": np.float32(0), "valid_max": np.float32(1), "coverage_content_type": "modelResult"}
    field = {"grid_mapping": GRID_MAPPING, "ancillary_variables": "land active"}
    flags = {"flag_values": np.array([0, 1], np.int8), "coverage_content_type": "referenceInformation"}
    ds = xr.Dataset(
        {
            "sic": (
                ("time", "leadtime", "quantity", "yc", "xc"),
                np.stack([mean, std], axis=1)[None].astype(np.float32),
                {
                    "standard_name": "sea_ice_area_fraction",
                    "long_name": "sea-ice concentration forecast, ensemble mean and standard deviation",
                    **fraction,
                    "cell_methods": "area: mean where sea",
                    **field,
                },
            ),
            "sip": (
                ("time", "leadtime", "yc", "xc"),
                sip[None].astype(np.float32),
                {
                    "standard_name": "probability_of_sea_ice_area_fraction_above_threshold",
                    "long_name": "sea-ice probability: share of members with SIC above 15 %",
                    **fraction,
                    **field,
                },
            ),
            "land": (
                ("yc", "xc"),
                land.astype(np.int8),
                {
                    "standard_name": "land_binary_mask",
                    "long_name": "land mask",
                    "units": "1",
                    **flags,
                    "flag_meanings": "ocean land",
                    "grid_mapping": GRID_MAPPING,
                },
            ),
            "active": (
                ("time", "leadtime", "yc", "xc"),
                active[None],
                {
                    "long_name": "active cells: ocean cells where SIC above 15 % was seen in the valid month in a training year",
                    "units": "1",
                    **flags,
                    "flag_meanings": "inactive active",
                    "grid_mapping": GRID_MAPPING,
                },
            ),
            GRID_MAPPING: ((), np.int32(0), {"long_name": f"EASE-Grid 2.0 (EPSG:{grid.epsg})", **grid.grid_mapping_attrs()}),
        },
        coords={
            "time": (
                "time",
                [init.to_datetime64()],
                {"standard_name": "forecast_reference_time", "long_name": "initialisation date"},  # no axis: T is valid_time
            ),
            "leadtime": ("leadtime", leads.astype(np.int32), {"long_name": "lead time", "units": "days"}),
            "forecast_period": (
                "leadtime",
                leads.astype(np.int32),
                {"standard_name": "forecast_period", "long_name": "lead time", "units": "days"},
            ),
            "valid_time": ("leadtime", valid.values, {"standard_name": "time", "long_name": "valid date of each lead"}),
            "quantity": ("quantity", np.array(["mean", "std"]), {"long_name": "ensemble statistic"}),
            "sic_threshold": (
                (),
                np.float32(ICE_THRESHOLD),
                {"standard_name": "sea_ice_area_fraction", "long_name": "SIC threshold of sip", "units": "1"},
            ),
            **grid.coords(),
            "lat": (("yc", "xc"), lat, {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north"}),
            "lon": (("yc", "xc"), lon, {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east"}),
        },
        attrs=_global_attrs(grid, init, valid, (lon, lat), provenance, {**DEFAULT_METADATA, **(metadata or {})}),
    )
    ds["xc"].attrs["long_name"] = "x coordinate of projection"
    ds["yc"].attrs["long_name"] = "y coordinate of projection"
    by_lead = "forecast_period valid_time lat lon"
    coordinates = {"sic": f"{by_lead} quantity", "sip": f"{by_lead} sic_threshold", "active": by_lead, "land": "lat lon"}
    for name, coords in coordinates.items():
        ds[name].encoding["coordinates"] = coords  # explicit: xarray would give every variable the scalar sic_threshold
    ds[GRID_MAPPING].encoding["coordinates"] = None
    for name in ("sic", "sip"):
        ds[name].encoding.update(zlib=True, complevel=4, _FillValue=np.float32(np.nan))
    for name in ("land", "active"):
        ds[name].encoding.update(zlib=True, complevel=4)
    for name in ("yc", "xc", "lat", "lon", "leadtime", "forecast_period", "sic_threshold"):
        ds[name].encoding["_FillValue"] = None  # coordinates have no missing values
    for name in ("time", "valid_time"):  # int32: CF-1.8 has no 64-bit integers
        ds[name].encoding.update(units="days since 1970-01-01", calendar="standard", dtype="int32")
    ds["quantity"].encoding.update(dtype="S1", char_dim_name="quantity_strlen")  # CF labels are char arrays
    write_netcdf(ds, out_path)
    return ds
