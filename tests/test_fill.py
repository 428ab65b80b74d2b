"""Filling gaps: the nearest defined cell in space, monthly means to days without using the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from floecast.fill import causal_daily, fill_from_nearest, month_ends

MONTHS = pd.date_range("2004-01-01", "2005-06-01", freq="MS")  # 18 consecutive months


def test_nearest_fill_takes_each_days_nearest_defined_cell() -> None:
    values = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5)
    undefined = np.zeros((4, 5), bool)
    undefined[0, 0] = undefined[3, 4] = undefined[1, 2] = True
    filled = fill_from_nearest(values, undefined)
    for day in range(2):
        assert filled[day, 0, 0] in (values[day, 0, 1], values[day, 1, 0])
        assert filled[day, 3, 4] in (values[day, 3, 3], values[day, 2, 4])
        assert filled[day, 1, 2] in (values[day, 0, 2], values[day, 2, 2], values[day, 1, 1], values[day, 1, 3])
    np.testing.assert_array_equal(filled[:, ~undefined], values[:, ~undefined])
    assert fill_from_nearest(values, np.zeros((4, 5), bool)) is values
    with pytest.raises(ValueError, match="nothing to fill from"):
        fill_from_nearest(values, np.ones((4, 5), bool))


def test_month_ends() -> None:
    ends = month_ends(pd.DatetimeIndex(["2004-02-10", "2005-02-01", "2004-12-31"]))
    assert [d.date().isoformat() for d in ends] == ["2004-02-29", "2005-02-28", "2004-12-31"]


def test_a_day_uses_only_months_that_have_ended_by_then() -> None:
    """Changing a month's mean changes no day before that month's end: a forecast's inputs (the days
    before its init date) never see a month that is not complete before the init date."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(len(MONTHS), 3, 2))
    days = pd.date_range("2004-02-29", "2005-08-31", freq="D")  # from the first knot (January's, end of February)
    base, _ = causal_daily(MONTHS, values, days)
    for k, end in enumerate(month_ends(MONTHS)):
        changed = values.copy()
        changed[k] += 100.0
        daily, _ = causal_daily(MONTHS, changed, days)
        differs = np.abs(daily - base).max(axis=(1, 2)) > 0
        assert differs.any() and days[differs][0] > end, MONTHS[k]  # it reaches only the days after its end


def test_daily_values_interpolate_between_knots_at_the_end_of_the_next_month() -> None:
    values = np.arange(len(MONTHS), dtype=np.float64)  # month k has mean k
    days = pd.DatetimeIndex(["2004-02-29", "2004-03-16", "2004-03-31", "2005-07-31"])
    daily, persisted = causal_daily(MONTHS, values, days)
    # January's mean (0) is known from the end of February, February's (1) from the end of March
    assert daily[0] == 0.0 and daily[2] == 1.0
    assert daily[1] == pytest.approx(16 / 31)
    assert daily[3] == len(MONTHS) - 1  # the end of the month after the newest: its own knot
    assert not persisted.any()


def test_days_past_the_newest_month_persist_it_and_are_flagged() -> None:
    """ORAS5's newest month arrives about two weeks after it ends: the days after its knot repeat it."""
    values = np.arange(len(MONTHS), dtype=np.float64)
    days = pd.date_range("2005-07-25", "2005-08-20", freq="D")
    daily, persisted = causal_daily(MONTHS, values, days)
    after = days > pd.Timestamp("2005-07-31")
    assert (daily[after] == len(MONTHS) - 1).all() and persisted[after].all() and not persisted[~after].any()
    early, flags = causal_daily(MONTHS, values, pd.date_range("2004-01-01", "2004-02-29"))
    assert (early == 0.0).all() and flags[:-1].all() and not flags[-1]  # before January's knot: flagged


def test_months_must_be_consecutive_and_units_do_not_matter() -> None:
    with pytest.raises(ValueError, match="not consecutive"):
        causal_daily(MONTHS.delete(3), np.zeros(len(MONTHS) - 1), pd.date_range("2004-06-01", periods=3))
    days = pd.date_range("2004-05-01", "2004-09-30")
    values = np.arange(len(MONTHS), dtype=np.float64)
    in_ns, _ = causal_daily(pd.DatetimeIndex(MONTHS.values.astype("datetime64[ns]")), values, days)
    in_s, _ = causal_daily(MONTHS, values, pd.DatetimeIndex(days.values.astype("datetime64[s]")))
    np.testing.assert_array_equal(in_ns, in_s)
