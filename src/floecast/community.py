"""Exports for the sea-ice prediction community: per-member forecasts, SIPN South submissions, Sea Ice Outlook tables.

Every export takes the published forecast (for its grid, land mask, init date and spread calibration) and the
member files of the same init date. The members are those the forecast used, widened about their mean by the
forecast's spread calibration (``spread_calibration``), so that per-member numbers agree with the published std
and SIP; members recorded as failed are left out (the files list the ones used).

* :func:`members_file`: the forecast file with ``sic_member`` (time, member, leadtime, yc, xc) added.
* :func:`sipn_south`: SIPN South's three files per member (protocol as in the 2023-24 call): ``<group>_<NNN>_
  <first>-<last>_total-area.txt`` (one row of daily sea-ice area, 10^6 km^2, comma-separated),
  ``..._regional-area.txt`` (36 rows, one per 10-degree longitude bin from 0-10 E to 350-360 E) and
  ``..._concentration.nc`` (CMIP6 style: ``siconc`` in %, ``latitude``/``longitude``, ``sftof`` the ocean share of each
  cell in %, ``areacello`` the cell area in m^2). NNN counts the members from 001.
* :func:`sea_ice_outlook`: the Sea Ice Outlook's table, the monthly-mean pan-Arctic extent of each member for each
  month the leads reach (the extent of the monthly-mean SIC, as NSIDC's monthly index and the SIO define it; with
  the days of the month covered), and the SIP map of each month (share of members whose monthly-mean SIC is above
  15 %) with latitude, longitude, the cell area, and land as the fill value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from floecast import __version__, metrics
from floecast.calibrate import inflate
from floecast.io import atomic_path, write_netcdf
from floecast.members import open_members

SIPN_SOUTH_BINS = metrics.SOUTH_SECTORS  # row 1: 0-10 E ... row 36: 350-360 E
MEMBER_VARIABLE = "sic_member"  # the members' SIC in the per-member file
SIO_COLUMNS = ["member", "month", "days", "complete", "extent_1e6km2", "daily_mean_extent_1e6km2", "floecast_version"]


def forecast_members(forecast: xr.Dataset, member_paths: Sequence[str | Path]) -> xr.DataArray:
    """The members the forecast used, as (member, leadtime, yc, xc), widened by the forecast's spread calibration."""
    used = json.loads(str(forecast.attrs["members"]))
    stacked = open_members(member_paths).isel(init_time=0)
    if sorted(int(m) for m in stacked["member"].values) != sorted(used):
        raise ValueError(f"member files {[Path(p).name for p in member_paths]} hold members "
                         f"{stacked['member'].values.tolist()}, the forecast used {used}")  # fmt: skip
    init = pd.Timestamp(forecast["time"].values[0])
    files_init = pd.Timestamp(open_members(member_paths[:1])["init_time"].values[0])
    if files_init != init:
        raise ValueError(f"{member_paths[0]}: init date {files_init.date()}, the forecast's is {init.date()}")
    calibration = str(forecast.attrs.get("spread_calibration", "none"))
    factors = np.asarray(json.loads(calibration), np.float32) if calibration != "none" else np.ones(stacked.sizes["leadtime"])
    values = inflate(stacked.values, factors[:, None, None])
    land = forecast["land"].values.astype(bool)
    return stacked.copy(data=np.where(land, np.nan, values).astype(np.float32))


def _cell_area_km2(forecast: xr.Dataset) -> float:
    return (
        float(abs(forecast["xc"].values[1] - forecast["xc"].values[0]) * abs(forecast["yc"].values[1] - forecast["yc"].values[0]))
        / 1e6
    )


def members_file(forecast_path: str | Path, member_paths: Sequence[str | Path], out_path: str | Path) -> xr.Dataset:
    """The published forecast with its members' SIC (``sic_member``), a CF-1.8 file of the same layout."""
    with xr.open_dataset(forecast_path, engine="netcdf4") as forecast:
        forecast = forecast.load()
    members = forecast_members(forecast, member_paths)
    grid_mapping = forecast["sic"].attrs["grid_mapping"]
    out = forecast.assign_coords(
        member=(
            "member",
            members["member"].values.astype(np.int32),
            {"standard_name": "realization", "long_name": "ensemble member", "units": "1"},
        )
    )
    out[MEMBER_VARIABLE] = (
        ("time", "member", "leadtime", "yc", "xc"),
        members.values[None],
        {
            "standard_name": "sea_ice_area_fraction",
            "long_name": "sea-ice concentration forecast of each member (spread-calibrated as sic and sip)",
            "units": "1",
            "valid_min": np.float32(0),
            "valid_max": np.float32(1),
            "grid_mapping": grid_mapping,
            "coverage_content_type": "modelResult",
        },
    )
    out[MEMBER_VARIABLE].encoding.update(
        zlib=True, complevel=4, _FillValue=np.float32(np.nan), coordinates="forecast_period valid_time lat lon"
    )
    for variable in out.variables.values():  # as the forecast file: only the fields have a fill value
        if "_FillValue" not in variable.encoding:
            variable.encoding["_FillValue"] = None
    out.attrs["history"] = f"{out.attrs.get('history', '')}; floecast {__version__} export: per-member fields added".lstrip("; ")
    write_netcdf(out, out_path)
    return out


# ---------------------------------------------------------------------------------------
# SIPN South


def sipn_south_names(group: str, member: int, first: pd.Timestamp, last: pd.Timestamp) -> dict[str, str]:
    """The three file names of one member (NNN from 001 for floecast's member 0)."""
    stem = f"{group}_{member + 1:03d}_{first:%Y%m%d}-{last:%Y%m%d}"
    return {
        kind: f"{stem}_{kind}.{'nc' if kind == 'concentration' else 'txt'}"
        for kind in ("total-area", "regional-area", "concentration")
    }


def _rows(values: np.ndarray) -> str:
    return "\n".join(", ".join(f"{v:.4f}" for v in row) for row in np.atleast_2d(values)) + "\n"


def sipn_south(forecast_path: str | Path, member_paths: Sequence[str | Path], out_dir: str | Path, group: str) -> list[Path]:
    """SIPN South's files for every member of a Southern Hemisphere forecast (see the module docstring)."""
    with xr.open_dataset(forecast_path, engine="netcdf4") as forecast:
        forecast = forecast.load()
    if forecast.attrs.get("hemisphere") != "south":
        raise ValueError(
            f"{forecast_path}: SIPN South takes Southern Hemisphere forecasts (this one is {forecast.attrs.get('hemisphere')})"
        )
    members = forecast_members(forecast, member_paths)
    valid = pd.DatetimeIndex(forecast["valid_time"].values)
    area_km2 = _cell_area_km2(forecast)
    land = forecast["land"].values.astype(bool)
    bins = [metrics.sector_mask(forecast["lon"].values, sector) & ~land for sector in SIPN_SOUTH_BINS]
    written = []
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for i, member in enumerate(int(m) for m in members["member"].values):
            sic = np.nan_to_num(members.values[i])  # (leadtime, yc, xc), land 0
            names = sipn_south_names(group, member, valid[0], valid[-1])
            total = (sic * ~land).sum(axis=(-2, -1)) * area_km2 / 1e6
            (tmp / names["total-area"]).write_text(_rows(total))
            regional = np.stack([(sic * inside).sum(axis=(-2, -1)) * area_km2 / 1e6 for inside in bins])
            (tmp / names["regional-area"]).write_text(_rows(regional))
            _sipn_concentration(forecast, members.values[i], valid, area_km2, group, member).to_netcdf(
                tmp / names["concentration"], engine="netcdf4"
            )
            written += [Path(out_dir) / name for name in names.values()]
    return written


def _sipn_concentration(
    forecast: xr.Dataset, sic: np.ndarray, valid: pd.DatetimeIndex, area_km2: float, group: str, member: int
) -> xr.Dataset:
    """One member's daily SIC in CMIP6 style: siconc (%), latitude, longitude, sftof (%), areacello (m^2)."""
    land = forecast["land"].values.astype(bool)
    yx = ("yc", "xc")
    ds = xr.Dataset(
        {
            "siconc": (
                ("time", *yx),
                (sic * 100.0).astype(np.float32),
                {
                    "standard_name": "sea_ice_area_fraction",
                    "long_name": "Sea-Ice Area Percentage (Ocean Grid)",
                    "units": "%",
                    "cell_measures": "area: areacello",
                    "cell_methods": "area: mean where sea time: mean",
                    "coordinates": "latitude longitude",
                },
            ),
            "sftof": (
                yx,
                np.where(land, 0.0, 100.0).astype(np.float32),
                {"standard_name": "sea_area_fraction", "long_name": "Sea Area Percentage", "units": "%"},
            ),
            "areacello": (
                yx,
                np.full(land.shape, area_km2 * 1e6, np.float32),
                {"standard_name": "cell_area", "long_name": "Grid-Cell Area for Ocean Variables", "units": "m2"},
            ),
            "latitude": (yx, forecast["lat"].values, {"standard_name": "latitude", "units": "degrees_north"}),
            "longitude": (yx, forecast["lon"].values, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        coords={
            "time": ("time", valid.values, {"standard_name": "time", "long_name": "valid day (daily mean)"}),
            "yc": ("yc", forecast["yc"].values, dict(forecast["yc"].attrs)),
            "xc": ("xc", forecast["xc"].values, dict(forecast["xc"].attrs)),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": f"SIPN South submission of {group}, member {member + 1:03d}",
            "source": f"floecast {__version__}, run {forecast.attrs.get('model_run', '')}",
            "forecast_reference_time": str(pd.Timestamp(forecast["time"].values[0]).date()),
            "realization": np.int32(member + 1),
            "grid": "EASE-Grid 2.0 South (EPSG:6932), equal-area cells",
        },
    )
    ds["siconc"].encoding.update(zlib=True, complevel=4, _FillValue=np.float32(1e20))
    ds["time"].encoding.update(units="days since 1850-01-01", calendar="standard")
    return ds


# ---------------------------------------------------------------------------------------
# Sea Ice Outlook


def sea_ice_outlook(
    forecast_path: str | Path, member_paths: Sequence[str | Path], out_csv: str | Path, out_sip: str | Path
) -> pd.DataFrame:
    """The SIO table (monthly-mean extent per member and month) and SIP maps (see the module docstring)."""
    with xr.open_dataset(forecast_path, engine="netcdf4") as forecast:
        forecast = forecast.load()
    if forecast.attrs.get("hemisphere") != "north":
        raise ValueError(f"{forecast_path}: the Sea Ice Outlook's pan-Arctic extent needs a Northern Hemisphere forecast")
    members = forecast_members(forecast, member_paths)
    valid = pd.DatetimeIndex(forecast["valid_time"].values)
    area_km2 = _cell_area_km2(forecast)
    land = forecast["land"].values.astype(bool)
    months = valid.to_period("M")
    rows, sip, month_index = [], [], []
    for month in months.unique():
        pick = np.asarray(months == month)
        monthly = members.values[:, pick].mean(axis=1)  # (member, yc, xc): monthly-mean SIC
        daily = metrics.sea_ice_extent(members.values[:, pick], area_km2).mean(axis=1)
        for i, member in enumerate(int(m) for m in members["member"].values):
            rows.append(
                {
                    "member": member,
                    "month": str(month),
                    "days": int(pick.sum()),
                    "complete": bool(pick.sum() == month.days_in_month),
                    "extent_1e6km2": float(metrics.sea_ice_extent(monthly[i], area_km2)) / 1e6,
                    "daily_mean_extent_1e6km2": float(daily[i]) / 1e6,
                }
            )
        sip.append(np.where(land, np.nan, (np.nan_to_num(monthly) > metrics.ICE_THRESHOLD).mean(axis=0)))
        month_index.append(month.to_timestamp())
    table = pd.DataFrame(rows, columns=SIO_COLUMNS).assign(floecast_version=__version__)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    days = table.drop_duplicates("month")["days"].to_numpy(np.int32)
    maps = xr.Dataset(
        {
            "sip": (
                ("month", "yc", "xc"),
                np.stack(sip).astype(np.float32),
                {
                    "standard_name": "probability_of_sea_ice_area_fraction_above_threshold",
                    "long_name": "sea-ice probability: share of members whose monthly-mean SIC is above 15 %",
                    "units": "1",
                    "coordinates": "latitude longitude",
                    "cell_measures": "area: cell_area",
                },
            ),
            "days": (("month",), days, {"long_name": "days of the month the forecast covers"}),
            "cell_area": (
                ("yc", "xc"),
                np.full(land.shape, area_km2 * 1e6, np.float32),
                {"standard_name": "cell_area", "units": "m2"},
            ),
            "latitude": (("yc", "xc"), forecast["lat"].values, {"standard_name": "latitude", "units": "degrees_north"}),
            "longitude": (("yc", "xc"), forecast["lon"].values, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        coords={
            "month": ("month", pd.DatetimeIndex(month_index).values, {"long_name": "first day of the month"}),
            "yc": ("yc", forecast["yc"].values, dict(forecast["yc"].attrs)),
            "xc": ("xc", forecast["xc"].values, dict(forecast["xc"].attrs)),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": "Sea Ice Outlook: sea-ice probability of the monthly mean",
            "source": f"floecast {__version__}, run {forecast.attrs.get('model_run', '')}",
            "forecast_reference_time": str(pd.Timestamp(forecast["time"].values[0]).date()),
            "members": json.dumps([int(m) for m in members["member"].values]),
            "comment": "land is the fill value (NaN); EASE-Grid 2.0 North (EPSG:6931), equal-area cells",
        },
    )
    maps["sip"].encoding.update(zlib=True, complevel=4, _FillValue=np.float32(np.nan))
    write_netcdf(maps, out_sip)
    return table
