"""Spread calibration: factors fitted on validation members, applied about the mean."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_verify import LEADS, _members

from floecast import metrics
from floecast.calibrate import inflate, read_factors, spread_factors, write_factors
from floecast.store import read_store


def test_inflate_by_hand() -> None:
    members = np.array([[0.4], [0.6]])  # mean 0.5, deviations -0.1 and +0.1
    np.testing.assert_allclose(inflate(members, 2.0), [[0.3], [0.7]])
    np.testing.assert_allclose(inflate(members, 6.0), [[0.0], [1.0]])  # -0.1 and 1.1, clipped
    np.testing.assert_allclose(inflate(members, 1.0), members)
    by_lead = np.array([[[0.4, 0.5]], [[0.6, 0.5]]])  # (members, 1, leads)
    np.testing.assert_allclose(inflate(by_lead, np.array([2.0, 3.0])), [[[0.3, 0.5]], [[0.7, 0.5]]])


def test_factors_make_the_validation_spread_match_the_error(tiny_data, tmp_path) -> None:
    dates = pd.date_range("2004-01-10", "2004-12-20", freq="10D")
    paths = _members(tiny_data, tmp_path, dates, (0.04, 0.06))  # biased by 0.05, spread 0.014: too narrow
    factors = spread_factors(paths, tiny_data.store, tiny_data.statistics)
    assert factors.shape == (LEADS,) and (factors > 1).all()
    fields = read_store(tiny_data.store, leads=LEADS).lead(dates, 2)
    raw = np.stack([xr.open_dataset(p)["sic"].isel(leadtime=1).values for p in paths])
    assert factors[1] == pytest.approx(1 / metrics.spread_skill(raw, fields["observed"], fields["mask"]), rel=1e-5)
    write_factors(tmp_path / "spread.json", factors, paths, "2004")
    np.testing.assert_allclose(read_factors(tmp_path / "spread.json", LEADS), factors, rtol=1e-4)
    with pytest.raises(ValueError, match="5 factors for 7 leads"):
        read_factors(tmp_path / "spread.json", 7)
