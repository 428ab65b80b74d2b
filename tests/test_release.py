"""Release packaging: the version, the changelog, the CI workflow, and the built distributions.

``test_wheel_from_clean_copy`` does what the release job of .github/workflows/ci.yml does.
It copies the source tree (the files git tracks or would track, without data/, .venv/ or
results/), runs ``python -m build`` on the copy (the sdist, then the wheel built from that
sdist, in an isolated environment with hatchling from the package index) and checks both
archives. Then it installs the wheel, without dependencies, into a fresh virtual
environment.

That environment is made by this interpreter's ``venv`` module, whose new environments
are based on the base installation (``home`` in pyvenv.cfg), not on the virtual
environment running the tests, and it does not include system site packages. So neither
the editable install of this checkout nor ``src/`` is visible from it. The wheel alone
must supply ``floecast.__version__`` and its metadata version. For the commands, a ``.pth``
file then appends this environment's site-packages to the new one's ``sys.path``, which
provides the dependencies (requests, pyyaml, jsonschema, numpy, pyproj, pandas). A path
appended this way is not a site directory, so the editable install's own ``.pth`` in it
is not processed. The new site-packages comes first, so ``floecast`` and its schema and
NSIDC files are imported from the wheel, and the test checks that they are. Installing
the real dependencies instead would download torch and the rest, minutes with a network,
for nothing the wheel decides.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

import floecast

REPO = Path(__file__).resolve().parents[1]
INIT = Path("src/floecast/__init__.py")
SCHEMA = "floecast/schema/config.schema.yaml"
NSIDC = "floecast/data/nsidc_n_seaice_extent_daily_v3.csv"
# left out of the copy where git cannot list the files (a tree without .git)
NOT_SOURCE = {".git", ".venv", "data", "models", "results", "logs", "build", "dist", ".snakemake"}
NOT_SOURCE_ANYWHERE = {"__pycache__", ".pytest_cache", ".ruff_cache"}
TIMEOUT_S = 300


def source_version(root: Path = REPO) -> str:
    """``__version__`` as written in the file hatch reads it from (tool.hatch.version)."""
    match = re.search(r'^__version__ = "([^"]+)"$', (root / INIT).read_text(), flags=re.MULTILINE)
    assert match, f'no __version__ = "..." line in {root / INIT}'
    return match.group(1)


def test_version_is_pep440_and_semver() -> None:
    version = floecast.__version__
    assert version == source_version()
    assert str(Version(version)) == version, f"{version!r} is not in PEP 440's normal form"
    # MAJOR.MINOR.PATCH, optionally a pre-release (a/b/rc) and/or .devN: the tag is v<version>
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", version), version


def test_changelog_sections() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", text, flags=re.MULTILINE)
    assert headings and headings[0] == ("Unreleased", ""), "CHANGELOG.md must start with ## [Unreleased]"
    released = []
    for name, rest in headings[1:]:
        assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest), f"## [{name}]{rest}: a release needs ' - YYYY-MM-DD'"
        released.append(Version(name))
    assert released == sorted(released, reverse=True) and len(set(released)) == len(released), released
    # the package is either the newest release or the one being prepared under Unreleased
    assert released and Version(floecast.__version__) >= released[0], (floecast.__version__, released[0])


def test_ci_workflow() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    jobs = workflow["jobs"]
    test_steps = " ".join(str(step.get("run", "")) for step in jobs["test"]["steps"])
    assert "make lint" in test_steps and "make test" in test_steps
    uses = {job: [step.get("uses", "") for step in body["steps"]] for job, body in jobs.items()}
    assert "pypa/gh-action-pypi-publish@release/v1" in uses["pypi"]
    assert jobs["pypi"]["permissions"] == {"id-token": "write"}
    assert "refs/tags/v" in jobs["dist"]["if"]
    assert "floecast.__version__" in " ".join(str(step.get("run", "")) for step in jobs["dist"]["steps"])


def _copy_source(dest: Path) -> None:
    """The files of the working tree that git tracks or would track (deleted ones left out),
    symlinks kept as links; without git, the tree minus data, environments and caches."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode()
        names = [name for name in listed.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        names = []
    if not names:
        names = [
            str(p.relative_to(REPO))
            for p in REPO.rglob("*")
            if not p.is_dir()
            and p.relative_to(REPO).parts[0] not in NOT_SOURCE
            and not NOT_SOURCE_ANYWHERE & set(p.relative_to(REPO).parts)
        ]
    for name in names:
        src, dst = REPO / name, dest / name
        if not (src.exists() or src.is_symlink()) or src.is_dir():  # deleted, or a submodule
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def test_wheel_from_clean_copy(tmp_path: Path) -> None:
    source, dist, venv, elsewhere = (tmp_path / d for d in ("source", "dist", "venv", "elsewhere"))
    source.mkdir()
    elsewhere.mkdir()
    if subprocess.run([sys.executable, "-c", "import build"], cwd=elsewhere, capture_output=True).returncode:
        pytest.fail("the `build` package is missing: it is in the dev extra (make install)")
    _copy_source(source)
    version = source_version(source)
    assert version == floecast.__version__

    # sdist, then the wheel from the sdist: as the release job builds them
    _run([sys.executable, "-m", "build", "--outdir", dist, source], cwd=tmp_path)
    sdist, wheel = dist / f"floecast-{version}.tar.gz", dist / f"floecast-{version}-py3-none-any.whl"
    assert sorted(p.name for p in dist.iterdir()) == sorted([sdist.name, wheel.name])

    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md", str(INIT), f"src/{SCHEMA}", f"src/{NSIDC}"):
        assert name in in_sdist, f"{name} not in {sdist.name}"

    package_files = {str(p.relative_to(source / "src")) for p in (source / "src" / "floecast").rglob("*") if p.is_file()}
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        dist_info = f"floecast-{version}.dist-info"
        metadata = whl.read(f"{dist_info}/METADATA").decode()
        entry_points = whl.read(f"{dist_info}/entry_points.txt").decode()
    assert {SCHEMA, NSIDC} <= names, f"the wheel lacks {sorted({SCHEMA, NSIDC} - names)}"
    assert {n for n in names if n.startswith("floecast/")} == package_files, "the wheel's package differs from src/floecast"
    assert all(n.startswith(("floecast/", f"{dist_info}/")) for n in names), sorted(names)
    assert not any(n.endswith(".pyc") for n in names)
    assert re.search(rf"^Version: {re.escape(version)}$", metadata, flags=re.MULTILINE)
    assert re.search(r"^floecast = floecast\.cli:main$", entry_points, flags=re.MULTILINE)

    # the wheel alone, in a fresh environment that does not see this checkout
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel], cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"

    def python_c(code: str) -> list[str]:
        return _run([python, "-c", code], cwd=elsewhere, env=env).stdout.split()

    meta_version, module_version, module_file = python_c(
        "import importlib.metadata as m, floecast; print(m.version('floecast'), floecast.__version__, floecast.__file__)"
    )
    assert (meta_version, module_version) == (version, version)
    assert Path(module_file).is_relative_to(venv), module_file

    # the dependencies from this environment, after the wheel on sys.path (see the docstring)
    (site,) = python_c("import sysconfig; print(sysconfig.get_paths()['purelib'])")
    deps = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(site) / "_floecast_test_deps.pth").write_text("".join(f"{path}\n" for path in deps))
    floecast_cmd = venv / "bin" / "floecast"

    assert _run([floecast_cmd, "--version"], cwd=elsewhere, env=env).stdout.strip() == f"floecast {version}"

    checked = _run([floecast_cmd, "check-config", source / "config" / "demo.yaml"], cwd=elsewhere, env=env)
    config = json.loads(checked.stdout)
    assert config["run"] == "demo" and config["hemispheres"], config

    module_file, schema_file, nsidc_days = python_c(
        "import floecast, floecast.config as c, floecast.sources.nsidc as n; "
        "print(floecast.__file__, c.schema_path(), len(n.read_nsidc_extent()))"
    )
    assert Path(module_file).is_relative_to(venv) and Path(schema_file).is_relative_to(venv), (module_file, schema_file)
    assert int(nsidc_days) > 10_000  # daily since 1978
