"""Configuration: the JSON schema (structure, defaults) plus checks that span keys.

``config/schema.yaml`` is this package's schema file, so Snakemake's ``validate`` and the
``floecast`` command check the same rules. Every error names the key or date at fault.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import yaml

from floecast import clock, layout
from floecast.configschema import load_schema, schema_path  # noqa: F401 - schema_path: read through this module too
from floecast.grid import BASE_SIZE
from floecast.variables import CATALOGUE, FIELD_NAMES

SYNTHETIC = "synthetic"
POLL_STATE = Path(layout.POLL_STATE)  # written by `floecast poll` in the workflow folder
# expected days from a day to its data, where the config names no latency (ERA5T: ECMWF's
# ERA5 documentation; the HRES open-data run of a day is out the same day)
ERA5T_LATENCY_DAYS = 5
HRES_LATENCY_DAYS = 1


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key."""


def _set_defaults(instance: dict, schema: dict) -> None:
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(key), dict) and sub.get("type") == "object":
            _set_defaults(instance[key], sub)


def validate(config: dict) -> dict:
    """Schema validation with defaults filled in (as ``snakemake.utils.validate`` does)."""
    import jsonschema

    config = copy.deepcopy(config)
    schema = load_schema()
    _set_defaults(config, schema)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.path) or "(top level)"
        if where == "run" and first.validator == "not":
            raise ConfigError(
                f"config key run: {first.instance!r} is reserved: staging and production are links to runs "
                "(floecast stage, promote), never runs themselves"
            )
        raise ConfigError(f"config key {where}: {first.message}")
    return check(config)


_YAML_BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_YAML_NULLS = {"null", "~", ""}


def _coerce(value: Any, schema: dict) -> Any:
    """``value`` converted to the type ``schema`` asks for, where it is a string that spells one.

    Snakemake parses each ``--config key=value`` with YAML's base loader, so every value inside
    a mapping or list arrives as a string ('3', 'true'), and a bare top-level number as an int.
    A value that spells no allowed type is left as it is, for the schema to name."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if isinstance(value, dict):
        return {key: _coerce(item, _property(schema, key)) for key, item in value.items()}
    if isinstance(value, list):
        items = schema.get("items")
        return [_coerce(item, items) for item in value] if isinstance(items, dict) else value
    if isinstance(value, int | float) and not isinstance(value, bool) and types == ["string"]:
        return str(value)  # run=2024: Snakemake made it an int
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if "null" in types and text in _YAML_NULLS:
        return None
    if "string" in types:
        return value
    if "boolean" in types and text in _YAML_BOOLEANS:
        return _YAML_BOOLEANS[text]
    for kind, parse in (("integer", int), ("number", float)):
        if kind in types:
            try:
                number = parse(text)
            except ValueError:
                continue
            return int(number) if isinstance(number, float) and number.is_integer() and "." not in text else number
    return value


def _property(schema: dict, key: str) -> dict:
    """The schema of ``key`` in an object's schema (a declared property, or the additional ones)."""
    extra = schema.get("additionalProperties")
    return schema.get("properties", {}).get(key, extra if isinstance(extra, dict) else {})


def coerce_overrides(config: dict, given: dict) -> None:
    """Convert, in place, the values of ``config`` that ``--config`` set (``given``, as Snakemake
    parsed them) to the schema's types, before validation: ``--config "train={'members': 3}"`` and
    ``--config egress='{url: ..., force: true}'`` then mean what they say."""

    def walk(node: dict, overrides: dict, schema: dict) -> None:
        for key, override in overrides.items():
            sub = _property(schema, key)
            if isinstance(override, dict) and isinstance(node.get(key), dict):
                walk(node[key], override, sub)
            elif key in node:
                node[key] = _coerce(node[key], sub)

    walk(config, given, load_schema())


def parse_date(value: Any, key: str, today: dt.date | None = None) -> dt.date:
    """A date from YAML or the command line; 'today' means the clock's date (UTC)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if value == "today":
        return today or clock.today()
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as err:
        raise ConfigError(f"config key {key}: {value!r} is not a valid date (YYYY-MM-DD): {err}") from None


def sic_chain(config: dict):
    """The config's SIC product chain, checked (a ConfigError names the product and day)."""
    from floecast.sources.sicchain import ChainError, SicChain

    try:
        return SicChain.from_config(config["osisaf"])
    except ChainError as err:
        message = str(err) if str(err).startswith("osisaf.") else f"osisaf.products: {err}"
        raise ConfigError(f"config key {message}") from None


def _expected_newest(config: dict, today: dt.date) -> dict[str, tuple[dt.date, str]]:
    """Per input, the newest day its providers should have today, from the configured latencies."""
    newest: dict[str, tuple[dt.date, str]] = {}
    data_end = config["data"].get("end")
    for role, source in config["sources"].items():
        if role in ("cmip6", "seas5") or source == "oras5":
            continue  # as floecast poll: static runs, a benchmark, and monthly ORAS5 (its newest month persisted)
        if source == SYNTHETIC:
            day = parse_date(data_end, "data.end") if data_end else today - dt.timedelta(days=1)
            newest[role] = (day, "synthetic: data.end")
        elif role == "sic":
            chain = sic_chain(config)
            try:
                products = chain.candidates(today)
            except ValueError:
                products = []
            latencies = [p.latency_days for p in products if p.latency_days is not None]
            if not latencies:
                raise ConfigError(
                    f"config key date: 'today' ({today}) cannot be resolved: no product of osisaf.products serving "
                    "today declares latency_days"
                )
            best = min(latencies)
            newest[role] = (today - dt.timedelta(days=math.ceil(best)), f"SIC {best:g} days")
        else:
            latency = HRES_LATENCY_DAYS if config.get("era5", {}).get("realtime_url") else ERA5T_LATENCY_DAYS
            newest[role] = (today - dt.timedelta(days=latency), f"atmosphere {latency} days")
    return newest


def poll_fingerprint(config: dict) -> str:
    """What a poll state depends on (the sources, hemispheres and their addresses): a state
    written for another config never resolves this one's ``date: today``."""
    import hashlib

    relevant = {
        "hemispheres": config.get("hemispheres"),
        "sources": config.get("sources"),
        "osisaf": {k: config.get("osisaf", {}).get(k) for k in ("servers", "products")},
        "realtime_url": config.get("era5", {}).get("realtime_url"),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolve_today(config: dict, today: dt.date | None = None, state_path: str | Path = POLL_STATE) -> tuple[dt.date, str]:
    """The init date ``date: today`` stands for, and why: the newest init date whose inputs are all there.

    From the poll state (``floecast poll`` of the same day and sources) when there is one: the day after the
    oldest of the sources' newest days. Otherwise estimated from the expected latencies
    (the products' ``latency_days``, ERA5T or the HRES fill), and said so.
    """
    today = today or clock.today()
    state_path = Path(state_path)
    try:
        state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    except (OSError, ValueError):
        state = {}
    resolved = state.get("resolved_date")
    if resolved and state.get("today") == today.isoformat() and state.get("config") == poll_fingerprint(config):
        init = dt.date.fromisoformat(resolved)
        when = state.get("checked_at")
        return init, f"the newest init date whose inputs the providers had at the poll of {when} ({state_path})"
    newest = _expected_newest(config, today)
    oldest = min(day for day, _ in newest.values())
    init = min(today, oldest + dt.timedelta(days=1))
    latencies = ", ".join(why for _, why in newest.values())
    return init, f"estimated from the expected latencies ({latencies}); run `floecast poll` to resolve it from the providers"


def check(config: dict, today: dt.date | None = None) -> dict:
    """Checks across keys; fills ``data.end`` and normalises dates to ISO strings."""
    today = today or clock.today()
    if config["date"] == "today":
        init, _ = resolve_today(config, today)
    else:
        init = parse_date(config["date"], "date", today)
    if init > today:
        raise ConfigError(
            f"config key date: init date {init} is in the future (today is {today} UTC): "
            f"its inputs up to {init - dt.timedelta(days=1)} do not exist yet"
        )
    start = parse_date(config["data"]["start"], "data.start")
    end = parse_date(config["data"].get("end") or init - dt.timedelta(days=1), "data.end")
    if end < start:
        raise ConfigError(f"config key data.end: {end} is before data.start {start}")
    _check_sic_chain(config, start, end)
    channels = config["channels"]
    if 1 not in channels["sic_lags"]:
        raise ConfigError("config key channels.sic_lags: must include 1 (the day before the init date)")
    fields = channels["fields"]
    for name in fields:
        if name not in FIELD_NAMES:
            raise ConfigError(
                f"config key channels.fields: {name!r} is not a variable of the catalogue (floecast/variables.py); "
                f"known: {', '.join(FIELD_NAMES)}"
            )
        partner = CATALOGUE[name].partner
        if partner and partner not in fields:
            raise ConfigError(
                f"config key channels.fields: {name} and {partner} come together (vectors are rotated to the grid axes)"
            )
    max_lag = max(channels["sic_lags"] + [lag for entry in fields.values() for lag in entry["lags"]])
    first_init = start + dt.timedelta(days=max_lag)
    if not first_init <= init <= end + dt.timedelta(days=1):
        key, value = ("end", init - dt.timedelta(days=1)) if init > end else ("start", init - dt.timedelta(days=max_lag))
        raise ConfigError(
            f"config key date: init date {init} is outside the data: its inputs need the {max_lag} days before it "
            f"inside data.start..data.end ({start}..{end}), "
            f"so the init date must lie in {first_init}..{end + dt.timedelta(days=1)}. To forecast from {init}, "
            f"move data.{key} to {value}: --config data='{{{key}: {value}}}' (or data.{key} in the config file)"
        )
    years = (start.year, end.year)
    previous_end = None
    for split in ("train", "validate", "test"):
        first, last = config["splits"][split]
        if first > last:
            raise ConfigError(f"config key splits.{split}: first year {first} after last year {last}")
        if first < years[0] or last > years[1]:
            raise ConfigError(f"config key splits.{split}: years {first}-{last} are outside the data years {years[0]}-{years[1]}")
        if previous_end is not None and first <= previous_end:
            raise ConfigError(f"config key splits.{split}: years {first}-{last} overlap the split before it")
        previous_end = last
    model = config["model"]
    if "mc_dropout" in model.get("ensemble", {}).get("methods", []) and not model.get("dropout"):
        raise ConfigError("config key model.ensemble.methods: mc_dropout needs model.dropout above 0 (the dropout it draws)")
    coarsen = config["grid"]["coarsen"]
    if BASE_SIZE % coarsen:
        raise ConfigError(f"config key grid.coarsen: {coarsen} does not divide {BASE_SIZE}")
    size, depth = BASE_SIZE // coarsen, config["model"]["depth"]
    if size % 2**depth:
        raise ConfigError(f"config key model.depth: a {size}x{size} grid cannot be halved {depth} times")
    leads = config["model"]["leads"]
    for lead in config["plots"]["leads"]:
        if lead > leads:
            raise ConfigError(f"config key plots.leads: lead {lead} is beyond model.leads ({leads})")
    synthetic = [k for k, v in config["sources"].items() if v == SYNTHETIC]
    if synthetic and config["hemispheres"] != ["north"]:
        raise ConfigError(
            f"config key hemispheres: the synthetic source ({', '.join('sources.' + k for k in synthetic)}) "
            "is calibrated on the Northern Hemisphere only; use hemispheres: [north]"
        )
    if config["sources"].get("seas5") == SYNTHETIC and config["sources"]["sic"] != SYNTHETIC:
        raise ConfigError(
            "config key sources.seas5: the synthetic SEAS5-like forecast is made from the synthetic truth; "
            "with sources.sic = osisaf use sources.seas5 = cds (or none)"
        )
    if config["train"]["quorum"] > config["train"]["members"]:
        raise ConfigError(
            f"config key train.quorum: {config['train']['quorum']} is more than train.members ({config['train']['members']})"
        )
    first_cmip, last_cmip = config["cmip6"]["years"]
    if first_cmip > last_cmip:
        raise ConfigError(f"config key cmip6.years: first year {first_cmip} after last year {last_cmip}")
    config = copy.deepcopy(config)
    for entry in config["channels"]["fields"].values():
        entry.setdefault("transform", "absolute")
        entry.setdefault("norm", "zscore")
    config["date"] = init.isoformat()
    config["data"]["start"] = start.isoformat()
    config["data"]["end"] = end.isoformat()
    return config


def load(path: str | Path) -> dict:
    """Read, validate and check a config file (what ``snakemake --configfile`` gets)."""
    text = Path(path).read_text()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    except ValueError as err:  # an impossible unquoted date such as 2021-02-30
        raise ConfigError(f"{path}: {err}") from None
    return validate(raw or {})


def _check_sic_chain(config: dict, start: dt.date, end: dt.date) -> None:
    """The product chain serves every data day; the consistency and mapping keys name its products."""
    from floecast.sources.sicchain import ChainError

    chain = sic_chain(config)
    try:
        chain.check_covers(start, end)
    except ChainError as err:
        key = "data.start" if f"serves {start}" in str(err) else "data.end"
        raise ConfigError(f"config key {key}: {err}") from None
    names = [p.name for p in chain.products]
    consistency = config["osisaf"]["consistency"]
    for key in ("reference", "candidate"):
        if consistency[key] not in names:
            raise ConfigError(
                f"config key osisaf.consistency.{key}: {consistency[key]!r} is not a product of osisaf.products {names}"
            )
    first = parse_date(consistency["first_day"], "osisaf.consistency.first_day")
    last = parse_date(consistency["last_day"], "osisaf.consistency.last_day")
    if last < first:
        raise ConfigError(f"config key osisaf.consistency.last_day: {last} is before first_day {first}")
    for name in config["osisaf"]["mapping"]["apply_to"]:
        if name not in names:
            raise ConfigError(f"config key osisaf.mapping.apply_to: {name!r} is not a product of osisaf.products {names}")


# settings of how a member's job runs, not of what it learns: changing them retrains nothing
JOB_SETTINGS = ("members", "quorum", "threads", "mem_mb", "gpu_runtime_min")


def training_spec(config: dict) -> dict:
    """The part of the config that defines a trained member (and nothing else)."""
    spec = {key: copy.deepcopy(config[key]) for key in ("channels", "model", "train", "splits")}
    for key in JOB_SETTINGS:
        spec["train"].pop(key, None)
    return spec
