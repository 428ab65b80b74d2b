"""profiles/slurm on a real SLURM: the tiny workflow on a one-node cluster started on this
machine (tests/slurm_cluster.py), its member rules submitted with --gpus=1.

The node has one GPU (a /dev/null device) in a ``gpu`` partition beside the default
``cpu`` partition, and SNAKEMAKE_SLURM_PARTITIONS names a partition file, as an HPC user
with separate CPU and GPU partitions would set it. Without slurmdbd the executor's status
command is squeue. The ingest and preprocess jobs run locally first, to keep the test near
two minutes on two cores (each SLURM job starts Snakemake twice, some 4 s); set
FLOECAST_SLURM_TEST_ALL=1 to submit every job to SLURM (four to five minutes).

Skipped only where SLURM cannot be had: not root, apt-get failing, another SLURM's
/etc/slurm/slurm.conf in the way (see slurm_cluster.py)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from slurm_cluster import ClusterUnavailable, SlurmCluster, slurm_time

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "config" / "tiny.yaml"
FORECAST = Path("results/north/tiny/forecasts/2006-07-01.nc")
GPU_RULES = {"train_member", "predict_member", "hindcast_member"}  # resources: gpu=1
LOCAL_FIRST = ("build_store_obs", "build_store_cmip6")  # --until: ingest and preprocess locally
PARTITIONS_YAML = "partitions:\n  cpu: {}\n  gpu:\n    max_gpu: 1\n"
RUN_TIMEOUT_S = 480

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]


@dataclass
class SlurmRun:
    workdir: Path
    node: str
    planned: Counter  # jobs per rule in the dry run, local ones included
    jobs: list[dict[str, str]]  # scontrol -d -o show job, this workflow's jobs
    jobcomp: list[dict[str, str]]
    log: str

    def rule_of(self, job: dict[str, str]) -> str:
        # the executor's --comment: rule_<name> or rule_<name>_wildcards_<values>
        return job.get("Comment", "").removeprefix("rule_").split("_wildcards_")[0]

    def by_rule(self, *rules: str) -> list[dict[str, str]]:
        return [j for j in self.jobs if self.rule_of(j) in rules]


def _snakemake(workdir: Path, *args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(TINY), *args]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise AssertionError(f"{' '.join(cmd)} ran past {timeout} s:\n{out[-3000:]}\n{err[-5000:]}") from None
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def _planned(dry_run: str) -> tuple[Counter, dict[str, int]]:
    """Jobs per rule in a dry run, and each rule's mem_mb."""
    counts: Counter = Counter()
    mem: dict[str, int] = {}
    rule = None
    for line in dry_run.splitlines():
        if m := re.match(r"(?:local)?rule (\w+):$", line.strip()):
            rule = m.group(1)
            counts[rule] += 1
        elif rule and (m := re.search(r"\bresources:.*\bmem_mb=(\d+)", line)):
            mem[rule] = int(m.group(1))
    return counts, mem


def _local_rules(log: str) -> set[str]:
    """The rules a run executed itself instead of submitting them."""
    return set(re.findall(r"^localrule (\w+):$", log, re.MULTILINE))


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory: pytest.TempPathFactory) -> SlurmRun:
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.fail("snakemake-executor-plugin-slurm is not installed (a dev dependency): make install")
    workdir = tmp_path_factory.mktemp("slurm_tiny")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm_cluster"), partitions=("cpu", "gpu"))
    try:
        cluster.start()
    except ClusterUnavailable as exc:
        pytest.skip(f"no SLURM test cluster: {exc}")
    try:
        env = cluster.env()
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # floecast inside the jobs
        (workdir / "partitions.yaml").write_text(PARTITIONS_YAML)
        env["SNAKEMAKE_SLURM_PARTITIONS"] = str(workdir / "partitions.yaml")
        if os.environ.get("FLOECAST_SLURM_TEST_ALL") != "1":
            _snakemake(workdir, "--cores", "2", "--until", *LOCAL_FIRST, env=env, timeout=300)
        planned, mem = _planned(_snakemake(workdir, "--cores", "2", "-n", env=env, timeout=120).stdout)
        # a request above the test node's memory could never schedule: it gets the whole node
        clamp = [f"{rule}:mem_mb={cluster.real_memory_mb}" for rule, mb in mem.items() if mb > cluster.real_memory_mb]
        proc = _snakemake(
            workdir,
            "--profile",
            str(REPO / "profiles" / "slurm"),
            "--slurm-status-command",
            "squeue",  # no slurmdbd, so no sacct
            "--slurm-init-seconds-before-status-checks",
            "1",
            "--slurm-keep-successful-logs",
            *(["--set-resources", *clamp] if clamp else []),
            env=env,
            timeout=RUN_TIMEOUT_S,
        )
        jobs = [j for j in cluster.jobs() if j.get("WorkDir") == str(workdir)]
        jobcomp = [j for j in cluster.jobcomp() if j.get("WorkDir") == str(workdir)]
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- cluster logs\n{cluster.logs()}") from None
    finally:
        cluster.stop()
    return SlurmRun(workdir, cluster.node, planned, jobs, jobcomp, proc.stdout + proc.stderr)


def test_every_planned_job_ran_as_a_slurm_job(slurm_run: SlurmRun) -> None:
    assert GPU_RULES <= set(slurm_run.planned), slurm_run.planned
    assert _local_rules(slurm_run.log) == {"all"}  # only the target rule, which has no command
    expected = Counter({rule: n for rule, n in slurm_run.planned.items() if rule != "all"})
    assert Counter(slurm_run.rule_of(j) for j in slurm_run.jobs) == expected
    for job in slurm_run.jobs:
        assert (job["JobState"], job["ExitCode"], job["NodeList"]) == ("COMPLETED", "0:0", slurm_run.node), job
    # jobcomp/filetxt: the same jobs, each finished
    assert sorted(j["JobId"] for j in slurm_run.jobcomp) == sorted(j["JobId"] for j in slurm_run.jobs)
    assert {j["JobState"] for j in slurm_run.jobcomp} == {"COMPLETED"}
    assert "SLURM run ID" in slurm_run.log and "Job stats" in slurm_run.log


def test_gpu_rules_requested_and_got_one_gpu(slurm_run: SlurmRun) -> None:
    jobs = slurm_run.by_rule(*GPU_RULES)
    # three members each; the hindcast of each for both splits (validate and test)
    assert Counter(slurm_run.rule_of(j) for j in jobs) == {"train_member": 3, "predict_member": 3, "hindcast_member": 6}
    for job in jobs:
        assert re.fullmatch(r"gres[:/]gpu[:=]1", job.get("TresPerJob", "")), job  # sbatch --gpus=1
        assert re.match(r"gpu(:[^:(]+)?:1\b", job.get("JOB_GRES", "")), job  # allocated: the node's one GPU
        assert job["Partition"] == "gpu", job  # picked from SNAKEMAKE_SLURM_PARTITIONS


def test_cpu_rules_requested_no_gpu(slurm_run: SlurmRun) -> None:
    jobs = [j for j in slurm_run.jobs if slurm_run.rule_of(j) not in GPU_RULES]
    assert {"combine_forecast", "scorecard", "plot_forecast"} <= {slurm_run.rule_of(j) for j in jobs}
    for job in jobs:
        assert "gpu" not in job.get("TresPerJob", ""), job
        assert job.get("JOB_GRES", "(null)") == "(null)", job
        assert job["Partition"] == "cpu", job


def test_the_one_gpu_ran_one_job_at_a_time(slurm_run: SlurmRun) -> None:
    spans = sorted((slurm_time(j["StartTime"]), slurm_time(j["EndTime"])) for j in slurm_run.by_rule(*GPU_RULES))
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, spans


def test_forecast_combined_from_the_slurm_members(slurm_run: SlurmRun) -> None:
    members_done = max(slurm_time(j["EndTime"]) for j in slurm_run.by_rule("predict_member"))
    (combine,) = slurm_run.by_rule("combine_forecast")
    assert slurm_time(combine["StartTime"]) >= members_done
    with xr.open_dataset(slurm_run.workdir / FORECAST) as ds:
        assert ds["sic"].dims == ("time", "leadtime", "quantity", "yc", "xc")
        assert ds.sizes["leadtime"] == 10 and ds.attrs["members"] == "[0, 1, 2]"
        assert pd.Timestamp(ds["time"].values[0]) == pd.Timestamp("2006-07-01")
        mean = ds["sic"].sel(quantity="mean").values
        ocean = ds["land"].values == 0
        assert np.isfinite(mean[..., ocean]).all() and 0.0 <= np.nanmin(mean) <= np.nanmax(mean) <= 1.0
        assert np.nanmax(ds["sic"].sel(quantity="std").values) > 0.0  # three different members
    scorecard = pd.read_csv(slurm_run.workdir / "results/north/tiny/verification/scorecard.csv")
    hindcast = scorecard[scorecard["date_set"] == "hindcast"]
    deterministic = {"persistence", "anomaly_persistence", "climatology", "linear_trend"}
    references = {"climatological_ensemble", "dressed_anomaly_persistence"}
    assert set(hindcast["method"]) == {"ensemble_mean", *deterministic, *references}
    assert "seas5_synthetic" in set(scorecard.loc[scorecard["date_set"] == "seas5", "method"])
