"""The date floecast takes for today (UTC), read in this one place.

``FLOECAST_TODAY=YYYY-MM-DD`` sets it, for the tests and the simulated month of operation
only: the config checks (``date: today``, an init date in the future), ``floecast poll``,
``floecast status`` and ``scripts/daily-run`` then behave as on that day. Operators never
set it.
"""

from __future__ import annotations

import datetime as dt
import os

ENV = "FLOECAST_TODAY"


def today() -> dt.date:
    """Today's date in UTC, or the date in ``$FLOECAST_TODAY``."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{ENV}={value!r} is not a date (YYYY-MM-DD)") from None


def now() -> dt.datetime:
    """The current UTC time, on :func:`today`'s date (the time of day is the real one)."""
    real = dt.datetime.now(dt.UTC)
    return dt.datetime.combine(today(), real.timetz())


def stamp() -> str:
    """:func:`now` as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return now().strftime("%Y-%m-%dT%H:%M:%SZ")
