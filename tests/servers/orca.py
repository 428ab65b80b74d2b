"""A small tripolar-like ocean grid, ORCA-like in the ways that matter to regridding.

North of its southern edge, the rows are confocal ellipses around two grid poles on a polar plane
(spherical polar stereographic), so the top row is the north fold (column i and column ni - 1 - i are
the same point); the grid poles sit at longitudes 100 and -80 (over Siberia and Canada, as ORCA's),
so longitudes jump from 180 to -180 inside every row (the seam); and the first column is repeated
at the end, as ORCA's halo columns are.
"""

from __future__ import annotations

import numpy as np

EARTH_KM = 6371.0


def stereographic_to_lonlat(x_km: np.ndarray, y_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The north polar stereographic plane (spherical, true at the pole) to longitude/latitude in degrees."""
    r = np.hypot(x_km, y_km)
    lat = 90.0 - 2.0 * np.degrees(np.arctan(r / (2.0 * EARTH_KM)))
    return np.degrees(np.arctan2(y_km, x_km)), lat


def tripolar_like(ni: int = 144, nj: int = 72, south_lat: float = 30.0, focus_lat: float = 78.0) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) of shape (nj, ni + 1): elliptic rows from ``south_lat`` (row 0) to the fold between the
    two grid poles at ``focus_lat`` (the last row), plus a halo column repeating the first."""
    focus = 2.0 * EARTH_KM * np.tan(np.radians(90.0 - focus_lat) / 2.0)
    edge = 2.0 * EARTH_KM * np.tan(np.radians(90.0 - south_lat) / 2.0)
    u = np.linspace(np.arccosh(edge / focus), 0.0, nj)  # the last row (u = 0) is the fold
    v = -np.pi + 2.0 * np.pi * (np.arange(ni) + 0.5) / ni
    uu, vv = np.meshgrid(u, v, indexing="ij")
    lon, lat = stereographic_to_lonlat(focus * np.cosh(uu) * np.cos(vv), focus * np.sinh(uu) * np.sin(vv))
    lon = (lon + 100.0 + 180.0) % 360.0 - 180.0  # the seam (180 -> -180) now lies inside every row
    return np.concatenate([lat, lat[:, :1]], axis=1), np.concatenate([lon, lon[:, :1]], axis=1)
