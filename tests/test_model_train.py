"""The U-Net and the training of one member: shapes, the persistence base, reproducibility."""

from __future__ import annotations

import copy
import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from floecast import __version__
from floecast.channels import FieldChannel, InputSpec
from floecast.dataset import SampleStore
from floecast.model import UNet
from floecast.train import CHECKPOINT, KILL_AFTER_BATCHES_ENV, forecast, lead_weights, load_member, train_member

SPEC = {
    "channels": {
        "sic_lags": [1, 2, 7],
        "sic_trend_years": 2,
        "sic_climatology": True,
        "atmos": {
            "t2m": {"lags": [1, 3], "transform": "anomaly", "norm": "zscore"},
            "u10": {"lags": [1], "transform": "absolute", "norm": "zscore"},
            "v10": {"lags": [1], "transform": "absolute", "norm": "zscore"},
        },
        "land": True,
        "day_of_year": True,
    },
    "model": {"leads": 5, "filters": 4, "depth": 2},
    "train": {
        "seed": 1000,
        "pretrain_epochs": 1,
        "epochs": 1,
        "patience": 1,
        "batch_size": 8,
        "learning_rate": 0.002,
        "sample_stride_days": 25,
    },
    "splits": {"train": [2003, 2003], "validate": [2004, 2004]},
}
INPUTS = InputSpec(
    sic_lags=(1, 2, 7),
    fields=(FieldChannel("t2m", (1, 3), "anomaly"), FieldChannel("u10", (1,)), FieldChannel("v10", (1,))),
    sic_trend_years=2,
    leads=5,
)


def _inputs(seed: int, n: int = 3, channels: int = 7, leads: int = 4, size: int = 16):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, size, size, generator=gen)
    clim = torch.rand(n, leads, size, size, generator=gen)
    latest = torch.rand(n, 1, size, size, generator=gen)
    return x, clim, latest


def test_unet_output_shape_and_range() -> None:
    torch.manual_seed(0)
    model = UNet(in_channels=7, leads=4, filters=4, depth=2)
    with torch.no_grad():
        torch.nn.init.normal_(model.head.weight, std=0.5)  # a trained-looking head
        out = model(*_inputs(1))
    assert out.shape == (3, 4, 16, 16)
    assert out.dtype == torch.float32
    assert (out > 0).all() and (out < 1).all()
    assert out.std() > 0.01  # the head does move the forecast
    with pytest.raises(RuntimeError):
        UNet(in_channels=7, leads=4, filters=4, depth=3)(*_inputs(1, size=12))  # 12 is not divisible by 8


def test_untrained_model_forecasts_damped_persistence() -> None:
    torch.manual_seed(0)
    leads = 4
    model = UNet(in_channels=7, leads=leads, filters=4, depth=2)
    x, clim, latest = _inputs(2, leads=leads)
    model.train()  # batch statistics do not matter: the head is zero
    with torch.no_grad():
        out = model(x, clim, latest).numpy()
    damping = np.exp(-np.arange(1, leads + 1) / 20.0)[None, :, None, None]
    base = clim.numpy() + damping * (latest.numpy() - clim.numpy()[:, :1])
    np.testing.assert_allclose(out, np.clip(base, 0.01, 1 - 0.01), rtol=0, atol=1e-6)
    # lead 1 keeps 95 % of the latest anomaly
    assert damping[0, 0, 0, 0] == pytest.approx(np.exp(-0.05))


def test_untrained_model_on_store_samples(tiny_data) -> None:
    spec = INPUTS
    store = SampleStore.open(tiny_data.store, spec)
    dates = pd.DatetimeIndex(["2004-03-01", "2004-09-15"])
    torch.manual_seed(0)
    model = UNet(len(spec.channel_names), spec.leads, filters=4, depth=2)
    out = forecast(model, store, dates)
    _, clim, latest = store.inputs(dates)
    damping = np.exp(-np.arange(1, 6) / 20.0)[None, :, None, None]
    expected = np.clip(clim + damping * (latest - clim[:, :1]), 0.01, 0.99)
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """Members 0 (twice) and 1 of SPEC, pretrained on the tiny store itself."""
    root = tmp_path_factory.mktemp("members")
    runs = {}
    for name, member in (("a", 0), ("b", 0), ("c", 1)):
        pretrain = sorted(tiny_data.store.glob("*.zarr"))
        meta = train_member(copy.deepcopy(SPEC), member, tiny_data.store, pretrain, root / name, threads=1)
        runs[name] = (meta, root / name)
    return runs


def _state(path) -> dict[str, torch.Tensor]:
    return torch.load(path / "weights.pt", map_location="cpu", weights_only=True)["state_dict"]


def test_same_member_gives_bit_identical_weights(trained) -> None:
    a, b = _state(trained["a"][1]), _state(trained["b"][1])
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert trained["a"][0]["best_val_loss"] == trained["b"][0]["best_val_loss"]


def test_other_member_gives_other_weights(trained) -> None:
    a, c = _state(trained["a"][1]), _state(trained["c"][1])
    differing = [key for key in a if not torch.equal(a[key], c[key])]
    assert "head.weight" in differing
    assert "down.0.0.weight" in differing  # a different initialisation, not only a different order


def test_training_moves_the_weights(trained) -> None:
    state = _state(trained["a"][1])
    assert state["head.weight"].abs().max() > 0  # the head starts at zero
    initial_damping = torch.logit(torch.exp(-torch.arange(1, 6) / 20.0))
    assert not torch.equal(state["damping_logit"].flatten(), initial_damping)


def test_meta_records_the_run(trained, tiny_data) -> None:
    for name, member in (("a", 0), ("c", 1)):
        meta, path = trained[name]
        on_disk = json.loads((path / "meta.json").read_text())
        assert on_disk == meta
        assert meta["member"] == member
        assert meta["seed"] == 1000 + member
        assert meta["obs_store_sha256"] == tiny_data.store_hash
        assert meta["floecast_version"] == __version__
        assert meta["torch_version"] == torch.__version__
        assert meta["epochs_pretrain"] == 1 and meta["epochs_finetune"] == 1
        assert meta["threads"] == 1
        assert meta["spec"] == SPEC
        assert meta["pretrain_stores"] == [str(tiny_data.store)]
        assert meta["channels"] == INPUTS.channel_names
        assert meta["obs_store_parts"] == ["2003.zarr", "2004.zarr", "2005.zarr"]
        assert meta["train_samples"] == len(pd.date_range("2003-01-08", "2003-12-31")[::25]) == 15
        with open(path / "history.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert [(r["stage"], r["epoch"]) for r in rows] == [("pretrain", "1"), ("finetune", "1")]
        assert float(rows[1]["val_loss"]) == pytest.approx(meta["best_val_loss"])
        assert 0 < meta["best_val_loss"] < 0.1


def test_loaded_member_reproduces_its_validation_loss(trained, tiny_data) -> None:
    meta, path = trained["a"]
    model, spec = load_member(path / "weights.pt")
    assert spec == SPEC
    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    store = SampleStore.open(tiny_data.store, inputs)
    dates = store.init_dates((2004, 2004), 25)
    pred = forecast(model, store, dates)
    y, w = store.targets(dates)
    assert float((w * (pred - y) ** 2).sum() / w.sum()) == pytest.approx(meta["best_val_loss"], rel=1e-5)


def _train_cli(tiny_data, spec: dict, out: Path, kill_after: int | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop(KILL_AFTER_BATCHES_ENV, None)
    if kill_after:
        env[KILL_AFTER_BATCHES_ENV] = str(kill_after)
    cmd = [str(Path(sys.executable).parent / "floecast"), "train", "--spec", json.dumps(spec), "--member", "0"]
    cmd += ["--store", str(tiny_data.store), "--pretrain-store", *map(str, sorted(tiny_data.store.glob("*.zarr")))]
    cmd += ["--out-dir", str(out)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_killed_training_resumes_from_its_checkpoint(tiny_data, tmp_path) -> None:
    """SIGKILL in the second fine-tuning epoch; the re-run resumes after the first and ends
    with the epochs and the weights of an uninterrupted run."""
    spec = copy.deepcopy(SPEC)
    spec["train"].update(epochs=3, patience=3)
    whole = _train_cli(tiny_data, spec, tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    assert not (tmp_path / "whole" / CHECKPOINT).exists()  # removed once the member is done
    # batches: pretraining 5 (39 init dates, 8 a batch), fine-tuning 2 an epoch (15 dates)
    killed = _train_cli(tiny_data, spec, tmp_path / "killed", kill_after=5 + 2 + 1)
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "killed" / CHECKPOINT).exists() and not (tmp_path / "killed" / "weights.pt").exists()
    resumed = _train_cli(tiny_data, spec, tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr
    meta = json.loads((tmp_path / "killed" / "meta.json").read_text())
    reference = json.loads((tmp_path / "whole" / "meta.json").read_text())
    assert meta["resumed_from"] == "finetune epoch 1" and reference["resumed_from"] is None
    assert (
        (meta["epochs_pretrain"], meta["epochs_finetune"])
        == (reference["epochs_pretrain"], reference["epochs_finetune"])
        == (1, 3)
    )
    a, b = _state(tmp_path / "whole"), _state(tmp_path / "killed")
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert (tmp_path / "killed" / "history.csv").read_text() == (tmp_path / "whole" / "history.csv").read_text()


def test_a_checkpoint_of_another_spec_is_not_resumed(tiny_data, tmp_path) -> None:
    spec = copy.deepcopy(SPEC)
    killed = _train_cli(tiny_data, spec, tmp_path / "m", kill_after=6)
    assert killed.returncode == -signal.SIGKILL
    spec["train"]["learning_rate"] = 0.001
    again = _train_cli(tiny_data, spec, tmp_path / "m")
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "m" / "meta.json").read_text())["resumed_from"] is None


def test_a_member_without_a_finite_validation_loss_names_the_cause(tiny_data, tmp_path, monkeypatch) -> None:
    """NaN validation losses (missing values on the validation dates) leave no weights to keep: an error that
    says so, not a bare assertion."""
    import floecast.train

    monkeypatch.setattr(floecast.train, "evaluate", lambda *args, **kwargs: float("nan"))
    with pytest.raises(RuntimeError, match=r"member 0 has no fine-tuned weights.*\[nan\].*NaN loss means"):
        train_member(copy.deepcopy(SPEC), 0, tiny_data.store, [], tmp_path / "m0", threads=1)
    assert not (tmp_path / "m0" / "meta.json").exists()


def test_lead_weights() -> None:
    np.testing.assert_array_equal(lead_weights(4, None), np.ones(4))
    halving = lead_weights(3, 1.0)  # 1, 1/2, 1/4, scaled to mean 1
    np.testing.assert_allclose(halving, np.array([1.0, 0.5, 0.25]) / (1.75 / 3))


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_model_options(norm: str) -> None:
    model = UNet(7, 4, filters=4, depth=2, norm=norm, dropout=0.2)
    out = model(*_inputs(3))
    assert out.shape == (3, 4, 16, 16) and ((out > 0) & (out < 1)).all()
    assert any(isinstance(m, torch.nn.Dropout2d) for m in model.modules())


def test_production_model_size() -> None:
    """IceNet-sized: 2-11 M parameters for the production channels and 93 leads."""
    from floecast.config import load, training_spec
    from floecast.train import build_model

    spec = training_spec(load(Path(__file__).resolve().parents[1] / "config" / "config.yaml"))
    params = sum(p.numel() for p in build_model(spec).parameters())
    assert 2e6 < params < 11e6
