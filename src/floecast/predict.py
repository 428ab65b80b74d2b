"""One ensemble member's forecasts: the model run on the store's days (torch).

The member files it writes are described in ``floecast.members``; ``floecast.combine`` makes
the forecast file of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import xarray as xr

from floecast.channels import InputSpec
from floecast.dataset import SampleStore
from floecast.io import write_netcdf
from floecast.members import failed_member_dataset, member_dataset


def predict_member(
    weights: str | Path,
    store_path: str | Path | Sequence[str | Path],
    init_dates: Sequence[dt.date],
    out_path: str | Path,
    member: int,
    statistics: str | Path | None = None,
    expected_spec: dict | None = None,
    members: int | None = None,
) -> xr.Dataset:
    """One member's SIC for every lead of every init date, written to ``out_path``; for a member
    whose training failed for good, a file that says so (``failed = 1``), left out by ``combine``.
    With ``expected_spec`` (the config's training spec), weights trained on another are refused.
    ``members`` is the ensemble's size (``train.members``), which a distributional member needs: member k
    of n forecasts the quantile (k + 0.5) / n of its distribution."""
    from floecast.train import (
        DISTRIBUTIONAL,
        MC_DROPOUT,
        MemberFailed,
        default_device,
        ensemble_methods,
        forecast,
        load_member,
        member_quantile,
    )

    dates = pd.DatetimeIndex(init_dates)
    try:
        model, spec = load_member(weights, expected_spec)
    except MemberFailed as err:
        failed = failed_member_dataset(dates, member, str(err))
        write_netcdf(failed, out_path)
        return failed
    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    store = SampleStore.open(store_path, inputs, statistics, device=default_device())
    methods = ensemble_methods(spec)
    quantile = None
    if DISTRIBUTIONAL in methods:
        if not members or not 0 <= member < members:
            raise ValueError(
                f"{weights}: a distributional member needs the ensemble's size (--members, train.members) above its "
                f"number {member}, got {members}"
            )
        quantile = member_quantile(member, members)
    dropout_seed = int(spec["train"]["seed"]) + member if MC_DROPOUT in methods else None
    ds = member_dataset(
        forecast(model, store, dates, quantile=quantile, dropout_seed=dropout_seed),
        dates,
        land=store.land,
        yc=store.yc,
        xc=store.xc,
        member=member,
        weights=weights,
        store_sha256=store.attrs.get("content_sha256", ""),
    )
    write_netcdf(ds, out_path)
    return ds
