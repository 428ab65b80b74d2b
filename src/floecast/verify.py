"""Hindcast scorecard: the ensemble against persistence, anomaly persistence, climatology
and the linear trend, by lead and by target month.

One row per (lead, method, month): ``month`` is the target day's month (1-12) or ``all``.
Deterministic scores (RMSE, MAE, binary accuracy, SIE error, IIEE) are computed for every
method; SPS for every method (a deterministic forecast is a 0/1 probability, so its SPS is
its IIEE); CRPS and the spread-skill ratio only for the ensemble (empty for the others).
All scores are over active ocean cells of the target month outside the polar hole.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from floecast import __version__, metrics
from floecast.calibrate import inflate, read_factors
from floecast.io import atomic_path
from floecast.members import member_lead, open_member_files
from floecast.store import read_store

SCORECARD_COLUMNS = [
    "lead_days",
    "method",
    "rmse",
    "binary_accuracy",
    "n_init_dates",
    "mae",
    "sie_error_km2",
    "iiee_km2",
    "sps_km2",
    "crps",
    "spread_skill",
    "month",
    "floecast_version",
]
ENSEMBLE = "ensemble_mean"
BASELINES = ("persistence", "anomaly_persistence", "climatology", "linear_trend")


def _scores(forecast: np.ndarray, observed: np.ndarray, mask: np.ndarray, area: float) -> dict[str, float]:
    errors = metrics.iiee(forecast, observed, area, mask)
    probability = (np.nan_to_num(forecast) > metrics.ICE_THRESHOLD).astype(np.float32)
    return {
        "rmse": metrics.rmse(forecast, observed, mask),
        "binary_accuracy": metrics.binary_accuracy(forecast, observed, mask),
        "mae": metrics.mae(forecast, observed, mask),
        "sie_error_km2": metrics.sie_error_km2(forecast, observed, area, mask),
        "iiee_km2": errors.iiee_km2,
        "sps_km2": metrics.sps_km2(probability, observed, area, mask),
    }


def _ensemble_scores(
    raw: np.ndarray, members: np.ndarray, observed: np.ndarray, mask: np.ndarray, area: float
) -> dict[str, float]:
    """Deterministic scores of the raw members' mean, probabilistic ones of the (calibrated) members."""
    scores = _scores(raw.mean(axis=0), observed, mask, area)
    sip = (np.nan_to_num(members) > metrics.ICE_THRESHOLD).mean(axis=0)
    scores["sps_km2"] = metrics.sps_km2(sip, observed, area, mask)
    scores["crps"] = metrics.crps(members, observed, mask)
    scores["spread_skill"] = metrics.spread_skill(members, observed, mask)
    return scores


def scorecard(
    member_paths: Sequence[str | Path],
    store_path: str | Path | Sequence[str | Path],
    out_csv: str | Path,
    statistics: str | Path | None = None,
    spread: str | Path | None = None,
) -> pd.DataFrame:
    """Every method's scores by lead and target month over the members' init dates; with a
    ``spread`` calibration file the probabilistic scores are of the calibrated members."""
    datasets, dates, leads = open_member_files(member_paths)
    store = read_store(store_path, statistics, leads=leads)
    area = float(store.attrs["cell_area_km2"])
    factors = read_factors(spread, leads)
    rows = []
    try:
        for k in range(1, leads + 1):
            fields = store.lead(dates, k)
            raw = member_lead(datasets, k)
            members = inflate(raw, factors[k - 1])
            forecasts = {
                "persistence": fields["latest"],
                "anomaly_persistence": metrics.anomaly_persistence(
                    fields["latest"], fields["clim_latest"], fields["clim_target"]
                ),
                "climatology": fields["clim_target"],
                "linear_trend": fields["trend"],
            }
            months = (dates + pd.Timedelta(days=k)).month.to_numpy()
            for month in ["all", *sorted(set(months))]:
                pick = np.ones(len(dates), bool) if month == "all" else months == month
                observed, mask = fields["observed"][pick], fields["mask"][pick]
                common = {"lead_days": k, "n_init_dates": int(pick.sum()), "month": month}
                scores = _ensemble_scores(raw[:, pick], members[:, pick], observed, mask, area)
                rows.append({**common, "method": ENSEMBLE, **scores})
                for method, values in forecasts.items():
                    rows.append({**common, "method": method, **_scores(values[pick], observed, mask, area)})
    finally:
        for ds in datasets:
            ds.close()
    table = pd.DataFrame(rows, columns=SCORECARD_COLUMNS).assign(floecast_version=__version__)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return table


def skill_summary(table: pd.DataFrame) -> list[str]:
    """The demo's acceptance figures: where the ensemble mean beats each baseline (RMSE), and
    the ensemble's spread-skill ratio at the longest lead."""
    if "month" in table:
        table = table[table["month"].astype(str) == "all"]
    wide = table.pivot(index="lead_days", columns="method", values="rmse")
    long_leads = wide[wide.index >= 14]
    short_leads = wide[wide.index <= 14]
    beats_persistence = bool((long_leads[ENSEMBLE] < long_leads["persistence"]).all())
    beats_climatology = bool((short_leads[ENSEMBLE] < short_leads["climatology"]).all())
    lines = [
        f"ensemble mean beats persistence at every lead >= 14 d: {beats_persistence}",
        f"ensemble mean beats climatology at every lead <= 14 d: {beats_climatology}",
    ]
    if "spread_skill" in table:
        ensemble = table[table["method"] == ENSEMBLE].set_index("lead_days")["spread_skill"]
        last = int(ensemble.index.max())
        ratio = float(ensemble.loc[last])
        lines.append(f"spread-skill ratio at lead {last} d: {ratio:.2f} (0.5-1.5 wanted: {0.5 <= ratio <= 1.5})")
    baselines = [m for m in BASELINES if m in wide]
    for lead, row in wide.iterrows():
        others = "  ".join(f"{m} {row[m]:.4f}" for m in baselines)
        lines.append(f"lead {lead:>3d} d  rmse ensemble {row[ENSEMBLE]:.4f}  {others}")
    return lines
