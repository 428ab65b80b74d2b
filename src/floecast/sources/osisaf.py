"""OSI-SAF sea-ice concentration files (OSI-450-a CDR v3.0, OSI-430-a ICDR v3.0) on EASE2.

File names, variables and attributes follow the products' layout (see
docs/data-sources.md): ``ice_conc`` in percent, packed as integers with scale 0.01;
``status_flag`` with 1 = land and 2 = lake; ``xc``/``yc`` in km with ``yc`` descending;
a ``Lambert_Azimuthal_Grid`` grid mapping. The synthetic source writes the same files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import netCDF4
import numpy as np

from floecast.grid import HEMISPHERE_CODE, Ease2Grid
from floecast.io import atomic_path

CDR_LAST_DAY = dt.date(2020, 12, 31)  # OSI-450-a ends here; OSI-430-a continues it
ICE_CONC_FILL = -32767  # not verified for v3 (data-formats.md); v2 files use it
STATUS_LAND = 1
STATUS_LAKE = 2
STATUS_FLAG_MASKS = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=np.int16)
STATUS_FLAG_MEANINGS = "land lake open_water_filtered land_spill_over high_t2m spatial_interp temporal_interp max_ice_climo"
EPOCH = dt.datetime(1978, 1, 1)


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
