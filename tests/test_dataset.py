"""Time semantics of samples: inputs strictly before the init date, lead k on D + k."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from conftest import SPEC

from floecast.channels import FieldChannel, InputSpec
from floecast.dataset import SIC_STEPS, SampleStore

INIT = pd.Timestamp("2004-02-20")
STEP = 0.5 / SIC_STEPS  # the cache's uint8 SIC is within half a step of the stored fraction


@pytest.fixture(scope="module")
def samples(tiny_data) -> SampleStore:
    return SampleStore.open(tiny_data.store, SPEC)


@pytest.fixture(scope="module")
def stored(tiny_data) -> xr.Dataset:
    """The parts' per-day arrays joined in time, with the statistics' masks and climatology."""
    parts = []
    for year in tiny_data.years:
        with xr.open_zarr(tiny_data.store / f"{year}.zarr", consolidated=True) as ds:
            fields = ds["fields"].load()
            part = ds[["sic"]].load()
            for c, key in enumerate(fields.attrs["channels"]):
                part[key] = fields.isel(channel=c, drop=True)
            parts.append(part)
    joined = xr.concat(parts, dim="time")
    with xr.open_dataset(tiny_data.statistics) as stats:
        for name in ("land", "active", "sic_clim"):
            joined[name] = stats[name].load()
    return joined


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
            np.testing.assert_allclose(y[i, k - 1], stored["sic"].sel(time=day).values, atol=STEP)
            active_ocean = stored["active"].sel(month=day.month).values & (stored["land"].values == 0)
            np.testing.assert_array_equal(weights[i, k - 1], active_ocean)
    # 2004-12-25 + 7 is in January 2005: its weights are January's active mask
    assert not np.array_equal(weights[2, 0], weights[2, 7])


def test_inputs_read_the_lagged_days(samples: SampleStore, stored: xr.Dataset) -> None:
    x, clim, latest = samples.inputs(pd.DatetimeIndex([INIT]))
    assert x.dtype == np.float32 and x.shape == (1, len(SPEC.channel_names), 16, 16)

    def day(lag: int) -> pd.Timestamp:
        return INIT - pd.Timedelta(days=lag)

    assert SPEC.channel_names[0] == "sic_lag1"
    np.testing.assert_allclose(x[0, 0], stored["sic"].sel(time=day(1)).values, atol=STEP)
    np.testing.assert_allclose(latest[0, 0], stored["sic"].sel(time=day(1)).values, atol=STEP)
    for lag in SPEC.sic_lags:
        np.testing.assert_allclose(x[0, _channel(f"sic_lag{lag}")], stored["sic"].sel(time=day(lag)).values, atol=STEP)
    for channel in SPEC.fields:
        for lag in channel.lags:  # float16 in the cache
            expected = stored[channel.key].sel(time=day(lag)).values
            np.testing.assert_allclose(x[0, _channel(f"{channel.key}_lag{lag}")], expected, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(x[0, _channel("land")], stored["land"].values)
    angle = 2 * np.pi * (INIT.day_of_year - 1) / 365.25
    np.testing.assert_allclose(x[0, _channel("cos_doy")], np.cos(angle), rtol=1e-6)
    np.testing.assert_allclose(x[0, _channel("sin_doy")], np.sin(angle), rtol=1e-6)
    for k in range(1, SPEC.leads + 1):
        target_doy = (INIT + pd.Timedelta(days=k)).day_of_year
        expected = stored["sic_clim"].sel(dayofyear=target_doy).values
        np.testing.assert_array_equal(x[0, _channel(f"sic_clim_lead{k}")], expected)
        np.testing.assert_array_equal(clim[0, k - 1], expected)
        trend = samples.trend[samples.dates.get_loc(INIT) + k].numpy() / SIC_STEPS
        np.testing.assert_allclose(x[0, _channel(f"sic_trend_lead{k}")], trend, atol=1e-6)


def _scrambled(samples: SampleStore, start: int, seed: int) -> SampleStore:
    """A copy whose per-day arrays from index ``start`` on are noise."""
    gen = torch.Generator().manual_seed(seed)
    sic = samples.sic.clone()
    sic[start:] = torch.randint(0, SIC_STEPS + 1, sic[start:].shape, generator=gen, dtype=torch.uint8)
    fields = {}
    for key, values in samples.fields.items():
        fields[key] = values.clone()
        fields[key][start:] = torch.randn(values[start:].shape, generator=gen).half()
    return dataclasses.replace(samples, sic=sic, fields=fields)


def test_no_target_day_feeds_an_input(samples: SampleStore) -> None:
    """Scrambling every day from D on (the targets and later) leaves the inputs unchanged."""
    inits = pd.DatetimeIndex([INIT, pd.Timestamp("2004-09-01")])
    before = samples.inputs(inits)
    for i, init in enumerate(inits):
        after = _scrambled(samples, samples.dates.get_loc(init), seed=i).inputs(pd.DatetimeIndex([init]))
        for a, b in zip(before, after, strict=True):
            np.testing.assert_array_equal(a[i], b[0])
    # while scrambling the day before D changes them
    broken = _scrambled(samples, samples.dates.get_loc(INIT) - 1, seed=9)
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
    np.testing.assert_allclose(latest[0, 0], samples.sic[-1].numpy() / SIC_STEPS, atol=1e-6)
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
    [
        SPEC,
        InputSpec(sic_trend_years=2, leads=SPEC.leads),
        InputSpec(sic_lags=(1,), fields=(FieldChannel("u10", (1, 3)),), sic_trend_years=0, land=False, leads=3),
        InputSpec(fields=(), sic_trend_years=2, sic_climatology=False, day_of_year=False, leads=5),
    ],
    ids=["tiny", "default", "custom", "sic-only"],
)
def test_channel_count_matches_channel_names(tiny_data, spec: InputSpec) -> None:
    store = SampleStore.open(tiny_data.store, spec)
    init = store.init_dates()[100]
    x, clim, latest = store.inputs(pd.DatetimeIndex([init]))
    assert x.shape[1] == len(spec.channel_names)
    n = len(spec.sic_lags) + sum(len(f.lags) for f in spec.fields) + spec.land + 2 * spec.day_of_year
    n += spec.leads * (bool(spec.sic_trend_years) + spec.sic_climatology)
    assert len(spec.channel_names) == len(set(spec.channel_names)) == n
    assert clim.shape == (1, spec.leads, 16, 16) and latest.shape == (1, 1, 16, 16)
    assert store.targets(pd.DatetimeIndex([init]))[0].shape == (1, spec.leads, 16, 16)


def test_lag_zero_is_rejected() -> None:
    with pytest.raises(ValueError, match="channels.fields.t2m.lags"):
        InputSpec(fields=(FieldChannel("t2m", (0, 1), "anomaly"),))


def test_cache_is_compact(samples: SampleStore, tiny_data) -> None:
    assert samples.sic.dtype == torch.uint8 and samples.trend.dtype == torch.uint8
    assert all(v.dtype == torch.float16 for v in samples.fields.values())
    days, cells = len(samples.dates), 16 * 16
    # per day: SIC 1 byte, 3 field channels 2 bytes each, the trend 1 byte, the hole radius
    assert samples.nbytes == days * cells * (1 + 3 * 2) + (days + SPEC.leads + 1) * cells + days * 4
    assert SampleStore.open(tiny_data.store, SPEC).trend.shape[0] == days + SPEC.leads + 1


def test_polar_hole_cells_get_no_weight(samples: SampleStore) -> None:
    dates = pd.DatetimeIndex([INIT])
    _, weights = samples.targets(dates)
    assert weights.sum() > 0
    # a hole of 2000 km around the pole (this grid's cells are 675 km) for every day
    holed = dataclasses.replace(samples, hole_km=torch.full_like(samples.hole_km, 2000.0))
    _, holed_weights = holed.targets(dates)
    xx, yy = np.meshgrid(samples.xc, samples.yc)
    inside = np.hypot(xx, yy) < 2_000_000
    assert inside.sum() >= 4 and (holed_weights[..., inside] == 0).all()
    np.testing.assert_array_equal(holed_weights[..., ~inside], weights[..., ~inside])


def test_a_store_built_for_other_channels_is_refused(tiny_data) -> None:
    with pytest.raises(ValueError, match="2003.zarr: its trend channel uses 2 years, the model 5"):
        SampleStore.open(tiny_data.store, InputSpec(sic_trend_years=5, leads=5))
    with pytest.raises(KeyError, match="no channel t2m "):
        SampleStore.open(tiny_data.store, InputSpec(fields=(FieldChannel("t2m", (1,)),), sic_trend_years=2))
