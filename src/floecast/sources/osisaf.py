"""OSI SAF sea-ice concentration files: their layout, validation, and the chain's downloads.

Which product serves which day, and where its files are, is the product chain of the
config (:mod:`floecast.sources.sicchain`). This module knows the two file layouts:

* the 25 km EASE2 climate records (OSI-450-a1, OSI-430-a, OSI-438 and its fast-track
  files): ``ice_conc`` in percent, packed as integers with scale 0.01; ``status_flag``
  with 1 = land and 2 = lake; ``xc``/``yc`` in km with ``yc`` descending; a
  ``Lambert_Azimuthal_Grid`` grid mapping. The synthetic source writes the same files.
* the 10 km polar stereographic near-real-time files (OSI-408-a): ``ice_conc`` in percent
  on ``yc``/``xc`` (km) with a ``Polar_Stereographic_Grid`` grid mapping; regridded onto
  EASE2 like any projected source (:func:`floecast.regrid.projected_bilinear_weights`).

docs/data-sources.md says which of these facts are verified and which are assumed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import netCDF4
import numpy as np
import pyproj

from floecast import clock
from floecast.grid import Ease2Grid
from floecast.io import atomic_path
from floecast.sources import http, remote
from floecast.sources.sicchain import DEFAULT_VARIABLES, SicChain, SicProduct, day_in_name

if TYPE_CHECKING:
    import requests  # imported where a download runs: reading delivered files needs no requests

log = logging.getLogger(__name__)

ICE_CONC_FILL = -32767  # not verified for v3 (data-formats.md); v2 files use it
STATUS_LAND = 1
STATUS_LAKE = 2
STATUS_FLAG_MASKS = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=np.int16)
STATUS_FLAG_MEANINGS = "land lake open_water_filtered land_spill_over high_t2m spatial_interp temporal_interp max_ice_climo"
EPOCH = dt.datetime(1978, 1, 1)
ICE_CONC_VALID_RANGE = (0, 10000)
ICE_CONC_SCALE = 0.01
REQUIRED_VARIABLES = ("ice_conc", "status_flag", "xc", "yc", "time", "lat", "lon", "Lambert_Azimuthal_Grid")
MISSING_FILE = "missing.json"
REPLACED_FILE = "replaced.json"
REPLACED_DIR = "replaced"
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


def osisaf_filename(hemisphere: str, day: dt.date, chain: SicChain | None = None) -> str:
    """The file name of ``day`` in the product that serves it (the default chain unless given)."""
    return (chain or SicChain.default()).nominal(day).filename(hemisphere, day)


def osisaf_url(thredds: str, hemisphere: str, day: dt.date, chain: SicChain | None = None) -> str:
    """The URL of ``day``'s file in the product that serves it, with ``{thredds}`` set to ``thredds``
    (``""`` gives the path below a THREDDS fileServer root)."""
    chain = (chain or SicChain.default()).with_servers({"thredds": thredds})
    return chain.nominal(day).url_for(chain.servers, hemisphere, day)


def date_from_filename(name: str) -> dt.date:
    return day_in_name(name)


# ---------------------------------------------------------------------------------------
# the 10 km polar stereographic grid of the near-real-time products (OSI-408-a)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolstereGrid:
    """One hemisphere's 10 km OSI SAF polar stereographic grid (cell centres in km, ``yc`` descending)."""

    hemisphere: str
    shape: tuple[int, int]  # (yc, xc)
    x0_km: float  # first (westernmost) xc
    y0_km: float  # first (northernmost) yc
    proj4: str
    attrs: Mapping[str, object] = field(default_factory=dict)

    @property
    def xc(self) -> np.ndarray:
        return self.x0_km + 10.0 * np.arange(self.shape[1])

    @property
    def yc(self) -> np.ndarray:
        return self.y0_km - 10.0 * np.arange(self.shape[0])

    @property
    def crs(self) -> pyproj.CRS:
        return pyproj.CRS.from_proj4(self.proj4)

    @property
    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        return _polstere_lonlat(self.hemisphere)


_STERE_EARTH = {"semi_major_axis": 6378273.0, "semi_minor_axis": 6356889.44891}
POLSTERE_GRIDS = {
    "north": PolstereGrid(
        "north",
        (1120, 760),
        -3845.0,
        5845.0,
        "+proj=stere +a=6378273 +b=6356889.44891 +lat_0=90 +lat_ts=70 +lon_0=-45",
        {
            "grid_mapping_name": "polar_stereographic",
            "straight_vertical_longitude_from_pole": -45.0,
            "latitude_of_projection_origin": 90.0,
            "standard_parallel": 70.0,
        },
    ),
    "south": PolstereGrid(
        "south",
        (830, 790),
        -3945.0,
        4345.0,
        "+proj=stere +a=6378273 +b=6356889.44891 +lat_0=-90 +lat_ts=-70 +lon_0=0",
        {
            "grid_mapping_name": "polar_stereographic",
            "straight_vertical_longitude_from_pole": 0.0,
            "latitude_of_projection_origin": -90.0,
            "standard_parallel": -70.0,
        },
    ),
}


@lru_cache(maxsize=2)
def _polstere_lonlat(hemisphere: str) -> tuple[np.ndarray, np.ndarray]:
    grid = POLSTERE_GRIDS[hemisphere]
    xx, yy = np.meshgrid(grid.xc * 1000.0, grid.yc * 1000.0)
    to_lonlat = pyproj.Transformer.from_crs(grid.crs, grid.crs.geodetic_crs, always_xy=True)
    lon, lat = to_lonlat.transform(xx, yy)
    return lon.astype(np.float32), lat.astype(np.float32)


# ---------------------------------------------------------------------------------------
# writing (synthetic source, test fixtures)
# ---------------------------------------------------------------------------------------


def _product_of(product: SicProduct | None, day: dt.date) -> SicProduct:
    return product or SicChain.default().nominal(day)


def _global_attrs(product: SicProduct, day: dt.date, hemisphere: str, title: str, grid_name: str) -> dict[str, str]:
    return {
        "title": title,
        "product_id": product.product_id,
        "product_name": product.name,
        "product_version": product.version,
        "grid": grid_name,
        "hemisphere": hemisphere,
        "Conventions": "CF-1.7 ACDD-1.3",
        "time_coverage_start": f"{day:%Y%m%d}T000000Z",
        "time_coverage_end": f"{day:%Y%m%d}T235959Z",
    }


def _time_variables(nc: netCDF4.Dataset, day: dt.date) -> None:
    centre = dt.datetime.combine(day, dt.time(12))
    time = nc.createVariable("time", "f8", ("time",))
    time.setncatts({"units": "seconds since 1978-01-01 00:00:00", "calendar": "standard", "bounds": "time_bnds"})
    time[0] = (centre - EPOCH).total_seconds()
    bnds = nc.createVariable("time_bnds", "f8", ("time", "nv"))
    bnds.units = time.units
    bnds[0, :] = [time[0] - 43200.0, time[0] + 43200.0]


def write_osisaf_file(
    path: str | Path,
    grid: Ease2Grid,
    day: dt.date,
    sic_fraction: np.ndarray,
    status_flag: np.ndarray,
    product: SicProduct | None = None,
) -> None:
    """Write one daily file in the EASE2 layout of the climate records (``sic_fraction`` NaN where undefined).

    ``product`` (default: the default chain's product for ``day``) sets ``product_id`` and ``product_version``.
    """
    product = _product_of(product, day)
    ny, nx = grid.shape
    with atomic_path(path) as tmp:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.setncatts(
                _global_attrs(
                    product,
                    day,
                    grid.hemisphere,
                    "Sea-ice concentration (OSI SAF EASE2 layout)",
                    f"ease2-{grid.cell_m / 1000:g}km",
                )
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
            _time_variables(nc, day)
            for name, values, std_name in (("lat", grid.lat, "latitude"), ("lon", grid.lon, "longitude")):
                var = nc.createVariable(name, "f4", ("yc", "xc"), zlib=True)
                var.setncatts({"units": f"degrees_{'north' if name == 'lat' else 'east'}", "standard_name": std_name})
                var[:] = values
            packed = np.where(np.isfinite(sic_fraction), np.round(np.clip(sic_fraction, 0, 1) * 10000), ICE_CONC_FILL)
            for name, long_name, std_name in (
                (product.variables["ice_conc"], "fully filtered concentration of sea ice", "sea_ice_area_fraction"),
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
            flag = nc.createVariable(product.variables["status_flag"], "i2", ("time", "yc", "xc"), zlib=True)
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


def write_polstere_file(
    path: str | Path, hemisphere: str, day: dt.date, sic_fraction: np.ndarray, status_flag: np.ndarray, product: SicProduct
) -> None:
    """Write one daily file in the 10 km polar stereographic layout of OSI-408-a (``sic_fraction`` on its grid)."""
    grid = POLSTERE_GRIDS[hemisphere]
    lon, lat = grid.lonlat
    with atomic_path(path) as tmp:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.setncatts(
                {
                    **_global_attrs(product, day, hemisphere, "Level-3 Sea Ice Concentration Analysis (AMSR2)", "polstere-100"),
                    "Conventions": "CF-1.6",
                    "instrument_type": "AMSR2",
                    "platform_name": "GCOM-W",
                }
            )
            nc.createDimension("time", None)
            nc.createDimension("nv", 2)
            nc.createDimension("yc", grid.shape[0])
            nc.createDimension("xc", grid.shape[1])
            crs = nc.createVariable("Polar_Stereographic_Grid", "i4")
            crs.setncatts({**grid.attrs, "false_easting": 0.0, "false_northing": 0.0, **_STERE_EARTH, "proj4_string": grid.proj4})
            for name, values, axis in (("xc", grid.xc, "X"), ("yc", grid.yc, "Y")):
                var = nc.createVariable(name, "f8", (name,))
                var.setncatts({"axis": axis, "units": "km", "standard_name": f"projection_{axis.lower()}_coordinate"})
                var[:] = values
            _time_variables(nc, day)
            for name, values, std_name in (("lat", lat, "latitude"), ("lon", lon, "longitude")):
                var = nc.createVariable(name, "f4", ("yc", "xc"), zlib=True)
                var.setncatts({"units": f"degrees_{'north' if name == 'lat' else 'east'}", "standard_name": std_name})
                var[:] = values
            for name in (product.variables["ice_conc"], "raw_ice_conc_values"):
                var = nc.createVariable(name, "f4", ("time", "yc", "xc"), zlib=True, fill_value=np.float32(-999.0))
                var.setncatts(
                    {"units": "%", "standard_name": "sea_ice_area_fraction", "grid_mapping": "Polar_Stereographic_Grid"}
                )
                var[0] = np.where(np.isfinite(sic_fraction), np.clip(sic_fraction, 0, 1) * 100.0, -999.0).astype(np.float32)
            flag = nc.createVariable(product.variables["status_flag"], "i2", ("time", "yc", "xc"), zlib=True)
            flag.setncatts({"long_name": "status flag for sea ice concentration", "grid_mapping": "Polar_Stereographic_Grid"})
            flag[0] = status_flag.astype(np.int16)


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------


def read_osisaf_file(path: str | Path, variables: Mapping[str, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (SIC as a fraction with NaN where missing, status_flag) of one day, in either layout."""
    names = {**DEFAULT_VARIABLES, **(variables or {})}
    with netCDF4.Dataset(path) as nc:
        var = nc[names["ice_conc"]]
        var.set_auto_maskandscale(True)
        sic = np.ma.filled(np.ma.asarray(var[0]).astype(np.float64), np.nan) / 100.0
        flag_var = nc[names["status_flag"]]
        flag_var.set_auto_maskandscale(False)
        flag = np.asarray(flag_var[0]).astype(np.int16)
    return sic.astype(np.float32), flag


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------


def validate_osisaf_file(path: str | Path, expected_day: dt.date, grid: Ease2Grid, product: SicProduct | None = None) -> None:
    """Check one delivered daily file; raise ValueError naming the file and the reason.

    EASE2 products: the layout (dimensions, variables, grid mapping hemisphere, ``xc``/``yc``
    in km at the centres of ``grid``), the packing of ``ice_conc`` (integers, scale 0.01,
    valid range 0..10000, a fill value outside it, no other values outside it), the day
    (name and ``time`` variable) and that the field is not all zero or all missing over the
    ocean (a known provider failure, e.g. 2022-11-09). Polar stereographic products
    (OSI-408-a): the grid mapping and the grid of the hemisphere, the day, concentrations
    within 0..100 %, not all missing or all zero.
    """
    path = Path(path)
    product = _product_of(product, expected_day)

    def bad(reason: str) -> ValueError:
        return ValueError(f"{path}: {reason}")

    try:
        named = day_in_name(path.name)
    except ValueError:
        named = None
    if named is not None and named != expected_day:
        raise bad(f"file name is for {named:%Y%m%d}, expected {expected_day:%Y%m%d}")
    if path.stat().st_size == 0:
        raise bad("empty file (0 bytes)")
    try:
        nc = netCDF4.Dataset(path)
    except OSError as exc:
        raise bad(f"not a readable NetCDF file ({exc})") from None
    try:
        with nc:
            if product.grid == "polstere-100":
                _validate_polstere(nc, expected_day, grid.hemisphere, product, bad)
            else:
                _validate_open(nc, expected_day, grid, bad, product.variables)
    except (OSError, RuntimeError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise bad(f"unreadable content ({type(exc).__name__}: {exc})") from None


def _validate_day(nc: netCDF4.Dataset, day: dt.date, bad) -> None:
    time_var = nc["time"]
    try:
        stamp = netCDF4.num2date(time_var[0], time_var.units, getattr(time_var, "calendar", "standard"))
    except (AttributeError, ValueError) as exc:
        raise bad(f"time cannot be decoded ({exc})") from None
    if (stamp.year, stamp.month, stamp.day) != (day.year, day.month, day.day):
        raise bad(f"time variable says {stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}, the file name {day.isoformat()}")


def _validate_polstere(nc: netCDF4.Dataset, day: dt.date, hemisphere: str, product: SicProduct, bad) -> None:
    grid = POLSTERE_GRIDS[hemisphere]
    names = product.variables
    absent = [v for v in (names["ice_conc"], "xc", "yc", "time", "Polar_Stereographic_Grid") if v not in nc.variables]
    if absent:
        raise bad(f"missing variables {absent}")
    crs = nc["Polar_Stereographic_Grid"]
    if getattr(crs, "grid_mapping_name", None) != "polar_stereographic":
        raise bad(f"grid mapping {getattr(crs, 'grid_mapping_name', None)!r} is not polar_stereographic")
    if float(getattr(crs, "latitude_of_projection_origin", np.nan)) != grid.attrs["latitude_of_projection_origin"]:
        raise bad(f"latitude_of_projection_origin does not match the {hemisphere} hemisphere")
    sizes = {name: len(dim) for name, dim in nc.dimensions.items()}
    if (sizes.get("yc"), sizes.get("xc")) != grid.shape:
        raise bad(f"grid (yc, xc) = {(sizes.get('yc'), sizes.get('xc'))}, expected the 10 km {hemisphere} grid {grid.shape}")
    for name, centres in (("xc", grid.xc), ("yc", grid.yc)):
        if getattr(nc[name], "units", None) != "km" or not np.allclose(np.asarray(nc[name][:], float), centres, atol=0.01):
            raise bad(f"{name} does not hold the 10 km polar stereographic cell centres (in km)")
    _validate_day(nc, day, bad)
    ice = nc[names["ice_conc"]]
    if ice.dimensions != ("time", "yc", "xc"):
        raise bad(f"{names['ice_conc']} has dimensions {ice.dimensions}, expected ('time', 'yc', 'xc')")
    ice.set_auto_maskandscale(True)
    values = np.ma.asarray(ice[0])
    present = ~np.ma.getmaskarray(values)
    if not present.any():
        raise bad(f"{names['ice_conc']} is missing everywhere (all fill values)")
    data = np.asarray(values[present], dtype=np.float64)
    if data.min() < 0 or data.max() > 100.0 + 1e-3:
        raise bad(f"{names['ice_conc']} outside 0..100 % ({data.min():.4g} .. {data.max():.4g})")
    if not (data > 0).any():
        raise bad(f"{names['ice_conc']} is zero everywhere (all-zero field, a known provider failure)")


def _validate_open(nc: netCDF4.Dataset, day: dt.date, grid: Ease2Grid, bad, variables: Mapping[str, str]) -> None:
    ice_name, flag_name = variables["ice_conc"], variables["status_flag"]
    wanted_vars = (ice_name, flag_name, *REQUIRED_VARIABLES[2:])
    absent = [v for v in wanted_vars if v not in nc.variables]
    if absent:
        raise bad(f"missing variables {absent}")
    sizes = {name: len(dim) for name, dim in nc.dimensions.items()}
    wanted = {"time": 1, "yc": grid.shape[0], "xc": grid.shape[1]}
    if any(sizes.get(k) != v for k, v in wanted.items()):
        got = {k: sizes.get(k) for k in wanted}
        raise bad(f"dimensions {got} do not match the configured grid {wanted} (EASE2 {grid.cell_m / 1000:g} km)")
    ice = nc[ice_name]
    if ice.dimensions != ("time", "yc", "xc"):
        raise bad(f"{ice_name} has dimensions {ice.dimensions}, expected ('time', 'yc', 'xc')")
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
    _validate_day(nc, day, bad)
    _validate_ice_conc(nc, ice, nc[flag_name], bad)


def _validate_ice_conc(nc: netCDF4.Dataset, ice, flag, bad) -> None:
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


def _merge_json_log(path: Path, first_day: dt.date, last_day: dt.date, entries: Mapping[dt.date, object], key: str) -> None:
    """Merge this period's entries into a list of ``{"date", key}`` in ``path`` (other periods' entries are kept)."""
    kept: dict[str, object] = {}
    if path.is_file():
        for item in json.loads(path.read_text() or "[]"):
            day = dt.date.fromisoformat(item["date"])
            if not first_day <= day <= last_day:
                kept[item["date"]] = item[key]
    kept.update({day.isoformat(): value for day, value in entries.items()})
    text = json.dumps([{"date": d, key: kept[d]} for d in sorted(kept)], indent=1) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _write_missing(out_dir: Path, first_day: dt.date, last_day: dt.date, missing: dict[dt.date, str]) -> None:
    _merge_json_log(out_dir / MISSING_FILE, first_day, last_day, missing, "reason")


def _record_replaced(out_dir: Path, replaced: list[dict[str, str]]) -> None:
    """Append to the folder's history of replaced files (never trimmed)."""
    if not replaced:
        return
    path = out_dir / REPLACED_FILE
    history = json.loads(path.read_text() or "[]") if path.is_file() else []
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(history + replaced, indent=1) + "\n")


def _set_aside(path: Path, day: dt.date, by: SicProduct, chain: SicChain, hemisphere: str) -> dict[str, str]:
    """Move a day's file that a better one replaces to ``replaced/`` and say so."""
    was = chain.identify(path.name, hemisphere)
    folder = path.parent / REPLACED_DIR
    folder.mkdir(exist_ok=True)
    os.replace(path, folder / path.name)
    log.info("%s: %s replaced by %s", day, path.name, by.label)
    return {
        "date": day.isoformat(),
        "file": path.name,
        "product": was.name if was else "unknown",
        "by": by.name,
        "at": clock.stamp(),
    }


@dataclass
class FetchResult:
    """What a period's fetch did: counts, the product serving each day, files replaced."""

    counts: dict[str, int]
    served: dict[dt.date, str]
    missing: dict[dt.date, str]
    replaced: list[dict[str, str]]


def fetch_sic_period(
    chain: SicChain,
    hemisphere: str,
    first_day: dt.date | str,
    last_day: dt.date | str,
    out_dir: str | Path,
    known_bad_days: Iterable[dt.date | str] = (),
    *,
    product: str | None = None,
    grid: Ease2Grid | None = None,
    session: requests.Session | None = None,
    retries: int = http.DEFAULT_RETRIES,
    backoff: float = http.DEFAULT_BACKOFF_S,
    timeout: float | tuple[float, float] = http.DEFAULT_TIMEOUT_S,
) -> FetchResult:
    """Download each day's best available file of ``hemisphere`` into ``out_dir`` under the provider's name.

    For every day the chain's candidates are tried best first (the primary product, then
    its stand-ins, e.g. OSI-438 nominal, then OSI-438 fast-track); with ``product`` only
    that product is fetched (the overlap comparison). Files are checked against ``grid``
    (default: the 25 km grid the products are on). A valid file already there is not
    fetched again. When a better product's file arrives for a day that a stand-in served,
    the stand-in's file moves to ``replaced/`` and ``replaced.json`` records it. Days no
    candidate has (HTTP 404, FTP 550), known-bad days (from config; not requested, and an
    existing file is moved to ``rejected/``) and deliveries that fail
    :func:`validate_osisaf_file` (moved to ``rejected/``) are recorded in
    ``out_dir/missing.json`` and asked for again on the next run. Other failures (retries
    used up, HTTP 403, FTP login refused, ...) pass to the day's next candidate, and that
    product is not asked for again in this run (its server is down: the fast-track file serves
    and is replaced later); a day no candidate serves then raises
    :class:`floecast.sources.http.DownloadError`.
    """
    first_day, last_day = _as_date(first_day), _as_date(last_day)
    if last_day < first_day:
        raise ValueError(f"last day {last_day} is before first day {first_day}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    full_grid = grid or Ease2Grid(hemisphere, 1)  # OSI SAF delivers the 25 km grid whatever the configured grid
    bad_days = {_as_date(d) for d in known_bad_days}
    result = FetchResult({"fetched": 0, "skipped": 0, "missing": 0, "replaced": 0}, {}, {}, [])
    own_session = session is None
    if session is None:
        import requests

        session = requests.Session()
    failing: dict[str, str] = {}  # products whose server failed in this run
    day = first_day
    try:
        while day <= last_day:
            candidates = [chain.product(product)] if product else chain.candidates(day)
            present = {name: out_dir / name for name in (p.filename(hemisphere, day) for p in chain.products)}
            if day in bad_days:
                result.missing[day] = "known bad day (config), not requested"
                for path in present.values():
                    if path.exists():
                        http.reject(path, "known bad day (config)")
            else:
                reasons, failure = [], None
                for candidate in candidates:
                    target = out_dir / candidate.filename(hemisphere, day)
                    if candidate.name in failing and candidate is not candidates[-1]:
                        reasons.append(f"{candidate.name}: not asked ({failing[candidate.name]})")
                        continue
                    url = candidate.url_for(chain.servers, hemisphere, day)
                    try:
                        fetched = remote.download(
                            url,
                            target,
                            session=session,
                            validate=lambda p, d=day, c=candidate: validate_osisaf_file(p, d, full_grid, c),
                            retries=retries,
                            backoff=backoff,
                            timeout=timeout,
                        )
                    except http.NotAvailable as exc:
                        protocol = "FTP" if url.startswith("ftp") else "HTTP"
                        reasons.append(f"{candidate.name}: not on the server ({protocol} {exc.status})")
                        continue
                    except http.InvalidFile as exc:
                        why = exc.reason.removeprefix(f"{target}: ")
                        reasons.append(f"{candidate.name}: invalid file, moved to {http.REJECTED_DIR}/: {why}")
                        continue
                    except http.DownloadError as exc:  # the server is failing: the next candidate serves
                        failing[candidate.name] = f"its server failed on {day}: {exc}"
                        reasons.append(f"{candidate.name}: {exc}")
                        failure = failure or exc
                        log.warning("%s: %s failed (%s); trying the next product", day, candidate.name, exc)
                        continue
                    result.counts[fetched.status] += 1
                    result.served[day] = candidate.name
                    for name, path in present.items():  # what the chosen file replaces
                        if name != target.name and path.exists():
                            result.replaced.append(_set_aside(path, day, candidate, chain, hemisphere))
                    break
                else:
                    if failure is not None:
                        raise failure
                    result.missing[day] = "; ".join(reasons)
                    log.warning("%s: %s", day, result.missing[day])
            day += dt.timedelta(days=1)
    finally:
        if own_session:
            session.close()
        if day > first_day:  # record what this run learnt, also when it stops early
            _write_missing(out_dir, first_day, day - dt.timedelta(days=1), result.missing)
            _record_replaced(out_dir, result.replaced)
    result.counts["missing"] = len(result.missing)
    result.counts["replaced"] = len(result.replaced)
    log.info("SIC %s %s..%s: %s", hemisphere, first_day, last_day, result.counts)
    return result


def served_days(folder: str | Path, chain: SicChain, hemisphere: str) -> dict[dt.date, tuple[str, SicProduct]]:
    """The file and product of each day in a raw folder; where two products' files are there for one day
    (an interrupted replacement), the better one (earlier in the day's candidates)."""
    days: dict[dt.date, tuple[str, SicProduct]] = {}
    for path in sorted(Path(folder).glob("ice_conc_*.nc")):
        product = chain.identify(path.name, hemisphere)
        if product is None:
            continue
        day = day_in_name(path.name)
        if day in days:
            order = [p.name for p in chain.candidates(day)] if any(p.serves(day) for p in chain.primary) else []
            rank = {name: i for i, name in enumerate(order)}
            if rank.get(product.name, len(order)) >= rank.get(days[day][1].name, len(order)):
                continue
        days[day] = (path.name, product)
    return days


def period_manifest(
    folder: str | Path, chain: SicChain, hemisphere: str, source: str, first_day: dt.date, last_day: dt.date, version: str
) -> dict[str, object]:
    """The manifest of a period's folder: the files, the product and version serving each day, the missing days
    and the files replaced so far."""
    folder = Path(folder)
    days = served_days(folder, chain, hemisphere)

    def log_of(name: str) -> list:
        path = folder / name
        return json.loads(path.read_text() or "[]") if path.exists() else []

    return {
        "source": source,
        "hemisphere": hemisphere,
        "first_day": first_day.isoformat(),
        "last_day": last_day.isoformat(),
        "files": sorted(name for name, _ in days.values()),
        "days": {
            day.isoformat(): {**product.as_record(), "file": name, "replaced_later": product.replaced_by is not None}
            for day, (name, product) in sorted(days.items())
        },
        "missing": log_of(MISSING_FILE),
        "replaced": log_of(REPLACED_FILE),
        "floecast_version": version,
    }
