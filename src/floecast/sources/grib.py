"""What the GRIB readers (HRES open data, SEAS5) ask ecCodes about a message's grid.

A module of its own, without a downloader's imports: the SEAS5 reader runs in the
preprocess env too (``regrid_seas5``), which has no ``requests``.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def regular_grid_values(lat: Sequence[float], lon: Sequence[float]) -> dict[str, float | int]:
    """The keys that place a regular latitude/longitude grid (``lat`` from north to south, ``lon``
    eastwards, equal steps) in a GRIB message, as ``eccodes.codes_set_key_vals`` takes them: the
    writers of the SEAS5-like synthetic files and of the test servers' GRIB files."""
    step = float(lat[0] - lat[1])
    return {
        "Ni": len(lon),
        "Nj": len(lat),
        "latitudeOfFirstGridPointInDegrees": float(lat[0]),
        "longitudeOfFirstGridPointInDegrees": float(lon[0]) % 360.0,
        "latitudeOfLastGridPointInDegrees": float(lat[-1]),
        "longitudeOfLastGridPointInDegrees": float(lon[-1]) % 360.0,
        "iDirectionIncrementInDegrees": step,
        "jDirectionIncrementInDegrees": step,
    }
