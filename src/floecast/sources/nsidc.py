"""Calibration of the synthetic source on the observed NSIDC daily Arctic sea-ice extent.

Data: Fetterer, F., K. Knowles, W. N. Meier, M. Savoie, and A. K. Windnagel. Sea Ice
Index, Version 3 (NSIDC G02135), Northern Hemisphere daily extent 1978-10-26 to
2022-03-02. Boulder, Colorado USA. NSIDC. doi:10.7265/N5K072F8. Shipped as
``floecast/data/nsidc_n_seaice_extent_daily_v3.csv``.

The record is decomposed as ``extent(t) = clim(doy) + slope(doy) * (year - REF_YEAR) +
anomaly(t)``: a seasonal cycle whose linear trend itself varies with the season (the
September trend is about twice the March one), and the observed anomalies, which keep
the real interannual variability (the 2007 and 2012 minima among them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

REF_YEAR = 2000
FIT_YEARS = (1979, 2021)  # complete years of the record
DOY_WINDOW = 15  # half-width (days) of the seasonal smoothing of the fit


def read_nsidc_extent() -> pd.Series:
    """The daily extent in km^2, indexed by date, as shipped (gaps left as they are)."""
    path = resources.files("floecast") / "data" / "nsidc_n_seaice_extent_daily_v3.csv"
    with resources.as_file(path) as csv:
        table = pd.read_csv(csv, skiprows=[1], skipinitialspace=True)
    dates = pd.to_datetime(dict(year=table["Year"], month=table["Month"], day=table["Day"]))
    return pd.Series(table["Extent"].to_numpy() * 1e6, index=pd.DatetimeIndex(dates), name="extent_km2")


def _day_of_year(index: pd.DatetimeIndex) -> np.ndarray:
    """Day of year 0..364, with 29 February folded onto 28 February."""
    doy = index.day_of_year.to_numpy() - 1
    leap_after_feb = index.is_leap_year & (index.month > 2)
    return np.where(leap_after_feb | ((index.month == 2) & (index.day == 29)), doy - 1, doy)


@dataclass(frozen=True)
class ExtentModel:
    """Seasonal cycle, seasonal trend and observed anomalies of the Arctic extent (km^2)."""

    clim: np.ndarray  # (365,)
    slope: np.ndarray  # (365,) km^2 per year
    anomaly: pd.Series  # daily, gap-free, over the record
    anomaly_std: float
    anomaly_lag1: float  # day-to-day autocorrelation of the anomaly

    def expected(self, dates: pd.DatetimeIndex) -> np.ndarray:
        doy = _day_of_year(dates)
        return self.clim[doy] + self.slope[doy] * (dates.year.to_numpy() - REF_YEAR)

    def observed_anomaly(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """The observed anomaly on each date, NaN outside the record."""
        return self.anomaly.reindex(dates).to_numpy()


@lru_cache(maxsize=1)
def fit_extent_model() -> ExtentModel:
    """Least-squares fit of clim + slope per day of year, smoothed over +-DOY_WINDOW days."""
    observed = read_nsidc_extent()
    daily = observed.resample("D").mean().interpolate(limit_area="inside")
    fit = daily[(daily.index.year >= FIT_YEARS[0]) & (daily.index.year <= FIT_YEARS[1])].dropna()
    doy = _day_of_year(fit.index)
    years = fit.index.year.to_numpy() - REF_YEAR
    clim = np.empty(365)
    slope = np.empty(365)
    for day in range(365):
        distance = np.abs((doy - day + 182) % 365 - 182)
        sel = distance <= DOY_WINDOW
        design = np.column_stack([np.ones(sel.sum()), years[sel]])
        (clim[day], slope[day]), *_ = np.linalg.lstsq(design, fit.to_numpy()[sel], rcond=None)
    model_without_anomaly = ExtentModel(clim, slope, pd.Series(dtype=float), 0.0, 0.0)
    anomaly = daily.dropna() - model_without_anomaly.expected(daily.dropna().index)
    anomaly = anomaly.reindex(daily.index).interpolate(limit_area="inside").dropna()
    values = anomaly.to_numpy()
    lag1 = float(np.corrcoef(values[:-1], values[1:])[0, 1])
    return ExtentModel(clim, slope, anomaly, float(values.std()), lag1)
