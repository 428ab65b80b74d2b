"""Repository conventions: linters clean, every rule complete, envs pinned consistently."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GPU_RULES = {"train_member", "predict_member", "hindcast_member", "validation_member"}


def run(*cmd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def rule_blocks() -> dict[str, str]:
    blocks = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        parts = re.split(r"^rule (\w+):\n", smk.read_text(), flags=re.MULTILINE)
        blocks.update(dict(zip(parts[1::2], parts[2::2], strict=True)))
    return blocks


def test_ruff_clean() -> None:
    for cmd in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        proc = run(str(BIN / cmd[0]), *cmd[1:])
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt_clean() -> None:
    proc = run(str(BIN / "snakefmt"), "--check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakemake_lint_clean() -> None:
    proc = run(sys.executable, "-m", "snakemake", "--lint")
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_snakefmt_is_pinned() -> None:
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert any(re.fullmatch(r"snakefmt==[\d.]+", d) for d in dev), dev


def test_every_rule_has_log_benchmark_conda_resources() -> None:
    blocks = rule_blocks()
    assert {"ingest_sic", "train_member", "combine_forecast", "scorecard", "plot_forecast"} <= set(blocks)
    for name, body in blocks.items():
        for directive in ("log:", "benchmark:", "conda:", "resources:", "shell:"):
            assert f"    {directive}" in body, f"rule {name} lacks {directive}"
        assert '"floecast ' in body, f"rule {name} does not call the floecast command"
        assert ("gpu=1" in body) == (name in GPU_RULES), f"rule {name}: gpu=1 exactly on the GPU rules"


def _pins(env_file: Path) -> dict[str, str]:
    deps = yaml.safe_load(env_file.read_text())["dependencies"]
    return dict(d.split("=", 1) for d in deps if isinstance(d, str) and "=" in d)


CONDA_TO_PYPI = {"netcdf4": "netcdf4", "matplotlib-base": "matplotlib", "pytorch": "torch", "python-eccodes": "eccodes"}


@pytest.mark.parametrize("env_file", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_pins_agree_with_lock_and_pyproject(env_file: Path) -> None:
    lock = {}
    for line in (REPO / "requirements" / "lock.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            lock[name.lower().replace("_", "-")] = version
    lower_bounds = {}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [dep for group in project["optional-dependencies"].values() for dep in group]
    for dep in project["dependencies"] + extras:  # an env may carry an extra's package (s3fs for egress)
        match = re.match(r"([A-Za-z0-9_.-]+)(?:\[[\w,]+\])?>=([\d.]+)", dep)
        if match:
            lower_bounds[match.group(1).lower()] = match.group(2)
    pins = _pins(env_file)
    assert pins, f"{env_file.name} pins nothing"
    for conda_name, version in pins.items():
        if conda_name == "python":
            continue
        name = CONDA_TO_PYPI.get(conda_name, conda_name).lower()
        assert name in lower_bounds, f"{env_file.name}: {conda_name} is not a dependency in pyproject.toml"
        as_tuple = lambda v: tuple(int(x) for x in re.findall(r"\d+", v)[:3])  # noqa: E731
        assert as_tuple(version) >= as_tuple(lower_bounds[name]), f"{env_file.name}: {conda_name}={version} below pyproject"
        if name == "torch":
            assert version == "2.13.0"
        else:
            assert lock.get(name) == version, f"{env_file.name}: {conda_name}={version}, lock has {lock.get(name)}"


def test_every_conda_directive_names_an_existing_env() -> None:
    for name, body in rule_blocks().items():
        env = re.search(r'conda:\n\s+"\.\./(envs/[\w.-]+\.yaml)"', body)
        assert env and (REPO / env.group(1)).exists(), f"rule {name}"


def test_schema_keys_have_description_and_default() -> None:
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())

    def walk(props: dict, where: str) -> None:
        for key, sub in props.items():
            assert "description" in sub, f"{where}{key} has no description"
            if key != "date" or where:
                assert "default" in sub or where.endswith("runs.items."), f"{where}{key} has no default"
            if "properties" in sub:
                walk(sub["properties"], f"{where}{key}.")

    walk(schema["properties"], "")
