"""Dry run of the production config (both hemispheres, 1979 to today): DAG build time and job count."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with tempfile.TemporaryDirectory() as workdir:
        cmd = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", workdir]
        cmd += ["--configfile", str(REPO / "config" / "config.yaml"), "--config", f"date={today}"]
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - started
    jobs = int(re.search(r"^total\s+(\d+)", proc.stdout, re.MULTILINE).group(1))
    print(f"BENCH dag_build_s {seconds:.2f} s")
    print(f"BENCH dag_jobs {jobs} jobs")


if __name__ == "__main__":
    main()
