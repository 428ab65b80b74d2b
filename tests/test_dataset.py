"""Time semantics of samples: inputs strictly before the init date, lead k on D + k."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from floecast.dataset import InputSpec, SampleStore

SPEC = InputSpec(sic_lags=(1, 2, 3, 7, 14), t2m_lags=(1, 2, 3, 5), wind_lags=(1,), leads=10)
INIT = pd.Timestamp("2004-02-20")


@pytest.fixture(scope="module")
def samples(tiny_data) -> SampleStore:
    return SampleStore.open(tiny_data.store, SPEC)


@pytest.fixture(scope="module")
def stored(tiny_data) -> xr.Dataset:
    with xr.open_zarr(tiny_data.store, consolidated=True) as ds:
        return ds.load()


def _channel(name: str, spec: InputSpec = SPEC) -> int:
    return spec.channel_names.index(name)


def test_input_days_are_strictly_before_the_init_date(samples: SampleStore) -> None:
    days = samples.input_days(INIT)
    assert (days < INIT).all()
    assert set(days) == {INIT - pd.Timedelta(days=lag) for lag in (1, 2, 3, 5, 7, 14)}
    assert days.max() == INIT - pd.Timedelta(days=1)
    assert days.min() == INIT - pd.Timedelta(days=SPEC.max_lag)
    targets = {INIT + pd.Timedelta(days=k) for k in range(1, SPEC.leads + 1)}
    assert not targets & set(days)


def test_lead_k_targets_day_d_plus_k(samples: SampleStore, stored: xr.Dataset) -> None:
    inits = pd.DatetimeIndex([INIT, pd.Timestamp("2003-07-31"), pd.Timestamp("2004-12-25")])
    y, weights = samples.targets(inits)
    assert y.shape == (3, SPEC.leads, 16, 16)
    for i, init in enumerate(inits):
        for k in range(1, SPEC.leads + 1):
            day = init + pd.Timedelta(days=k)
            np.testing.assert_array_equal(y[i, k - 1], stored["sic"].sel(time=day).values)
            np.testing.assert_array_equal(weights[i, k - 1], stored["active"].sel(month=day.month).values)
    # 2004-12-25 + 7 is in January 2005: its weights are January's active mask
    assert not np.array_equal(weights[2, 0], weights[2, 7])


def test_inputs_read_the_lagged_days(samples: SampleStore, stored: xr.Dataset) -> None:
    x, clim, latest = samples.inputs(pd.DatetimeIndex([INIT]))
    assert x.dtype == np.float32 and x.shape == (1, len(SPEC.channel_names), 16, 16)

    def day(lag: int) -> pd.Timestamp:
        return INIT - pd.Timedelta(days=lag)

    assert SPEC.channel_names[0] == "sic_lag1"
    np.testing.assert_array_equal(x[0, 0], stored["sic"].sel(time=day(1)).values)
    np.testing.assert_array_equal(latest[0, 0], stored["sic"].sel(time=day(1)).values)
    for lag in SPEC.sic_lags:
        np.testing.assert_array_equal(x[0, _channel(f"sic_lag{lag}")], stored["sic"].sel(time=day(lag)).values)
    for lag in SPEC.t2m_lags:
        np.testing.assert_array_equal(x[0, _channel(f"t2m_anom_lag{lag}")], stored["t2m_anom"].sel(time=day(lag)).values)
    for name in ("u10", "v10"):
        np.testing.assert_array_equal(x[0, _channel(f"{name}_lag1")], stored[name].sel(time=day(1)).values)
    np.testing.assert_array_equal(x[0, _channel("land")], stored["land"].values)
    angle = 2 * np.pi * (INIT.day_of_year - 1) / 365.25
    np.testing.assert_allclose(x[0, _channel("cos_doy")], np.cos(angle), rtol=1e-6)
    np.testing.assert_allclose(x[0, _channel("sin_doy")], np.sin(angle), rtol=1e-6)
    for k in range(1, SPEC.leads + 1):
        target_doy = (INIT + pd.Timedelta(days=k)).day_of_year
        expected = stored["sic_clim"].sel(dayofyear=target_doy).values
        np.testing.assert_array_equal(x[0, _channel(f"sic_clim_lead{k}")], expected)
        np.testing.assert_array_equal(clim[0, k - 1], expected)


def test_no_target_day_feeds_an_input(samples: SampleStore) -> None:
    """Scrambling every day from D on (the targets and later) leaves the inputs unchanged."""
    inits = pd.DatetimeIndex([INIT, pd.Timestamp("2004-09-01")])
    before = samples.inputs(inits)
    scrambled = dataclasses.replace(samples)
    rng = np.random.default_rng(0)
    for init in inits:
        start = samples.dates.get_loc(init)
        for name in ("sic", "t2m_anom", "u10", "v10"):
            values = getattr(scrambled, name).copy()
            values[start:] = rng.standard_normal(values[start:].shape)
            setattr(scrambled, name, values)
        after = scrambled.inputs(pd.DatetimeIndex([init]))
        i = inits.get_loc(init)
        for a, b in zip(before, after, strict=True):
            np.testing.assert_array_equal(a[i], b[0])
        scrambled = dataclasses.replace(samples)
    # while scrambling the day before D changes them
    broken = dataclasses.replace(samples, sic=samples.sic.copy())
    broken.sic[samples.dates.get_loc(INIT) - 1] += 0.5
    assert not np.array_equal(broken.inputs(pd.DatetimeIndex([INIT]))[0], before[0][:1])


def test_init_dates_respect_max_lag_and_leads(samples: SampleStore) -> None:
    first_day, last_day = samples.dates[0], samples.dates[-1]
    dates = samples.init_dates()
    assert dates[0] == first_day + pd.Timedelta(days=SPEC.max_lag) == pd.Timestamp("2003-01-15")
    assert dates[-1] == last_day - pd.Timedelta(days=SPEC.leads) == pd.Timestamp("2005-04-20")
    assert len(dates) == len(samples.dates) - SPEC.max_lag - SPEC.leads
    # every one of them has its inputs and targets
    samples.inputs(dates[[0, -1]])
    samples.targets(dates[[0, -1]])
    with pytest.raises(KeyError):
        samples.inputs(pd.DatetimeIndex([dates[0] - pd.Timedelta(days=1)]))
    with pytest.raises(KeyError, match="targets run past"):
        samples.targets(pd.DatetimeIndex([dates[-1] + pd.Timedelta(days=1)]))
    # without targets, the day after the store is the last init date (the operational forecast)
    open_ended = samples.init_dates(with_targets=False)
    assert open_ended[-1] == last_day + pd.Timedelta(days=1)
    x, _, latest = samples.inputs(open_ended[-1:])
    np.testing.assert_array_equal(latest[0, 0], samples.sic[-1])
    # year filter and stride
    in_2004 = samples.init_dates((2004, 2004), stride=7)
    assert in_2004[0] == pd.Timestamp("2004-01-01") and (in_2004.year == 2004).all()
    assert (np.diff(in_2004.values) == np.timedelta64(7, "D")).all()
    assert len(in_2004) == 53


def test_date_outside_the_store_raises_key_error_naming_it(samples: SampleStore) -> None:
    with pytest.raises(KeyError, match="1990-01-01"):
        samples.targets(pd.DatetimeIndex(["1990-01-01"]))
    with pytest.raises(KeyError, match="2005-06-01"):
        samples.targets(pd.DatetimeIndex(["2005-06-01"]))
    with pytest.raises(KeyError, match="2003-01-10 needs its 14 days"):
        samples.inputs(pd.DatetimeIndex(["2003-01-10"]))


def test_inputs_key_error_names_the_init_date(samples: SampleStore) -> None:
    with pytest.raises(KeyError, match="init date 1990-01-01"):
        samples.inputs(pd.DatetimeIndex(["1990-01-01"]))


@pytest.mark.parametrize(
    "spec",
    [SPEC, InputSpec(), InputSpec(sic_lags=(1,), t2m_lags=(2, 4), wind_lags=(1, 3), leads=3)],
    ids=["tiny", "default", "custom"],
)
def test_channel_count_matches_channel_names(tiny_data, spec: InputSpec) -> None:
    store = SampleStore.open(tiny_data.store, spec)
    init = store.init_dates()[100]
    x, clim, latest = store.inputs(pd.DatetimeIndex([init]))
    assert x.shape[1] == len(spec.channel_names)
    n = len(spec.sic_lags) + len(spec.t2m_lags) + 2 * len(spec.wind_lags) + 3 + spec.leads
    assert len(spec.channel_names) == len(set(spec.channel_names)) == n
    assert clim.shape == (1, spec.leads, 16, 16) and latest.shape == (1, 1, 16, 16)
    assert store.targets(pd.DatetimeIndex([init]))[0].shape == (1, spec.leads, 16, 16)


def test_lag_zero_is_rejected() -> None:
    with pytest.raises(ValueError, match="inputs.t2m_lags"):
        InputSpec(t2m_lags=(0, 1))
