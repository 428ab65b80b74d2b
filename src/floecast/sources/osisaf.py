"""OSI-SAF sea-ice concentration files (OSI-450-a CDR v3.0, OSI-430-a ICDR v3.0) on EASE2.

File names, variables and attributes follow the products' layout (see
docs/data-sources.md): ``ice_conc`` in percent, packed as integers with scale 0.01;
``status_flag`` with 1 = land and 2 = lake; ``xc``/``yc`` in km with ``yc`` descending;
a ``Lambert_Azimuthal_Grid`` grid mapping. The synthetic source writes the same files.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import netCDF4
import numpy as np

from floecast.grid import HEMISPHERE_CODE, Ease2Grid
from floecast.io import atomic_path
from floecast.sources import http

if TYPE_CHECKING:
    import requests  # imported where a download runs: reading delivered files needs no requests

log = logging.getLogger(__name__)

CDR_LAST_DAY = dt.date(2020, 12, 31)  # OSI-450-a ends here; OSI-430-a continues it
ICE_CONC_FILL = -32767  # not verified for v3 (data-formats.md); v2 files use it
STATUS_LAND = 1
STATUS_LAKE = 2
STATUS_FLAG_MASKS = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=np.int16)
STATUS_FLAG_MEANINGS = "land lake open_water_filtered land_spill_over high_t2m spatial_interp temporal_interp max_ice_climo"
EPOCH = dt.datetime(1978, 1, 1)
THREDDS_BASE = "https://thredds.met.no/thredds/fileServer/osisaf/met.no/reprocessed/ice"
CDR_FOLDER = "conc_450a_files"  # OSI-450-a
ICDR_FOLDER = "conc_cra_files"  # OSI-430-a
ICE_CONC_VALID_RANGE = (0, 10000)
ICE_CONC_SCALE = 0.01
REQUIRED_VARIABLES = ("ice_conc", "status_flag", "xc", "yc", "time", "lat", "lon", "Lambert_Azimuthal_Grid")
MISSING_FILE = "missing.json"
# The Arctic polar hole of the passive-microwave record: radius in 25 km cells until the
# given day (exclusive), by sensor era (data-formats.md; era boundaries approximate, not
# verified against the product manual). None after the last: no hole.
POLAR_HOLE_ERAS: tuple[tuple[dt.date, int], ...] = (
    (dt.date(1987, 7, 1), 28),  # SMMR
    (dt.date(2005, 10, 1), 11),  # SSM/I
    (dt.date(2015, 1, 1), 3),  # SSMIS
)


def polar_hole_radius_km(day: dt.date, hemisphere: str) -> float:
    """Radius of the region around the pole that the satellites did not see on ``day``."""
    if hemisphere != "north":
        return 0.0  # the South Pole is land
    for until, cells in POLAR_HOLE_ERAS:
        if day < until:
            return cells * 25.0
    return 0.0


def osisaf_filename(hemisphere: str, day: dt.date) -> str:
    """The provider's file name for one day: CDR up to 2020, ICDR after."""
    record = "cdr" if day <= CDR_LAST_DAY else "icdr"
    return f"ice_conc_{HEMISPHERE_CODE[hemisphere]}_ease2-250_{record}-v3p0_{day:%Y%m%d}1200.nc"


def date_from_filename(name: str) -> dt.date:
    stamp = Path(name).name.rsplit("_", 1)[-1][:8]
    return dt.datetime.strptime(stamp, "%Y%m%d").date()


def write_osisaf_file(path: str | Path, grid: Ease2Grid, day: dt.date, sic_fraction: np.ndarray, status_flag: np.ndarray) -> None:
    """Write one daily file in the OSI-SAF layout (``sic_fraction`` NaN where undefined)."""
    ny, nx = grid.shape
    record = "cdr" if day <= CDR_LAST_DAY else "icdr"
    centre = dt.datetime.combine(day, dt.time(12))
    with atomic_path(path) as tmp:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.setncatts(
                {
                    "title": "Sea-ice concentration (synthetic, OSI-SAF layout)",
                    "product_id": "OSI-450-a" if record == "cdr" else "OSI-430-a",
                    "product_version": "3.0",
                    "grid": f"ease2-{grid.cell_m / 1000:g}km",
                    "hemisphere": grid.hemisphere,
                    "Conventions": "CF-1.7 ACDD-1.3",
                    "time_coverage_start": f"{day:%Y%m%d}T000000Z",
                    "time_coverage_end": f"{day:%Y%m%d}T235959Z",
                }
            )
            nc.createDimension("time", None)
            nc.createDimension("nv", 2)
            nc.createDimension("yc", ny)
            nc.createDimension("xc", nx)
            crs = nc.createVariable("Lambert_Azimuthal_Grid", "i4")
            crs.setncatts(grid.grid_mapping_attrs())
            xc = nc.createVariable("xc", "f8", ("xc",))
            xc.setncatts({"axis": "X", "units": "km", "standard_name": "projection_x_coordinate"})
            xc[:] = grid.xc / 1000.0
            yc = nc.createVariable("yc", "f8", ("yc",))
            yc.setncatts({"axis": "Y", "units": "km", "standard_name": "projection_y_coordinate"})
            yc[:] = grid.yc / 1000.0
            time = nc.createVariable("time", "f8", ("time",))
            time.setncatts({"units": "seconds since 1978-01-01 00:00:00", "calendar": "standard", "bounds": "time_bnds"})
            time[0] = (centre - EPOCH).total_seconds()
            bnds = nc.createVariable("time_bnds", "f8", ("time", "nv"))
            bnds.units = time.units
            bnds[0, :] = [time[0] - 43200.0, time[0] + 43200.0]
            for name, values, std_name in (("lat", grid.lat, "latitude"), ("lon", grid.lon, "longitude")):
                var = nc.createVariable(name, "f4", ("yc", "xc"), zlib=True)
                var.setncatts({"units": f"degrees_{'north' if name == 'lat' else 'east'}", "standard_name": std_name})
                var[:] = values
            packed = np.where(np.isfinite(sic_fraction), np.round(np.clip(sic_fraction, 0, 1) * 10000), ICE_CONC_FILL)
            for name, long_name, std_name in (
                ("ice_conc", "fully filtered concentration of sea ice", "sea_ice_area_fraction"),
                ("raw_ice_conc_values", "raw concentration values, not filtered", None),
            ):
                var = nc.createVariable(name, "i4", ("time", "yc", "xc"), zlib=True, fill_value=ICE_CONC_FILL)
                attrs = {
                    "long_name": long_name,
                    "units": "%",
                    "scale_factor": 0.01,
                    "add_offset": 0.0,
                    "valid_min": 0,
                    "valid_max": 10000,
                    "grid_mapping": "Lambert_Azimuthal_Grid",
                    "coordinates": "time lat lon",
                }
                if std_name:
                    attrs["standard_name"] = std_name
                var.setncatts(attrs)
                var.set_auto_maskandscale(False)
                var[0] = packed.astype(np.int32)
            uncertainty = np.where(
                np.isfinite(sic_fraction), 400 + 600 * (1 - np.abs(2 * np.nan_to_num(sic_fraction) - 1)), ICE_CONC_FILL
            )
            for name in ("total_standard_uncertainty", "algorithm_standard_uncertainty", "smearing_standard_uncertainty"):
                var = nc.createVariable(name, "i4", ("time", "yc", "xc"), zlib=True, fill_value=ICE_CONC_FILL)
                var.setncatts(
                    {"units": "%", "scale_factor": 0.01, "grid_mapping": "Lambert_Azimuthal_Grid", "coordinates": "time lat lon"}
                )
                var.set_auto_maskandscale(False)
                var[0] = np.round(uncertainty).astype(np.int32)
            flag = nc.createVariable("status_flag", "i2", ("time", "yc", "xc"), zlib=True)
            flag.setncatts(
                {
                    "long_name": "status flag bit array for sea ice concentration retrievals",
                    "standard_name": "sea_ice_area_fraction status_flag",
                    "flag_masks": STATUS_FLAG_MASKS,
                    "flag_meanings": STATUS_FLAG_MEANINGS,
                    "grid_mapping": "Lambert_Azimuthal_Grid",
                    "coordinates": "time lat lon",
                }
            )
            flag[0] = status_flag.astype(np.int16)


def read_osisaf_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (SIC as a fraction with NaN where missing or land, status_flag) of one day."""
    with netCDF4.Dataset(path) as nc:
        var = nc["ice_conc"]
        var.set_auto_maskandscale(False)
        raw = np.asarray(var[0])
        fill = var.getncattr("_FillValue")
        scale = float(var.getncattr("scale_factor"))
        flag = np.asarray(nc["status_flag"][0]).astype(np.int16)
    sic = np.where(raw == fill, np.nan, raw * scale / 100.0)
    return sic.astype(np.float32), flag


def osisaf_url(base_url: str, hemisphere: str, day: dt.date) -> str:
    """URL of one day's file under a THREDDS ``fileServer`` base (``THREDDS_BASE`` for met.no)."""
    folder = CDR_FOLDER if day <= CDR_LAST_DAY else ICDR_FOLDER
    return f"{base_url.rstrip('/')}/{folder}/{day:%Y}/{day:%m}/{osisaf_filename(hemisphere, day)}"


_NAME_DAY = re.compile(r"_(\d{8})1200\.nc")


def validate_osisaf_file(path: str | Path, expected_day: dt.date, grid: Ease2Grid) -> None:
    """Check one delivered daily file; raise ValueError naming the file and the reason.

    Checks the layout (dimensions, variables, grid mapping hemisphere, ``xc``/``yc`` in km
    at the centres of ``grid``), the packing of ``ice_conc`` (integers, scale 0.01, valid
    range 0..10000, a fill value outside it, no other values outside it), the day (name and
    ``time`` variable) and that the field is not all zero or all missing over the ocean
    (a known provider failure, e.g. 2022-11-09).
    """
    path = Path(path)

    def bad(reason: str) -> ValueError:
        return ValueError(f"{path}: {reason}")

    match = _NAME_DAY.search(path.name)
    if match and match.group(1) != f"{expected_day:%Y%m%d}":
        raise bad(f"file name is for {match.group(1)}, expected {expected_day:%Y%m%d}")
    if path.stat().st_size == 0:
        raise bad("empty file (0 bytes)")
    try:
        nc = netCDF4.Dataset(path)
    except OSError as exc:
        raise bad(f"not a readable NetCDF file ({exc})") from None
    try:
        with nc:
            _validate_open(nc, expected_day, grid, bad)
    except (OSError, RuntimeError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise bad(f"unreadable content ({type(exc).__name__}: {exc})") from None


def _validate_open(nc: netCDF4.Dataset, day: dt.date, grid: Ease2Grid, bad) -> None:
    absent = [v for v in REQUIRED_VARIABLES if v not in nc.variables]
    if absent:
        raise bad(f"missing variables {absent}")
    sizes = {name: len(dim) for name, dim in nc.dimensions.items()}
    wanted = {"time": 1, "yc": grid.shape[0], "xc": grid.shape[1]}
    if any(sizes.get(k) != v for k, v in wanted.items()):
        got = {k: sizes.get(k) for k in wanted}
        raise bad(f"dimensions {got} do not match the configured grid {wanted} (EASE2 {grid.cell_m / 1000:g} km)")
    ice = nc["ice_conc"]
    if ice.dimensions != ("time", "yc", "xc"):
        raise bad(f"ice_conc has dimensions {ice.dimensions}, expected ('time', 'yc', 'xc')")
    crs = nc["Lambert_Azimuthal_Grid"]
    if getattr(crs, "grid_mapping_name", None) != "lambert_azimuthal_equal_area":
        raise bad(f"grid mapping {getattr(crs, 'grid_mapping_name', None)!r} is not lambert_azimuthal_equal_area")
    origin = float(getattr(crs, "latitude_of_projection_origin", np.nan))
    if origin != (90.0 if grid.hemisphere == "north" else -90.0):
        raise bad(f"latitude_of_projection_origin {origin} does not match the {grid.hemisphere} hemisphere")
    for name, centres in (("xc", grid.xc), ("yc", grid.yc)):
        var = nc[name]
        if getattr(var, "units", None) != "km":
            raise bad(f"{name} units {getattr(var, 'units', None)!r}, expected 'km'")
        if not np.allclose(np.asarray(var[:], dtype=float), centres / 1000.0, atol=0.01):
            raise bad(f"{name} does not hold the EASE2 cell centres of the configured grid (in km)")
    time_var = nc["time"]
    try:
        stamp = netCDF4.num2date(time_var[0], time_var.units, getattr(time_var, "calendar", "standard"))
    except (AttributeError, ValueError) as exc:
        raise bad(f"time cannot be decoded ({exc})") from None
    if (stamp.year, stamp.month, stamp.day) != (day.year, day.month, day.day):
        raise bad(f"time variable says {stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}, the file name {day.isoformat()}")
    _validate_ice_conc(nc, ice, bad)


def _validate_ice_conc(nc: netCDF4.Dataset, ice, bad) -> None:
    attrs = {k: np.asarray(ice.getncattr(k)).tolist() for k in ice.ncattrs()}  # plain Python values in messages
    if not np.issubdtype(ice.dtype, np.integer):
        raise bad(f"ice_conc is stored as {ice.dtype}, expected packed integers")
    if not np.isclose(float(attrs.get("scale_factor", np.nan)), ICE_CONC_SCALE, rtol=1e-6):
        raise bad(f"ice_conc scale_factor {attrs.get('scale_factor')!r}, expected {ICE_CONC_SCALE}")
    if float(attrs.get("add_offset", 0.0)) != 0.0:
        raise bad(f"ice_conc add_offset {attrs['add_offset']!r}, expected 0")
    if "valid_range" in attrs:
        vrange = tuple(np.ravel(attrs["valid_range"]).tolist())
    else:
        vrange = (attrs.get("valid_min"), attrs.get("valid_max"))
    if vrange != ICE_CONC_VALID_RANGE:
        raise bad(f"ice_conc valid range {vrange}, expected {ICE_CONC_VALID_RANGE}")
    if "_FillValue" not in attrs:
        raise bad("ice_conc has no _FillValue")
    fill = attrs["_FillValue"]
    lo, hi = ICE_CONC_VALID_RANGE
    if not isinstance(fill, int | float) or lo <= fill <= hi:
        raise bad(f"ice_conc _FillValue {fill} lies inside the valid range {ICE_CONC_VALID_RANGE}")
    ice.set_auto_maskandscale(False)
    raw = np.asarray(ice[0])
    flag = nc["status_flag"]
    flag.set_auto_maskandscale(False)
    flags = np.asarray(flag[0]).astype(np.int64)
    present = raw != fill
    outside = present & ((raw < lo) | (raw > hi))
    if outside.any():
        raise bad(f"ice_conc has {int(outside.sum())} values outside the valid range {ICE_CONC_VALID_RANGE}")
    ocean = (flags & (STATUS_LAND | STATUS_LAKE)) == 0
    if not ocean.any():
        raise bad("status_flag marks every cell as land or lake")
    if not present[ocean].any():
        raise bad("ice_conc is missing over the whole ocean (all fill values)")
    if not (raw[ocean & present] > 0).any():
        raise bad("ice_conc is zero over the whole ocean (all-zero field, a known provider failure)")


def _as_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _write_missing(out_dir: Path, first_day: dt.date, last_day: dt.date, missing: dict[dt.date, str]) -> None:
    """Merge this period's missing days into ``missing.json`` (other periods' entries are kept)."""
    path = out_dir / MISSING_FILE
    entries: dict[str, str] = {}
    if path.is_file():
        for item in json.loads(path.read_text() or "[]"):
            day = dt.date.fromisoformat(item["date"])
            if not first_day <= day <= last_day:
                entries[item["date"]] = item["reason"]
    entries.update({day.isoformat(): reason for day, reason in missing.items()})
    text = json.dumps([{"date": d, "reason": entries[d]} for d in sorted(entries)], indent=1) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def fetch_osisaf_period(
    base_url: str,
    grid: Ease2Grid,
    first_day: dt.date,
    last_day: dt.date,
    out_dir: str | Path,
    known_bad_days: Iterable[dt.date | str] = (),
    session: requests.Session | None = None,
    *,
    retries: int = http.DEFAULT_RETRIES,
    backoff: float = http.DEFAULT_BACKOFF_S,
    timeout: float | tuple[float, float] = http.DEFAULT_TIMEOUT_S,
) -> dict[str, int]:
    """Download every day's file of ``grid.hemisphere`` into ``out_dir`` under the provider's name.

    Files already there and valid are skipped. Days the server lacks (HTTP 404), known-bad
    days (from config; not requested, and an existing file is moved to ``rejected/``) and
    delivered files that fail :func:`validate_osisaf_file` (moved to ``rejected/``) are
    recorded in ``out_dir/missing.json`` as a sorted list of ``{"date", "reason"}``; they
    are filled later by interpolation in time. Missing days are asked for again on the
    next run. Other failures (retries used up, HTTP 403, ...) raise
    :class:`floecast.sources.http.DownloadError`. Returns counts ``{fetched, skipped, missing}``.
    """
    first_day, last_day = _as_date(first_day), _as_date(last_day)
    if last_day < first_day:
        raise ValueError(f"last day {last_day} is before first day {first_day}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bad_days = {_as_date(d) for d in known_bad_days}
    counts = {"fetched": 0, "skipped": 0, "missing": 0}
    missing: dict[dt.date, str] = {}
    own_session = session is None
    if session is None:
        import requests

        session = requests.Session()
    day = first_day
    try:
        while day <= last_day:
            target = out_dir / osisaf_filename(grid.hemisphere, day)
            url = osisaf_url(base_url, grid.hemisphere, day)
            if day in bad_days:
                missing[day] = "known bad day (config), not requested"
                if target.exists():
                    http.reject(target, "known bad day (config)", url=url)
            else:
                try:
                    result = http.download(
                        url,
                        target,
                        session=session,
                        validate=lambda p, d=day: validate_osisaf_file(p, d, grid),
                        retries=retries,
                        backoff=backoff,
                        timeout=timeout,
                    )
                    counts[result.status] += 1
                except http.NotAvailable as exc:
                    missing[day] = f"not on the server (HTTP {exc.status})"
                except http.InvalidFile as exc:
                    missing[day] = f"invalid file, moved to {http.REJECTED_DIR}/: {exc.reason.removeprefix(f'{target}: ')}"
                if day in missing:
                    log.warning("%s: %s", day, missing[day])
            day += dt.timedelta(days=1)
    finally:
        if own_session:
            session.close()
        if day > first_day:  # record what this run learnt, also when it stops early
            _write_missing(out_dir, first_day, day - dt.timedelta(days=1), missing)
    counts["missing"] = len(missing)
    log.info("OSI-SAF %s %s..%s: %s", grid.hemisphere, first_day, last_day, counts)
    return counts
