"""The batch gather against a straightforward reference built frame by frame from the cache:
the same tensors, bit for bit, for every channel layout."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import SPEC

from floecast.channels import FieldChannel, InputSpec
from floecast.dataset import SIC_STEPS, SampleStore, _runs

SPECS = [
    SPEC,
    InputSpec(sic_lags=(1,), fields=(FieldChannel("u10", (1, 3)),), sic_trend_years=0, land=False, leads=3),
    InputSpec(fields=(), sic_trend_years=2, sic_climatology=False, day_of_year=False, leads=5),
]


def _steps(frame: torch.Tensor) -> torch.Tensor:
    return frame.float() * (1.0 / SIC_STEPS)


def reference_gather(store: SampleStore, dates: pd.DatetimeIndex, with_targets: bool) -> dict[str, torch.Tensor]:
    """One frame at a time, by day index, stacked."""
    spec = store.spec
    base = [(d - store.dates[0]).days for d in dates]
    leads = range(1, spec.leads + 1)

    def stack(array: torch.Tensor, days: list[list[int]]) -> torch.Tensor:
        return torch.stack([torch.stack([array[day] for day in sample]) for sample in days])

    out = {"sic_lags": stack(store.sic, [[b - lag for lag in spec.sic_lags] for b in base])}
    for f in spec.fields:
        out[f.key] = stack(store.fields[f.key], [[b - lag for lag in f.lags] for b in base])
    out["latest"] = stack(store.sic, [[b - 1] for b in base])
    if spec.sic_trend_years:
        out["trend"] = stack(store.trend, [[b + k for k in leads] for b in base])
    if with_targets:
        out["targets"] = stack(store.sic, [[b + k for k in leads] for b in base])
        out["hole_km"] = torch.stack([torch.stack([store.hole_km[b + k] for k in leads]) for b in base])
    return out


def reference_batch(store: SampleStore, dates: pd.DatetimeIndex, with_targets: bool) -> dict[str, torch.Tensor]:
    """Each sample's channels in the order of ``spec.channel_names``, one frame at a time."""
    spec, g = store.spec, reference_gather(store, dates, with_targets)
    xx, yy = np.meshgrid(store.xc, store.yc)
    distance = torch.from_numpy((np.hypot(xx, yy) / 1000.0).astype(np.float32))
    xs, clims, ys, weights = [], [], [], []
    for i, init in enumerate(dates):
        target_days = [init + pd.Timedelta(days=k) for k in range(1, spec.leads + 1)]
        clim = torch.stack([torch.from_numpy(store.sic_clim[day.day_of_year - 1]) for day in target_days])
        channels = [_steps(frame) for frame in g["sic_lags"][i]]
        channels += [frame.float() for f in spec.fields for frame in g[f.key][i]]
        if spec.land:
            channels.append(torch.from_numpy(store.land.astype(np.float32)))
        if spec.day_of_year:
            angle = 2 * np.pi * (init.day_of_year - 1) / 365.25
            channels += [torch.full(store.shape, float(np.float32(wave(angle)))) for wave in (np.cos, np.sin)]
        if spec.sic_trend_years:
            channels += [_steps(frame) for frame in g["trend"][i]]
        if spec.sic_climatology:
            channels += list(clim)
        xs.append(torch.stack(channels))
        clims.append(clim)
        if with_targets:
            ys.append(_steps(g["targets"][i]))
            active = torch.from_numpy(np.stack([store.active[day.month - 1] & ~store.land for day in target_days]))
            outside = distance[None] >= g["hole_km"][i][:, None, None]
            weights.append((active & outside).float())
    batch = {"x": torch.stack(xs), "clim": torch.stack(clims), "latest": _steps(g["latest"])}
    if with_targets:
        batch.update(y=torch.stack(ys), weights=torch.stack(weights))
    return batch


def _assert_same(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype and got[name].shape == tensor.shape, name
        assert torch.equal(got[name], tensor), name


@pytest.fixture(scope="module")
def holed(tiny_data) -> SampleStore:
    """The tiny store with a polar hole that changes from day to day (0 to 2000 km)."""
    store = SampleStore.open(tiny_data.store, SPEC)
    hole = torch.from_numpy((np.arange(len(store.dates)) % 5 * 500.0).astype(np.float32))
    return dataclasses.replace(store, hole_km=hole)


@pytest.mark.parametrize("spec", SPECS, ids=["tiny", "custom", "sic-only"])
def test_gather_and_batch_match_the_reference(tiny_data, spec: InputSpec) -> None:
    store = SampleStore.open(tiny_data.store, spec)
    dates = store.init_dates()
    for chosen in (dates[[0, 7, 300, 301, -1]], dates[[5]], dates[[-1, 0]]):  # unordered and repeated days too
        for with_targets in (True, False):
            _assert_same(store.gather(chosen, with_targets), reference_gather(store, chosen, with_targets))
            _assert_same(store.batch(chosen, with_targets), reference_batch(store, chosen, with_targets))
    # the operational init date, the day after the store, has inputs and no targets
    last = store.init_dates(with_targets=False)[-1:]
    _assert_same(store.batch(last, with_targets=False), reference_batch(store, last, with_targets=False))


def test_targets_and_inputs_match_the_reference(holed: SampleStore) -> None:
    dates = holed.init_dates()[[3, 40, 41, 42, 43, 500]]
    expected = reference_batch(holed, dates, with_targets=True)
    assert 0 < expected["weights"].mean() < 1  # the hole takes cells on some days
    y, weights = holed.targets(dates)
    np.testing.assert_array_equal(y, expected["y"].numpy())
    np.testing.assert_array_equal(weights, expected["weights"].numpy())
    x, clim, latest = holed.inputs(dates)
    for got, name in ((x, "x"), (clim, "clim"), (latest, "latest")):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected[name].numpy())


def test_each_batch_is_its_own_memory(holed: SampleStore) -> None:
    """A batch stays as it was when the next one is gathered (no reused output buffers)."""
    dates = holed.init_dates()
    first = holed.batch(dates[:2])
    kept = {name: tensor.clone() for name, tensor in first.items()}
    holed.batch(dates[100:102])
    holed.gather(dates[200:202])
    _assert_same(first, kept)


def test_runs_rebuild_the_days() -> None:
    """The CPU gather copies runs of consecutive or repeated days: together they are the index."""
    rng = np.random.default_rng(0)
    for _ in range(500):
        days = 50 + np.cumsum(rng.choice([0, 1, 1, 2, -3, 5], rng.integers(0, 30)))
        rebuilt: list[int] = []
        for first, count, day, step in _runs(days):
            assert first == len(rebuilt) and step in (0, 1) and count >= 1
            rebuilt += [day + step * i for i in range(count)]
        assert rebuilt == days.tolist()
    assert _runs(np.array([5, 6, 7, 7, 7, 2])) == [(0, 3, 5, 1), (3, 2, 7, 0), (5, 1, 2, 1)]


def test_a_day_outside_the_cache_is_refused(holed: SampleStore) -> None:
    """Slices would wrap a negative day round to the end of the cache: refused instead."""
    for day in (-1, len(holed.dates)):
        with pytest.raises(IndexError, match="outside the cache"):
            holed._frames(holed.sic, torch.tensor([[3, day]]))
