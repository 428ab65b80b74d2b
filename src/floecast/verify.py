"""Hindcast scorecard: the ensemble against persistence, anomaly persistence, climatology,
the linear trend, two reference ensembles (a climatological ensemble and a dressed anomaly
persistence, :mod:`floecast.references`) and (where configured) ECMWF SEAS5, by lead and by
target month.

One row per (lead, method, month, date set): ``month`` is the target day's month (1-12) or
``all``; ``date_set`` is ``hindcast`` (every hindcast init date) or ``seas5`` (the init dates
SEAS5 starts from too, the 1st of each month: SEAS5 is scored there only, next to every other
method on the same dates). Deterministic scores (RMSE, MAE, binary accuracy, SIE error, IIEE,
ice-edge distance) are computed for every method (of an ensemble's mean); SPS, the Brier score
(and its skill against the training years' climatological probability of ice) and CRPS for
every method (a deterministic forecast is a 0/1 probability, so its SPS is its IIEE, and a
one-point distribution, so its CRPS is its MAE); the spread-skill ratio only for the ensembles
(empty for the others), of the raw members beside the calibrated ones for ours. All scores are
over active ocean cells of the target month outside the polar hole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from floecast import __version__, metrics, references, verify_tables
from floecast.calibrate import inflate, read_factors
from floecast.members import member_lead, open_member_files
from floecast.seas5_benchmark import Seas5Hindcast
from floecast.store import default_statistics, read_store, store_parts

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
    "spread_skill_raw",
    "brier",
    "bss",
    "edge_distance_km",
    "month",
    "date_set",
    "floecast_version",
]
ENSEMBLE = "ensemble_mean"
# the references the ensemble is scored against, declared once: the deterministic ones (made from the test store's
# fields), then the reference ensembles (made from the training years' SIC, floecast.references)
DETERMINISTIC_BASELINES = ("persistence", "anomaly_persistence", "climatology", "linear_trend")
BASELINES = (*DETERMINISTIC_BASELINES, *references.REFERENCE_ENSEMBLES)
HINDCAST = "hindcast"  # the date set of every hindcast init date; "seas5": those SEAS5 starts from too


def _scores(
    forecast: np.ndarray, observed: np.ndarray, mask: np.ndarray, area: float, probability: np.ndarray | None = None
) -> dict[str, float]:
    """Deterministic scores of ``forecast``; the probabilistic ones of ``probability`` (default: the forecast's
    0/1 ice, so a deterministic forecast's SPS is its IIEE and its Brier score its misclassified share)."""
    errors = metrics.iiee(forecast, observed, area, mask)
    if probability is None:
        probability = (np.nan_to_num(forecast) > metrics.ICE_THRESHOLD).astype(np.float32)
    mae = metrics.mae(forecast, observed, mask)
    return {
        "rmse": metrics.rmse(forecast, observed, mask),
        "binary_accuracy": metrics.binary_accuracy(forecast, observed, mask),
        "mae": mae,
        "crps": mae,  # the CRPS of a one-point distribution is its absolute error
        "sie_error_km2": metrics.sie_error_km2(forecast, observed, area, mask),
        "iiee_km2": errors.iiee_km2,
        "sps_km2": metrics.sps_km2(probability, observed, area, mask),
        "brier": metrics.brier_score(probability, observed, mask),
    }


def _ensemble_scores(
    raw: np.ndarray, members: np.ndarray, observed: np.ndarray, mask: np.ndarray, area: float
) -> dict[str, float]:
    """Deterministic scores of the raw members' mean, probabilistic ones of the (calibrated) members, and the
    spread-skill ratio of the raw members too."""
    sip = (np.nan_to_num(members) > metrics.ICE_THRESHOLD).mean(axis=0)
    scores = _scores(raw.mean(axis=0), observed, mask, area, sip)
    scores["crps"] = metrics.crps(members, observed, mask)
    scores["spread_skill"] = metrics.spread_skill(members, observed, mask)
    scores["spread_skill_raw"] = scores["spread_skill"] if raw is members else metrics.spread_skill(raw, observed, mask)
    return scores


def _picked(raw: np.ndarray, members: np.ndarray, pick: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The raw and calibrated members of the dates picked; one array twice for an uncalibrated ensemble."""
    raw_picked = raw[:, pick]
    return raw_picked, raw_picked if members is raw else members[:, pick]


def _ice_probability_clim(statistics: xr.Dataset, path: str | Path) -> np.ndarray:
    if "ice_probability_clim" not in statistics:
        raise KeyError(
            f"{path}: no ice_probability_clim (the reference of the Brier skill score): "
            "rebuild the statistics with this version (snakemake data/store/<hemi>/statistics.nc -f)"
        )
    return statistics["ice_probability_clim"].values.astype(np.float32)


def _date_set_rows(
    lead: int,
    date_set: str,
    ensembles: dict[str, tuple[np.ndarray, np.ndarray]],
    deterministic: dict[str, np.ndarray],
    truth: tuple[np.ndarray, np.ndarray, np.ndarray],
    month_sets: dict[object, np.ndarray],
    area: float,
) -> list[dict]:
    """One lead's rows of one date set: each method (ensembles: raw and calibrated members) for each month subset.

    ``truth`` is (observed SIC, mask, climatological probability of ice) of the set's init dates. Ice-edge distances
    are computed per init date once, and each month row averages its dates' (dates without an edge are left out).
    """
    observed_all, mask_all, clim_all = truth
    cell_km = float(np.sqrt(area))
    means = {name: raw.mean(axis=0) for name, (raw, _) in ensembles.items()} | deterministic
    edges = {name: metrics.ice_edge_distances_km(values, observed_all, mask_all, cell_km) for name, values in means.items()}
    rows = []
    for month, pick in month_sets.items():
        observed, mask = observed_all[pick], mask_all[pick]
        reference = metrics.brier_score(clim_all[pick], observed, mask)
        scored = {name: _ensemble_scores(*_picked(r, m, pick), observed, mask, area) for name, (r, m) in ensembles.items()}
        scored |= {name: _scores(values[pick], observed, mask, area) for name, values in deterministic.items()}
        order = [name for name in scored if name not in BASELINES] + [name for name in BASELINES if name in scored]
        for name, scores in ((name, scored[name]) for name in order):
            edge = edges[name][pick]
            rows.append(
                {
                    "lead_days": lead,
                    "n_init_dates": int(pick.sum()),
                    "month": month,
                    "date_set": date_set,
                    "method": name,
                    **scores,
                    "bss": metrics.brier_skill_score(scores["brier"], reference),
                    "edge_distance_km": float(np.nanmean(edge)) if np.isfinite(edge).any() else np.nan,
                }
            )
    return rows


def scorecard(
    member_paths: Sequence[str | Path],
    store_path: str | Path | Sequence[str | Path],
    out_csv: str | Path,
    statistics: str | Path | None = None,
    spread: str | Path | None = None,
    seas5: Sequence[str | Path] | None = None,
    reliability_csv: str | Path | None = None,
    regions_csv: str | Path | None = None,
    train_store: str | Path | Sequence[str | Path] | None = None,
) -> pd.DataFrame:
    """Every method's scores by lead and target month over the members' init dates; with a ``spread`` calibration
    file the probabilistic scores are of the calibrated members.

    With ``seas5`` (its interim files), SEAS5 is scored too, on the init dates it shares with the hindcast
    (``date_set`` ``seas5``: every method on those dates, all months together); the other rows are ``date_set``
    ``hindcast``. ``reliability_csv`` and ``regions_csv`` get the side tables (:mod:`floecast.verify_tables`).
    With ``train_store`` (the parts of the training years named by the statistics), the reference ensembles
    (:mod:`floecast.references`) are scored too.
    """
    datasets, dates, leads = open_member_files(member_paths)
    store = read_store(store_path, statistics, leads=leads)
    area, hemisphere = float(store.attrs["cell_area_km2"]), str(store.attrs["hemisphere"])
    stats_path = Path(statistics) if statistics else default_statistics(store_parts(store_path))
    with xr.open_dataset(stats_path, engine="netcdf4") as stats:
        ice_clim = _ice_probability_clim(stats, stats_path)
        train_years = json.loads(stats.attrs.get("training_years", "[]"))
    if train_store and not train_years:
        raise KeyError(f"{stats_path}: no training_years attribute (the reference ensembles' members): rebuild the statistics")
    training = references.TrainingYears.open(train_store, store.sic_clim, train_years) if train_store else None
    factors = read_factors(spread, leads)
    bench = Seas5Hindcast(seas5) if seas5 else None
    date_sets = verify_tables.date_subsets(dates, bench.dates if bench else None)
    reliability = verify_tables.ReliabilityTable(leads)
    regions = verify_tables.RegionalTable(hemisphere, verify_tables.grid_longitudes(hemisphere, store.xc, store.yc), area)
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
            targets = dates + pd.Timedelta(days=k)
            made = references.reference_ensembles(training, targets, k, forecasts["anomaly_persistence"]) if training else {}
            months = targets.month.to_numpy()
            clim_probability = ice_clim[targets.day_of_year.to_numpy() - 1]
            for date_set, index in date_sets.items():
                if not len(index):
                    continue
                if date_set == "seas5":
                    if k > bench.leads:
                        continue
                    seas5_members = bench.lead(dates[index], k)
                    ensembles = {ENSEMBLE: (raw[:, index], members[:, index]), bench.method: (seas5_members, seas5_members)}
                    picked = {name: m[:, index] for name, m in made.items()}
                    ensembles |= {name: (m, m) for name, m in picked.items()}
                    every = {name: values[index] for name, values in forecasts.items()}
                    observed_all, mask_all, clim_all = fields["observed"][index], fields["mask"][index], clim_probability[index]
                    month_sets = {"all": np.ones(len(index), bool)}
                else:
                    ensembles = {ENSEMBLE: (raw, members)} | {name: (m, m) for name, m in made.items()}
                    every = forecasts
                    observed_all, mask_all, clim_all = fields["observed"], fields["mask"], clim_probability
                    month_sets = {"all": np.ones(len(dates), bool)} | {m: months == m for m in sorted(set(months))}
                rows += _date_set_rows(k, date_set, ensembles, every, (observed_all, mask_all, clim_all), month_sets, area)
                for name, (r, m) in ensembles.items():
                    sip = (np.nan_to_num(m) > metrics.ICE_THRESHOLD).mean(axis=0)
                    reliability.add(date_set, name, k, sip, observed_all, mask_all)
                    regions.add(date_set, k, name, r.mean(axis=0), sip, observed_all, mask_all)
                for name, values in every.items():
                    probability = (np.nan_to_num(values) > metrics.ICE_THRESHOLD).astype(np.float32)
                    regions.add(date_set, k, name, values, probability, observed_all, mask_all)
    finally:
        for ds in datasets:
            ds.close()
        if bench is not None:
            bench.close()
    table = pd.DataFrame(rows, columns=SCORECARD_COLUMNS).assign(floecast_version=__version__)
    verify_tables.write_csv(table, out_csv)
    if reliability_csv:
        verify_tables.write_csv(reliability.frame(), reliability_csv)
    if regions_csv:
        verify_tables.write_csv(regions.frame(), regions_csv)
    return table


def hindcast_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows over every hindcast init date (scorecards before SEAS5 have no ``date_set`` column: all of them)."""
    if "date_set" in table:
        return table[table["date_set"].fillna(HINDCAST).astype(str) == HINDCAST]
    return table


def skill_summary(table: pd.DataFrame) -> list[str]:
    """The demo's acceptance figures: where the ensemble mean beats each baseline (RMSE), the
    ensemble's spread-skill ratio at the longest lead and, with SEAS5, how the two compare on its starts."""
    shared = table[table["date_set"].astype(str) == "seas5"] if "date_set" in table else table.iloc[:0]
    table = hindcast_rows(table)
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
        raw = ""
        if "spread_skill_raw" in table:
            raw_ratio = table[table["method"] == ENSEMBLE].set_index("lead_days")["spread_skill_raw"].loc[last]
            raw = f", of the raw members {float(raw_ratio):.2f}"
        lines.append(f"spread-skill ratio at lead {last} d: {ratio:.2f} (0.5-1.5 wanted: {0.5 <= ratio <= 1.5}){raw}")
    lines += _crps_summary(table)
    lines += _seas5_summary(shared)
    baselines = [m for m in BASELINES if m in wide]
    for lead, row in wide.iterrows():
        others = "  ".join(f"{m} {row[m]:.4f}" for m in baselines)
        lines.append(f"lead {lead:>3d} d  rmse ensemble {row[ENSEMBLE]:.4f}  {others}")
    return lines


def _crps_summary(table: pd.DataFrame) -> list[str]:
    """The ensemble's CRPS over each reference ensemble's, by lead (below 1: the ensemble is better)."""
    if "crps" not in table:
        return []
    crps = table.pivot(index="lead_days", columns="method", values="crps")
    lines = []
    for name in references.REFERENCE_ENSEMBLES:
        if name in crps:
            ratio = crps[ENSEMBLE] / crps[name]
            lines.append(
                f"CRPS ratio vs {name}: below 1 at {int((ratio < 1).sum())} of {len(ratio)} leads "
                f"(lead 1 {ratio.iloc[0]:.2f}, lead {int(ratio.index[-1])} {ratio.iloc[-1]:.2f})"
            )
    return lines


def _seas5_summary(shared: pd.DataFrame) -> list[str]:
    """The ensemble mean against SEAS5 on the starts both have (RMSE by lead, Brier skill at the longest lead)."""
    seas5 = sorted(set(shared["method"]) - {ENSEMBLE, *BASELINES}) if len(shared) else []
    if not seas5:
        return []
    name = seas5[0]
    wide = shared.pivot(index="lead_days", columns="method", values="rmse")
    bss = shared.pivot(index="lead_days", columns="method", values="bss")
    last = int(wide.index.max())
    better = int((wide[ENSEMBLE] < wide[name]).sum())
    starts = int(shared["n_init_dates"].max())
    return [
        f"{name} on its {starts} starts: ensemble mean RMSE lower at {better} of {len(wide)} leads; "
        f"lead {last} d rmse ensemble {wide.loc[last, ENSEMBLE]:.4f} {name} {wide.loc[last, name]:.4f}, "
        f"bss ensemble {bss.loc[last, ENSEMBLE]:.3f} {name} {bss.loc[last, name]:.3f}"
    ]
