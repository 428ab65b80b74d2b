"""Spread calibration of the ensemble, fitted on the validation years.

Members that differ only in their seed agree far more than their error warrants (the demo's
spread-skill ratio is about 0.05); distributional members come close (about 0.9,
docs/model-card.md). Each lead's spread is therefore scaled about the
ensemble mean by the factor that makes the spread equal the ensemble mean's RMSE over the
validation years (never the test years): member' = mean + factor * (member - mean),
clipped to [0, 1]. The mean is unchanged; the std, the sea-ice probability, CRPS and the
spread-skill ratio are of the calibrated members.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from floecast import __version__, metrics
from floecast.io import atomic_path
from floecast.members import member_lead, open_member_files
from floecast.store import read_store

MAX_FACTOR = 100.0  # a guard against a degenerate (all-equal) ensemble


def spread_factors(
    member_paths: Sequence[str | Path], store_path: str | Path | Sequence[str | Path], statistics: str | Path | None = None
) -> np.ndarray:
    """Per lead: RMSE of the ensemble mean / mean spread, over the members' init dates."""
    datasets, dates, leads = open_member_files(member_paths)
    try:
        if len(datasets) < 2:
            raise ValueError(f"spread calibration needs at least 2 members with forecasts, got {len(datasets)}")
        store = read_store(store_path, statistics, leads=leads)
        factors = []
        for k in range(1, leads + 1):
            fields = store.lead(dates, k)
            ratio = metrics.spread_skill(member_lead(datasets, k), fields["observed"], fields["mask"])
            factors.append(min(1.0 / ratio, MAX_FACTOR) if ratio > 0 else MAX_FACTOR)
    finally:
        for ds in datasets:
            ds.close()
    return np.asarray(factors, np.float32)


def write_factors(path: str | Path, factors: np.ndarray, member_paths: Sequence[str | Path], years: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps(
                {
                    "factors": [round(float(f), 4) for f in factors],
                    "fitted_on": years,
                    "members": [str(p) for p in member_paths],
                    "floecast_version": __version__,
                },
                indent=2,
            )
        )


def read_factors(path: str | Path | None, leads: int) -> np.ndarray:
    """The per-lead factors of a calibration file (ones without one)."""
    if path is None:
        return np.ones(leads, np.float32)
    factors = np.asarray(json.loads(Path(path).read_text())["factors"], np.float32)
    if len(factors) != leads:
        raise ValueError(f"{path}: {len(factors)} factors for {leads} leads")
    return factors


def inflate(members: np.ndarray, factors: np.ndarray | float, member_axis: int = 0) -> np.ndarray:
    """Members spread about their mean by ``factors`` (broadcast against the members without
    their member axis, e.g. (leads, 1, 1) for (m, leads, H, W)), clipped to [0, 1]."""
    mean = members.mean(axis=member_axis, keepdims=True)
    return np.clip(mean + np.expand_dims(np.asarray(factors, np.float32), member_axis) * (members - mean), 0.0, 1.0)
