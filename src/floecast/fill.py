"""How gaps in gridded inputs are filled, in space and in time.

* :func:`fill_from_nearest`: cells a source never defines (its own land: a climate model's
  coastline differs from the observations') take the value of the nearest cell it does
  define, on the same day. The EASE2 grid is equal-area, so the nearest cell in grid
  index space is the nearest on the ground to within the grid's small distortion.
* :func:`causal_daily`: daily values from monthly means that use, for each day, only
  months that have ended by that day; days past the newest month persist its value and are
  flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
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


def month_ends(months: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The last day of each month (``months``: any day in the month)."""
    return pd.DatetimeIndex(months).to_period("M").to_timestamp(how="end").normalize()


def _day_numbers(days: pd.DatetimeIndex) -> np.ndarray:
    """Days since 1970-01-01 as floats, whatever the index's time unit."""
    return pd.DatetimeIndex(days).to_numpy().astype("datetime64[D]").astype(np.int64).astype(np.float64)


def causal_daily(months: pd.DatetimeIndex, values: np.ndarray, days: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Daily values of monthly means that never use a month before it has ended.

    The mean of month k is placed at the last day of month k + 1 (by then months k and k + 1
    have both ended) and days are interpolated linearly between these knots. So the value of
    day d depends only on months whose last day is on or before d: a forecast's inputs (the
    days before its init date) use only months complete before the init date. The price is
    a delay of about six weeks against the centred mean.

    ``months`` must be consecutive (any day in each month). Days after the last knot persist
    the last month's value; days before the first knot take the first month's value (a month
    that may not have ended yet). Both are flagged in the returned ``persisted`` (bool per
    day). Returns ``(daily (len(days), ...), persisted)``.
    """
    months = pd.DatetimeIndex(months).to_period("M")
    if len(months) == 0:
        raise ValueError("no months to interpolate from")
    if len(months) > 1 and not (np.diff(months.asi8) == 1).all():
        raise ValueError(f"months are not consecutive: {[str(m) for m in months]}")
    knots = (months + 1).to_timestamp(how="end").normalize()  # the last day of the next month
    days = pd.DatetimeIndex(days).normalize()
    t_knots = _day_numbers(knots)
    t_days = _day_numbers(days)
    values = np.asarray(values)
    k = np.searchsorted(t_knots, t_days, side="right") - 1  # the knot on or before each day
    lower = np.clip(k, 0, len(t_knots) - 1)
    upper = np.clip(k + 1, 0, len(t_knots) - 1)
    span = t_knots[upper] - t_knots[lower]
    weight = np.where(span > 0, (t_days - t_knots[lower]) / np.where(span > 0, span, 1.0), 0.0)
    weight = np.where(k < 0, 0.0, weight)  # before the first knot: the first month
    shape = (-1,) + (1,) * (values.ndim - 1)
    daily = values[lower] * (1.0 - weight).reshape(shape) + values[upper] * weight.reshape(shape)
    persisted = (t_days > t_knots[-1]) | (k < 0)  # past the newest knot, or before the first one
    return daily.astype(values.dtype, copy=False), persisted
