"""The newest input day of each source in the raw store, and what served it.

SIC: the period manifests of ``ingest_sic`` record the product and version of every day
(``days``). ERA5: each day's ``expver`` (ERA5, preliminary ERA5T, or the HRES open-data
fill). ``floecast status`` shows these with their latency; the forecast file records them
for the days before its init date (:func:`input_provenance`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from floecast import clock

EXPVER_LABELS = {"0001": "ERA5", "0005": "ERA5T (preliminary)", "hres": "ECMWF HRES open data"}


def _sic_label(record: Mapping[str, object]) -> str:
    """``OSI-438 v3.0 (OSI-438-fast-track)`` from a manifest's day record."""
    product_id, name, version = record.get("product_id"), record.get("product"), record.get("version")
    if not product_id:
        return str(name or "unknown")
    text = f"{product_id} v{version}" if version else str(product_id)
    return text if not name or name == product_id else f"{text} ({name})"


def newest_sic(manifests: Iterable[str | Path], until: dt.date | None = None) -> tuple[dt.date, str] | None:
    """The newest day (up to ``until``) listed in SIC period manifests, and the product that served it."""
    best: tuple[dt.date, str] | None = None
    for path in manifests:
        manifest = json.loads(Path(path).read_text())
        days = manifest.get("days")
        if days is None:  # a manifest from before the product chain: file names only
            from floecast.sources.sicchain import day_in_name

            days = {day_in_name(name).isoformat(): {"product": "unknown"} for name in manifest.get("files", [])}
        for iso, record in days.items():
            day = dt.date.fromisoformat(iso)
            if (until is None or day <= until) and (best is None or day > best[0]):
                best = (day, _sic_label(record))
    return best


def newest_atmos(path: str | Path, until: dt.date | None = None) -> tuple[dt.date, str] | None:
    """The newest day (up to ``until``) of a raw ERA5-layout file and its ``expver`` as words."""
    import numpy as np
    import pandas as pd
    import xarray as xr

    with xr.open_dataset(path, engine="netcdf4") as ds:
        times = pd.DatetimeIndex(ds["valid_time"].values)
        values = ds["expver"].values if "expver" in ds.variables else np.array(["unknown"])
        expver = [str(v.decode() if isinstance(v, bytes) else v).strip() for v in np.ravel(values)]
    keep = [i for i, t in enumerate(times) if until is None or t.date() <= until]
    if not keep:
        return None
    i = max(keep, key=lambda k: times[k])
    raw = expver[i] if len(expver) == len(times) else expver[0]
    code = raw if not raw.isdigit() else f"{int(raw):04d}"
    return times[i].date(), EXPVER_LABELS.get(code, f"expver {raw}")


def latency_days(day: str | dt.date | None, today: dt.date | None = None) -> int | None:
    """Days from ``day`` to today (the clock's)."""
    if day is None:
        return None
    try:
        day = dt.date.fromisoformat(str(day)[:10])
    except ValueError:
        return None
    return ((today or clock.today()) - day).days


def input_provenance(
    init: dt.date,
    sic_manifests: Iterable[str | Path],
    atmos_files: Mapping[str, str | Path],
    sources: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Forecast-file attributes: when it was issued and, per input, the newest day before ``init`` and what served it."""
    until = init - dt.timedelta(days=1)
    sources = sources or {}
    attrs = {"date_issued": clock.stamp()}
    sic = newest_sic(sic_manifests, until)
    if sic is not None:
        attrs["source_sic_newest_day"] = sic[0].isoformat()
        attrs["source_sic_product"] = sic[1] if sources.get("sic") != "synthetic" else f"synthetic ({sic[1]} layout)"
    for variable, path in atmos_files.items():
        newest = newest_atmos(path, until)
        if newest is not None:
            attrs[f"source_{variable}_newest_day"] = newest[0].isoformat()
            label = newest[1] if sources.get("atmos") != "synthetic" else "synthetic (ERA5 layout)"
            attrs[f"source_{variable}_product"] = label
    return attrs
