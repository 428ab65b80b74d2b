"""Member predictions and the combined CF-1.8 ensemble forecast (design section 6)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from floecast import __version__
from floecast.channels import InputSpec
from floecast.dataset import SampleStore, default_statistics, store_parts
from floecast.grid import Ease2Grid
from floecast.io import write_netcdf
from floecast.metrics import ICE_THRESHOLD


def _member_dataset(
    pred: np.ndarray, init_dates: pd.DatetimeIndex, store: SampleStore, member: int, weights: str | Path
) -> xr.Dataset:
    land = store.land.astype(bool)
    pred = np.where(land, np.nan, pred)
    leads = np.arange(1, pred.shape[1] + 1)
    ds = xr.Dataset(
        {"sic": (("init_time", "leadtime", "yc", "xc"), pred.astype(np.float32), {"units": "1", "long_name": "forecast SIC"})},
        coords={
            "init_time": init_dates.values,
            "leadtime": ("leadtime", leads, {"units": "days"}),
            "yc": ("yc", store.yc, {"units": "m", "standard_name": "projection_y_coordinate", "axis": "Y"}),
            "xc": ("xc", store.xc, {"units": "m", "standard_name": "projection_x_coordinate", "axis": "X"}),
        },
        attrs={"member": member, "weights": str(weights), "store_sha256": store.attrs.get("content_sha256", "")},
    )
    ds["sic"].encoding.update(zlib=True, complevel=1)
    return ds


def predict_member(
    weights: str | Path,
    store_path: str | Path | Sequence[str | Path],
    init_dates: Sequence[dt.date],
    out_path: str | Path,
    member: int,
    statistics: str | Path | None = None,
) -> xr.Dataset:
    """One member's SIC for every lead of every init date, written to ``out_path``."""
    from floecast.train import default_device, forecast, load_member  # torch only where a model runs

    model, spec = load_member(weights)
    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    store = SampleStore.open(store_path, inputs, statistics, device=default_device())
    dates = pd.DatetimeIndex(init_dates)
    ds = _member_dataset(forecast(model, store, dates), dates, store, member, weights)
    write_netcdf(ds, out_path)
    return ds


def open_members(paths: Sequence[str | Path]) -> xr.DataArray:
    """Stack member files along a ``member`` dimension (sorted by member number)."""
    arrays, store_hash = [], ""
    for path in paths:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            arrays.append(ds["sic"].load().expand_dims(member=[int(ds.attrs["member"])]))
            store_hash = ds.attrs.get("store_sha256", "")
    stacked = xr.concat(arrays, dim="member").sortby("member")
    stacked.attrs["store_sha256"] = store_hash
    return stacked


def combine_forecast(
    member_paths: Sequence[str | Path],
    store_path: str | Path | Sequence[str | Path],
    grid: Ease2Grid,
    run: str,
    out_path: str | Path,
    statistics: str | Path | None = None,
) -> xr.Dataset:
    """Ensemble mean and std (``quantity``), sea-ice probability, masks and provenance."""
    members = open_members(member_paths)
    if members.sizes["init_time"] != 1:
        raise ValueError(f"{member_paths[0]}: expected one init date, found {members.sizes['init_time']}")
    sic = members.isel(init_time=0)
    init = pd.Timestamp(members["init_time"].values[0])
    leads = sic["leadtime"].values
    parts = store_parts(store_path)
    with xr.open_dataset(statistics or default_statistics(parts), engine="netcdf4") as stats:
        land = stats["land"].values.astype(bool)
    with xr.open_zarr(parts[0], consolidated=True) as first, xr.open_zarr(parts[-1], consolidated=True) as last:
        store_first = pd.Timestamp(first["time"].values[0]).date()
        store_last = pd.Timestamp(last["time"].values[-1]).date()
    store_hash = members.attrs.get("store_sha256", "")
    data_last = min(store_last, (init - pd.Timedelta(days=1)).date())
    mean = sic.mean("member").values
    std = sic.std("member", ddof=1).values if sic.sizes["member"] > 1 else np.zeros_like(mean)
    sip = (sic > ICE_THRESHOLD).mean("member").values
    sip = np.where(land, np.nan, sip)
    lon, lat = grid.lonlat
    cf = {"grid_mapping": "Lambert_Azimuthal_Grid"}  # xarray writes each variable's coordinates attribute
    ds = xr.Dataset(
        {
            "sic": (
                ("time", "leadtime", "quantity", "yc", "xc"),
                np.stack([mean, std], axis=1)[None].astype(np.float32),
                {
                    "standard_name": "sea_ice_area_fraction",
                    "long_name": "sea-ice concentration forecast, ensemble mean and standard deviation",
                    "units": "1",
                    "valid_min": np.float32(0),
                    "valid_max": np.float32(1),
                    **cf,
                },
            ),
            "sip": (
                ("time", "leadtime", "yc", "xc"),
                sip[None].astype(np.float32),
                {"long_name": "sea-ice probability: share of members with SIC above 15 %", "units": "1", **cf},
            ),
            "land": (
                ("yc", "xc"),
                land.astype(np.int8),
                {"long_name": "land mask", "flag_values": np.array([0, 1], np.int8), "flag_meanings": "ocean land", **cf},
            ),
            "Lambert_Azimuthal_Grid": ((), np.int32(0), grid.grid_mapping_attrs()),
        },
        coords={
            "time": (
                "time",
                [init.to_datetime64()],
                {"standard_name": "forecast_reference_time", "long_name": "initialisation date", "axis": "T"},
            ),
            "leadtime": ("leadtime", leads.astype(np.int32), {"long_name": "lead time", "units": "days"}),
            "forecast_period": ("leadtime", leads.astype(np.int32), {"standard_name": "forecast_period", "units": "days"}),
            "valid_time": (
                "leadtime",
                (init + pd.to_timedelta(leads, "D")).values,
                {"standard_name": "time", "long_name": "valid date of each lead"},
            ),
            "quantity": ("quantity", np.array(["mean", "std"]), {"long_name": "ensemble statistic"}),
            **grid.coords(),
            "lat": (("yc", "xc"), lat.astype(np.float32), {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": (("yc", "xc"), lon.astype(np.float32), {"standard_name": "longitude", "units": "degrees_east"}),
        },
        attrs={
            "Conventions": "CF-1.8, ACDD-1.3",
            "title": f"floecast daily sea-ice concentration forecast, {grid.hemisphere}ern hemisphere",
            "institution": "floecast",
            "source": "floecast U-Net ensemble",
            "hemisphere": grid.hemisphere,
            "model_run": run,
            "members": json.dumps([int(m) for m in members["member"].values]),
            "source_data_first_date": str(store_first),
            "source_data_last_date": str(data_last),
            "store_sha256": store_hash,
            "floecast_version": __version__,
            "date_created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    for name in ("sic", "sip"):
        ds[name].encoding.update(zlib=True, complevel=4, _FillValue=np.float32(np.nan))
    for name in ("yc", "xc", "lat", "lon", "leadtime", "forecast_period"):
        ds[name].encoding["_FillValue"] = None  # coordinates have no missing values
    ds["time"].encoding.update(units="days since 1970-01-01", calendar="standard")
    ds["valid_time"].encoding.update(units="days since 1970-01-01", calendar="standard")
    write_netcdf(ds, out_path)
    return ds
