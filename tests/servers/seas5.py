"""SEAS5 daily sea-ice cover as the CDS delivers it for ``seasonal-original-single-levels`` (GRIB2), for the
local CDS server (tests/servers/cds.py).

Written here with ecCodes, independently of floecast's reader and of its synthetic writer. The layout, as
floecast.sources.seas5 documents it: one GRIB2 message per (member, day) of the sea-ice area fraction (discipline
10, category 2, number 0), an ensemble member's statistics over a time range (product definition template 11,
``typeOfStatisticalProcessing`` 0: average) over the step range ``leadtime_hour - 24`` to ``leadtime_hour``,
``dataDate`` the start (the request's day, 00 UTC), ``number`` the member (51 for forecasts, 25 for hindcasts up to
2016), a regular latitude/longitude grid of points at half degrees (SEAS5.1's 1-degree grid, or the request's
``grid``) cut to the request's ``area``, land missing through the bitmap. Verified: the request keys and the
daily-mean definition (C3S documentation); not verified against a real file: the paramId ecCodes decodes and the
order of the messages.

Known values: a member's field over the day that its step range covers (the valid day) is
``value(valid day, member, lat, lon)``, so a lead read against the wrong day is caught.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyproj  # noqa: F401  before ecCodes (see floecast.sources.ecmwf_opendata)

DATASET = "seasonal-original-single-levels"
REQUIRED = ("originating_centre", "system", "variable", "year", "month", "day", "leadtime_hour", "data_format")


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def request_problem(request: dict[str, Any]) -> str | None:
    """Why the CDS would refuse a SEAS5 request (None: accepted)."""
    missing = [k for k in REQUIRED if k not in request]
    if missing:
        return f"missing required request keys {missing}"
    if request["originating_centre"] != "ecmwf" or str(request["system"]) not in ("5", "51"):
        return f"no such forecasting system: {request['originating_centre']} {request['system']}"
    if _as_list(request["variable"]) != ["sea_ice_cover"]:
        return f"this test server has sea_ice_cover only, got {request['variable']}"
    if request["data_format"] != "grib":
        return "this test server writes grib only"
    if any(int(h) % 24 for h in _as_list(request["leadtime_hour"])):
        return "sea_ice_cover is a 24-hourly field: leadtime_hour must be a multiple of 24"
    return None


def land(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The fixture's land (missing values): 0..40 E south of 75 N."""
    lat, lon = np.broadcast_arrays(lat, lon)
    return (np.mod(lon, 360.0) < 40.0) & (np.abs(lat) < 75.0)


def value(valid: dt.date, member: int, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The daily mean on the valid day: ice poleward of an edge that moves north by 0.1 degree a day of the year."""
    edge = 70.0 + 0.1 * (valid.timetuple().tm_yday % 100)
    lat, lon = np.broadcast_arrays(np.asarray(lat, float), np.asarray(lon, float))
    sic = np.clip((np.abs(lat) - edge) / 5.0 + 0.5, 0.0, 1.0) * (0.9 + 0.002 * member)
    return np.where(land(lat, lon), np.nan, sic)


def axes(request: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    step = float(request["grid"][0]) if "grid" in request else 1.0
    north, _, south, _ = (float(v) for v in request.get("area", [90, -180, -90, 180]))
    lat = np.arange(north - step / 2, south - 1e-9, -step)
    lon = np.arange(-180.0 + step / 2, 180.0, step)
    return lat, lon


def make_seas5_grib(request: dict[str, Any], *, drop: tuple[int, int] | None = None, step_type: str = "avg") -> bytes:
    """The GRIB the CDS would deliver for ``request``; ``drop`` leaves out one (member, leadtime_hour) message and
    ``step_type="instant"`` writes instantaneous fields (both bad deliveries)."""
    import eccodes

    from floecast.sources.grib import regular_grid_values

    start = dt.date(int(_as_list(request["year"])[0]), int(_as_list(request["month"])[0]), int(_as_list(request["day"])[0]))
    members = 25 if start.year <= 2016 else 51
    lat, lon = axes(request)
    out = []
    for number in range(members):
        for hour in sorted(int(h) for h in _as_list(request["leadtime_hour"])):
            if drop == (number, hour):
                continue
            valid = start + dt.timedelta(days=hour // 24 - 1)  # the day of the mean over hour-24 .. hour
            field = value(valid, number, lat[:, None], lon[None, :])
            h = eccodes.codes_grib_new_from_samples("GRIB2")
            try:
                eccodes.codes_set(h, "centre", "ecmf")
                eccodes.codes_set(h, "productDefinitionTemplateNumber", 11 if step_type == "avg" else 1)
                eccodes.codes_set_key_vals(h, {"discipline": 10, "parameterCategory": 2, "parameterNumber": 0})
                eccodes.codes_set(h, "dataDate", int(start.strftime("%Y%m%d")))
                eccodes.codes_set(h, "dataTime", 0)
                eccodes.codes_set(h, "stepUnits", 1)
                if step_type == "avg":
                    eccodes.codes_set(h, "typeOfStatisticalProcessing", 0)
                    eccodes.codes_set(h, "stepRange", f"{hour - 24}-{hour}")
                else:
                    eccodes.codes_set(h, "step", hour)
                eccodes.codes_set(h, "perturbationNumber", number)
                eccodes.codes_set(h, "numberOfForecastsInEnsemble", members)
                eccodes.codes_set_key_vals(h, regular_grid_values(lat, lon))
                eccodes.codes_set(h, "bitsPerValue", 16)
                eccodes.codes_set(h, "bitmapPresent", 1)
                eccodes.codes_set(h, "missingValue", 9999.0)
                eccodes.codes_set_values(h, np.where(np.isnan(field), 9999.0, field).ravel())
                out.append(eccodes.codes_get_message(h))
            finally:
                eccodes.codes_release(h)
    return b"".join(out)
