"""The scorecard's reference ensembles, on cases worked out by hand, and in the scorecard on the tiny store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_verify import LEADS, _members

from floecast import metrics
from floecast.references import CLIMATOLOGICAL_ENSEMBLE, DRESSED_ANOMALY_PERSISTENCE, TrainingYears, dressed, same_day_in
from floecast.store import read_sic, read_store
from floecast.verify import BASELINES, scorecard, skill_summary


def _training(values: dict[str, float], clim: dict[str, float] | None = None) -> TrainingYears:
    """A one-cell store of 2001-2002 holding SIC ``values`` on the given days (0 elsewhere), and a climatology
    holding ``clim`` on the given days of year (month-day of 2001)."""
    dates = pd.date_range("2001-01-01", "2002-12-31")
    sic = np.zeros((len(dates), 1, 1), np.uint8)
    for day, value in values.items():
        sic[dates.get_loc(pd.Timestamp(day))] = round(value * 250)
    sic_clim = np.zeros((366, 1, 1), np.float32)
    for day, value in (clim or {}).items():
        sic_clim[pd.Timestamp(day).day_of_year - 1] = value
    return TrainingYears(dates, sic, sic_clim, [2001, 2002])


def test_same_day_keeps_month_and_day() -> None:
    moved = same_day_in(pd.DatetimeIndex(["2012-02-29", "2012-03-05", "2011-12-31"]), 2001)
    assert list(moved.strftime("%Y-%m-%d")) == ["2001-02-28", "2001-03-05", "2001-12-31"]


def test_climatological_ensemble_is_each_years_valid_day() -> None:
    training = _training({"2001-03-05": 0.2, "2002-03-05": 0.6, "2001-03-06": 1.0})
    members = training.climatological_ensemble(pd.DatetimeIndex(["2010-03-05"]))
    assert members.shape == (2, 1, 1, 1)
    np.testing.assert_allclose(members[:, 0, 0, 0], [0.2, 0.6])
    # against an observed 0.5: E|X - y| = (0.3 + 0.1) / 2 = 0.2, E|X - X'| = (0 + 0.4 + 0.4 + 0) / 4 = 0.2,
    # CRPS = 0.2 - 0.1 = 0.1; both members have ice (SIP 1) and so has the truth: Brier 0, SPS 0
    observed, mask = np.full((1, 1, 1), 0.5, np.float32), np.ones((1, 1, 1), bool)
    assert metrics.crps(members, observed, mask) == pytest.approx(0.1, abs=1e-6)
    sip = (members > metrics.ICE_THRESHOLD).mean(axis=0)
    assert metrics.brier_score(sip, observed, mask) == 0.0
    # one member without ice (0.1): SIP 0.5, Brier (0.5 - 1)^2 = 0.25, SPS 0.25 of the cell's area
    training = _training({"2001-03-05": 0.1, "2002-03-05": 0.6})
    sip = (training.climatological_ensemble(pd.DatetimeIndex(["2010-03-05"])) > metrics.ICE_THRESHOLD).mean(axis=0)
    assert metrics.brier_score(sip, observed, mask) == pytest.approx(0.25)
    assert metrics.sps_km2(sip, observed, 100.0, mask) == pytest.approx(25.0)


def test_climatological_ensemble_leap_day_is_28_february() -> None:
    training = _training({"2001-02-28": 0.4, "2002-02-28": 0.8})
    np.testing.assert_allclose(training.climatological_ensemble(pd.DatetimeIndex(["2012-02-29"]))[:, 0, 0, 0], [0.4, 0.8])


def test_dressed_anomaly_persistence_adds_each_years_error_at_that_lead() -> None:
    # lead 2, valid 5 March: anomaly persistence starts from 2 March (the day before the init date, 3 March).
    # 2001: latest 0.5, climatology 0.4 on 2 March and 0.3 on 5 March -> forecast 0.4; observed 0.2 -> error -0.2
    # 2002: latest 0.1 -> forecast 0.0; observed 0.5 -> error +0.5
    training = _training(
        {"2001-03-02": 0.5, "2001-03-05": 0.2, "2002-03-02": 0.1, "2002-03-05": 0.5},
        clim={"2001-03-02": 0.4, "2001-03-05": 0.3},
    )
    errors = training.anomaly_persistence_errors(pd.DatetimeIndex(["2010-03-05"]), 2)
    np.testing.assert_allclose(errors[:, 0, 0, 0], [-0.2, 0.5], atol=1e-6)
    # today's anomaly persistence 0.7, dressed: 0.5 and 1.2 clipped to 1.0
    members = dressed(np.full((1, 1, 1), 0.7, np.float32), errors)
    np.testing.assert_allclose(members[:, 0, 0, 0], [0.5, 1.0], atol=1e-6)


def test_dressed_anomaly_persistence_drops_years_without_their_days() -> None:
    # valid 2 January at lead 5: the latest day is 27 December of the year before, stored for 2002 only
    training = _training({"2001-12-27": 0.3, "2002-01-02": 0.5})
    errors = training.anomaly_persistence_errors(pd.DatetimeIndex(["2010-01-02"]), 5)
    np.testing.assert_allclose(errors[:, 0, 0, 0], [0.5 - 0.3], atol=1e-6)
    with pytest.raises(ValueError, match="no training year .* lead 400"):
        training.anomaly_persistence_errors(pd.DatetimeIndex(["2010-01-02"]), 400)


def test_a_reference_no_training_year_can_make_is_left_out_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The first training year at the start of the store (the simulated month's config): anomaly persistence
    at lead 400 needs days before the store, so the dressed reference is left out; the climatological one stays."""
    from floecast.references import CLIMATOLOGICAL_ENSEMBLE, reference_ensembles

    training = _training({"2001-01-02": 0.4, "2002-01-02": 0.6})
    targets = pd.DatetimeIndex(["2010-01-02"])
    with caplog.at_level("WARNING", logger="floecast.references"):
        made = reference_ensembles(training, targets, 400, np.zeros((1, 1, 1), np.float32))
    assert list(made) == [CLIMATOLOGICAL_ENSEMBLE]
    np.testing.assert_allclose(made[CLIMATOLOGICAL_ENSEMBLE][:, 0, 0, 0], [0.4, 0.6], atol=1e-6)
    assert "dressed_anomaly_persistence at lead 400 left out of the scorecard: no training year" in caplog.text


def test_scorecard_scores_the_references_on_the_ensembles_dates(tiny_data, tmp_path: Path) -> None:
    dates = pd.date_range("2004-01-10", "2004-12-20", freq="10D")
    paths = _members(tiny_data, tmp_path, dates, (-0.05, 0.05))
    spread = tmp_path / "spread.json"
    spread.write_text('{"factors": [2.0, 2.0, 2.0, 2.0, 2.0]}')
    parts = sorted(Path(tiny_data.store).glob("*.zarr"))
    table = scorecard(paths, tiny_data.store, tmp_path / "s.csv", spread=spread, train_store=parts)
    rows = table[table["month"] == "all"]
    assert set(BASELINES) <= set(rows["method"]) and (rows["n_init_dates"] == len(dates)).all()
    k = 3
    row = rows[rows["lead_days"] == k].set_index("method")
    # the climatological ensemble: the training years' (2003, 2004) SIC on the valid days, scored independently here
    store = read_store(tiny_data.store, leads=LEADS)
    fields = store.lead(dates, k)
    days, sic = read_sic(parts)
    targets = dates + pd.Timedelta(days=k)
    members = np.stack([sic[days.get_indexer(same_day_in(targets, y))] / 250.0 for y in (2003, 2004)])
    observed, mask = fields["observed"], fields["mask"]
    assert row.loc[CLIMATOLOGICAL_ENSEMBLE, "crps"] == pytest.approx(metrics.crps(members, observed, mask), rel=1e-5)
    sip = (members > metrics.ICE_THRESHOLD).mean(axis=0)
    assert row.loc[CLIMATOLOGICAL_ENSEMBLE, "brier"] == pytest.approx(metrics.brier_score(sip, observed, mask), rel=1e-5)
    assert row.loc[CLIMATOLOGICAL_ENSEMBLE, "sps_km2"] == pytest.approx(
        metrics.sps_km2(sip, observed, tiny_data.grid.cell_area_km2, mask), rel=1e-5
    )
    assert row.loc[CLIMATOLOGICAL_ENSEMBLE, "spread_skill"] == row.loc[CLIMATOLOGICAL_ENSEMBLE, "spread_skill_raw"]
    # the dressed anomaly persistence: its members' mean is not anomaly persistence, but it has a spread
    assert row.loc[DRESSED_ANOMALY_PERSISTENCE, "spread_skill"] > 0
    assert np.isfinite(row.loc[DRESSED_ANOMALY_PERSISTENCE, ["crps", "brier", "sps_km2", "bss"]].astype(float)).all()
    # a deterministic forecast's CRPS is its MAE; it has no spread
    for name in ("persistence", "anomaly_persistence", "climatology", "linear_trend"):
        assert row.loc[name, "crps"] == row.loc[name, "mae"] and np.isnan(row.loc[name, "spread_skill_raw"])
    # the ensemble: calibrated spread (factor 2) beside the raw one
    assert row.loc["ensemble_mean", "spread_skill"] > row.loc["ensemble_mean", "spread_skill_raw"] > 0
    raw = np.stack([xr.open_dataset(p)["sic"].isel(leadtime=k - 1).values for p in paths])
    assert row.loc["ensemble_mean", "spread_skill_raw"] == pytest.approx(metrics.spread_skill(raw, observed, mask), rel=1e-4)
    lines = skill_summary(table)
    assert any(line.startswith(f"CRPS ratio vs {CLIMATOLOGICAL_ENSEMBLE}: ") for line in lines)
    assert "of the raw members" in lines[2]
