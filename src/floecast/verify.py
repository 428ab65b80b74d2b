"""Hindcast scorecard: the ensemble mean against persistence and climatology."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from floecast.channels import InputSpec
from floecast.dataset import SampleStore
from floecast.io import atomic_path
from floecast.metrics import binary_accuracy, rmse
from floecast.predict import open_members

SCORECARD_COLUMNS = ["lead_days", "method", "rmse", "binary_accuracy", "n_init_dates"]


def scorecard(
    member_paths: Sequence[str | Path],
    store_path: str | Path | Sequence[str | Path],
    out_csv: str | Path,
    statistics: str | Path | None = None,
) -> pd.DataFrame:
    """One row per (lead, method); RMSE and binary accuracy over the active cells of each target month."""
    members = open_members(member_paths)
    ensemble_mean = members.mean("member").values
    dates = pd.DatetimeIndex(members["init_time"].values)
    leads = members.sizes["leadtime"]
    spec = InputSpec(sic_lags=(1,), atmos=(), sic_trend_years=0, leads=leads)
    store = SampleStore.open(store_path, spec, statistics)
    observed, active = store.targets(dates)
    _, climatology, latest = store.inputs(dates)
    forecasts = {
        "ensemble_mean": ensemble_mean,
        "persistence": np.broadcast_to(latest, observed.shape),
        "climatology": climatology,
    }
    rows = []
    for k in range(leads):
        for method, values in forecasts.items():
            pred = np.nan_to_num(values[:, k])
            rows.append(
                {
                    "lead_days": k + 1,
                    "method": method,
                    "rmse": rmse(pred, observed[:, k], active[:, k]),
                    "binary_accuracy": binary_accuracy(pred, observed[:, k], active[:, k]),
                    "n_init_dates": len(dates),
                }
            )
    table = pd.DataFrame(rows, columns=SCORECARD_COLUMNS)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return table


def skill_summary(table: pd.DataFrame) -> list[str]:
    """The demo's acceptance figures: where the ensemble mean beats each baseline (RMSE)."""
    wide = table.pivot(index="lead_days", columns="method", values="rmse")
    long_leads = wide[wide.index >= 14]
    short_leads = wide[wide.index <= 14]
    beats_persistence = bool((long_leads["ensemble_mean"] < long_leads["persistence"]).all())
    beats_climatology = bool((short_leads["ensemble_mean"] < short_leads["climatology"]).all())
    return [
        f"ensemble mean beats persistence at every lead >= 14 d: {beats_persistence}",
        f"ensemble mean beats climatology at every lead <= 14 d: {beats_climatology}",
        *(
            f"lead {lead:>3d} d  rmse ensemble {row.ensemble_mean:.4f}  "
            f"persistence {row.persistence:.4f}  climatology {row.climatology:.4f}"
            for lead, row in wide.iterrows()
        ),
    ]
