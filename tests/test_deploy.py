"""Blue-green model runs (floecast.deploy) and scripts/provision (side-by-side environments)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from floecast import deploy

REPO = Path(__file__).resolve().parents[1]
HEMI = "north"


def write_scorecard(root: Path, run: str, rmse: list[float], n_init_dates: int = 52, iiee: float = 1e5) -> Path:
    """A scorecard as floecast.verify writes it: ensemble and persistence rows, 'all' and by month.

    The by-month and persistence rows carry values that would flip the gate if the gate read them.
    """
    path = deploy.scorecard_path(root, HEMI, run)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["lead_days,method,rmse,binary_accuracy,n_init_dates,mae,sie_error_km2,iiee_km2,sps_km2,crps,spread_skill,month"]
    for lead, value in enumerate(rmse, 1):
        lines.append(f"{lead},ensemble_mean,{value},0.95,{n_init_dates},0.02,1000,{iiee},9e4,0.01,0.9,all")
        lines.append(f"{lead},persistence,0.001,0.99,{n_init_dates},0.02,1000,1,1,,,all")
        lines.append(f"{lead},ensemble_mean,0.001,0.99,{n_init_dates // 2},0.02,1000,1,1,0.01,0.9,9")
    path.write_text("\n".join(lines) + "\n")
    return path


def make_run(root: Path, run: str, rmse: list[float] | None = None, **kwargs) -> str:
    (root / "models" / HEMI / run / "member_0").mkdir(parents=True, exist_ok=True)
    if rmse is not None:
        write_scorecard(root, run, rmse, **kwargs)
    return run


def history_lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "models" / HEMI / "deployments.jsonl").read_text().splitlines()]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLOECAST_OPERATOR", "alice")
    make_run(tmp_path, "v1", [0.10, 0.20, 0.30])
    return tmp_path


def test_first_promotion_passes_and_is_recorded(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = deploy.promote(root, HEMI, "v1")
    assert result.passed and result.first_promotion and not result.forced
    assert "no current production" in capsys.readouterr().out
    link = root / "models" / HEMI / "production"
    assert link.is_symlink() and os.readlink(link) == "v1"  # relative: the tree can move
    assert deploy.current(root, HEMI) == {"staging": None, "production": "v1"}
    (entry,) = history_lines(root)
    assert entry["action"] == "promote" and entry["run"] == "v1" and entry["previous"] is None
    assert entry["who"] == "alice" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["when"])
    assert entry["gate"]["first_promotion"] is True


def test_gate_passes_a_better_run_and_prints_the_table(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deploy.promote(root, HEMI, "v1")
    make_run(root, "v2", [0.09, 0.20, 0.31], iiee=8e4)
    capsys.readouterr()
    with pytest.raises(deploy.GateFailedError):  # 0.31 > 0.30 at lead 3, tolerance 0
        deploy.promote(root, HEMI, "v2")
    result = deploy.promote(root, HEMI, "v2", tolerance=0.05)
    out = capsys.readouterr().out
    assert result.passed and [row.ok for row in result.leads] == [True, True, True]
    assert [row.lead for row in result.leads] == [1, 2, 3]
    assert result.leads[0].candidate_rmse == pytest.approx(0.09) and result.leads[0].difference == pytest.approx(-0.01)
    assert result.mean_iiee_km2 == {"candidate": 8e4, "production": 1e5}
    assert result.mean_binary_accuracy["candidate"] == pytest.approx(0.95)
    assert "candidate_rmse" in out and "production_rmse" in out and "verdict: PASS" in out
    assert "v2 replaces v1 as production" in out
    assert os.readlink(root / "models" / HEMI / "production") == "v2"
    last = history_lines(root)[-1]
    assert (last["action"], last["run"], last["previous"]) == ("promote", "v2", "v1")
    assert last["gate"]["tolerance"] == 0.05 and len(last["gate"]["leads"]) == 3


def test_gate_refuses_a_worse_run_and_leaves_production(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deploy.promote(root, HEMI, "v1")
    make_run(root, "v2", [0.09, 0.25, 0.30])
    with pytest.raises(deploy.GateFailedError) as caught:
        deploy.promote(root, HEMI, "v2")
    message = str(caught.value)
    assert "results/north/v2/verification/scorecard.csv" in message and "results/north/v1/verification" in message
    assert "at 1 of 3 leads (2)" in message and "+25.0%" in message
    assert not caught.value.result.passed and [r.ok for r in caught.value.result.leads] == [True, False, True]
    out = capsys.readouterr().out
    assert re.search(r"^\s+2\s+0\.25000\s+0\.20000\s+\+0\.05000\s+NO$", out, re.MULTILINE)
    assert "verdict: FAIL" in out
    assert deploy.current(root, HEMI)["production"] == "v1" and len(history_lines(root)) == 1

    forced = deploy.promote(root, HEMI, "v2", force=True)
    assert forced.forced and not forced.passed and "forced" in forced.verdict
    assert history_lines(root)[-1]["gate"]["forced"] is True
    assert deploy.current(root, HEMI)["production"] == "v2"


@pytest.mark.parametrize(("kwargs", "said"), [({"n_init_dates": 26}, "26 init dates"), ({"rmse": [0.1, 0.2]}, "2 leads (1-2)")])
def test_gate_refuses_scorecards_over_other_dates(root: Path, kwargs: dict, said: str) -> None:
    deploy.promote(root, HEMI, "v1")
    make_run(root, "v3", **{"rmse": [0.01, 0.01, 0.01], **kwargs})
    with pytest.raises(deploy.NotComparableError) as caught:
        deploy.promote(root, HEMI, "v3")
    message = str(caught.value)
    assert "not comparable" in message and said in message and "re-run the hindcast of both runs" in message.lower()
    assert "results/north/v3/verification/scorecard.csv" in message and "results/north/v1/verification" in message
    assert deploy.current(root, HEMI)["production"] == "v1"


def test_refusals_name_what_is_missing(root: Path) -> None:
    with pytest.raises(deploy.RunNotFoundError, match="models/north/nope"):
        deploy.promote(root, HEMI, "nope")
    make_run(root, "untested")
    with pytest.raises(deploy.ScorecardError, match="results/north/untested/verification/scorecard.csv"):
        deploy.promote(root, HEMI, "untested")
    deploy.promote(root, HEMI, "v1")
    with pytest.raises(deploy.AlreadyDeployedError):
        deploy.promote(root, HEMI, "v1")
    with pytest.raises(deploy.DeployError, match="not a run name"):
        deploy.stage(root, HEMI, "production")


def test_stage_switches_the_staging_link_only(root: Path) -> None:
    make_run(root, "v2")
    assert deploy.stage(root, HEMI, "v1") is None
    assert deploy.stage(root, HEMI, "v2") == "v1"
    assert os.readlink(root / "models" / HEMI / "staging") == "v2"
    assert deploy.current(root, HEMI) == {"staging": "v2", "production": None}
    assert [(e["action"], e["run"], e["previous"]) for e in history_lines(root)] == [("stage", "v1", None), ("stage", "v2", "v1")]
    assert not list((root / "models" / HEMI).glob(".*.tmp"))  # the temporary link was renamed away


def test_rollback_walks_back_through_promotions(root: Path) -> None:
    with pytest.raises(deploy.NoPreviousProductionError, match="deployments.jsonl"):
        deploy.rollback(root, HEMI)
    deploy.promote(root, HEMI, "v1")
    with pytest.raises(deploy.NoPreviousProductionError, match="no earlier production run than 'v1'"):
        deploy.rollback(root, HEMI)
    make_run(root, "v2", [0.1, 0.2, 0.3])
    make_run(root, "v3", [0.1, 0.2, 0.3])
    deploy.promote(root, HEMI, "v2")
    deploy.promote(root, HEMI, "v3")
    assert deploy.rollback(root, HEMI) == "v2"
    assert deploy.rollback(root, HEMI) == "v1"  # not back to v3: rollbacks undo, one by one
    assert os.readlink(root / "models" / HEMI / "production") == "v1"
    entries = history_lines(root)
    assert [(e["action"], e["run"], e["previous"]) for e in entries[-2:]] == [("rollback", "v2", "v3"), ("rollback", "v1", "v2")]
    with pytest.raises(deploy.NoPreviousProductionError):
        deploy.rollback(root, HEMI)


def test_rollback_refuses_a_link_changed_by_hand(root: Path) -> None:
    make_run(root, "v2", [0.1, 0.2, 0.3])
    deploy.promote(root, HEMI, "v1")
    deploy.promote(root, HEMI, "v2")
    link = root / "models" / HEMI / "production"
    link.unlink()
    link.symlink_to("v1")
    with pytest.raises(deploy.HistoryMismatchError, match="changed outside floecast"):
        deploy.rollback(root, HEMI)


# --- scripts/provision: two versions side by side on one shared data folder -------------------


def _source_tree(tmp: Path, version: str) -> Path:
    """A copy of this checkout's package and workflow, stamped with ``version``."""
    tree = tmp / f"floecast-{version}"
    tree.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    items = (
        "pyproject.toml",
        "README.md",
        "src",
        "Snakefile",
        "rules",
        "envs",
        "profiles",
        "config",
        "scripts",
        "requirements",
        "report",
    )
    for item in items:
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, tree / item, symlinks=True, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, tree / item)
    init = tree / "src" / "floecast" / "__init__.py"
    init.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{version}"', init.read_text()))
    return tree


def _provision(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPO / "scripts" / "provision"), *map(str, args), "--reuse-site-packages", sys.prefix]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.workflow
def test_provision_two_versions_side_by_side(tmp_path: Path) -> None:
    current = re.search(r'__version__ = "([^"]+)"', (REPO / "src" / "floecast" / "__init__.py").read_text()).group(1)
    versions = {"blue": current, "green": f"{current}.post1"}  # the second pretends to be a newer release
    trees = {name: _source_tree(tmp_path / "src", version) for name, version in versions.items()}
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, trees["green"]], check=True, timeout=300
    )
    (wheel,) = wheels.glob("floecast-*.whl")
    shared = tmp_path / "shared"
    envs = {name: tmp_path / "envs" / name for name in versions}
    blue = _provision(
        envs["blue"], "--version", current, "--source", trees["blue"], "--data", shared, "--config", REPO / "config/demo.yaml"
    )
    assert blue.returncode == 0, blue.stderr + blue.stdout
    green = _provision(
        envs["green"], "--version", versions["green"], "--wheel", wheel, "--workflow", trees["green"], "--data", shared
    )
    assert green.returncode == 0, green.stderr + green.stdout

    for name, env in envs.items():
        said = subprocess.run([env / ".venv/bin/floecast", "--version"], capture_output=True, text=True, check=True).stdout
        assert said.strip() == f"floecast {versions[name]}"
        where = subprocess.run(
            [env / ".venv/bin/python", "-c", "import floecast; print(floecast.__file__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert where.startswith(str(env / ".venv")), where  # its own copy, not the checkout
        assert (env / "data" / "raw").is_symlink() and (env / "data" / "raw").resolve() == (shared / "raw").resolve()
        assert (env / "data" / "interim").resolve() == (shared / "interim").resolve()
        assert (env / "data" / "store").is_dir() and not (env / "data" / "store").is_symlink()
        assert (env / "Snakefile").is_file() and (env / "rules").is_dir() and not (env / "config" / "schema.yaml").is_symlink()
        record = json.loads((env / "ENVIRONMENT.json").read_text())
        assert record["version"] == versions[name] and record["data_dir"] == str(shared.resolve())
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["created"])
    assert json.loads((envs["blue"] / "ENVIRONMENT.json").read_text())["config"] == "config/demo.yaml"
    assert json.loads((envs["green"] / "ENVIRONMENT.json").read_text())["package"]["from"] == "wheel"

    # one raw file, fetched by blue, is seen by green: green has nothing to do for it
    target = "data/raw/synthetic/t2m/north/2003.nc"

    def in_env(name: str) -> dict[str, str]:  # as after `. .venv/bin/activate`: the rules' `floecast` is the env's own
        return {**os.environ, "PATH": f"{envs[name] / '.venv/bin'}{os.pathsep}{os.environ['PATH']}"}

    subprocess.run(
        [envs["blue"] / ".venv/bin/snakemake", target, "--cores", "1", "--configfile", "config/demo.yaml"],
        cwd=envs["blue"],
        env=in_env("blue"),
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (shared / "raw/synthetic/t2m/north/2003.nc").is_file()
    dry = subprocess.run(
        [envs["green"] / ".venv/bin/snakemake", "-n", "--cores", "1", target],
        cwd=envs["green"],
        env=in_env("green"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout + dry.stderr


def test_provision_refuses_a_version_mismatch(tmp_path: Path) -> None:
    done = _provision(tmp_path / "env", "--version", "0.0.1", "--source", REPO, "--data", tmp_path / "shared")
    assert done.returncode == 1
    assert "not 0.0.1" in done.stderr and str(REPO) in done.stderr
    assert not (tmp_path / "env").exists()
