"""The workflow's conda envs emulated from the installed .venv, for `snakemake --sdm conda`.

Conda channels cannot be reached from the test machines, so this module stands in for the
``conda`` command that Snakemake calls: ``conda env create --file ENV --prefix DIR`` makes a
virtual environment at DIR that holds only the packages ENV lists (conda names mapped to pip
names, each pinned version checked against the .venv) and their declared dependency closure
(the distributions' ``Requires-Dist``), linked from the .venv. A pip section, if the file has
one, is installed by pip from a requirements file in the env file's folder, as conda does.
Snakemake itself does the rest as with real conda: one env per env file, named by the hash of
its content, its post-deploy script run inside it, and each job's command run after
``source <conda>/bin/activate <env>``. The activation here also takes the workflow's own
Python (.venv/bin) off PATH, so that a command the env lacks fails instead of running from
the .venv.

What it does not prove: that conda-forge solves the files (its package names, builds and
their own dependencies are not checked), nor anything about packages that pip and conda
split differently (ecCodes' C library, netCDF and HDF5, PROJ and GDAL come inside pip
wheels here).

Each env also gets a ``sitecustomize`` that, when ``FLOECAST_IMPORT_LOG`` names a folder,
records the third-party modules that floecast's own modules import in each ``floecast``
process, so a test can check that every env lists what its rules import directly.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from pathlib import Path, PurePosixPath

import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
ENVS = REPO / "envs"
VENV_BIN = Path(sys.executable).parent
# conda-forge names whose pip distribution is named otherwise
CONDA_TO_PIP = {"pytorch": "torch", "matplotlib-base": "matplotlib", "python-eccodes": "eccodes"}
IMPORT_LOG = "FLOECAST_IMPORT_LOG"


class EnvError(RuntimeError):
    """An env file that cannot be emulated from the .venv; the message names the file and package."""


def env_specs(env_file: Path) -> dict[str, str | None]:
    """The conda packages an env file lists, with their pinned version (None where unpinned)."""
    specs: dict[str, str | None] = {}
    for dep in yaml.safe_load(env_file.read_text())["dependencies"]:
        if isinstance(dep, str):  # name or name=version (a dict is the pip section)
            name, _, version = dep.partition("=")
            specs[name.strip()] = version.lstrip("=").strip() or None
    return specs


def pip_name(conda_name: str) -> str:
    return canonicalize_name(CONDA_TO_PIP.get(conda_name, conda_name))


def listed_distributions(env_file: Path) -> set[str]:
    """The pip distributions an env file lists itself (not its dependencies)."""
    return {pip_name(name) for name in env_specs(env_file) if name != "python"}


@cache
def installed() -> dict[str, metadata.Distribution]:
    """The .venv's distributions by canonical name (the editable floecast left out)."""
    found = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=[site_packages()])}
    found.pop("floecast", None)
    return found


def site_packages(prefix: Path | None = None) -> Path:
    if prefix is None:
        return Path(sysconfig.get_paths()["purelib"])
    return prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def closure(names: Iterable[str], env_file: Path) -> set[str]:
    """The distributions ``names`` and everything their metadata requires (markers evaluated for
    this interpreter, extras followed), all of which the .venv must hold."""
    have = installed()
    wanted: dict[str, set[str]] = defaultdict(set)  # name -> extras asked for
    todo = [(canonicalize_name(n), frozenset()) for n in names]
    while todo:
        name, extras = todo.pop()
        if name in wanted and extras <= wanted[name]:
            continue
        if name not in have:
            raise EnvError(f"{env_file.name}: needs {name}, which the .venv does not hold")
        wanted[name] |= extras
        for text in have[name].requires or []:
            req = Requirement(text)
            markers = [{**default_environment(), "extra": e} for e in ("", *wanted[name])]
            if req.marker is None or any(req.marker.evaluate(m) for m in markers):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return set(wanted)


@cache
def owners() -> dict[PurePosixPath, frozenset[str]]:
    """Every path prefix under the .venv's site-packages and the distributions with files below it."""
    found: dict[PurePosixPath, set[str]] = defaultdict(set)
    for name, dist in installed().items():
        for file in dist.files or []:
            parts = PurePosixPath(file).parts
            if ".." in parts:
                continue  # scripts and data outside site-packages
            for i in range(1, len(parts) + 1):
                found[PurePosixPath(*parts[:i])].add(name)
    return {path: frozenset(names) for path, names in found.items()}


def distribution_of(module: str) -> str | None:
    """The .venv distribution that provides ``module`` (e.g. ecmwf.opendata -> ecmwf-opendata)."""
    parts = module.split(".")
    table = owners()
    for i in range(len(parts), 0, -1):
        for candidate in (PurePosixPath(*parts[:i]), PurePosixPath(*parts[: i - 1], parts[i - 1] + ".py")):
            if len(table.get(candidate, ())) == 1:
                return next(iter(table[candidate]))
    top = [p for p in table if len(p.parts) == 1 and p.name.split(".")[0] == parts[0] and len(table[p]) == 1]
    return next(iter(table[top[0]])) if top else None


def link_distributions(names: set[str], target: Path) -> None:
    """Link the files of ``names`` from the .venv's site-packages into ``target``: each at its
    shortest path that no other distribution shares (a namespace folder such as ecmwf/ is made
    real, and only the env's own packages are linked inside it)."""
    source, table = site_packages(), owners()
    for name in sorted(names):
        for file in installed()[name].files or []:
            parts = PurePosixPath(file).parts
            if ".." in parts:
                continue
            for i in range(1, len(parts) + 1):
                prefix = PurePosixPath(*parts[:i])
                if table[prefix] <= names or i == len(parts):
                    break
            link = target / prefix
            if link.is_symlink() or link.exists():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            if (source / prefix).exists():
                link.symlink_to(source / prefix)


RECORDER = '''\
"""Records the third-party modules that floecast's own modules import (tests/conda_envs.py)."""
import atexit, builtins, json, os, sys

_folder = os.environ.get("FLOECAST_IMPORT_LOG")
if _folder and os.path.basename(sys.argv[0] if sys.argv else "") == "floecast":
    _original = builtins.__import__
    _seen = set()
    _skip = {"floecast", "__future__", *sys.stdlib_module_names}

    def _recording(name, globals=None, locals=None, fromlist=(), level=0):
        importer = (globals or {}).get("__name__") or ""
        if level == 0 and importer.partition(".")[0] == "floecast" and name.partition(".")[0] not in _skip:
            _seen.add((importer, name))
        return _original(name, globals, locals, fromlist, level)

    def _write():
        os.makedirs(_folder, exist_ok=True)
        record = {"prefix": sys.prefix, "argv": sys.argv[1:4], "imports": sorted(_seen)}
        with open(os.path.join(_folder, f"{os.getpid()}.json"), "w") as handle:
            json.dump(record, handle)

    builtins.__import__ = _recording
    atexit.register(_write)
'''


def create_env(env_file: Path, prefix: Path) -> None:
    """`conda env create --file env_file --prefix prefix`, from the .venv's distributions."""
    specs = env_specs(env_file)
    python = specs.get("python")
    if python and not f"{sys.version_info.major}.{sys.version_info.minor}".startswith(python.rstrip(".*")):
        raise EnvError(f"{env_file.name}: python={python}, the .venv runs {sys.version.split()[0]}")
    for conda_name, version in specs.items():
        if conda_name == "python":
            continue
        dist = installed().get(pip_name(conda_name))
        if dist is None:
            raise EnvError(f"{env_file.name}: {conda_name} (pip {pip_name(conda_name)}) is not installed in the .venv")
        if version and Version(dist.version).public != version:  # 2.13.0+cpu is torch 2.13.0
            raise EnvError(f"{env_file.name}: {conda_name}={version}, the .venv has {dist.version}")
    names = closure([pip_name(n) for n in specs if n != "python"], env_file)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    target = site_packages(prefix)
    link_distributions(names, target)
    (target / "sitecustomize.py").write_text(RECORDER)
    spec = yaml.safe_load(env_file.read_text())
    (prefix / "conda-meta").mkdir(exist_ok=True)
    (prefix / "conda-meta" / "emulated.json").write_text(json.dumps({"name": spec.get("name"), "linked": sorted(names)}))
    pip_section = [d for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d]
    if pip_section:  # as conda does: a requirements file beside the env file, pip run in its folder
        requirements = env_file.parent / f"condaenv.{os.getpid()}.requirements.txt"
        requirements.write_text("\n".join(pip_section[0]["pip"]) + "\n")
        try:
            subprocess.run(
                [str(prefix / "bin" / "python"), "-m", "pip", "install", "-U", "-r", str(requirements)],
                cwd=env_file.parent,
                check=True,
            )
        finally:
            requirements.unlink()


def activate_script() -> str:
    return (
        "# `source activate PREFIX` of an emulated conda env (tests/conda_envs.py)\n"
        'CONDA_PREFIX="$1"; CONDA_DEFAULT_ENV="$1"; VIRTUAL_ENV="$1"\n'
        "export CONDA_PREFIX CONDA_DEFAULT_ENV VIRTUAL_ENV\n"
        f"PATH=$(printf '%s' \"$PATH\" | tr ':' '\\n' | grep -vxF '{VENV_BIN}' | paste -sd: -)\n"
        'export PATH="$1/bin:$PATH"\n'
        "unset PYTHONHOME PYTHONPATH\n"
        "hash -r\n"
    )


def main(argv: list[str], base: Path) -> int:
    """The `conda` commands Snakemake runs."""
    if argv == ["--version"]:
        print("conda 24.11.3")
        return 0
    if argv[:2] == ["info", "--json"]:
        print(json.dumps({"conda_prefix": str(base), "platform": "linux-64", "conda_version": "24.11.3"}))
        return 0
    if argv[:2] == ["config", "--get"]:
        print(json.dumps({"get": {"channel_priority": "strict"}, "rc_path": str(base / ".condarc"), "success": True}))
        return 0
    if argv[:1] == ["clean"]:
        return 0
    if argv[:2] == ["env", "create"]:
        parser = argparse.ArgumentParser(prog="conda env create")
        parser.add_argument("--file", required=True)
        parser.add_argument("--prefix", required=True)
        parser.add_argument("--quiet", action="store_true")
        parser.add_argument("--no-default-packages", action="store_true")
        args = parser.parse_args(argv[2:])
        try:
            create_env(Path(args.file), Path(args.prefix))
        except EnvError as err:
            print(f"emulated conda: {err}", file=sys.stderr)
            return 1
        return 0
    print(f"emulated conda: {' '.join(argv)} is not emulated", file=sys.stderr)
    return 2


def install(base: Path) -> Path:
    """An emulated conda installation at ``base``: ``bin/conda`` and ``bin/activate``; returns bin."""
    bin_dir = base / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    conda = bin_dir / "conda"
    conda.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        f"from conda_envs import main\nsys.exit(main(sys.argv[1:], __import__('pathlib').Path({str(base)!r})))\n"
    )
    conda.chmod(0o755)
    (bin_dir / "activate").write_text(activate_script())
    return bin_dir


def cache_root() -> Path:
    """Where the emulated envs are kept between test runs (Snakemake's --conda-prefix): in the
    .venv they link into, under a key of what they are built from. Snakemake names each env by
    the hash of its env file, so a changed file gets a new env."""
    key = hashlib.sha256()
    for path in (REPO / "requirements" / "lock.txt", REPO / "pyproject.toml", Path(__file__)):
        key.update(path.read_bytes())
    key.update(sys.version.encode())
    root = Path(sys.prefix) / "floecast-test-conda-envs"
    for stale in root.glob("*"):
        if stale.name != key.hexdigest()[:16]:
            shutil.rmtree(stale, ignore_errors=True)
    return root / key.hexdigest()[:16]
