"""What served each input: the newest raw day of each source with its product (SIC: the chain's
product and version from the manifests; ERA5: ERA5, ERA5T or the HRES fill), as `floecast status`
shows it and the forecast file records it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_forecast_file import INIT, climatology_members

from floecast.combine import combine_forecast
from floecast.inputs import input_provenance, latency_days, newest_atmos, newest_sic


def _manifest(path: Path, days: dict[str, tuple[str, str, str]]) -> Path:
    records = {d: {"product": name, "product_id": pid, "version": version} for d, (name, pid, version) in days.items()}
    path.write_text(json.dumps({"days": records, "files": []}))
    return path


def _era5(path: Path, first: str, expver: list[str]) -> Path:
    times = pd.date_range(first, periods=len(expver), freq="D")
    ds = xr.Dataset(
        {"t2m": (("valid_time", "latitude"), np.full((len(times), 2), 250.0)), "expver": ("valid_time", np.array(expver))},
        coords={"valid_time": times, "latitude": [80.0, 70.0]},
    )
    ds.to_netcdf(path, engine="netcdf4")
    return path


def test_the_newest_day_of_each_source_and_what_served_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dec = _manifest(tmp_path / "12.json", {"2025-12-30": ("OSI-438", "OSI-438", "3.0")})
    jan = _manifest(
        tmp_path / "01.json",
        {"2026-01-01": ("OSI-438-fast-track", "OSI-438", "3.0"), "2026-01-02": ("OSI-408-a", "OSI-408-a", "4.1")},
    )
    assert newest_sic([dec, jan]) == (dt.date(2026, 1, 2), "OSI-408-a v4.1")
    assert newest_sic([dec, jan], until=dt.date(2026, 1, 1)) == (dt.date(2026, 1, 1), "OSI-438 v3.0 (OSI-438-fast-track)")
    era5 = _era5(tmp_path / "2026.nc", "2026-01-01", ["0001", "0005", "hres"])
    assert newest_atmos(era5) == (dt.date(2026, 1, 3), "ECMWF HRES open data")
    assert newest_atmos(era5, until=dt.date(2026, 1, 2)) == (dt.date(2026, 1, 2), "ERA5T (preliminary)")
    monkeypatch.setenv("FLOECAST_TODAY", "2026-01-04")
    assert latency_days("2026-01-02") == 2 and latency_days(None) is None
    attrs = input_provenance(dt.date(2026, 1, 2), [dec, jan], {"t2m": era5})
    assert attrs["date_issued"].startswith("2026-01-04T")
    assert attrs["source_sic_newest_day"] == "2026-01-01"  # before the init date only
    assert attrs["source_sic_product"] == "OSI-438 v3.0 (OSI-438-fast-track)"
    assert (attrs["source_t2m_newest_day"], attrs["source_t2m_product"]) == ("2026-01-01", "ERA5")


def test_the_forecast_file_records_when_it_was_issued_and_its_newest_inputs(tiny_data, tmp_path: Path) -> None:
    members = climatology_members(tiny_data, tmp_path / "members")
    init = INIT.date()
    before = (init - dt.timedelta(days=1)).isoformat()
    sic = _manifest(tmp_path / "sic.json", {before: ("OSI-438-fast-track", "OSI-438", "3.0")})
    t2m = _era5(tmp_path / "t2m.nc", (init - dt.timedelta(days=3)).isoformat(), ["0001", "0005", "0005"])
    out = tmp_path / "forecast.nc"
    combine_forecast(
        members, tiny_data.store, tiny_data.grid, "tiny", out, inputs=lambda day: input_provenance(day, [sic], {"t2m": t2m})
    )
    with xr.open_dataset(out) as ds:
        assert ds.attrs["source_sic_newest_day"] == before
        assert ds.attrs["source_sic_product"] == "OSI-438 v3.0 (OSI-438-fast-track)"
        assert (ds.attrs["source_t2m_newest_day"], ds.attrs["source_t2m_product"]) == (before, "ERA5T (preliminary)")
        assert ds.attrs["date_issued"] >= ds.attrs["date_created"][:10]
