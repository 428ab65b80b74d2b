"""Polling: the newest day each configured source can deliver, without downloading data.

A forecast for init date D needs every input up to D - 1. ``poll`` asks each source of the
config for its newest day (SIC: any product of the chain, best first; the atmosphere:
ERA5/ERA5T, or the HRES open-data fill), says how many days behind today each is, and
resolves the newest init date whose inputs are all there (``resolved_date``; what
``date: today`` stands for). It writes a small state file and says whether D (given, or
the resolved date) is ready.

It also looks for the files that replace fast-track days held in the raw store: where the
nominal file of such a day has appeared, it writes a trigger (``layout.POLL_REPLACE``:
``data/poll/replace/<source>/<hemi>/<YYYY>/<MM>.json``), an input of that month's ingest
job, so the next workflow run fetches it and rebuilds what depends on that month only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path

from floecast import clock, layout
from floecast.io import atomic_path
from floecast.sources.remote import Probe
from floecast.sources.sicchain import SicChain, SicProduct

log = logging.getLogger(__name__)
SIC_LOOKBACK_DAYS = 45  # nominal ICDR files run about 16 days behind; look well past that
MAX_LAG_DAYS = 10  # the newest init date may trail today by this much before a daily run waits instead

Newest = tuple[dt.date, str] | None  # the newest day and what serves it


def newest_sic_day(chain: SicChain, hemisphere: str, today: dt.date, probe: Probe, lookback: int = SIC_LOOKBACK_DAYS) -> Newest:
    """The newest day before ``today`` that a product of the chain has on its server (best product first).

    A product whose server cannot answer (HTTP 503, unreachable) is passed over with a warning, so
    that its stand-in (fast-track files on another server) still serves; with nothing found, the
    failure is raised."""
    failing: dict[str, str] = {}
    for back in range(1, lookback + 1):
        day = today - dt.timedelta(days=back)
        if not any(p.serves(day) for p in chain.primary):
            continue
        for product in chain.candidates(day):
            if product.name in failing:
                continue
            try:
                if probe.exists(product.url_for(chain.servers, hemisphere, day)):
                    return day, product.label
            except RuntimeError as err:
                failing[product.name] = str(err)
                log.warning("SIC poll (%s): %s; passed over for this poll", product.name, err)
    if failing:
        raise RuntimeError("SIC poll: " + "; ".join(f"{name}: {err}" for name, err in failing.items()))
    return None


def source_pollers(config: dict, hemisphere: str, today: dt.date, probe: Probe) -> dict[str, Callable[[], Newest]]:
    """One zero-argument function per input source of the config."""
    from floecast.sources.atmos import newest_era5_day
    from floecast.sources.ecmwf_opendata import newest_opendata_day

    pollers: dict[str, Callable[[], Newest]] = {}
    synthetic_end = dt.date.fromisoformat(config["data"]["end"])
    for role, source in config["sources"].items():
        if role in ("cmip6", "seas5") or source == "oras5":
            # climate-model runs are static, SEAS5 only verifies, monthly ORAS5 persists its newest month:
            # none holds up a forecast
            continue
        if source == "synthetic":
            pollers[f"{role}:synthetic"] = lambda: (synthetic_end, "synthetic (data.end)")
        elif source == "osisaf":
            chain = SicChain.from_config(config["osisaf"])
            pollers[f"{role}:osisaf"] = lambda chain=chain: newest_sic_day(chain, hemisphere, today, probe)
        elif source == "era5" and config["era5"].get("realtime_url"):

            def era5_or_hres(url: str = config["era5"]["realtime_url"]) -> Newest:
                era5, hres = newest_era5_day(), newest_opendata_day(url)
                if era5 is None and hres is None:
                    return None
                if hres is not None and (era5 is None or hres > era5):
                    return hres, "ECMWF HRES open data"
                return era5, "ERA5/ERA5T"

            pollers[f"{role}:era5+hres"] = era5_or_hres
        elif source == "era5":
            pollers[f"{role}:era5"] = lambda: (lambda day: (day, "ERA5/ERA5T") if day else None)(newest_era5_day())
        else:
            raise ValueError(f"config key sources.{role}: no poller for source {source!r}")
    return pollers


def _stand_in_days(manifest: dict) -> list[tuple[dt.date, str]]:
    return [
        (dt.date.fromisoformat(iso), record["product"])
        for iso, record in manifest.get("days", {}).items()
        if record.get("replaced_later")
    ]


def find_replacements(config: dict, root: str | Path, today: dt.date, probe: Probe) -> dict[str, list[str]]:
    """Fast-track (stand-in) days in the raw SIC manifests whose better file is now on its server.

    Writes a trigger file per month that has some (``layout.POLL_REPLACE``), so the month's ingest
    job runs again; returns the days by manifest.
    """
    if config["sources"].get("sic") != "osisaf":
        return {}
    chain = SicChain.from_config(config["osisaf"])
    root = Path(root)
    found: dict[str, list[str]] = {}
    for hemisphere in config["hemispheres"]:
        base = layout.path(root, layout.RAW_SIC_DIR, sic_source="osisaf", hemi=hemisphere)
        for manifest_path in sorted(base.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9].json")):
            try:
                manifest = json.loads(manifest_path.read_text())
            except (OSError, ValueError) as err:
                log.warning("%s: unreadable manifest (%s)", manifest_path, err)
                continue
            days = []
            for day, served in _stand_in_days(manifest):
                better = _better_products(chain, day, served)
                try:
                    if any(probe.exists(p.url_for(chain.servers, hemisphere, day)) for p in better):
                        days.append(day.isoformat())
                except RuntimeError as err:  # asked again at the next poll
                    log.warning("%s: better files for %s not looked for (%s)", manifest_path, day, err)
            if days:
                period = manifest_path.relative_to(base).with_suffix("").as_posix()
                trigger = layout.path(root, layout.POLL_REPLACE, sic_source="osisaf", hemi=hemisphere, period=period)
                _write_trigger(trigger, manifest_path, days)
                found[str(manifest_path.relative_to(root))] = days
    return found


def _better_products(chain: SicChain, day: dt.date, served: str) -> list[SicProduct]:
    order = chain.candidates(day)
    names = [p.name for p in order]
    return order[: names.index(served)] if served in names else order


def _write_trigger(trigger: Path, manifest: Path, days: list[str]) -> None:
    """(Re)write the trigger unless it already announces these days and is newer than the manifest."""
    if trigger.exists() and trigger.stat().st_mtime > manifest.stat().st_mtime:
        try:
            if json.loads(trigger.read_text()).get("days") == days:
                return
        except (OSError, ValueError):
            pass
    trigger.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(trigger) as tmp:
        tmp.write_text(json.dumps({"days": days, "found_at": clock.stamp(), "manifest": str(manifest)}, indent=1) + "\n")
    log.info("%s: better files for %s are on the server; %s written", manifest, ", ".join(days), trigger)


def poll(
    config: dict,
    target: dt.date | None,
    state_path: str | Path,
    today: dt.date | None = None,
    root: str | Path = ".",
    max_lag_days: int = MAX_LAG_DAYS,
) -> dict:
    """Newest day, what served it and its latency per source and hemisphere; the newest init date whose
    inputs are all there (``resolved_date``); ``ready`` when every source reaches ``target`` - 1 (the
    resolved date when ``target`` is None, then as long as it trails today by at most ``max_lag_days``)."""
    today = today or clock.today()
    horizon = min(today, target) if target else today  # the newest day before the target (or today) is what counts
    newest: dict[str, str | None] = {}
    served_by: dict[str, str | None] = {}
    with Probe() as probe:
        for hemisphere in config["hemispheres"]:
            for name, poller in source_pollers(config, hemisphere, horizon, probe).items():
                found = poller()
                key = f"{hemisphere}:{name}"
                newest[key] = found[0].isoformat() if found else None
                served_by[key] = found[1] if found else None
                log.info("%s %s: newest day %s (%s)", hemisphere, name, newest[key], served_by[key])
        replacements = find_replacements(config, root, today, probe)
    latency = {key: (today - dt.date.fromisoformat(day)).days if day else None for key, day in newest.items()}
    resolved = None
    if newest and all(newest.values()):
        resolved = min(today, min(dt.date.fromisoformat(day) for day in newest.values() if day) + dt.timedelta(days=1))
    if target is None:
        target = resolved if resolved and (today - resolved).days <= max_lag_days else today
    needed = target - dt.timedelta(days=1)
    waiting = sorted(name for name, day in newest.items() if day is None or day < needed.isoformat())
    from floecast.config import poll_fingerprint

    state = {
        "checked_at": clock.stamp(),
        "today": today.isoformat(),
        "config": poll_fingerprint(config),
        "target_date": target.isoformat(),
        "needs_up_to": needed.isoformat(),
        "newest": newest,
        "served_by": served_by,
        "latency_days": latency,
        "resolved_date": resolved.isoformat() if resolved else None,
        "waiting_for": waiting,
        "ready": not waiting,
        "replacements": replacements,
    }
    with atomic_path(state_path) as tmp:
        tmp.write_text(json.dumps(state, indent=2) + "\n")
    return state
