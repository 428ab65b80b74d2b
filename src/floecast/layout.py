"""The workflow's file layout in one place: every path a rule reads or writes, relative to the
workflow's root, as a template with Snakemake wildcards (``{hemi}``, ``{run}``, ...).

The rules take their inputs and outputs from here (through ``rules/common.smk``); ``floecast
status``, ``floecast promote`` and the store reader fill the same templates (:func:`fill`,
:func:`path`) or recognise paths by them (:func:`match`). A path changes here and nowhere else.
Wildcard names are the rules' wildcard names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# data/raw: as delivered, per source. A SIC period's manifest is written last; its daily files lie
# in the folder of the manifest's name ({period} is YYYY or YYYY/MM).
RAW_SIC_DIR = "data/raw/{sic_source}/ice_conc/{hemi}"
RAW_SIC = RAW_SIC_DIR + "/{period}.json"
RAW_ATMOS_DIR = "data/raw/{atmos_source}/{variable}/{hemi}"
RAW_ATMOS = RAW_ATMOS_DIR + "/{year}.nc"
RAW_CMIP6 = "data/raw/{cmip6_source}/cmip6/{cmip6_run}/{cmor}/{hemi}.nc"
# one SIC product alone over a month of the consistency overlap (whichever product the chain
# has serve those days); its daily files lie in the folder of the manifest's name, like RAW_SIC
RAW_SIC_PRODUCT = "data/raw/{sic_source}/products/{product}/{hemi}/{year}/{month}.json"

# SEAS5 (the scorecard's benchmark): a year's starts, GRIB files in the folder of the manifest's name
RAW_SEAS5 = "data/raw/seas5/{seas5_source}/{hemi}/{year}.json"

# data/poll: the poll's state, and a trigger per SIC period whose fast-track days now have their
# nominal files on the server (an input of that period's ingest job, so it runs again)
POLL_STATE = "data/poll/state.json"
POLL_REPLACE = "data/poll/replace/{sic_source}/{hemi}/{period}.json"

# data/interim: EASE2, float32, per variable and year (a CMIP6 run: per variable)
INTERIM_OBS_DIR = "data/interim/{hemi}/obs/{variable}"
INTERIM_OBS = INTERIM_OBS_DIR + "/{year}.nc"
INTERIM_CMIP6 = "data/interim/{hemi}/cmip6/{cmip6_run}/{quantity}.nc"
INTERIM_SEAS5 = "data/interim/{hemi}/seas5/{year}.nc"
REGRID_WEIGHTS_DIR = "data/interim/{hemi}/weights"
# the per-month quantile mapping of a newer SIC product onto the reference record
SIC_MAPPING = "data/interim/{hemi}/sic_mapping/{candidate}_to_{reference}.nc"

# data/checks: floecast check-data over a hemisphere's raw, interim and store SIC
DATA_CHECK_DIR = "data/checks/{hemi}"
DATA_CHECK_CSV = DATA_CHECK_DIR + "/data_check.csv"
DATA_CHECK_PLOT = DATA_CHECK_DIR + "/data_check.png"
DATA_CHECK_PROPOSAL = DATA_CHECK_DIR + "/known_bad_days.yaml"

# data/store: the training years' statistics beside one folder of yearly zarr parts per dataset
STORE_DIR = "data/store/{hemi}"
STATISTICS_FILE = "statistics.nc"
STATISTICS = STORE_DIR + "/" + STATISTICS_FILE
STORE_OBS = STORE_DIR + "/obs/{year}.zarr"
STORE_CMIP6 = STORE_DIR + "/cmip6_{cmip6_run}/{year}.zarr"

# models: runs, their members, the spread calibration; staging/production links and the history
MODELS_DIR = "models/{hemi}"
RUN_DIR = MODELS_DIR + "/{run}"
MEMBER_DIR = RUN_DIR + "/member_{member}"
MEMBER_WEIGHTS = MEMBER_DIR + "/weights.pt"
MEMBER_META = MEMBER_DIR + "/meta.json"
MEMBER_HISTORY = MEMBER_DIR + "/history.csv"
SPREAD = RUN_DIR + "/spread.json"

# results: the SIC consistency report (not per run: it compares inputs)
SIC_CONSISTENCY_TABLE = "results/{hemi}/sic_consistency/{candidate}_vs_{reference}.csv"
SIC_CONSISTENCY_PLOT = "results/{hemi}/sic_consistency/{candidate}_vs_{reference}.png"

# results: per run; {split} of a hindcast is validate (the spread calibration's) or test (the scorecard's)
RESULTS_DIR = "results/{hemi}/{run}"
MEMBER_FORECAST = RESULTS_DIR + "/members/{date}/member_{member}.nc"
HINDCAST_MEMBER = RESULTS_DIR + "/hindcast/{split}/member_{member}.nc"
FORECAST = RESULTS_DIR + "/forecasts/{date}.nc"
MAPS_PLOT = RESULTS_DIR + "/plots/{date}_maps.png"
EXTENT_PLOT = RESULTS_DIR + "/plots/{date}_extent.png"
SCORECARD = RESULTS_DIR + "/verification/scorecard.csv"
SKILL_PLOT = RESULTS_DIR + "/verification/skill.png"
SKILL_BY_MONTH_PLOT = RESULTS_DIR + "/verification/skill_by_month.png"
RELIABILITY = RESULTS_DIR + "/verification/reliability.csv"
RELIABILITY_PLOT = RESULTS_DIR + "/verification/reliability.png"
SCORES_BY_REGION = RESULTS_DIR + "/verification/scores_by_region.csv"
FORECAST_ANIMATION = RESULTS_DIR + "/plots/{date}_forecast.mp4"
EGRESS_RECEIPT = RESULTS_DIR + "/egress/{date}.json"
EXPORT_GEOTIFF_DIR = RESULTS_DIR + "/export/{date}/geotiff"
EXPORT_LATLON = RESULTS_DIR + "/export/{date}/{date}_latlon.nc"
EXPORT_MEMBERS = RESULTS_DIR + "/export/{date}/{date}_members.nc"
EXPORT_SIPN_SOUTH_DIR = RESULTS_DIR + "/export/{date}/sipn_south"  # {hemi}: south only
EXPORT_SIO_TABLE = RESULTS_DIR + "/export/{date}/sio/{date}_extent.csv"  # {hemi}: north only
EXPORT_SIO_SIP = RESULTS_DIR + "/export/{date}/sio/{date}_sip.nc"
# the input SIC (interim) over a period, of no run
INPUTS_ANIMATION = "results/{hemi}/inputs/sic_{start}_{end}.mp4"

# logs: one per job, named by the job's wildcards
LOG = "logs/{rule}/{job}.log"
BENCHMARK = "logs/benchmark/{rule}/{job}.tsv"

_WILDCARD = re.compile(r"\{(\w+)\}")


class _Keep(dict):
    """Format values that leave the wildcards not given as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, **values: object) -> str:
    """``template`` with the given wildcards filled in; the others stay (still a Snakemake pattern)."""
    return template.format_map(_Keep(values))


def path(root: str | os.PathLike[str], template: str, **values: object) -> Path:
    """The file of ``template`` under the workflow root ``root``; every wildcard must be given."""
    missing = sorted(set(_WILDCARD.findall(template)) - set(values))
    if missing:
        raise KeyError(f"{template}: no value for {', '.join(missing)}")
    return Path(root) / template.format(**values)


def match(template: str, relative: str | os.PathLike[str]) -> dict[str, str] | None:
    """The wildcards of a path (relative to the root) that ``template`` describes, or None.

    A wildcard matches one path component or part of one (``{period}`` also ``YYYY/MM``).
    """
    pattern, end = "", 0
    for found in _WILDCARD.finditer(template):
        name = found.group(1)
        group = f"(?P<{name}>.+?)" if name == "period" else f"(?P<{name}>[^/]+?)"
        if f"(?P<{name}>" in pattern:
            group = f"(?P={name})"  # a wildcard given twice matches the same text
        pattern += re.escape(template[end : found.start()]) + group
        end = found.end()
    found = re.fullmatch(pattern + re.escape(template[end:]), Path(relative).as_posix())
    return found.groupdict() if found else None
