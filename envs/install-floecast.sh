#!/usr/bin/env bash
# Post-deploy script of every env here (each <env>.post-deploy.sh links to it): Snakemake
# (--sdm conda) runs it once inside a new env. It installs the floecast package of the
# workflow's checkout, editable and without dependencies (the env file pins those). The env
# file's pip section cannot do it: Snakemake creates the env from a copy of the file in
# .snakemake/conda/, so a path relative to envs/ points elsewhere, and a pip requirements
# file takes no --no-deps. The editable build fetches hatchling, as any pip install does.
set -euo pipefail
checkout="${FLOECAST_WORKFLOW:?the Snakefile sets FLOECAST_WORKFLOW to the workflow checkout}"
python -m pip install --no-deps --disable-pip-version-check --quiet --editable "$checkout"
