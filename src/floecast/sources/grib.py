"""What the GRIB readers (HRES open data, SEAS5) ask ecCodes about a message's grid.

A module of its own, without a downloader's imports: the SEAS5 reader runs in the
preprocess env too (``regrid_seas5``), which has no ``requests``.
"""

from __future__ import annotations

# the keys of a regular latitude/longitude grid, in the order the readers unpack them
GRID_KEYS = (
    "gridType",
    "Ni",
    "Nj",
    "latitudeOfFirstGridPointInDegrees",
    "longitudeOfFirstGridPointInDegrees",
    "iDirectionIncrementInDegrees",
    "jDirectionIncrementInDegrees",
    "iScansNegatively",
    "jScansPositively",
    "jPointsAreConsecutive",
)
