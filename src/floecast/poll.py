"""Polling: the newest day each configured source can deliver, without downloading data.

A forecast for init date D needs every input up to D - 1. ``poll`` asks each source of
the config for its newest day, writes a small state file and says whether D is ready.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path

import requests

from floecast.io import atomic_path
from floecast.sources.atmos import newest_era5_day
from floecast.sources.ecmwf_opendata import newest_opendata_day
from floecast.sources.http import redact
from floecast.sources.osisaf import osisaf_url

log = logging.getLogger(__name__)
OSISAF_LOOKBACK_DAYS = 45  # the ICDR runs about 16 days behind; look well past that


def newest_osisaf_day(
    base_url: str, hemisphere: str, today: dt.date, session: requests.Session | None = None, lookback: int = OSISAF_LOOKBACK_DAYS
) -> dt.date | None:
    """The newest day whose OSI-SAF file the server has (HEAD requests, newest first)."""
    session = session or requests.Session()
    for back in range(1, lookback + 1):
        day = today - dt.timedelta(days=back)
        url = osisaf_url(base_url, hemisphere, day)
        try:
            response = session.head(url, timeout=(10, 30), allow_redirects=True)
        except requests.RequestException as err:
            raise RuntimeError(f"OSI-SAF poll: {redact(url)} unreachable ({type(err).__name__})") from None
        if response.status_code == 200:
            return day
        if response.status_code not in (404, 410):
            raise RuntimeError(f"OSI-SAF poll: {redact(url)} answered HTTP {response.status_code}")
    return None


def source_pollers(config: dict, hemisphere: str, today: dt.date) -> dict[str, Callable[[], dt.date | None]]:
    """One zero-argument function per input source of the config."""
    pollers: dict[str, Callable[[], dt.date | None]] = {}
    synthetic_end = dt.date.fromisoformat(config["data"]["end"])
    for role, source in config["sources"].items():
        if role in ("cmip6", "seas5") or source == "oras5":
            # climate-model runs are static, SEAS5 only verifies, monthly ORAS5 persists its newest month:
            # none holds up a forecast
            continue
        if source == "synthetic":
            pollers[f"{role}:synthetic"] = lambda: synthetic_end
        elif source == "osisaf":
            pollers[f"{role}:osisaf"] = lambda: newest_osisaf_day(config["osisaf"]["base_url"], hemisphere, today)
        elif source == "era5" and config["era5"].get("realtime_url"):
            pollers[f"{role}:era5+hres"] = lambda url=config["era5"]["realtime_url"]: max(
                filter(None, (newest_era5_day(), newest_opendata_day(url))), default=None
            )
        elif source == "era5":
            pollers[f"{role}:era5"] = newest_era5_day
        else:
            raise ValueError(f"config key sources.{role}: no poller for source {source!r}")
    return pollers


def poll(config: dict, target: dt.date, state_path: str | Path, today: dt.date | None = None) -> dict:
    """Newest day per source and hemisphere; ``ready`` when all reach ``target`` - 1."""
    today = today or dt.datetime.now(dt.UTC).date()
    horizon = min(today, target)  # the newest day before the target (or today) is what counts
    needed = target - dt.timedelta(days=1)
    newest: dict[str, str | None] = {}
    for hemisphere in config["hemispheres"]:
        for name, poller in source_pollers(config, hemisphere, horizon).items():
            day = poller()
            newest[f"{hemisphere}:{name}"] = day.isoformat() if day else None
            log.info("%s %s: newest day %s", hemisphere, name, day)
    waiting = sorted(name for name, day in newest.items() if day is None or day < needed.isoformat())
    state = {
        "checked_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "target_date": target.isoformat(),
        "needs_up_to": needed.isoformat(),
        "newest": newest,
        "waiting_for": waiting,
        "ready": not waiting,
    }
    with atomic_path(state_path) as tmp:
        tmp.write_text(json.dumps(state, indent=2) + "\n")
    return state
