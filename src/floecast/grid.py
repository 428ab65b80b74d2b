"""EASE-Grid 2.0 (EPSG:6931 north, EPSG:6932 south) and its exact coarsenings.

The 25 km grid has 432 x 432 cells with centres at -5387.5 ... +5387.5 km. A demo grid
with ``coarsen = f`` aggregates f x f blocks of it, so its cell centres are the means of
the 25 km centres in each block and its cells are exactly equal-area.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyproj

BASE_CELL_M = 25_000.0
BASE_SIZE = 432
HEMISPHERE_EPSG = {"north": 6931, "south": 6932}
HEMISPHERE_CODE = {"north": "nh", "south": "sh"}


@dataclass(frozen=True)
class Ease2Grid:
    """One hemisphere's EASE2 grid, possibly an exact block coarsening of the 25 km grid."""

    hemisphere: str
    coarsen: int = 1

    def __post_init__(self) -> None:
        if self.hemisphere not in HEMISPHERE_EPSG:
            raise ValueError(f"hemisphere must be one of {sorted(HEMISPHERE_EPSG)}, got {self.hemisphere!r}")
        if self.coarsen < 1 or BASE_SIZE % self.coarsen:
            raise ValueError(f"grid.coarsen must divide {BASE_SIZE}, got {self.coarsen}")

    @property
    def epsg(self) -> int:
        return HEMISPHERE_EPSG[self.hemisphere]

    @property
    def crs(self) -> pyproj.CRS:
        return pyproj.CRS.from_epsg(self.epsg)

    @property
    def size(self) -> int:
        return BASE_SIZE // self.coarsen

    @property
    def shape(self) -> tuple[int, int]:
        return (self.size, self.size)

    @property
    def cell_m(self) -> float:
        return BASE_CELL_M * self.coarsen

    @property
    def cell_area_km2(self) -> float:
        return (self.cell_m / 1000.0) ** 2

    @cached_property
    def xc(self) -> np.ndarray:
        """Cell-centre x in metres, ascending (the 25 km centres averaged per block)."""
        base = (np.arange(BASE_SIZE) - (BASE_SIZE - 1) / 2.0) * BASE_CELL_M
        return base.reshape(self.size, self.coarsen).mean(axis=1)

    @cached_property
    def yc(self) -> np.ndarray:
        """Cell-centre y in metres, descending (north at the top, as OSI-SAF files)."""
        return self.xc[::-1].copy()

    @cached_property
    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """Longitude and latitude (degrees) of every cell centre, shape (y, x)."""
        to_geo = pyproj.Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        xx, yy = np.meshgrid(self.xc, self.yc)
        lon, lat = to_geo.transform(xx, yy)
        return np.asarray(lon), np.asarray(lat)

    @property
    def lon(self) -> np.ndarray:
        return self.lonlat[0]

    @property
    def lat(self) -> np.ndarray:
        return self.lonlat[1]

    def coords(self) -> dict[str, tuple[str, np.ndarray, dict[str, str]]]:
        """``yc``/``xc`` (metres) as xarray coordinates."""
        return {
            "yc": ("yc", self.yc, {"units": "m", "standard_name": "projection_y_coordinate", "axis": "Y"}),
            "xc": ("xc", self.xc, {"units": "m", "standard_name": "projection_x_coordinate", "axis": "X"}),
        }

    @cached_property
    def crs_wkt(self) -> str:
        return self.crs.to_wkt()

    def grid_mapping_attrs(self) -> dict[str, object]:
        """CF attributes of the ``Lambert_Azimuthal_Grid`` variable, as in OSI-SAF files."""
        return {
            "grid_mapping_name": "lambert_azimuthal_equal_area",
            "latitude_of_projection_origin": 90.0 if self.hemisphere == "north" else -90.0,
            "longitude_of_projection_origin": 0.0,
            "false_easting": 0.0,
            "false_northing": 0.0,
            "semi_major_axis": 6378137.0,
            "inverse_flattening": 298.257223563,
            "crs_wkt": self.crs_wkt,
        }


def coarsen_blocks(field: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor blocks of the last two axes (NaN-aware)."""
    *lead, ny, nx = field.shape
    if ny % factor or nx % factor:
        raise ValueError(f"shape {field.shape} is not divisible by {factor}")
    blocks = field.reshape(*lead, ny // factor, factor, nx // factor, factor)
    with warnings.catch_warnings():  # an all-NaN block (e.g. all land) is NaN, as intended
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(blocks, axis=(-3, -1))
