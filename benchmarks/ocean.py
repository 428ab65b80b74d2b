"""The embedded demo trained with and without its ocean and ice-state channels (the catalogue's
ocean and ice variables among ``channels.fields``: the demo's synthetic sea-ice thickness), side by
side in one fresh directory: the raw and interim data are shared, the store, statistics and models
are rebuilt for each variant. Prints the ensemble-mean RMSE of the test-year hindcast at lead 30
with the new channels over that without them (below 1: the channels help)."""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from floecast.variables import variable

REPO = Path(__file__).resolve().parents[1]
LEAD = 30


def scorecard_rmse(workdir: Path, run: str) -> pd.Series:
    table = pd.read_csv(workdir / f"results/north/{run}/verification/scorecard.csv")
    table = table[(table["month"].astype(str) == "all") & (table["method"] == "ensemble_mean")]
    if "date_set" in table:  # the hindcast's every init date, not the SEAS5 subset (the 1st of each month)
        table = table[table["date_set"] == "hindcast"]
    return table.set_index("lead_days")["rmse"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, help="run in (and keep) this folder: then benchmarks/demo.py --workdir DIR --run with-ocean"
    )
    args = parser.parse_args()
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    new = [name for name in demo["channels"]["fields"] if variable(name).group in ("ocean", "ice")]
    if not new:
        raise SystemExit("the demo config has no ocean or ice-state channel to compare")
    variants = {"with-ocean": copy.deepcopy(demo), "without-ocean": copy.deepcopy(demo)}
    for name in new:
        del variants["without-ocean"]["channels"]["fields"][name]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    rmse, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for run, config in variants.items():
            config["run"] = run
            configfile = workdir / f"{run}.yaml"
            configfile.write_text(yaml.safe_dump(config))
            cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
            cmd += [f"results/north/{run}/verification/scorecard.csv", "--configfile", str(configfile)]
            cmd += ["--cores", str(os.cpu_count()), "--quiet"]  # last: --quiet takes an optional value
            started = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
            seconds[run] = time.perf_counter() - started
            rmse[run] = scorecard_rmse(workdir, run)
    with_ocean, without = rmse["with-ocean"], rmse["without-ocean"]
    print(f"# channels compared: {', '.join(new)}; wall time {seconds['with-ocean']:.0f} s and {seconds['without-ocean']:.0f} s")
    for lead in (7, 14, LEAD):
        print(f"# lead {lead}: ensemble-mean RMSE {with_ocean.loc[lead]:.4f} with, {without.loc[lead]:.4f} without")
    print(f"BENCH demo_rmse_ratio_with_ocean_vs_without_lead{LEAD} {with_ocean.loc[LEAD] / without.loc[LEAD]:.3f} ratio")
    print(f"BENCH demo_rmse_ratio_with_ocean_vs_without_mean {with_ocean.mean() / without.mean():.3f} ratio")


if __name__ == "__main__":
    main()
