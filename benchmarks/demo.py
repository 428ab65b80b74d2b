"""The embedded demo end to end (the workflow `make demo` runs, without the install), in a
fresh directory: wall time and the scorecard figures the demo must meet."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with tempfile.TemporaryDirectory() as workdir:
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", workdir]
        cmd += ["--cores", str(os.cpu_count()), "--quiet"]
        started = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        seconds = time.perf_counter() - started
        table = pd.read_csv(Path(workdir) / "results/north/demo/verification/scorecard.csv")
    table = table[table["month"].astype(str) == "all"]
    rmse = table.pivot(index="lead_days", columns="method", values="rmse")
    spread_skill = table[table["method"] == "ensemble_mean"].set_index("lead_days")["spread_skill"]
    print(f"BENCH demo_wall_s {seconds:.1f} s")
    print(f"BENCH demo_cores {os.cpu_count()} cores")
    for lead in (1, 7, 14, 30):
        row = rmse.loc[lead]
        print(f"BENCH demo_rmse_ratio_vs_persistence_lead{lead} {row.ensemble_mean / row.persistence:.3f} ratio")
        print(f"BENCH demo_rmse_ratio_vs_climatology_lead{lead} {row.ensemble_mean / row.climatology:.3f} ratio")
    print(f"BENCH demo_spread_skill_lead{spread_skill.index.max()} {spread_skill.iloc[-1]:.3f} ratio")


if __name__ == "__main__":
    main()
