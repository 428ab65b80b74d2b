"""Daily ERA5 inputs for a period: ERA5 where the CDS has it, then the ECMWF open-data
HRES forecast for the days ERA5 does not cover yet (about the last five), so that the
operational run for yesterday has complete inputs. The HRES days carry ``expver = "hres"``
and are replaced by ERA5 when a later run of the job finds ERA5 there. A variable the
open-data catalogue lacks (no ``opendata`` parameter in the catalogue: SST) persists ERA5's
newest day over those days instead, with ``expver = "persisted"``."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from floecast.io import write_netcdf
from floecast.sources.ecmwf_opendata import fetch_opendata_day
from floecast.sources.era5 import DEFAULT_AREA_LAT, EXPVER_PERSISTED, fetch_era5_months
from floecast.variables import variable as catalogue_variable

log = logging.getLogger(__name__)


def newest_era5_day(url: str | None = None, key: str | None = None) -> dt.date | None:
    """The end of ERA5's temporal extent in the CDS catalogue (credentials as for cdsapi)."""
    from cdsapi.api import get_url_key_verify
    from ecmwf.datastores import Client

    url, key, verify = get_url_key_verify(url, key, None)
    end = (
        Client(url=url, key=key, verify=verify, maximum_tries=3, retry_after=1)
        .get_collection("reanalysis-era5-single-levels")
        .end_datetime
    )
    return end.date() if end else None


def _persisted(
    pieces: list[xr.Dataset], variable: str, newest_day: dt.date, first: dt.date, last: dt.date, target: str | Path, **kwargs
) -> xr.Dataset:
    """ERA5's newest day repeated over first..last, flagged ``expver = "persisted"``. When the period holds
    no ERA5 day (the first days of a year), the newest day is fetched from its own month."""
    name = catalogue_variable(variable).era5.short_name
    if not pieces:
        older = Path(target).with_suffix("") / "persisted_from"
        pieces = [fetch_era5_months(variable, kwargs["hemisphere"], newest_day, newest_day, older, area_lat=kwargs["area_lat"])]
    newest = pieces[-1][[name, "expver"]].isel(valid_time=[-1])
    days = pd.date_range(first, last, freq="D")
    log.warning(
        "%s: %s has no open-data counterpart; ERA5's %s persisted over %s..%s",
        target,
        variable,
        pd.Timestamp(newest["valid_time"].values[0]).date(),
        first,
        last,
    )
    out = newest.isel(valid_time=np.zeros(len(days), int)).assign_coords(valid_time=days.values)
    out["expver"] = ("valid_time", np.array([EXPVER_PERSISTED] * len(days), dtype=object), newest["expver"].attrs)
    return out


def fetch_atmos_days(
    variable: str,
    hemisphere: str,
    first_day: dt.date,
    last_day: dt.date,
    target: str | Path,
    *,
    area_lat: float = DEFAULT_AREA_LAT,
    realtime_url: str | None = None,
) -> dict[str, int]:
    """Daily means of ``variable`` for first_day..last_day (one year at most) in ``target``,
    in the ERA5 CDS layout; with ``realtime_url``, the days after ERA5's newest come from HRES."""
    era5_last = last_day
    if realtime_url:
        newest = newest_era5_day()
        era5_last = min(last_day, newest) if newest else last_day
    counts = {"era5_days": 0, "hres_days": 0, "persisted_days": 0}
    cache = Path(target).with_suffix("")  # monthly ERA5 and daily HRES files, kept for re-runs
    pieces = []
    if first_day <= era5_last:
        pieces.append(fetch_era5_months(variable, hemisphere, first_day, era5_last, cache, area_lat=area_lat))
        counts["era5_days"] = pieces[0].sizes["valid_time"]
    day = max(first_day, era5_last + dt.timedelta(days=1))
    if day <= last_day and realtime_url and not catalogue_variable(variable).opendata:
        pieces.append(_persisted(pieces, variable, era5_last, day, last_day, target, hemisphere=hemisphere, area_lat=area_lat))
        counts["persisted_days"] = pieces[-1].sizes["valid_time"]
        day = last_day + dt.timedelta(days=1)
    while day <= last_day:
        path = cache / f"hres_{day:%Y%m%d}.nc"
        fetch_opendata_day(day, [variable], hemisphere, path, source_url=realtime_url, area_lat=area_lat)
        with xr.open_dataset(path) as ds:
            pieces.append(ds[[variable, "expver"]].load())
        counts["hres_days"] += 1
        day += dt.timedelta(days=1)
    if len(pieces) > 1:
        for piece in pieces[1:]:
            for axis in ("latitude", "longitude"):
                if not np.allclose(piece[axis].values, pieces[0][axis].values):
                    raise ValueError(f"{target}: the HRES and ERA5 {axis} grids differ; cannot join {variable}")
        # expver as objects: ERA5's fixed-width strings ("0001") would cut a longer marker ("persisted")
        pieces = [
            xr.concat([p[[variable, "expver"]].assign(expver=p["expver"].astype(object)) for p in pieces], dim="valid_time")
        ]
    write_netcdf(pieces[0], target)
    log.info("%s %s %s..%s: %s", variable, hemisphere, first_day, last_day, counts)
    return counts
