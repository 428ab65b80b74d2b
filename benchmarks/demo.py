"""The embedded demo end to end (the workflow `make demo` runs, without the install), in a
fresh directory: wall time and the scorecard figures the demo must meet, all from that one run.

`python benchmarks/demo.py --workdir DIR` prints the scorecard figures of a demo already run in
DIR (no wall time: nothing is run), e.g. to compare ensemble methods (docs/model-card.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from floecast import layout
from floecast.references import CLIMATOLOGICAL_ENSEMBLE, DRESSED_ANOMALY_PERSISTENCE

REPO = Path(__file__).resolve().parents[1]
WHERE = {"hemi": "north", "run": "demo"}
ENSEMBLE = "ensemble_mean"
RELIABILITY_LEADS = (7, 30)  # the lead groups of the reliability table lying within these leads
RELIABILITY_MIN_SHARE = 0.01  # bins holding fewer of the cases are left out of the largest gap


def run_demo(workdir: Path) -> float:
    """Run the demo's workflow in ``workdir``; its wall time (s)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--cores", str(os.cpu_count()), "--quiet"]
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def reliability_max_dev(reliability: pd.DataFrame, method: str = ENSEMBLE) -> float:
    """The largest |forecast probability - observed frequency| over the bins holding at least 1 % of the cases,
    pooled over the hindcast's lead groups within RELIABILITY_LEADS."""
    first, last = RELIABILITY_LEADS
    groups = reliability["lead_group"].str.split("-", expand=True).astype(int)
    rows = reliability[
        (reliability["date_set"] == "hindcast") & (reliability["method"] == method) & (groups[0] >= first) & (groups[1] <= last)
    ]
    count = rows.groupby("bin_lower")["count"].sum()
    forecast = (rows["forecast_probability"].fillna(0) * rows["count"]).groupby(rows["bin_lower"]).sum() / count
    observed = (rows["observed_frequency"].fillna(0) * rows["count"]).groupby(rows["bin_lower"]).sum() / count
    held = count >= RELIABILITY_MIN_SHARE * count.sum()
    return float(np.abs(forecast - observed)[held].max())


def figures(workdir: Path) -> list[str]:
    """The BENCH lines of the demo's outputs in ``workdir`` (scorecard, reliability table, spread calibration)."""
    table = pd.read_csv(workdir / layout.SCORECARD.format(**WHERE))
    table = table[(table["month"].astype(str) == "all") & (table["date_set"] == "hindcast")]
    wide = {
        score: table.pivot(index="lead_days", columns="method", values=score)
        for score in ("rmse", "crps", "iiee_km2", "binary_accuracy")
    }
    rmse, crps, iiee, accuracy = wide["rmse"], wide["crps"], wide["iiee_km2"], wide["binary_accuracy"]
    ensemble = table[table["method"] == ENSEMBLE].set_index("lead_days")
    last = int(ensemble.index.max())
    factors = json.loads((workdir / layout.SPREAD.format(**WHERE)).read_text())["factors"]
    lines = []
    for lead in (1, 7, 14, 30):
        row = rmse.loc[lead]
        lines.append(f"BENCH demo_rmse_ratio_vs_persistence_lead{lead} {row[ENSEMBLE] / row.persistence:.3f} ratio")
        lines.append(f"BENCH demo_rmse_ratio_vs_climatology_lead{lead} {row[ENSEMBLE] / row.climatology:.3f} ratio")
        lines.append(
            f"BENCH demo_rmse_ratio_vs_anomaly_persistence_lead{lead} {row[ENSEMBLE] / row.anomaly_persistence:.3f} ratio"
        )
    lines.append(f"BENCH demo_spread_skill_lead{last} {ensemble.loc[last, 'spread_skill']:.3f} ratio")
    lines.append(f"BENCH demo_raw_spread_skill_lead{last} {ensemble.loc[last, 'spread_skill_raw']:.3f} ratio")
    lines.append(f"BENCH demo_spread_factor_max {max(factors):.2f} factor")
    for lead in (1, 7, 14, 30):
        ratio = crps.loc[lead, ENSEMBLE] / crps.loc[lead, CLIMATOLOGICAL_ENSEMBLE]
        lines.append(f"BENCH demo_crps_ratio_vs_climatological_ensemble_lead{lead} {ratio:.3f} ratio")
    for lead in (7, 14, 30):
        ratio = crps.loc[lead, ENSEMBLE] / crps.loc[lead, DRESSED_ANOMALY_PERSISTENCE]
        lines.append(f"BENCH demo_crps_ratio_vs_dressed_anomaly_persistence_lead{lead} {ratio:.3f} ratio")
    reliability = pd.read_csv(workdir / layout.RELIABILITY.format(**WHERE))
    lines.append(f"BENCH demo_reliability_max_dev {reliability_max_dev(reliability):.3f} probability")
    for lead in (7, 14, 30):
        ratio = iiee.loc[lead, ENSEMBLE] / iiee.loc[lead, "anomaly_persistence"]
        lines.append(f"BENCH demo_iiee_ratio_vs_anomaly_persistence_lead{lead} {ratio:.3f} ratio")
    for lead in (7, 14, 30):
        gain = accuracy.loc[lead, ENSEMBLE] - accuracy.loc[lead, "anomaly_persistence"]
        lines.append(f"BENCH demo_binacc_gain_vs_anomaly_persistence_lead{lead} {gain:.4f} share")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="read the figures of a demo already run there (nothing is run)")
    parser.add_argument("--run", default="demo", help="with --workdir: the config's run name (default: demo)")
    args = parser.parse_args()
    WHERE["run"] = args.run
    if args.workdir:
        print("\n".join(figures(args.workdir)))
        return
    with tempfile.TemporaryDirectory() as workdir:
        seconds = run_demo(Path(workdir))
        lines = figures(Path(workdir))
    print(f"BENCH demo_wall_s {seconds:.1f} s")
    print(f"BENCH demo_cores {os.cpu_count()} cores")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
