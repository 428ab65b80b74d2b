"""Figures of a forecast: maps of mean and std at chosen leads, extent by lead, skill by lead."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from floecast.io import atomic_path  # noqa: E402
from floecast.metrics import ICE_THRESHOLD, sea_ice_extent  # noqa: E402
from floecast.predict import open_members  # noqa: E402


def _save(fig: plt.Figure, out_png: str | Path) -> None:
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_maps(forecast_path: str | Path, leads: Sequence[int], out_png: str | Path) -> None:
    """Ensemble mean (with the 15 % ice edge) and std at each lead, land in grey."""
    with xr.open_dataset(forecast_path) as ds:
        ds = ds.load()
    leads = [lead for lead in leads if lead in ds["leadtime"].values]
    land = ds["land"].values.astype(bool)
    fig, axes = plt.subplots(2, len(leads), figsize=(3.2 * len(leads), 6.4), squeeze=False)
    init = pd.Timestamp(ds["time"].values[0]).date()
    for col, lead in enumerate(leads):
        for row, quantity, cmap, vmax in ((0, "mean", "Blues_r", 1.0), (1, "std", "magma", 0.3)):
            ax = axes[row, col]
            field = ds["sic"].sel(leadtime=lead, quantity=quantity).isel(time=0).values
            image = ax.imshow(np.ma.masked_where(land, field), cmap=cmap, vmin=0, vmax=vmax)
            ax.imshow(np.ma.masked_where(~land, land), cmap="Greys", vmin=0, vmax=2, alpha=0.8)
            if quantity == "mean":
                ax.contour(np.where(land, 0, field), levels=[ICE_THRESHOLD], colors="red", linewidths=0.8)
            ax.set_title(f"{quantity}, lead {lead} d")
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(image, ax=ax, shrink=0.7)
    fig.suptitle(f"SIC forecast from {init} ({ds.attrs.get('model_run', '')})")
    _save(fig, out_png)


def plot_extent(
    forecast_path: str | Path,
    member_paths: Sequence[str | Path],
    statistics_path: str | Path,
    cell_area_km2: float,
    out_png: str | Path,
) -> None:
    """Extent by lead: every member, the ensemble range, and the training-years climatology."""
    members = open_members(member_paths).isel(init_time=0)
    with xr.open_dataset(forecast_path) as ds:
        valid = pd.DatetimeIndex(ds["valid_time"].values)
        init = pd.Timestamp(ds["time"].values[0]).date()
    with xr.open_dataset(statistics_path) as stats:
        clim = stats["sic_clim"].values[valid.day_of_year.to_numpy() - 1]
    leads = members["leadtime"].values
    extents = sea_ice_extent(members.values, cell_area_km2) / 1e6
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.fill_between(leads, extents.min(axis=0), extents.max(axis=0), color="tab:blue", alpha=0.25, label="ensemble range")
    for k, series in enumerate(extents):
        ax.plot(leads, series, color="tab:blue", lw=0.6, alpha=0.7, label="members" if k == 0 else None)
    ax.plot(leads, extents.mean(axis=0), color="tab:blue", lw=2, label="member mean")
    ax.plot(leads, sea_ice_extent(clim, cell_area_km2) / 1e6, color="k", ls="--", label="observed climatology (training years)")
    ax.set_xlabel("lead time (days)")
    ax.set_ylabel("sea-ice extent (million km²)")
    ax.set_title(f"Extent forecast from {init}")
    ax.legend(fontsize=8)
    _save(fig, out_png)


def plot_skill(scorecard_csv: str | Path, out_png: str | Path) -> None:
    table = pd.read_csv(scorecard_csv)
    fig, ax = plt.subplots(figsize=(7, 4))
    for method, rows in table.groupby("method"):
        ax.plot(rows["lead_days"], rows["rmse"], label=method)
    ax.set_xlabel("lead time (days)")
    ax.set_ylabel("RMSE over active cells")
    ax.set_title("Hindcast skill, test years")
    ax.legend()
    _save(fig, out_png)
