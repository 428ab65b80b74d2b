"""Consistency across sensors: a newer SIC product against the record the model was trained on.

On the days both products have (the overlap of OSI-430-a, SSMIS, and OSI-438, AMSR2:
2021-01-01 to 2025-10-16), :func:`compare` measures per day, on the 25 km grid:

* the **bias**: the mean of candidate minus reference over the ocean cells where either
  product has ice (SIC > 0), so the open ocean, zero in both, does not dilute it;
* the **RMS difference** over the same cells;
* the **disagreement at the 15 % edge**: the area of the ocean cells that one product
  counts as ice (SIC > 15 %) and the other not (the integrated ice-edge error of one
  product against the other), also as a share of the area either counts as ice.

:func:`monthly_table` averages the days of each month (a CSV table) and
:func:`plot_report` draws it. :func:`fit_mapping` fits a quantile mapping of the
candidate onto the reference per calendar month (from histograms at the products'
0.01 % resolution, so the whole overlap fits in memory); :class:`SicMapping` applies it
where the SIC is regridded (``osisaf.mapping``). Open water and full ice are fixed points
of the mapping (0 stays 0, 1 stays 1), so the mapping never makes ice appear in the open
ocean.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from floecast.io import atomic_path, write_netcdf
from floecast.sources.osisaf import STATUS_LAKE, STATUS_LAND, read_osisaf_file

EDGE = 0.15
EDGE_TOLERANCE = 1e-6  # a value stored as exactly 15.00 % is not ice, whatever its float rounding
BINS = 10001  # 0..1 in steps of 0.0001: the products' packing resolution (0.01 %)
QUANTILES = 101
CELL_AREA_KM2 = 625.0  # the 25 km EASE2 grid of the compared files


@dataclass(frozen=True)
class DayFiles:
    """A day's file and the names of its variables."""

    path: Path
    variables: Mapping[str, str] = field(default_factory=dict)


def _ocean_field(day: DayFiles) -> tuple[np.ndarray, np.ndarray]:
    sic, flag = read_osisaf_file(day.path, day.variables)
    land = (flag.astype(np.int64) & (STATUS_LAND | STATUS_LAKE)) != 0
    return sic.astype(np.float64), ~land & np.isfinite(sic)


def compare_fields(reference: np.ndarray, candidate: np.ndarray, valid: np.ndarray, cell_area_km2: float) -> dict[str, float]:
    """Bias, RMS difference and 15 % edge disagreement of one day (fractions; areas in km²)."""
    either = valid & ((reference > 0) | (candidate > 0))
    diff = candidate[either] - reference[either]
    ice_r, ice_c = reference > EDGE + EDGE_TOLERANCE, candidate > EDGE + EDGE_TOLERANCE
    disagree = valid & (ice_r != ice_c)
    union = valid & (ice_r | ice_c)
    return {
        "cells": int(either.sum()),
        "bias": float(diff.mean()) if diff.size else np.nan,
        "rmsd": float(np.sqrt((diff**2).mean())) if diff.size else np.nan,
        "edge_disagreement_km2": float(disagree.sum() * cell_area_km2),
        "edge_disagreement_share": float(disagree.sum() / union.sum()) if union.any() else np.nan,
    }


@dataclass
class _Histograms:
    """Per calendar month, counts of each product's values over the compared ocean cells."""

    reference: np.ndarray = field(default_factory=lambda: np.zeros((13, BINS), np.int64))
    candidate: np.ndarray = field(default_factory=lambda: np.zeros((13, BINS), np.int64))

    def add(self, month: int, reference: np.ndarray, candidate: np.ndarray) -> None:
        for counts, values in ((self.reference, reference), (self.candidate, candidate)):
            index = np.clip(np.rint(values * (BINS - 1)), 0, BINS - 1).astype(np.int64)
            counts[month] += np.bincount(index, minlength=BINS)


def _cell_area_km2(path: Path) -> float:
    """The area of a cell of an equal-area file (its ``xc`` spacing squared, in km²)."""
    with xr.open_dataset(path, decode_times=False) as ds:
        if "xc" not in ds.variables or ds.sizes.get("xc", 0) < 2:
            return CELL_AREA_KM2
        return float(abs(ds["xc"].values[1] - ds["xc"].values[0])) ** 2


def compare(
    reference: Mapping[dt.date, DayFiles],
    candidate: Mapping[dt.date, DayFiles],
    first_day: dt.date | None = None,
    last_day: dt.date | None = None,
    cell_area_km2: float | None = None,
) -> tuple[pd.DataFrame, _Histograms]:
    """One row per day both products have (within first_day..last_day), and the monthly histograms.
    Areas use ``cell_area_km2`` (default: from the files' ``xc``; 625 km² for the 25 km grid)."""
    days = sorted(set(reference) & set(candidate))
    days = [d for d in days if (first_day is None or d >= first_day) and (last_day is None or d <= last_day)]
    if not days:
        raise ValueError("the reference and candidate products have no day in common in the period")
    cell_area_km2 = cell_area_km2 or _cell_area_km2(reference[days[0]].path)
    rows, histograms = [], _Histograms()
    for day in days:
        ref, ref_ok = _ocean_field(reference[day])
        cand, cand_ok = _ocean_field(candidate[day])
        if ref.shape != cand.shape:
            raise ValueError(f"{day}: {reference[day].path} and {candidate[day].path} are on different grids")
        valid = ref_ok & cand_ok
        rows.append({"date": pd.Timestamp(day), **compare_fields(ref, cand, valid, cell_area_km2)})
        histograms.add(day.month, ref[valid], cand[valid])
    return pd.DataFrame(rows).set_index("date"), histograms


def monthly_table(daily: pd.DataFrame) -> pd.DataFrame:
    """Means of each month of the overlap (bias and RMSD in % points, edge disagreement in km² and %)."""
    grouped = daily.groupby(daily.index.to_period("M"))
    table = pd.DataFrame(
        {
            "days": grouped.size(),
            "bias_pct": grouped["bias"].mean() * 100.0,
            "rmsd_pct": grouped["rmsd"].mean() * 100.0,
            "edge_disagreement_km2": grouped["edge_disagreement_km2"].mean(),
            "edge_disagreement_pct": grouped["edge_disagreement_share"].mean() * 100.0,
        }
    )
    table.index = table.index.astype(str)
    table.index.name = "month"
    return table


def write_table(table: pd.DataFrame, path: str | Path, header: Mapping[str, str]) -> None:
    """The table as CSV, preceded by ``# key: value`` lines (products, period)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            for key, value in header.items():
                fh.write(f"# {key}: {value}\n")
            table.round(4).to_csv(fh)


def read_table(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, comment="#", index_col="month")


def plot_report(table: pd.DataFrame, path: str | Path, reference: str, candidate: str) -> None:
    """Monthly bias and edge disagreement of ``candidate`` against ``reference`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    months = pd.PeriodIndex(table.index, freq="M").to_timestamp()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, constrained_layout=True)
    top.axhline(0.0, color="0.6", lw=0.8)
    top.plot(months, table["bias_pct"], marker="o", ms=3, label="bias")
    top.plot(months, table["rmsd_pct"], marker="o", ms=3, ls="--", label="RMS difference")
    top.set_ylabel("SIC, % points")
    top.set_title(f"{candidate} minus {reference}, where either has ice")
    top.legend(loc="best")
    bottom.bar(months, table["edge_disagreement_km2"] / 1e3, width=20)
    bottom.set_ylabel("edge disagreement, 10³ km²")
    bottom.set_title("area one product counts as ice (SIC > 15 %) and the other not")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


# ---------------------------------------------------------------------------------------
# quantile mapping
# ---------------------------------------------------------------------------------------


def _quantiles(counts: np.ndarray, levels: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(counts) / counts.sum()
    index = np.searchsorted(cdf, levels, side="left").clip(0, BINS - 1)
    return index / (BINS - 1)


def _monotone(cq: np.ndarray, rq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of a non-decreasing map from candidate to reference values: tied candidate quantiles
    collapse to one knot (0 to the lowest reference quantile of the tie, 1 to the highest, others the middle)."""
    xs, ys = [], []
    start = 0
    for i in range(1, len(cq) + 1):
        if i == len(cq) or cq[i] != cq[start]:
            tie = rq[start:i]
            x = cq[start]
            ys.append(tie[0] if x <= 0.0 else tie[-1] if x >= 1.0 else tie[len(tie) // 2])
            xs.append(x)
            start = i
    return np.array(xs), np.maximum.accumulate(np.array(ys))


@dataclass(frozen=True)
class SicMapping:
    """Per calendar month, a quantile mapping of ``candidate`` values onto the ``reference`` record."""

    reference: str
    candidate: str
    candidate_quantiles: np.ndarray  # (12, QUANTILES); NaN rows: no data that month (identity)
    reference_quantiles: np.ndarray
    period: str = ""
    apply_to: tuple[str, ...] = ()

    def applies_to(self, product: str) -> bool:
        return product in self.apply_to

    def apply(self, sic: np.ndarray, month: int) -> np.ndarray:
        """``sic`` (fractions, NaN kept) mapped with the month's knots; 0 and 1 stay as they are."""
        cq, rq = self.candidate_quantiles[month - 1], self.reference_quantiles[month - 1]
        if not np.isfinite(cq).all():
            return sic
        xs, ys = _monotone(cq, rq)
        out = np.interp(sic, xs, ys) if xs.size > 1 else sic
        out = np.where((sic <= 0.0) | (sic >= 1.0), sic, out)
        return np.where(np.isfinite(sic), out, np.nan).astype(sic.dtype)

    def with_products(self, apply_to: Iterable[str]) -> SicMapping:
        return SicMapping(
            self.reference, self.candidate, self.candidate_quantiles, self.reference_quantiles, self.period, tuple(apply_to)
        )

    def save(self, path: str | Path) -> None:
        ds = xr.Dataset(
            {
                "candidate_quantiles": (("month", "level"), self.candidate_quantiles.astype(np.float64)),
                "reference_quantiles": (("month", "level"), self.reference_quantiles.astype(np.float64)),
            },
            coords={"month": np.arange(1, 13), "level": np.linspace(0.0, 1.0, self.candidate_quantiles.shape[1])},
            attrs={
                "title": f"quantile mapping of {self.candidate} onto {self.reference}, per calendar month",
                "reference": self.reference,
                "candidate": self.candidate,
                "fitted_on": self.period,
                "units": "1 (SIC fraction)",
            },
        )
        write_netcdf(ds, path)

    @classmethod
    def load(cls, path: str | Path, apply_to: Iterable[str] = ()) -> SicMapping:
        with xr.open_dataset(path) as ds:
            return cls(
                str(ds.attrs["reference"]),
                str(ds.attrs["candidate"]),
                ds["candidate_quantiles"].values,
                ds["reference_quantiles"].values,
                str(ds.attrs.get("fitted_on", "")),
                tuple(apply_to),
            )


def fit_mapping(histograms: _Histograms, reference: str, candidate: str, period: str = "") -> SicMapping:
    """The per-month quantile mapping of the compared days (months without data map nothing)."""
    levels = np.linspace(0.0, 1.0, QUANTILES)
    cand = np.full((12, QUANTILES), np.nan)
    ref = np.full((12, QUANTILES), np.nan)
    for month in range(1, 13):
        if histograms.candidate[month].sum() and histograms.reference[month].sum():
            cand[month - 1] = _quantiles(histograms.candidate[month], levels)
            ref[month - 1] = _quantiles(histograms.reference[month], levels)
    return SicMapping(reference, candidate, cand, ref, period)


def consistency_report(
    reference: Mapping[dt.date, DayFiles],
    candidate: Mapping[dt.date, DayFiles],
    names: tuple[str, str],
    period: tuple[dt.date, dt.date],
    table_path: str | Path,
    plot_path: str | Path | None = None,
    mapping_path: str | Path | None = None,
) -> pd.DataFrame:
    """The monthly table (CSV), its plot and the fitted mapping of ``candidate`` onto ``reference``."""
    ref_name, cand_name = names
    daily, histograms = compare(reference, candidate, *period)
    table = monthly_table(daily)
    overlap = f"{daily.index[0]:%Y-%m-%d}..{daily.index[-1]:%Y-%m-%d} ({len(daily)} days both products have)"
    header = {
        "reference": ref_name,
        "candidate": cand_name,
        "overlap": overlap,
        "bias": "mean of candidate - reference over ocean cells where either has ice, % points",
        "edge_disagreement": "area counted as ice (SIC > 15 %) by one product only; pct: share of the area either counts as ice",
    }
    write_table(table, table_path, header)
    if plot_path:
        plot_report(table, plot_path, ref_name, cand_name)
    if mapping_path:
        fit_mapping(histograms, ref_name, cand_name, overlap).save(mapping_path)
    return table


def day_files(folders: Sequence[str | Path], chain, hemisphere: str, product: str) -> dict[dt.date, DayFiles]:
    """The files of ``product`` in raw folders (a product ingest's month folders)."""
    from floecast.sources.osisaf import served_days

    wanted = chain.product(product)
    found: dict[dt.date, DayFiles] = {}
    for folder in folders:
        for day, (name, served) in served_days(folder, chain, hemisphere).items():
            if served.name == wanted.name:
                found[day] = DayFiles(Path(folder) / name, dict(wanted.variables))
    return found
