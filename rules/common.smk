# Shared helpers: config checks, paths and input functions (no rules here).
import hashlib
import json
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from floecast import layout
from floecast.config import ConfigError, check, resolve_today, sic_chain, training_spec
from floecast.variables import by_source, variable

try:
    if config["date"] == "today":  # said once, before it becomes a plain date
        _init, _why = resolve_today(config)
        logger.info(f"date: today -> {_init} ({_why})")
    config.update(check(config))
except ConfigError as err:
    raise WorkflowError(str(err))

RUN = config["run"]
HEMIS = config["hemispheres"]
COARSEN = config["grid"]["coarsen"]
DATA_START = config["data"]["start"]
DATA_END = config["data"]["end"]
OBS_YEARS = list(range(int(DATA_START[:4]), int(DATA_END[:4]) + 1))
TRAIN_YEARS = list(
    range(config["splits"]["train"][0], config["splits"]["train"][1] + 1)
)
MEMBERS = list(range(config["train"]["members"]))
# the catalogue's variables the configured channels use (ingested, regridded and stored), by the
# config key under sources whose product delivers them: daily ERA5 (atmos), monthly ORAS5 (ocean)
FIELDS = list(config["channels"]["fields"])
ATMOS_FIELDS = by_source("atmos", FIELDS)
OCEAN_FIELDS = by_source("ocean", FIELDS)
TREND_YEARS = config["channels"]["sic_trend_years"]
MAX_LAG = max(
    config["channels"]["sic_lags"]
    + [lag for c in config["channels"]["fields"].values() for lag in c["lags"]]
)
CMIP6_YEARS = list(range(config["cmip6"]["years"][0], config["cmip6"]["years"][1] + 1))
VALIDATE_END = config["splits"]["validate"][1]
TEST_YEARS = list(range(config["splits"]["test"][0], config["splits"]["test"][1] + 1))
VALIDATE_YEARS = list(
    range(config["splits"]["validate"][0], config["splits"]["validate"][1] + 1)
)
# the hindcast splits: validate fits the spread calibration, test is scored
SPLIT_YEARS = {"validate": VALIDATE_YEARS, "test": TEST_YEARS}
# canonical name -> CMOR name of what pretraining reads; the fields without a CMIP6 counterpart
# are stored as 0 (their training-years mean) in the CMIP6 stores
CMIP6_NAMES = {v: variable(v).cmip6.name for v in ["sic", *FIELDS] if variable(v).cmip6}
CMIP6_ABSENT = [v for v in FIELDS if v not in CMIP6_NAMES]
CMIP6_RUNS = [f"{r['model']}_{r['member']}" for r in config["cmip6"]["runs"]]
SPEC_JSON = json.dumps(training_spec(config), sort_keys=True)
SPEC_SHA256 = hashlib.sha256(SPEC_JSON.encode()).hexdigest()
# what the statistics and the store depend on: the channels and the horizon (the trend's
# reach), so changing a training setting retrains without rebuilding the store
CHANNELS_JSON = json.dumps(
    {"channels": config["channels"], "model": {"leads": config["model"]["leads"]}},
    sort_keys=True,
)
THREADS = config["train"]["threads"]
NEVER = "(?!)"  # a wildcard constraint no value meets
SIC_CHAIN = sic_chain(config)
SIC_PRODUCTS = [p.name for p in SIC_CHAIN.products]
CONSISTENCY = config["osisaf"]["consistency"]
SIC_MAPPING = config["osisaf"]["mapping"]


wildcard_constraints:
    hemi="north|south",
    # staging and production are links to runs, never runs themselves (a run is always
    # followed by a path separator in the templates, so the look-ahead checks for one)
    run=r"(?!(?:staging|production)/)[^/.][^/]*",
    year=r"\d{4}",
    period=r"\d{4}(/\d{2})?",
    date=r"\d{4}-\d{2}-\d{2}",
    start=r"\d{4}-\d{2}-\d{2}",
    end=r"\d{4}-\d{2}-\d{2}",
    member=r"\d+",
    split="|".join(SPLIT_YEARS),
    variable="|".join(FIELDS) or NEVER,
    cmip6_run="|".join(CMIP6_RUNS) or "none",
    cmor="|".join(CMIP6_NAMES.values()),
    quantity="|".join(CMIP6_NAMES),
    sic_source=config["sources"]["sic"],
    product="|".join(re.escape(name) for name in SIC_PRODUCTS),
    reference="|".join(re.escape(name) for name in SIC_PRODUCTS),
    candidate="|".join(re.escape(name) for name in SIC_PRODUCTS),
    month=r"\d{2}",
    atmos_source=config["sources"]["atmos"],
    ocean_source=config["sources"]["ocean"],
    cmip6_source=config["sources"]["cmip6"],
    seas5_source=config["sources"]["seas5"],


def one_of(names):
    """A wildcard constraint matching exactly ``names`` (nothing when there are none)."""
    return "|".join(names) or NEVER


def _job_name(name):
    return "_".join(f"{{{w}}}" for w in LOG_WILDCARDS[name])


def log_path(name):
    """The log of each job of rule ``name``, named by its wildcards (layout.LOG)."""
    return layout.fill(layout.LOG, rule=name, job=_job_name(name))


def bench_path(name):
    return layout.fill(layout.BENCHMARK, rule=name, job=_job_name(name))


LOG_WILDCARDS = {
    "ingest_sic": ["sic_source", "hemi", "period"],
    "ingest_sic_product": ["sic_source", "product", "hemi", "year", "month"],
    "sic_consistency": ["hemi", "candidate", "reference"],
    "ingest_atmos": ["atmos_source", "variable", "hemi", "year"],
    "ingest_ocean": ["ocean_source", "variable", "hemi", "year"],
    "ingest_cmip6": ["cmip6_source", "cmip6_run", "cmor", "hemi"],
    "regrid_sic": ["hemi", "year"],
    "regrid_atmos": ["variable", "hemi", "year"],
    "regrid_ocean": ["variable", "hemi", "year"],
    "regrid_cmip6": ["cmip6_run", "quantity", "hemi"],
    "fit_statistics": ["hemi"],
    "build_store_obs": ["hemi", "year"],
    "build_store_cmip6": ["cmip6_run", "hemi", "year"],
    "train_member": ["hemi", "run", "member"],
    "predict_member": ["hemi", "run", "date", "member"],
    "hindcast_member": ["hemi", "run", "split", "member"],
    "calibrate_spread": ["hemi", "run"],
    "combine_forecast": ["hemi", "run", "date"],
    "scorecard": ["hemi", "run"],
    "ingest_seas5": ["seas5_source", "hemi", "year"],
    "regrid_seas5": ["hemi", "year"],
    "check_data": ["hemi"],
    "export_members": ["hemi", "run", "date"],
    "export_sipn_south": ["run", "date"],
    "export_sio": ["run", "date"],
    "animate_forecast": ["hemi", "run", "date"],
    "animate_inputs": ["hemi", "start", "end"],
    "plot_forecast": ["hemi", "run", "date"],
    "egress": ["hemi", "run", "date"],
    "export_forecast": ["hemi", "run", "date"],
}


def period_args(wildcards):
    """`--year YYYY [--month MM]` of a SIC ingest job's period (YYYY or YYYY/MM)."""
    year, _, month = wildcards.period.partition("/")
    return f"--year {year}" + (f" --month {month}" if month else "")


def first_day(wildcards):
    """The first day to fetch: the start of the year (or month), or of the data period."""
    period = getattr(wildcards, "period", wildcards.get("year"))
    year, _, month = period.partition("/")
    return max(f"{year}-{month or '01'}-01", DATA_START)


def last_day(wildcards):
    """The last day to fetch: the end of the year (or month), or of the data period."""
    period = getattr(wildcards, "period", wildcards.get("year"))
    year, _, month = period.partition("/")
    end = (pd.Timestamp(f"{year}-{month or 12}-01") + pd.offsets.MonthEnd(1)).date()
    return min(end.isoformat(), DATA_END)


def _chain_json(names):
    """The osisaf section for these products and the products that replace them."""
    keep = set(names)
    for product in SIC_CHAIN.products:
        current = product
        while (
            current.name in keep
            and current.replaced_by
            and current.replaced_by not in keep
        ):
            keep.add(current.replaced_by)
            current = SIC_CHAIN.product(current.replaced_by)
    products = [e for e in config["osisaf"]["products"] if e["name"] in keep]
    return json.dumps(
        {"servers": config["osisaf"]["servers"], "products": products}, sort_keys=True
    )


def chain_for(first, last):
    """The chain's products serving days of first..last (ISO dates): a job's command and
    params change only when a product of its own period changes."""
    first, last = pd.Timestamp(first).date(), pd.Timestamp(last).date()
    return _chain_json(p.name for p in SIC_CHAIN.products if p.overlaps(first, last))


def period_chain(wildcards):
    return chain_for(first_day(wildcards), last_day(wildcards))


def year_chain(wildcards):
    return chain_for(f"{wildcards.year}-01-01", f"{wildcards.year}-12-31")


def full_chain():
    return _chain_json(p.name for p in SIC_CHAIN.products)


def product_chain(name):
    return _chain_json([name])


def product_chain_pair(*names):
    return _chain_json(names)


def replace_trigger(wildcards):
    """The poll's note that a fast-track day of this period has its nominal file now."""
    path = layout.POLL_REPLACE.format(**wildcards)
    return [path] if os.path.exists(path) else []


def overlap_first_day(wildcards):
    start = f"{wildcards.year}-{wildcards.month}-01"
    return max(start, CONSISTENCY["first_day"])


def overlap_last_day(wildcards):
    end = pd.Timestamp(f"{wildcards.year}-{wildcards.month}-01") + pd.offsets.MonthEnd(
        1
    )
    return min(end.date().isoformat(), CONSISTENCY["last_day"])


def product_manifests(role):
    """An input function: the month manifests over the consistency overlap of the product
    the job's ``role`` wildcard (reference or candidate) names."""

    def manifests(wildcards):
        months = pd.period_range(
            CONSISTENCY["first_day"], CONSISTENCY["last_day"], freq="M"
        )
        return [
            layout.RAW_SIC_PRODUCT.format(
                sic_source=config["sources"]["sic"],
                product=getattr(wildcards, role),
                hemi=wildcards.hemi,
                year=m.year,
                month=f"{m.month:02d}",
            )
            for m in months
        ]

    return manifests


def mapping_file(hemi):
    return layout.SIC_MAPPING.format(
        hemi=hemi,
        candidate=CONSISTENCY["candidate"],
        reference=CONSISTENCY["reference"],
    )


def sic_mapping(wildcards):
    """The quantile mapping, for the years some product it applies to serves (osisaf.mapping)."""
    if not SIC_MAPPING["enabled"]:
        return []
    first, last = (
        pd.Timestamp(f"{wildcards.year}-01-01").date(),
        pd.Timestamp(f"{wildcards.year}-12-31").date(),
    )
    mapped = [SIC_CHAIN.product(name) for name in SIC_MAPPING["apply_to"]]
    if not any(p.overlaps(first, last) for p in mapped):
        return []
    return [mapping_file(wildcards.hemi)]


def mapping_args(wildcards, input):
    if not input.get("mapping"):
        return ""
    return f"--mapping {input.mapping} --map-products " + " ".join(
        SIC_MAPPING["apply_to"]
    )


def _forecast_input_days(wildcards):
    init = pd.Timestamp(wildcards.date)
    return pd.date_range(init - pd.Timedelta(days=MAX_LAG), init - pd.Timedelta(days=1))


def forecast_sic_manifests(wildcards):
    """The raw SIC manifests of a forecast's input days (the newest day's product goes into the file)."""
    days = _forecast_input_days(wildcards)
    if SIC_JOBS_PER_YEAR == 1:
        periods = {f"{d.year}" for d in days}
    else:
        periods = {f"{d.year}/{d.month:02d}" for d in days}
    return [
        layout.RAW_SIC.format(
            sic_source=config["sources"]["sic"], hemi=wildcards.hemi, period=period
        )
        for period in sorted(periods)
    ]


def forecast_atmos_raw(wildcards):
    """The raw atmospheric files of a forecast's newest input day (ERA5, ERA5T or HRES)."""
    year = _forecast_input_days(wildcards)[-1].year
    return [
        layout.RAW_ATMOS.format(
            atmos_source=config["sources"]["atmos"],
            variable=v,
            hemi=wildcards.hemi,
            year=year,
        )
        for v in ATMOS_FIELDS
    ]


def atmos_raw_args(wildcards, input):
    return " ".join(f"{v}={path}" for v, path in zip(ATMOS_FIELDS, input.atmos_raw))


# Downloads are fetched a month per job, so a failure loses little; the synthetic
# generator writes a year per job (its days are cheap and coherent within a job).
SIC_JOBS_PER_YEAR = 1 if config["sources"]["sic"] == "synthetic" else 12


def realtime_arg(wildcards):
    """`--realtime-url URL` where ERA5's latest days come from the open-data HRES forecast."""
    url = config["era5"]["realtime_url"]
    return f"--realtime-url {url}" if url else ""


def raw_sic(wildcards):
    """The manifests of a year of daily SIC files as delivered: one, or one per month up to
    the data end; each file list lies in the folder of the manifest's name."""
    source = config["sources"]["sic"]
    if SIC_JOBS_PER_YEAR == 1:
        periods = [wildcards.year]
    else:
        first = 1 if int(wildcards.year) > int(DATA_START[:4]) else int(DATA_START[5:7])
        last = 12 if int(wildcards.year) < int(DATA_END[:4]) else int(DATA_END[5:7])
        periods = [f"{wildcards.year}/{month:02d}" for month in range(first, last + 1)]
    return [
        layout.RAW_SIC.format(sic_source=source, hemi=wildcards.hemi, period=period)
        for period in periods
    ]


def raw_atmos(wildcards):
    return layout.RAW_ATMOS.format(atmos_source=config["sources"]["atmos"], **wildcards)


def raw_ocean(wildcards):
    """The ORAS5 year files of the job's year and the year before: a January day interpolates
    between the Novembers and Decembers before it."""
    years = [int(wildcards.year) - 1, int(wildcards.year)]
    return [
        layout.RAW_OCEAN.format(
            ocean_source=config["sources"]["ocean"],
            variable=wildcards.variable,
            hemi=wildcards.hemi,
            year=y,
        )
        for y in years
    ]


def raw_wind_partner(wildcards):
    """The other wind component, needed to rotate latitude/longitude winds to the grid."""
    partner = variable(wildcards.variable).partner
    if partner is None:
        return []
    return layout.RAW_ATMOS.format(
        **{**wildcards, "atmos_source": config["sources"]["atmos"], "variable": partner}
    )


def raw_cmip6(wildcards, quantity=None):
    """The run's raw file of ``quantity`` (default: the job's)."""
    return layout.RAW_CMIP6.format(
        cmip6_source=config["sources"]["cmip6"],
        cmip6_run=wildcards.cmip6_run,
        cmor=CMIP6_NAMES[quantity or wildcards.quantity],
        hemi=wildcards.hemi,
    )


def raw_cmip6_wind_partner(wildcards):
    """The run's other wind component (uas <-> vas), to rotate the winds to the grid."""
    partner = variable(wildcards.quantity).partner
    if partner is None:
        return []
    return raw_cmip6(wildcards, partner)


def interim(hemi, variable, years):
    return [
        layout.INTERIM_OBS.format(hemi=hemi, variable=variable, year=year)
        for year in years
    ]


def obs_store(hemi, years):
    """The observational store's yearly parts."""
    return [layout.STORE_OBS.format(hemi=hemi, year=year) for year in years]


def store_sic_years(wildcards):
    """Interim SIC of the part's year and the trend's years before it (within the data)."""
    year = int(wildcards.year)
    return interim(
        wildcards.hemi, "sic", range(max(OBS_YEARS[0], year - TREND_YEARS), year + 1)
    )


def field_args(wildcards, input):
    """`--field t2m FILE... --field sst FILE... ...` for the variables the channels use (those given)."""
    return " ".join(f"--field {v} {input[v]}" for v in FIELDS if v in input.keys())


def training_store(wildcards):
    """The observational parts a member learns and validates on."""
    return obs_store(wildcards.hemi, range(OBS_YEARS[0], VALIDATE_END + 1))


def trained_on_config(wildcards):
    """Whether the member's meta.json records the config's training spec (a member trained on it)."""
    try:
        meta = json.loads(Path(layout.MEMBER_META.format(**wildcards)).read_text())
    except (OSError, ValueError):
        return False
    return json.dumps(meta.get("spec"), sort_keys=True) == SPEC_JSON


def unless_retraining(paths):
    """An input function: ``paths`` as ancient for a member trained on the config's spec, so that
    days appended to the store do not retrain it; as plain inputs otherwise. Ancient inputs alone
    hide a changed spec: Snakemake does not weigh a job's own params when a job it depends on
    (the statistics, a store part) must run and every file between them is ancient, so train_member
    would run only on the next run, after predicting with the old weights."""

    def inputs(wildcards):
        files = paths(wildcards)
        return ancient(files) if trained_on_config(wildcards) else files

    return inputs


def ancient_once_made(output, paths):
    """An input function: ``paths`` (a list, a path or an input function) as ancient once
    ``output`` (a layout template) exists, so a rebuilt input does not remake an issued
    output; as plain inputs while it is missing. Ancient inputs whose producer must run
    make Snakemake (9.27) drop a job whose output is missing: with ancient store parts
    alone, a day whose current-year part was rebuilt issued no forecast."""

    def inputs(wildcards):
        files = paths(wildcards) if callable(paths) else paths
        made = os.path.exists(output.format(**wildcards))
        return ancient(files) if made else files

    return inputs


def pretrain_store(wildcards):
    return [
        layout.STORE_CMIP6.format(hemi=wildcards.hemi, cmip6_run=run, year=year)
        for run in CMIP6_RUNS
        for year in CMIP6_YEARS
    ]


def forecast_store(wildcards):
    """The parts holding a forecast's input days (the MAX_LAG days before the init date)."""
    init = pd.Timestamp(wildcards.date)
    first = (init - pd.Timedelta(days=MAX_LAG)).year
    return obs_store(
        wildcards.hemi, range(first, (init - pd.Timedelta(days=1)).year + 1)
    )


def split_store(hemi, split):
    """The parts of a hindcast split's years, the year before them (their first inputs) and
    the year after (the targets of their last init dates), within the data."""
    return years_store(hemi, SPLIT_YEARS[split])


def years_store(hemi, years):
    """The parts of ``years``, the year before and the year after, within the data."""
    first = max(OBS_YEARS[0], years[0] - 1)
    last = min(OBS_YEARS[-1], years[-1] + 1)
    return obs_store(hemi, range(first, last + 1))


def hindcast_members(split):
    """An input function: every member's hindcast file of ``split``."""
    return lambda w: expand(
        layout.HINDCAST_MEMBER, hemi=w.hemi, run=w.run, split=split, member=MEMBERS
    )


def seas5_interim(wildcards):
    """SEAS5's starts in the test years on the EASE2 grid (none when sources.seas5 is none)."""
    if config["sources"]["seas5"] == "none":
        return []
    return [
        layout.INTERIM_SEAS5.format(hemi=wildcards.hemi, year=year)
        for year in TEST_YEARS
    ]


def all_raw_sic(wildcards):
    """Every ingest manifest of the hemisphere's SIC, over the data years."""
    years = [SimpleNamespace(hemi=wildcards.hemi, year=str(year)) for year in OBS_YEARS]
    return [manifest for year in years for manifest in raw_sic(year)]


def forecast_member_files(wildcards, hemi=None):
    """Every member's file of a forecast (of ``hemi``, default the job's hemisphere)."""
    return expand(
        layout.MEMBER_FORECAST,
        member=MEMBERS,
        hemi=hemi or wildcards.hemi,
        run=wildcards.run,
        date=wildcards.date,
    )


def cmip6_run_index(wildcards):
    return CMIP6_RUNS.index(wildcards.cmip6_run)


def cmip6_model(wildcards):
    return wildcards.cmip6_run.split("_", 1)[0]


def cmip6_member(wildcards):
    return wildcards.cmip6_run.split("_", 1)[1]


def egress_forecast(wildcards):
    """The forecast to publish; asking for an egress receipt without egress.url is an error."""
    forecast = layout.FORECAST.format(**wildcards)
    if not config["egress"]["url"]:
        raise WorkflowError(
            f"config key egress.url is not set: there is no store to publish {forecast} to"
        )
    return forecast


def final_targets():
    targets = []
    for hemi in HEMIS:
        values = {"hemi": hemi, "run": RUN, "date": config["date"]}
        targets += [
            layout.FORECAST.format(**values),
            layout.MAPS_PLOT.format(**values),
            layout.EXTENT_PLOT.format(**values),
            layout.SCORECARD.format(**values),
        ]
        if config["publish"]["members"]:
            targets.append(layout.EXPORT_MEMBERS.format(**values))
        if config["egress"]["url"]:
            targets.append(layout.EGRESS_RECEIPT.format(**values))
    return targets
