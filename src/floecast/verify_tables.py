"""The scorecard's side tables: reliability by lead group, and scores by region.

Both are filled lead by lead while the scorecard runs (:class:`ReliabilityTable`, :class:`RegionalTable`) and
written as CSV beside it (``reliability.csv``, ``scores_by_region.csv``; docs/output-format.md lists the columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from floecast import __version__, metrics
from floecast.io import atomic_path

RELIABILITY_BINS = 10
RELIABILITY_COLUMNS = [
    "date_set",
    "method",
    "lead_group",
    "bin_lower",
    "bin_upper",
    "count",
    "forecast_probability",
    "observed_frequency",
    "floecast_version",
]
REGION_COLUMNS = [
    "date_set",
    "lead_days",
    "method",
    "region",
    "lon_min",
    "lon_max",
    "n_init_dates",
    "rmse",
    "sie_error_km2",
    "iiee_km2",
    "brier",
    "floecast_version",
]


def lead_groups(leads: int) -> list[tuple[int, int]]:
    """Lead groups of the reliability diagram: the first week, the second, days 15-30, 31-60, 61-93, ... up to ``leads``."""
    bounds = [1, 8, 15, 31, 61, 94]
    while bounds[-1] <= leads:
        bounds.append(bounds[-1] + 90)
    groups = [(lo, min(hi - 1, leads)) for lo, hi in zip(bounds, bounds[1:], strict=False) if lo <= leads]
    return groups


def group_label(group: tuple[int, int]) -> str:
    return f"{group[0]}-{group[1]}"


class ReliabilityTable:
    """Counts of forecast probability and observed ice per bin, pooled over a lead group's cells and init dates."""

    def __init__(self, leads: int, bins: int = RELIABILITY_BINS) -> None:
        self.groups = lead_groups(leads)
        self.bins = bins
        self.sums: dict[tuple[str, str, str], np.ndarray] = {}  # (date_set, method, group) -> (3, bins)

    def add(self, date_set: str, method: str, lead: int, probability: np.ndarray, observed: np.ndarray, mask: np.ndarray) -> None:
        group = next(g for g in self.groups if g[0] <= lead <= g[1])
        table = metrics.reliability(probability, observed, mask, self.bins)
        key = (date_set, method, group_label(group))
        sums = self.sums.setdefault(key, np.zeros((3, self.bins)))
        sums[0] += table.count
        sums[1] += np.nan_to_num(table.forecast * table.count)
        sums[2] += np.nan_to_num(table.observed * table.count)

    def frame(self) -> pd.DataFrame:
        rows = []
        edges = np.arange(self.bins + 1) / self.bins
        for (date_set, method, group), (count, p_sum, o_sum) in self.sums.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                forecast, observed = p_sum / count, o_sum / count
            for b in range(self.bins):
                rows.append(
                    {
                        "date_set": date_set,
                        "method": method,
                        "lead_group": group,
                        "bin_lower": edges[b],
                        "bin_upper": edges[b + 1],
                        "count": int(count[b]),
                        "forecast_probability": forecast[b],
                        "observed_frequency": observed[b],
                    }
                )
        return pd.DataFrame(rows, columns=RELIABILITY_COLUMNS).assign(floecast_version=__version__)


class RegionalTable:
    """Scores of each method within each longitude sector of the hemisphere (``metrics.sectors``).

    The sectors tile the grid, so each score is gathered for every sector in one pass over the masked cells (counts
    by sector label with ``np.bincount``) rather than once per sector: the same numbers as ``metrics.rmse``,
    ``sie_error_km2``, ``iiee`` and ``brier_score`` on each sector's mask (tested), 7 to 36 times fewer passes.
    """

    def __init__(self, hemisphere: str, lon: np.ndarray, area_km2: float) -> None:
        self.sectors = metrics.sectors(hemisphere)
        masks = [metrics.sector_mask(lon, sector) for sector in self.sectors]
        if not (np.sum(masks, axis=0) == 1).all():
            raise ValueError(f"the {hemisphere} sectors do not tile the grid")
        self.labels = np.argmax(masks, axis=0)  # (H, W): each cell's sector
        self.area = area_km2
        self.rows: list[dict] = []

    def add(
        self,
        date_set: str,
        lead: int,
        method: str,
        forecast: np.ndarray,
        probability: np.ndarray,
        observed: np.ndarray,
        mask: np.ndarray,
    ) -> None:
        """One lead's rows: ``forecast`` the SIC (mean for an ensemble), ``probability`` of ice, (n, H, W) each."""
        n, sectors = len(observed), len(self.sectors)
        mask = np.broadcast_to(np.asarray(mask, bool), observed.shape)
        field = np.broadcast_to(np.arange(n)[:, None, None], observed.shape)[mask]
        label = np.broadcast_to(self.labels, observed.shape)[mask]
        key = field * sectors + label  # (init date, sector) of each masked cell
        f, o, p = (np.asarray(a, np.float64)[mask] for a in (forecast, observed, probability))
        missing = np.bincount(label, np.isnan(f) | np.isnan(o), sectors) > 0

        def per_sector(values: np.ndarray) -> np.ndarray:
            count = np.bincount(label, minlength=sectors)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(missing, np.nan, np.bincount(label, np.nan_to_num(values), sectors) / count)

        def area_per_field(cells: np.ndarray) -> np.ndarray:  # (n, sectors) km^2
            return np.bincount(key, cells, n * sectors).reshape(n, sectors) * self.area

        ice_f, ice_o = np.nan_to_num(f) > metrics.ICE_THRESHOLD, np.nan_to_num(o) > metrics.ICE_THRESHOLD
        rmse = np.sqrt(per_sector((f - o) ** 2))
        brier = per_sector((p - ice_o) ** 2)
        sie = np.where(missing, np.nan, (area_per_field(ice_f) - area_per_field(ice_o)).mean(axis=0))
        iiee = np.where(missing, np.nan, area_per_field(ice_f != ice_o).mean(axis=0))
        for i, sector in enumerate(self.sectors):
            self.rows.append(
                {
                    "date_set": date_set,
                    "lead_days": lead,
                    "method": method,
                    "region": sector.name,
                    "lon_min": sector.lon_min,
                    "lon_max": sector.lon_max % 360 if sector.lon_max > 360 else sector.lon_max,
                    "n_init_dates": n,
                    "rmse": rmse[i],
                    "sie_error_km2": sie[i],
                    "iiee_km2": iiee[i],
                    "brier": brier[i],
                }
            )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=REGION_COLUMNS).assign(floecast_version=__version__)


def write_csv(table: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")


def grid_longitudes(hemisphere: str, xc: np.ndarray, yc: np.ndarray) -> np.ndarray:
    """Longitude of every cell centre (y, x) of an EASE2 grid given by its coordinates (metres)."""
    import pyproj

    from floecast.grid import HEMISPHERE_EPSG

    to_geo = pyproj.Transformer.from_crs(f"EPSG:{HEMISPHERE_EPSG[hemisphere]}", "EPSG:4326", always_xy=True)
    xx, yy = np.meshgrid(np.asarray(xc, np.float64), np.asarray(yc, np.float64))
    lon, _ = to_geo.transform(xx, yy)
    return np.asarray(lon)


def date_subsets(dates: pd.DatetimeIndex, seas5_dates: Sequence[pd.Timestamp] | None) -> dict[str, np.ndarray]:
    """The scorecard's date sets as index arrays into ``dates``: ``hindcast`` (every one) and, with SEAS5,
    ``seas5`` (the init dates SEAS5 also starts from)."""
    sets = {"hindcast": np.arange(len(dates))}
    if seas5_dates is not None:
        sets["seas5"] = np.flatnonzero(dates.isin(pd.DatetimeIndex(seas5_dates)))
    return sets
