"""The scorecard's probabilistic references, made of the training years' observed SIC.

- ``climatological_ensemble``: each training year's SIC on the valid day (the same month and day; 29 February
  is 28 February in a common year) is one member: what an ensemble knows with no information about the init date.
- ``dressed_anomaly_persistence``: anomaly persistence plus the training years' errors of anomaly persistence at
  that lead. Each training year gives one member: the error (observed - anomaly persistence) of the anomaly
  persistence forecast made in that year for the same valid calendar day at the same lead, cell by cell, added to
  today's anomaly persistence and clipped to [0, 1]. So the members spread as far as anomaly persistence erred at
  that lead and season in the training years, where it erred.

A training year is a member where the store holds every day it needs (the dressed persistence needs the day
before its init date, so the first stored year drops out for valid days early in the year unless the year before
it is stored): the members are the same years for every init date of a lead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from floecast import metrics
from floecast.store import SIC_STEPS, read_sic, store_parts

log = logging.getLogger(__name__)

CLIMATOLOGICAL_ENSEMBLE = "climatological_ensemble"
DRESSED_ANOMALY_PERSISTENCE = "dressed_anomaly_persistence"
REFERENCE_ENSEMBLES = (CLIMATOLOGICAL_ENSEMBLE, DRESSED_ANOMALY_PERSISTENCE)


def same_day_in(days: pd.DatetimeIndex, year: int) -> pd.DatetimeIndex:
    """``days`` moved to ``year``, keeping month and day (29 February to 28 February in a common year)."""
    return pd.DatetimeIndex([day + pd.DateOffset(years=year - day.year) for day in days])


@dataclass
class TrainingYears:
    """The training years' observed SIC (uint8 steps) by day and the climatology (366, H, W) fitted on them."""

    dates: pd.DatetimeIndex
    sic: np.ndarray
    sic_clim: np.ndarray
    years: Sequence[int]

    @classmethod
    def open(cls, paths: str | Path | Sequence[str | Path], sic_clim: np.ndarray, years: Sequence[int]) -> TrainingYears:
        if not years:
            raise ValueError("the reference ensembles need the training years (statistics.nc: training_years)")
        dates, sic = read_sic(paths)
        missing = sorted(set(years) - set(dates.year))
        if missing:
            raise ValueError(f"{store_parts(paths)[0].parent}: the training store lacks the years {missing}")
        return cls(dates, sic, sic_clim, list(years))

    def _where(self, days: pd.DatetimeIndex) -> np.ndarray:
        """Index of each day in the store, -1 where it is not stored."""
        return self.dates.get_indexer(days)

    def _field(self, index: np.ndarray) -> np.ndarray:
        return self.sic[index].astype(np.float32) / SIC_STEPS

    def climatological_ensemble(self, targets: pd.DatetimeIndex) -> np.ndarray:
        """(members, n, H, W): each training year's SIC on the valid days ``targets``."""
        members = [self._where(same_day_in(targets, year)) for year in self.years]
        held = [self._field(index) for index in members if (index >= 0).all()]
        if not held:
            raise ValueError(
                f"no training year ({self.years[0]}-{self.years[-1]}) holds every valid day "
                f"({self.dates[0].date()} .. {self.dates[-1].date()} are stored)"
            )
        return np.stack(held)

    def anomaly_persistence_errors(self, targets: pd.DatetimeIndex, lead: int) -> np.ndarray:
        """(members, n, H, W): observed - anomaly persistence at ``lead`` in each training year, valid on the same
        calendar days as ``targets``. A ValueError when no training year holds every day it needs."""
        errors = []
        for year in self.years:
            valid = same_day_in(targets, year)
            before_init = valid - pd.Timedelta(days=lead + 1)  # the latest day anomaly persistence starts from
            index, latest = self._where(valid), self._where(before_init)
            if (index < 0).any() or (latest < 0).any():
                continue
            forecast = metrics.anomaly_persistence(
                self._field(latest),
                self.sic_clim[before_init.day_of_year.to_numpy() - 1],
                self.sic_clim[valid.day_of_year.to_numpy() - 1],
            )
            errors.append(self._field(index) - forecast)
        if not errors:
            raise ValueError(
                f"no training year ({self.years[0]}-{self.years[-1]}) holds the days anomaly persistence at lead {lead} "
                f"needs ({self.dates[0].date()} .. {self.dates[-1].date()} are stored)"
            )
        return np.stack(errors)


def dressed(forecast: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """A deterministic ``forecast`` (n, H, W) dressed with ``errors`` (members, n, H, W): members clipped to [0, 1]."""
    return np.clip(np.asarray(forecast, np.float32)[None] + errors, 0.0, 1.0)


def reference_ensembles(
    training: TrainingYears, targets: pd.DatetimeIndex, lead: int, anomaly_persistence: np.ndarray
) -> dict[str, np.ndarray]:
    """The references' members at one lead, by method name. A reference no training year can make (a store
    whose first training year has no days before it) is left out of the scorecard, and the log says why."""
    makers = {
        CLIMATOLOGICAL_ENSEMBLE: lambda: training.climatological_ensemble(targets),
        DRESSED_ANOMALY_PERSISTENCE: lambda: dressed(anomaly_persistence, training.anomaly_persistence_errors(targets, lead)),
    }
    made = {}
    for name, make in makers.items():
        try:
            made[name] = make()
        except ValueError as err:
            log.warning("%s at lead %d left out of the scorecard: %s", name, lead, err)
    return made
