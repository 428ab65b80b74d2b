"""How the members differ (model.ensemble.methods): the Gaussian CRPS, the members' quantiles, the bootstrap of
training years, the spread head and Monte Carlo dropout, on cases worked out by hand and on the tiny store."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from test_model_train import INPUTS, SPEC

from floecast.config import ConfigError, validate
from floecast.dataset import SampleStore
from floecast.model import INITIAL_SPREAD, UNet
from floecast.predict import predict_member
from floecast.train import bootstrap_years, forecast, gaussian_crps, ice_class_loss, member_quantile, train_member


def test_gaussian_crps_by_hand() -> None:
    # at the mean: sigma (2 phi(0) - 1/sqrt(pi)) = sigma (0.797885 - 0.564190) = 0.233695 sigma
    crps = gaussian_crps(torch.tensor([0.5]), torch.tensor([0.1]), torch.tensor([0.5]))
    assert float(crps) == pytest.approx(0.1 * (2 / math.sqrt(2 * math.pi) - 1 / math.sqrt(math.pi)), rel=1e-6)
    # far from the mean it tends to the absolute error minus sigma / sqrt(pi)
    crps = gaussian_crps(torch.tensor([0.0]), torch.tensor([0.01]), torch.tensor([1.0]))
    assert float(crps) == pytest.approx(1.0 - 0.01 / math.sqrt(math.pi), rel=1e-6)
    # the spread that minimises the expected CRPS of N(0, 0.2^2) outcomes about a mean of 0 is 0.2
    outcomes = torch.distributions.Normal(0.0, 0.2).icdf(torch.linspace(0.0005, 0.9995, 2000))
    spreads = torch.tensor([0.1, 0.15, 0.2, 0.25, 0.3])
    expected = [float(gaussian_crps(torch.zeros(()), s, outcomes).mean()) for s in spreads]
    assert int(np.argmin(expected)) == 2


def test_ice_class_loss_by_hand() -> None:
    # at the threshold the soft class is 1/2 whatever is observed: ln 2; 5 % SIC above it, logit 1:
    # -ln(sigmoid(1)) = ln(1 + e^-1) = 0.313262 for observed ice, -ln(1 - sigmoid(1)) = 1.313262 for water
    loss = ice_class_loss(torch.tensor([0.15, 0.15, 0.20, 0.20]), torch.tensor([1.0, 0.0, 0.5, 0.1]))
    np.testing.assert_allclose(loss.numpy(), [math.log(2), math.log(2), 0.313262, 1.313262], atol=1e-5)


def test_member_quantiles_are_equal_probability_slices() -> None:
    assert member_quantile(1, 3) == pytest.approx(0.0)
    assert member_quantile(0, 3) == pytest.approx(-member_quantile(2, 3)) == pytest.approx(-0.967422, abs=1e-6)
    assert member_quantile(0, 1) == 0.0


def test_bootstrap_draws_whole_years_with_replacement() -> None:
    dates = pd.date_range("2003-01-01", "2008-12-31", freq="5D")
    sample, years = bootstrap_years(dates, 1000)
    assert len(years) == 6 and set(years) <= set(range(2003, 2009))
    assert len(sample) == sum((dates.year == y).sum() for y in years)
    assert sorted(sample.year) == sorted(np.concatenate([[y] * (dates.year == y).sum() for y in years]))
    again, same = bootstrap_years(dates, 1000)
    assert same == years and again.equals(sample)
    assert any(bootstrap_years(dates, seed)[1] != years for seed in range(1001, 1005))


def test_spread_head_starts_at_its_initial_spread_and_leaves_the_forecast_alone() -> None:
    torch.manual_seed(0)
    plain = UNet(7, 4, filters=4, depth=2)
    torch.manual_seed(0)
    model = UNet(7, 4, filters=4, depth=2, spread_head=True)
    gen = torch.Generator().manual_seed(1)
    x, clim, latest = torch.randn(2, 7, 16, 16, generator=gen), torch.rand(2, 4, 16, 16, generator=gen), torch.rand(2, 1, 16, 16)
    model.eval(), plain.eval()
    with torch.no_grad():
        mean, spread = model.distribution(x, clim, latest)
        torch.testing.assert_close(mean, plain(x, clim, latest))
    torch.testing.assert_close(spread, torch.full_like(spread, INITIAL_SPREAD), atol=2e-4, rtol=0)
    with pytest.raises(ValueError, match="no spread head"):
        plain.distribution(x, clim, latest)


def test_member_quantile_forecast_and_dropout_draws(tiny_data) -> None:
    store = SampleStore.open(tiny_data.store, INPUTS)
    dates = pd.DatetimeIndex(["2004-03-01", "2004-09-15"])
    torch.manual_seed(0)
    model = UNet(len(INPUTS.channel_names), INPUTS.leads, filters=4, depth=2, dropout=0.5, spread_head=True)
    mean = forecast(model, store, dates)
    low = forecast(model, store, dates, quantile=-1.0)
    np.testing.assert_allclose(low, np.clip(mean - INITIAL_SPREAD, 0, 1), atol=2e-4)
    # dropout draws: seeded, differ between seeds, leave the model in eval mode and the caller's random state alone
    with torch.no_grad():
        torch.nn.init.normal_(model.head.weight, std=0.5)  # a head that reads the dropped channels
    state = torch.get_rng_state()
    a, b, a2 = (forecast(model, store, dates, dropout_seed=s) for s in (1, 2, 1))
    assert torch.equal(torch.get_rng_state(), state)
    np.testing.assert_array_equal(a, a2)
    assert np.abs(a - b).max() > 1e-3
    assert not any(m.training for m in model.modules())
    np.testing.assert_array_equal(forecast(model, store, dates), forecast(model, store, dates))


def test_distributional_members_spread_about_their_forecast(tiny_data, tmp_path) -> None:
    """Members trained with a spread head (and the ice class term) forecast the quantiles (k + 0.5) / n of their own
    distribution."""
    spec = copy.deepcopy(SPEC)
    spec["model"]["ensemble"] = {"methods": ["distributional", "bootstrap"]}
    spec["train"]["members"] = 3
    spec["train"]["ice_class_weight"] = 1.0  # trains with the classification term too
    pretrain = sorted(tiny_data.store.glob("*.zarr"))
    meta = train_member(spec, 0, tiny_data.store, pretrain, tmp_path / "m0", threads=1)
    assert meta["ensemble_methods"] == ["distributional", "bootstrap"] and meta["bootstrap_years"] == [2003]
    dates = [pd.Timestamp("2004-03-01").date()]
    weights = tmp_path / "m0" / "weights.pt"
    forecasts = [
        predict_member(weights, tiny_data.store, dates, tmp_path / f"f{k}.nc", k, members=3)["sic"].values for k in range(3)
    ]
    low, middle, high = forecasts
    ocean = np.isfinite(middle)
    assert (low[ocean] <= middle[ocean] + 1e-6).all() and (middle[ocean] <= high[ocean] + 1e-6).all()
    assert (high - low)[ocean].max() > 0.01
    with pytest.raises(ValueError, match="needs the ensemble's size"):
        predict_member(weights, tiny_data.store, dates, tmp_path / "f.nc", 3, members=3)


def test_mc_dropout_needs_dropout() -> None:
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "demo.yaml").read_text())
    config["model"]["ensemble"] = {"methods": ["mc_dropout"]}
    with pytest.raises(ConfigError, match="mc_dropout needs model.dropout"):
        validate(config)
    config["model"]["dropout"] = 0.2
    assert validate(config)["model"]["ensemble"]["methods"] == ["mc_dropout"]
    config["model"]["ensemble"] = {"methods": ["perturbed"]}
    with pytest.raises(ConfigError, match="model.ensemble.methods"):
        validate(config)
