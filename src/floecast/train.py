"""Train one ensemble member: pretrain on CMIP6(-like) stores, fine-tune on observations.

A member is defined by the training spec (channels, model, training settings and splits)
and its seed; two runs with the same spec, seed and thread count give identical weights
on the CPU. Every epoch ends with a checkpoint (model, optimiser, schedule, random
states, history), so a killed job resumes where it stopped and ends as an uninterrupted
one would. On a GPU the model runs in bf16 autocast and channels-last, and the store's
cache sits in GPU memory, so batches are gathered where the model runs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import platform
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import torch

from floecast import __version__
from floecast.channels import InputSpec
from floecast.dataset import SampleStore
from floecast.io import atomic_path
from floecast.metrics import ICE_THRESHOLD
from floecast.model import UNet
from floecast.store import coast_fill_by_dataset, store_parts

CHECKPOINT = "checkpoint.pt"
# fault injection for the resume test: the process kills itself (SIGKILL) after this many
# training batches in total, as a pre-empted or OOM-killed job would be
KILL_AFTER_BATCHES_ENV = "FLOECAST_KILL_AFTER_BATCHES"


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
    lead_weight_halflife_days: float | None = None
    compile: bool = False
    ice_class_weight: float = 0.0
    ensemble_methods: tuple[str, ...] = ()

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
            lead_weight_halflife_days=train.get("lead_weight_halflife_days"),
            compile=bool(train.get("compile", False)),
            ice_class_weight=float(train.get("ice_class_weight", 0.0)),
            ensemble_methods=ensemble_methods(spec),
        )


# How the members differ besides their seed (model.ensemble.methods; docs/model-card.md):
BOOTSTRAP = "bootstrap"  # each member fine-tuned on a bootstrap sample of the training years
MC_DROPOUT = "mc_dropout"  # dropout left on when the member forecasts: one draw per member
DISTRIBUTIONAL = "distributional"  # a spread head trained with the Gaussian CRPS; member k forecasts its quantile
ENSEMBLE_METHODS = (BOOTSTRAP, MC_DROPOUT, DISTRIBUTIONAL)


def ensemble_methods(spec: dict) -> tuple[str, ...]:
    """The spec's ensemble methods (none for weights trained before they existed: members differ by seed only)."""
    return tuple(spec["model"].get("ensemble", {}).get("methods", ()))


def member_quantile(member: int, members: int) -> float:
    """The standard normal quantile that member ``member`` (0-based) of ``members`` forecasts with a spread head:
    the middle of its equal-probability slice, Phi^-1((member + 0.5) / members)."""
    return NormalDist().inv_cdf((member + 0.5) / members)


def bootstrap_years(dates: pd.DatetimeIndex, seed: int) -> tuple[pd.DatetimeIndex, list[int]]:
    """The init dates of a bootstrap sample of their years (as many years, drawn with replacement by ``seed``; a year
    drawn twice counts twice), and the years drawn."""
    years = sorted(set(dates.year))
    drawn = sorted(int(y) for y in np.random.default_rng([seed, 1]).choice(years, size=len(years), replace=True))
    return pd.DatetimeIndex(np.concatenate([dates[dates.year == year].values for year in drawn])), drawn


ICE_CLASS_SOFTNESS = 0.05  # SIC: the width of the soft ice class's logistic about the 15 % threshold


def ice_class_loss(forecast: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the observed ice class (SIC > 0.15) against the forecast's soft ice class
    sigmoid((SIC - 0.15) / 0.05), per element."""
    logits = (forecast - ICE_THRESHOLD) / ICE_CLASS_SOFTNESS
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, (observed > ICE_THRESHOLD).float(), reduction="none")


def gaussian_crps(mean: torch.Tensor, spread: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """CRPS of a Gaussian N(mean, spread^2) for ``observed``, per element (Gneiting et al. 2005)."""
    z = (observed - mean) / spread
    pdf = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    return spread * (z * (2 * torch.special.ndtr(z) - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def build_model(spec: dict) -> UNet:
    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    model = spec["model"]
    return UNet(
        len(inputs.channel_names),
        inputs.leads,
        model["filters"],
        model["depth"],
        model.get("normalisation", "batch"),
        float(model.get("dropout", 0.0)),
        spread_head=DISTRIBUTIONAL in ensemble_methods(spec),
    )


def lead_weights(leads: int, halflife_days: float | None) -> np.ndarray:
    """Loss weight of each lead, mean 1: alike, or halving every ``halflife_days``."""
    if not halflife_days:
        return np.ones(leads, np.float32)
    weights = 0.5 ** (np.arange(leads) / halflife_days)
    return (weights / weights.mean()).astype(np.float32)


def default_device() -> torch.device:
    """The GPU where there is one (a `gpu=1` job), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class StepTimer:
    """Seconds spent gathering batches against whole training steps (the data share)."""

    data_s: float = 0.0
    step_s: float = 0.0
    samples: int = 0

    def sync(self, device: torch.device) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    @property
    def data_fraction(self) -> float:
        return self.data_s / self.step_s if self.step_s else 0.0

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.step_s if self.step_s else 0.0


@dataclass
class Trainer:
    """The model, its optimiser and how a step runs on the device."""

    model: UNet
    device: torch.device
    leads: np.ndarray
    ice_class_weight: float = 0.0
    compiled: torch.nn.Module | None = None
    timer: StepTimer = field(default_factory=StepTimer)

    @property
    def _autocast(self):  # noqa: ANN202 - a context manager
        if self.device.type == "cuda":  # bf16 keeps fp32's range: no loss scaling needed
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["x"]
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast:
            return (self.compiled or self.model)(x, batch["clim"], batch["latest"]).float()

    def distribution(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x = batch["x"]
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast:
            mean, spread = self.model.distribution(x, batch["clim"], batch["latest"])
        return mean.float(), spread.float()

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """MSE over active ocean cells outside the polar hole, weighted per lead; with a spread head, plus the
        Gaussian CRPS of the spread about the (detached) forecast, so the spread learns the forecast's error and
        the forecast is trained as without it; with ``ice_class_weight``, plus that times the ice class's
        cross-entropy (:func:`ice_class_loss`)."""
        lead = torch.from_numpy(self.leads).to(self.device)[None, :, None, None]
        weights = batch["weights"] * lead
        if self.model.spread_head is None:
            pred = self.forward(batch)
            error = (pred - batch["y"]) ** 2
        else:
            pred, spread = self.distribution(batch)
            error = (pred - batch["y"]) ** 2 + gaussian_crps(pred.detach(), spread, batch["y"])
        if self.ice_class_weight:
            error = error + self.ice_class_weight * ice_class_loss(pred, batch["y"])
        return (weights * error).sum() / batch["weights"].sum().clamp(min=1.0)

    def step(self, optimiser: torch.optim.Optimizer, store: SampleStore, dates: pd.DatetimeIndex) -> float:
        started = time.perf_counter()
        batch = store.batch(dates)
        self.timer.sync(self.device)
        gathered = time.perf_counter()
        optimiser.zero_grad()
        loss = self.loss(batch)
        loss.backward()
        optimiser.step()
        value = loss.item()  # also waits for the GPU
        self.timer.data_s += gathered - started
        self.timer.step_s += time.perf_counter() - started
        self.timer.samples += len(dates)
        return value


def _batches(dates: pd.DatetimeIndex, batch_size: int, rng: np.random.Generator) -> Iterator[pd.DatetimeIndex]:
    shuffled = dates[rng.permutation(len(dates))]
    for i in range(0, len(shuffled), batch_size):
        yield shuffled[i : i + batch_size]


def evaluate(model: UNet, store: SampleStore, dates: pd.DatetimeIndex) -> float:
    """Mean squared error over active cells of every lead (the training loss, leads alike)."""
    pred = forecast(model, store, dates)
    y, w = store.targets(dates)
    return float((w * (pred - y) ** 2).sum() / max(w.sum(), 1.0))


@torch.no_grad()
def forecast(
    model: UNet,
    store: SampleStore,
    dates: pd.DatetimeIndex,
    batch_size: int = 64,
    quantile: float | None = None,
    dropout_seed: int | None = None,
) -> np.ndarray:
    """SIC for every lead of every init date, (n, leads, H, W) float32.

    With ``quantile`` (a model with a spread head) the forecast + ``quantile`` x its spread, clipped to [0, 1];
    with ``dropout_seed`` the dropout layers stay on (one Monte Carlo draw, seeded): an ensemble member's forecast.
    """
    model.eval()
    chunks = []
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if store.device.type == "cuda" else nullcontext()
    # the draw's seed must not move the caller's random state (training goes on after evaluate)
    with torch.random.fork_rng(devices=[], enabled=dropout_seed is not None):
        if dropout_seed is not None:
            torch.manual_seed(dropout_seed)
            for module in model.modules():
                if isinstance(module, torch.nn.Dropout2d):
                    module.train()
        try:
            for start in range(0, len(dates), batch_size):
                batch = store.batch(dates[start : start + batch_size], with_targets=False)
                with autocast:
                    if quantile is None:
                        pred = model(batch["x"], batch["clim"], batch["latest"]).float()
                    else:
                        mean, spread = model.distribution(batch["x"], batch["clim"], batch["latest"])
                        pred = (mean.float() + quantile * spread.float()).clamp(0.0, 1.0)
                chunks.append(pred.cpu().numpy())
        finally:
            model.eval()
    return np.concatenate(chunks).astype(np.float32)


def datasets(parts: Sequence[str | Path]) -> list[list[Path]]:
    """Yearly store parts grouped by dataset (their folder), e.g. one group per CMIP6 run."""
    groups: dict[Path, list[Path]] = {}
    for part in store_parts(parts) if parts else []:
        groups.setdefault(part.parent, []).append(part)
    return list(groups.values())


def _fingerprint(spec: dict, member: int, store_hash: str, pretrain: Sequence[str | Path]) -> str:
    """What a checkpoint must match to be resumed: the spec, member, data and pretraining stores."""
    text = json.dumps([spec, member, store_hash, sorted(str(p) for p in pretrain)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _kill_switch() -> Iterator[None]:
    """Yields once per batch; kills the process after FLOECAST_KILL_AFTER_BATCHES batches."""
    limit = int(os.environ.get(KILL_AFTER_BATCHES_ENV, "0") or 0)
    count = 0
    while True:
        yield
        count += 1
        if limit and count >= limit:
            os.kill(os.getpid(), signal.SIGKILL)


def _rng_state(rng: np.random.Generator) -> dict:
    return {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()}


def _restore_rng(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])


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
    ``pretrain_stores`` the parts of the CMIP6 stores, one dataset per folder, each read
    into the cache in turn (a production run's years do not fit in memory together).
    A ``checkpoint.pt`` from an interrupted run of the same spec and data is resumed.
    """
    settings = TrainSettings.from_spec(spec, member)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    device = default_device()
    model = build_model(spec).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    trainer = Trainer(model, device, lead_weights(inputs.leads, settings.lead_weight_halflife_days), settings.ice_class_weight)
    if settings.compile and device.type == "cuda":
        trainer.compiled = torch.compile(model)
    obs = SampleStore.open(obs_store, inputs, statistics, device=device)
    train_dates = obs.init_dates(settings.train_years, settings.sample_stride_days)
    drawn_years = None
    if BOOTSTRAP in settings.ensemble_methods:
        train_dates, drawn_years = bootstrap_years(train_dates, settings.seed)
    val_dates = obs.init_dates(settings.validate_years, settings.sample_stride_days)
    if len(train_dates) == 0 or len(val_dates) == 0:
        raise ValueError(
            f"{obs.attrs['parts'][0]}: no training or validation dates for splits "
            f"{settings.train_years} / {settings.validate_years}"
        )
    pretrain = datasets(pretrain_stores)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(spec, member, obs.attrs["content_sha256"], pretrain_stores)

    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=1)
    state = {"stage": "pretrain", "epoch": 0, "history": [], "best_val": float("inf"), "best_state": None, "stale": 0}
    resumed_from = None
    checkpoint_path = out / CHECKPOINT
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, map_location=device, weights_only=True)
        if saved.get("fingerprint") == fingerprint:
            model.load_state_dict(saved["model"])
            optimiser.load_state_dict(saved["optimiser"])
            scheduler.load_state_dict(saved["scheduler"])
            _restore_rng(rng, saved["rng"])
            state = saved["state"]
            resumed_from = f"{state['stage']} epoch {state['epoch']}"
            print(f"resuming {checkpoint_path} after {resumed_from}", flush=True)

    def save_checkpoint() -> None:
        with atomic_path(checkpoint_path) as tmp:
            torch.save(
                {
                    "fingerprint": fingerprint,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(rng),
                    "state": state,
                },
                tmp,
            )

    kill = _kill_switch()
    started = time.perf_counter()
    while state["stage"] == "pretrain" and state["epoch"] < settings.pretrain_epochs and pretrain:
        losses = []
        model.train()
        for group in (pretrain[i] for i in rng.permutation(len(pretrain))):
            store = SampleStore.open(group, inputs, statistics, device=device)
            for dates in _batches(store.init_dates(None, settings.sample_stride_days), settings.batch_size, rng):
                losses.append(trainer.step(optimiser, store, dates))
                next(kill)
            del store
        state["epoch"] += 1
        val = evaluate(model, obs, val_dates)
        state["history"].append(
            {"stage": "pretrain", "epoch": state["epoch"], "train_loss": float(np.mean(losses)), "val_loss": val}
        )
        save_checkpoint()
    if state["stage"] == "pretrain":
        state.update(stage="finetune", epoch=0)
        optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)  # a fresh start for the observations
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=1)
        save_checkpoint()
    while state["stage"] == "finetune" and state["epoch"] < settings.epochs and state["stale"] < settings.patience:
        model.train()
        losses = []
        for dates in _batches(train_dates, settings.batch_size, rng):
            losses.append(trainer.step(optimiser, obs, dates))
            next(kill)
        state["epoch"] += 1
        val = evaluate(model, obs, val_dates)
        scheduler.step(val)
        state["history"].append(
            {"stage": "finetune", "epoch": state["epoch"], "train_loss": float(np.mean(losses)), "val_loss": val}
        )
        if val < state["best_val"]:
            state.update(best_val=val, stale=0, best_state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        else:
            state["stale"] += 1
        save_checkpoint()
    if state["best_state"] is None:  # no fine-tuning epoch gave a finite validation loss (NaN < inf is false)
        losses = [h["val_loss"] for h in state["history"] if h["stage"] == "finetune"]
        raise RuntimeError(
            f"{obs.attrs['parts'][0]}: member {member} has no fine-tuned weights to keep: the validation loss of "
            f"{settings.validate_years} was {losses or 'never computed (train.epochs is 0)'}; a NaN loss means a "
            "channel or target with missing values on the validation dates (floecast check-data)"
        )
    model.load_state_dict(state["best_state"])
    history = state["history"]

    with atomic_path(out / "history.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["stage", "epoch", "train_loss", "val_loss"])
        writer.writeheader()
        writer.writerows(history)
    meta = {
        "member": member,
        "seed": settings.seed,
        "spec": spec,
        "channels": inputs.channel_names,
        "parameters": sum(p.numel() for p in model.parameters()),
        "obs_store_sha256": obs.attrs.get("content_sha256"),
        "obs_store_parts": obs.attrs["parts"],
        "pretrain_stores": sorted({str(Path(p).parent) for p in pretrain_stores}),
        # per run: the share of observed-ocean cells the climate model calls land, filled from its nearest ocean
        "pretrain_coast_fill_share": coast_fill_by_dataset(pretrain_stores) if pretrain_stores else {},
        "floecast_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "threads": threads,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "epochs_pretrain": sum(1 for h in history if h["stage"] == "pretrain"),
        "epochs_finetune": sum(1 for h in history if h["stage"] == "finetune"),
        "best_val_loss": state["best_val"],
        "train_samples": len(train_dates),
        "ensemble_methods": list(settings.ensemble_methods),
        "bootstrap_years": drawn_years,
        "resumed_from": resumed_from,
        "train_seconds_this_run": round(time.perf_counter() - started, 1),
        "samples_per_s": round(trainer.timer.samples_per_s, 2),
        "data_fraction": round(trainer.timer.data_fraction, 4),
    }
    with atomic_path(out / "meta.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    with atomic_path(out / "weights.pt") as tmp:
        torch.save({"state_dict": model.state_dict(), "spec": spec, "member": member, "floecast_version": __version__}, tmp)
    checkpoint_path.unlink()  # done: a forced re-run trains afresh
    return meta


class MemberFailed(RuntimeError):
    """A member whose training failed for good: it has a record, not weights."""


def record_failed_member(spec: dict, member: int, out_dir: str | Path, error: str) -> None:
    """weights.pt, meta.json and history.csv saying the member failed, so the ensemble can go
    on with the others (``predict`` writes a failed member file, ``combine`` checks the quorum)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "history.csv") as tmp:
        tmp.write_text("stage,epoch,train_loss,val_loss\n")
    with atomic_path(out / "meta.json") as tmp:
        tmp.write_text(
            json.dumps(
                {"member": member, "status": "failed", "error": error, "spec": spec, "floecast_version": __version__}, indent=2
            )
        )
    with atomic_path(out / "weights.pt") as tmp:
        torch.save({"failed": True, "error": error, "spec": spec, "member": member}, tmp)


class SpecMismatch(ValueError):
    """Weights trained on another training spec than the one asked for; the message names the settings."""


def spec_differences(trained: dict, wanted: dict, prefix: str = "") -> list[str]:
    """Each setting whose value differs between two training specs, as ``key.path: trained -> wanted``."""
    differences = []
    for key in sorted(trained.keys() | wanted.keys(), key=str):
        path = f"{prefix}{key}"
        if key not in trained or key not in wanted:
            have = "absent" if key not in trained else json.dumps(trained[key])
            want = "absent" if key not in wanted else json.dumps(wanted[key])
            differences.append(f"{path}: {have} -> {want}")
        elif isinstance(trained[key], dict) and isinstance(wanted[key], dict):
            differences += spec_differences(trained[key], wanted[key], f"{path}.")
        elif json.dumps(trained[key]) != json.dumps(wanted[key]):
            differences.append(f"{path}: {json.dumps(trained[key])} -> {json.dumps(wanted[key])}")
    return differences


def load_member(weights: str | Path, expected_spec: dict | None = None) -> tuple[UNet, dict]:
    """The trained model and its spec (weights only: no pickled code runs); MemberFailed for a
    member recorded as failed. With ``expected_spec`` (the config's training spec), weights
    trained on another spec are refused (:class:`SpecMismatch`), naming each setting that differs."""
    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    if expected_spec is not None:
        differences = spec_differences(checkpoint["spec"], expected_spec)
        if differences:
            raise SpecMismatch(
                f"{weights}: trained on another spec than the config's ({'; '.join(differences)}, "
                "as trained -> as configured): retrain the member (Snakemake does so when the spec changes; "
                "by hand: floecast train --spec <config>)"
            )
    if checkpoint.get("failed"):
        raise MemberFailed(f"{weights}: member {checkpoint['member']} failed in training: {checkpoint['error']}")
    model = build_model(checkpoint["spec"])
    model.load_state_dict(checkpoint["state_dict"])
    model.to(default_device()).eval()
    return model, checkpoint["spec"]
