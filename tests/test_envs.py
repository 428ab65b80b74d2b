"""Every rule's command runs inside its own conda env: the tiny workflow and the real-source
ingest of the local-server workflow, through `snakemake --sdm conda` with the envs emulated
from the .venv (tests/conda_envs.py says what that proves and what it does not). A failure
names the rule, its env file and the missing module."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conda_envs import ENVS, IMPORT_LOG, cache_root, distribution_of, install, listed_distributions
from test_export import as_south
from test_repository import rule_blocks
from test_sources_workflow import TARGETS as SOURCE_TARGETS
from test_sources_workflow import cds_environment, environment, services, write_config  # noqa: F401 - a fixture
from test_workflow import INIT, snakemake

pytestmark = pytest.mark.workflow
_ERROR = re.compile(r"^Error in rule (\w+):$", re.MULTILINE)
_MISSING = re.compile(r"^((?:ModuleNotFoundError|ImportError): .*)$", re.MULTILINE)


def rule_envs() -> dict[str, str]:
    """Each rule's env file (envs/<name>.yaml)."""
    envs = {}
    for rule, body in rule_blocks().items():
        envs[rule] = re.search(r'conda:\n\s+"\.\./(envs/[\w.-]+\.yaml)"', body).group(1)
    return envs


def failures(workdir: Path, output: str) -> list[str]:
    """One line per failed job: the rule, its env file and the error its log ends with (the
    missing module where an import failed)."""
    envs = rule_envs()
    lines: list[str] = []
    for found in _ERROR.finditer(output):
        rule = found.group(1)
        block = re.match(r"(?:[ \t]+.*\n?)*", output[found.end() + 1 :]).group(0)  # its indented lines
        logs = re.findall(r"^\s+log: (\S+)", block, re.MULTILINE)
        text = "".join((workdir / log).read_text() for log in logs if (workdir / log).is_file())
        missing = _MISSING.findall(text)
        reason = missing[-1] if missing else (text.strip().splitlines() or ["no log"])[-1]
        line = f"rule {rule} ({envs.get(rule, 'no env')}): {reason} [log {', '.join(logs) or '-'}]"
        if line not in lines:  # Snakemake repeats a job's error at the end of the run
            lines.append(line)
    return lines


@dataclass(frozen=True)
class CondaRun:
    workdir: Path
    proc: subprocess.CompletedProcess
    imports: Path  # the import records of the run's floecast processes

    def rules_run(self) -> set[str]:
        return {p.name for p in (self.workdir / "logs").iterdir() if p.is_dir() and p.name != "benchmark"}

    def check(self) -> None:
        if self.proc.returncode != 0:
            found = failures(self.workdir, self.proc.stdout + self.proc.stderr)
            tail = "" if found else (self.proc.stdout + self.proc.stderr)[-4000:]
            raise AssertionError("jobs failed in their conda envs:\n" + "\n".join(found) + tail)


@pytest.fixture(scope="module")
def conda_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install(tmp_path_factory.mktemp("conda"))


def run_in_envs(conda_bin: Path, workdir: Path, *args: str, configfile: Path | None = None) -> CondaRun:
    imports = workdir / "import-records"
    options = ["--sdm", "conda", "--conda-prefix", str(cache_root()), "--keep-going", *args]
    with environment({IMPORT_LOG: str(imports)}):
        proc = snakemake(workdir, *options, check=False, path=(conda_bin,), **({"configfile": configfile} if configfile else {}))
    return CondaRun(workdir, proc, imports)


# the tiny workflow's targets on request: exports, films, the data check (all in the north)
ON_REQUEST = (
    f"results/north/tiny/export/{INIT}/{INIT}_latlon.nc",
    f"results/north/tiny/export/{INIT}/{INIT}_members.nc",
    f"results/north/tiny/export/{INIT}/sio/{INIT}_extent.csv",
    f"results/north/tiny/plots/{INIT}_forecast.mp4",
    "results/north/inputs/sic_2006-06-01_2006-06-10.mp4",
    "data/checks/north/data_check.csv",
)


@pytest.fixture(scope="module")
def tiny_in_envs(conda_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> CondaRun:
    """The tiny workflow, its egress to a local folder, its exports, films and data check, and the SIC
    consistency report (over one month: its ingest_sic_product and sic_consistency jobs)."""
    workdir = tmp_path_factory.mktemp("tiny_conda")
    store = workdir / "published"
    consistency = "results/north/sic_consistency/OSI-438_vs_OSI-430-a.csv"
    overlap = "osisaf={'consistency': {'first_day': '2006-01-01', 'last_day': '2006-01-31'}}"
    egress = f"egress={{'url': 'file://{store}'}}"
    return run_in_envs(conda_bin, workdir, "all", *ON_REQUEST, consistency, "--config", egress, overlap)


@pytest.fixture(scope="module")
def south_export_in_envs(conda_bin: Path, tiny_in_envs: CondaRun) -> CondaRun:
    """The SIPN South export (southern hemisphere only), in the tiny run's folder: its forecast said to be
    on the south grid, with its member files, and only that rule allowed to run."""
    north, south = (tiny_in_envs.workdir / f"results/{hemi}/tiny" for hemi in ("north", "south"))
    (south / "forecasts").mkdir(parents=True, exist_ok=True)
    as_south(north / "forecasts" / f"{INIT}.nc", south / "forecasts" / f"{INIT}.nc")
    (south / "members").mkdir(exist_ok=True)
    shutil.copytree(north / "members" / INIT, south / "members" / INIT, dirs_exist_ok=True)
    target = f"results/south/tiny/export/{INIT}/sipn_south"
    # the synthetic sources are the north's only: the export reads no source, so say they are the real ones
    sources = "sources={'sic': 'osisaf', 'atmos': 'era5', 'ocean': 'oras5', 'cmip6': 'esgf', 'seas5': 'none'}"
    config = ("--config", "hemispheres=[north,south]", sources, "--allowed-rules", "export_sipn_south")
    return run_in_envs(conda_bin, tiny_in_envs.workdir, target, *config)


@pytest.fixture(scope="module")
def sources_in_envs(conda_bin: Path, services, tmp_path_factory: pytest.TempPathFactory) -> CondaRun:  # noqa: F811
    """OSI SAF over a local THREDDS, ERA5 from a local CDS (HRES open data for its newest day)
    and CMIP6 from a local ESGF: the real clients in the ingest env."""
    workdir = tmp_path_factory.mktemp("sources_conda")
    configfile = write_config(workdir, services)
    with cds_environment(workdir, services):
        return run_in_envs(conda_bin, workdir, *SOURCE_TARGETS, configfile=configfile)


def test_failure_names_the_rule_env_and_module(tmp_path: Path) -> None:
    log = tmp_path / "logs/combine_forecast/north_tiny_2006-07-01.log"
    log.parent.mkdir(parents=True)
    log.write_text("Traceback (most recent call last):\n  File \"x\"\nModuleNotFoundError: No module named 'torch'\n")
    output = (
        "Error in rule combine_forecast:\n    jobid: 12\n"
        "    log: logs/combine_forecast/north_tiny_2006-07-01.log (check log file(s) for error details)\n"
        "    conda-env: /x\nError in rule ingest_sic:\n    jobid: 3\n"
        "Error in rule combine_forecast:\n"
        "    log: logs/combine_forecast/north_tiny_2006-07-01.log (check log file(s) for error details)\n"
        "Shutting down, this might take some time.\n    log: logs/other.log\n"
    )
    assert failures(tmp_path, output) == [
        "rule combine_forecast (envs/predict.yaml): ModuleNotFoundError: No module named 'torch' "
        "[log logs/combine_forecast/north_tiny_2006-07-01.log]",
        "rule ingest_sic (envs/ingest.yaml): no log [log -]",
    ]


def test_tiny_workflow_runs_every_rule_in_its_env(tiny_in_envs: CondaRun) -> None:
    tiny_in_envs.check()
    out = tiny_in_envs.proc.stdout + tiny_in_envs.proc.stderr
    assert "Creating conda environment" in out or "conda" in out
    results = tiny_in_envs.workdir / "results/north/tiny"
    assert (results / "forecasts" / f"{INIT}.nc").is_file() and (results / "egress" / f"{INIT}.json").is_file()


def test_real_source_ingest_runs_in_the_ingest_env(sources_in_envs: CondaRun) -> None:
    sources_in_envs.check()
    assert {"ingest_sic", "ingest_atmos", "ingest_cmip6"} <= sources_in_envs.rules_run()
    assert (sources_in_envs.workdir / "data/raw/era5/t2m/north/2021/hres_20210102.nc").is_file()  # HRES GRIB read


def test_every_rule_ran_in_conda_mode(tiny_in_envs: CondaRun, south_export_in_envs: CondaRun, sources_in_envs: CondaRun) -> None:
    south_export_in_envs.check()
    assert (south_export_in_envs.workdir / f"results/south/tiny/export/{INIT}/sipn_south").is_dir()
    ran = tiny_in_envs.rules_run() | sources_in_envs.rules_run()  # the same folder: the tiny run's logs hold the export's
    assert set(rule_blocks()) - ran == set()


def _records(*runs: CondaRun) -> list[dict]:
    return [json.loads(p.read_text()) for run in runs if run.imports.is_dir() for p in run.imports.glob("*.json")]


def _env_names() -> dict[str, Path]:
    return {yaml.safe_load(p.read_text())["name"]: p for p in ENVS.glob("*.yaml")}


def test_jobs_ran_inside_their_envs(tiny_in_envs: CondaRun, sources_in_envs: CondaRun) -> None:
    """Every floecast process of the runs had an emulated env's prefix, and every env was used."""
    records = _records(tiny_in_envs, sources_in_envs)
    assert len(records) >= 60
    prefixes = {Path(r["prefix"]) for r in records}
    names = {json.loads((p / "conda-meta/emulated.json").read_text())["name"] for p in prefixes}
    assert names == set(_env_names())


def test_only_the_model_env_holds_torch(tiny_in_envs: CondaRun) -> None:
    for record in {r["prefix"]: r for r in _records(tiny_in_envs)}.values():
        meta = json.loads((Path(record["prefix"]) / "conda-meta/emulated.json").read_text())
        assert ("torch" in meta["linked"]) == (meta["name"] == "floecast-train"), meta["name"]


def test_each_env_lists_what_its_rules_import(
    tiny_in_envs: CondaRun, south_export_in_envs: CondaRun, sources_in_envs: CondaRun
) -> None:
    """A module the floecast code imports comes from a package its env file lists itself, not
    only as another package's dependency (which a later version may drop)."""
    env_files = _env_names()
    unlisted: dict[tuple[str, str], set[str]] = {}
    for record in _records(tiny_in_envs, south_export_in_envs, sources_in_envs):
        name = json.loads((Path(record["prefix"]) / "conda-meta/emulated.json").read_text())["name"]
        listed = listed_distributions(env_files[name])
        for importer, module in record["imports"]:
            dist = distribution_of(module)
            if dist not in listed:
                step = f"floecast {record['argv'][0]}" if record["argv"] else "floecast"
                unlisted.setdefault((env_files[name].name, str(dist)), set()).add(f"{importer} in {step}")
    problems = [
        f"envs/{env} does not list {dist}, which the rules' code imports ({', '.join(sorted(where))})"
        for (env, dist), where in sorted(unlisted.items())
    ]
    assert not problems, "\n".join(problems)
