"""Train one ensemble member: pretrain on CMIP6(-like) stores, fine-tune on observations.

A member is defined by the training spec (inputs, model, training settings and splits)
and its seed; two runs with the same spec, seed and thread count give identical weights.
"""

from __future__ import annotations

import csv
import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from floecast import __version__
from floecast.channels import InputSpec
from floecast.dataset import SampleStore, store_parts
from floecast.io import atomic_path
from floecast.model import UNet


@dataclass(frozen=True)
class TrainSettings:
    seed: int
    pretrain_epochs: int
    epochs: int
    patience: int
    batch_size: int
    learning_rate: float
    sample_stride_days: int
    train_years: tuple[int, int]
    validate_years: tuple[int, int]

    @classmethod
    def from_spec(cls, spec: dict, member: int) -> TrainSettings:
        train = spec["train"]
        return cls(
            seed=int(train["seed"]) + member,
            pretrain_epochs=int(train["pretrain_epochs"]),
            epochs=int(train["epochs"]),
            patience=int(train["patience"]),
            batch_size=int(train["batch_size"]),
            learning_rate=float(train["learning_rate"]),
            sample_stride_days=int(train["sample_stride_days"]),
            train_years=tuple(spec["splits"]["train"]),  # type: ignore[arg-type]
            validate_years=tuple(spec["splits"]["validate"]),  # type: ignore[arg-type]
        )


def build_model(spec: dict) -> UNet:
    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    return UNet(len(inputs.channel_names), inputs.leads, spec["model"]["filters"], spec["model"]["depth"])


def default_device() -> torch.device:
    """The GPU where there is one (a `gpu=1` job), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _loss(model: UNet, store: SampleStore, dates: pd.DatetimeIndex) -> torch.Tensor:
    """MSE over active ocean cells outside the polar hole, every lead weighted alike."""
    batch = store.batch(dates)
    pred = model(batch["x"], batch["clim"], batch["latest"])
    weights = batch["weights"]
    return (weights * (pred - batch["y"]) ** 2).sum() / weights.sum().clamp(min=1.0)


def _epoch(
    model: UNet,
    optimiser: torch.optim.Optimizer,
    stores: Sequence[tuple[SampleStore, pd.DatetimeIndex]],
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    """One pass over every (store, date) pair: batches of one store each, in a seeded random order."""
    batches = []
    for store, dates in stores:
        shuffled = dates[rng.permutation(len(dates))]
        batches += [(store, shuffled[i : i + batch_size]) for i in range(0, len(shuffled), batch_size)]
    model.train()
    losses = []
    for j in rng.permutation(len(batches)):
        store, picked = batches[j]
        optimiser.zero_grad()
        loss = _loss(model, store, picked)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def evaluate(model: UNet, store: SampleStore, dates: pd.DatetimeIndex) -> float:
    """Mean squared error over active cells of every lead (the training loss)."""
    pred = forecast(model, store, dates)
    y, w = store.targets(dates)
    return float((w * (pred - y) ** 2).sum() / max(w.sum(), 1.0))


@torch.no_grad()
def forecast(model: UNet, store: SampleStore, dates: pd.DatetimeIndex, batch_size: int = 64) -> np.ndarray:
    """SIC for every lead of every init date, (n, leads, H, W) float32."""
    model.eval()
    chunks = []
    for start in range(0, len(dates), batch_size):
        batch = store.batch(dates[start : start + batch_size], with_targets=False)
        chunks.append(model(batch["x"], batch["clim"], batch["latest"]).float().cpu().numpy())
    return np.concatenate(chunks).astype(np.float32)


def datasets(parts: Sequence[str | Path]) -> list[list[Path]]:
    """Yearly store parts grouped by dataset (their folder), e.g. one group per CMIP6 run."""
    groups: dict[Path, list[Path]] = {}
    for part in store_parts(parts) if parts else []:
        groups.setdefault(part.parent, []).append(part)
    return list(groups.values())


def train_member(
    spec: dict,
    member: int,
    obs_store: str | Path | Sequence[str | Path],
    pretrain_stores: Sequence[str | Path],
    out_dir: str | Path,
    threads: int = 1,
    statistics: str | Path | None = None,
) -> dict:
    """Train one member and write weights.pt, history.csv and meta.json into ``out_dir``.

    ``obs_store`` is the observational store (its yearly parts, or their folder);
    ``pretrain_stores`` the parts of the CMIP6 stores, one dataset per folder.
    """
    settings = TrainSettings.from_spec(spec, member)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    device = default_device()
    model = build_model(spec).to(device)
    obs = SampleStore.open(obs_store, inputs, statistics, device=device)
    train_dates = obs.init_dates(settings.train_years, settings.sample_stride_days)
    val_dates = obs.init_dates(settings.validate_years, settings.sample_stride_days)
    if len(train_dates) == 0 or len(val_dates) == 0:
        raise ValueError(
            f"{obs_store}: no training or validation dates for splits {settings.train_years} / {settings.validate_years}"
        )
    pretrain = []
    for parts in datasets(pretrain_stores):
        store = SampleStore.open(parts, inputs, statistics, device=device)
        pretrain.append((store, store.init_dates(None, settings.sample_stride_days)))

    history: list[dict] = []
    started = time.perf_counter()
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    for epoch in range(settings.pretrain_epochs):
        loss = _epoch(model, optimiser, pretrain, settings.batch_size, rng)
        history.append({"stage": "pretrain", "epoch": epoch + 1, "train_loss": loss, "val_loss": evaluate(model, obs, val_dates)})

    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=1)
    best_val, best_state, stale = float("inf"), None, 0
    for epoch in range(settings.epochs):
        loss = _epoch(model, optimiser, [(obs, train_dates)], settings.batch_size, rng)
        val = evaluate(model, obs, val_dates)
        scheduler.step(val)
        history.append({"stage": "finetune", "epoch": epoch + 1, "train_loss": loss, "val_loss": val})
        if val < best_val:
            best_val, best_state, stale = val, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, 0
        else:
            stale += 1
            if stale >= settings.patience:
                break
    assert best_state is not None
    model.load_state_dict(best_state)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "history.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["stage", "epoch", "train_loss", "val_loss"])
        writer.writeheader()
        writer.writerows(history)
    meta = {
        "member": member,
        "seed": settings.seed,
        "spec": spec,
        "channels": inputs.channel_names,
        "obs_store_sha256": obs.attrs.get("content_sha256"),
        "obs_store_parts": obs.attrs["parts"],
        "pretrain_stores": sorted({str(Path(p).parent) for p in pretrain_stores}),
        "floecast_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "threads": threads,
        "device": str(device),
        "epochs_pretrain": settings.pretrain_epochs,
        "epochs_finetune": sum(1 for h in history if h["stage"] == "finetune"),
        "best_val_loss": best_val,
        "train_samples": len(train_dates),
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    with atomic_path(out / "meta.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    with atomic_path(out / "weights.pt") as tmp:
        torch.save({"state_dict": model.state_dict(), "spec": spec, "member": member}, tmp)
    return meta


def load_member(weights: str | Path) -> tuple[UNet, dict]:
    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    model = build_model(checkpoint["spec"])
    model.load_state_dict(checkpoint["state_dict"])
    model.to(default_device()).eval()
    return model, checkpoint["spec"]
