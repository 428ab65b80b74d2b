"""How gaps in gridded inputs are filled, in space and in time.

* :func:`fill_from_nearest`: cells a source never defines (its own land: a climate model's
  coastline differs from the observations') take the value of the nearest cell it does
  define, on the same day. The EASE2 grid is equal-area, so the nearest cell in grid
  index space is the nearest on the ground to within the grid's small distortion.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt


def fill_from_nearest(values: np.ndarray, undefined: np.ndarray) -> np.ndarray:
    """``values`` (..., y, x) with the cells of ``undefined`` (y, x) set from the nearest other cell.

    Every field along the leading axes takes its own values (a day's coast from that day).
    """
    undefined = np.asarray(undefined, bool)
    if not undefined.any():
        return values
    if undefined.all():
        raise ValueError("no cell is defined: nothing to fill from")
    _, (iy, ix) = distance_transform_edt(undefined, return_indices=True)
    return values[..., iy, ix]
