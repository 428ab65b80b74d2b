"""Training throughput, at the demo's size and at production size.

- Demo size on this CPU: three synthetic years on the demo grid (36 x 36, 300 km) go
  through the real stages (raw files, interim files, statistics, yearly store parts), then
  one member of the demo's spec trains for two fine-tuning epochs with the demo's batch
  size and threads (``train_samples_per_s``, ``train_data_fraction``).
- Production size on this CPU (``--prod-cpu``, run by the default mode in a fresh process
  so that its peak resident memory is its own): optimiser steps of the production model
  (config/config.yaml: 432 x 432, 93 leads) on production batches gathered from a cache of
  random days, and from them an extrapolated time per epoch and per member.
- Production size on a GPU (``--gpu``): the prepared device run, a few minutes with CUDA's
  start included: samples per second, data share, peak GPU memory, an extrapolated epoch
  time and the time of a 5-member, 93-lead forecast; its BENCH lines also go to ``--out``.
  ``--shrink`` runs the same code at a toy size on whatever device there is (the test).

The GPU mode reads config/config.yaml with plain yaml and imports only the model, the
loader and the trainer, so it runs with the packages of a bare PyTorch image.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from floecast.channels import InputSpec

REPO = Path(__file__).resolve().parents[1]
YEARS = (2003, 2004, 2005)
PROD_SIZE = 432
FORECAST_MEMBERS = 5
SPEC_KEYS = ("channels", "model", "train", "splits")


class Report:
    """BENCH lines to stdout and, where given, appended to a file as they come (a run cut
    short keeps what it measured)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")

    def line(self, text: str) -> None:
        print(text, flush=True)
        if self.path:
            with self.path.open("a") as f:
                f.write(text + "\n")

    def bench(self, name: str, value: float, unit: str, digits: int = 3) -> None:
        self.line(f"BENCH {name} {value:.{digits}f} {unit}")


def production_config() -> dict:
    """config/config.yaml as written (every key the model and the batch need is set there)."""
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def production_spec(config: dict) -> dict:
    """The training spec of the production config (what ``config.training_spec`` keeps)."""
    return {key: copy.deepcopy(config[key]) for key in SPEC_KEYS}


def shrunk_spec(spec: dict) -> dict:
    """The production spec at a toy size, for checking the GPU mode on a CPU."""
    spec = copy.deepcopy(spec)
    spec["model"].update(leads=5, filters=4, depth=2)
    return spec


@dataclass(frozen=True)
class EpochSizes:
    """Samples a production member sees: a fine-tuning epoch, a pretraining epoch (every
    CMIP6 run), a validation pass; and the numbers of epochs (fine-tuning at most)."""

    train: int
    pretrain: int
    validate: int
    pretrain_epochs: int
    epochs: int


def epoch_sizes(config: dict, inputs: InputSpec) -> EpochSizes:
    stride = int(config["train"]["sample_stride_days"])

    def samples(years: list[int], margin_days: int) -> int:
        days = len(pd.date_range(f"{years[0]}-01-01", f"{years[1]}-12-31"))
        return (days - margin_days + stride - 1) // stride

    cmip6 = config.get("cmip6", {})
    pretrain = len(cmip6.get("runs", [])) * samples(cmip6["years"], inputs.max_lag + inputs.leads) if cmip6 else 0
    return EpochSizes(
        train=samples(config["splits"]["train"], inputs.max_lag),  # the first days lack their lags
        pretrain=pretrain,
        validate=samples(config["splits"]["validate"], inputs.leads),  # the last days lack their targets
        pretrain_epochs=int(config["train"]["pretrain_epochs"]),
        epochs=int(config["train"]["epochs"]),
    )


def random_store(inputs: InputSpec, size: int, days: int, device: torch.device):  # noqa: ANN201 - a SampleStore
    """A cache of ``days`` random days at ``size`` x ``size`` on ``device``, as SampleStore.open makes it."""
    from floecast.dataset import SampleStore

    gen = torch.Generator(device="cpu").manual_seed(0)

    def frames(dtype: torch.dtype, n: int = days) -> torch.Tensor:
        if dtype == torch.uint8:
            return torch.randint(0, 251, (n, size, size), generator=gen, dtype=torch.uint8).to(device)
        return torch.randn((n, size, size), generator=gen).to(dtype).to(device)

    coords = (np.arange(size) - size / 2 + 0.5) * 25_000.0
    xx, yy = np.meshgrid(coords, coords)
    land = np.hypot(xx, yy) > 0.45 * size * 25_000.0  # the corners, as on the EASE2 grid
    return SampleStore(
        inputs,
        pd.date_range("2000-01-01", periods=days),
        sic=frames(torch.uint8),
        trend=frames(torch.uint8, days + inputs.leads + 1),
        fields={f.key: frames(torch.float16) for f in inputs.fields},
        hole_km=torch.zeros(days, device=device),
        land=land,
        active=np.broadcast_to(~land, (12, size, size)).copy(),
        sic_clim=np.full((366, size, size), 0.5, np.float32),
        yc=coords[::-1].copy(),
        xc=coords,
        device=device,
    )


@dataclass
class StepTimes:
    step_s: list[float]
    data_s: list[float]

    @property
    def median_step_s(self) -> float:
        return float(np.median(self.step_s))

    @property
    def data_fraction(self) -> float:
        return sum(self.data_s) / sum(self.step_s)


def production_steps(
    spec: dict, size: int, device: torch.device, steps: int, budget_s: float = float("inf")
) -> tuple[StepTimes, object, object]:
    """Optimiser steps of the spec's model on batches of the spec's size gathered from a random
    cache, set up as ``train_member`` sets them up (deterministic algorithms, channels-last and
    bf16 on a GPU): a warm-up step, then ``steps`` steps or as many as ``budget_s`` allows.
    Returns the times of each step and its gather, the store and the model."""
    from floecast.train import Trainer, build_model, lead_weights

    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    batch = int(spec["train"]["batch_size"])
    store = random_store(inputs, size, inputs.max_lag + inputs.leads + batch * (steps + 1) + 1, device)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    model = build_model(spec).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    trainer = Trainer(model, device, lead_weights(inputs.leads, None))
    optimiser = torch.optim.Adam(model.parameters(), lr=float(spec["train"]["learning_rate"]))
    model.train()
    dates = store.init_dates()
    trainer.step(optimiser, store, dates[:batch])  # warm-up (cuDNN autotuning, allocations)
    times = StepTimes([], [])
    started = time.perf_counter()
    for i in range(1, steps + 1):
        before = copy.copy(trainer.timer)
        trainer.step(optimiser, store, dates[i * batch : (i + 1) * batch])
        times.step_s.append(trainer.timer.step_s - before.step_s)
        times.data_s.append(trainer.timer.data_s - before.data_s)
        if time.perf_counter() - started > budget_s:
            break
    return times, store, model


def forward_s(model: torch.nn.Module, store, dates: pd.DatetimeIndex) -> float:  # noqa: ANN001 - a SampleStore
    """Seconds of one inference batch (gather and forward, as ``train.forecast`` runs it)."""
    from floecast.train import forecast

    forecast(model, store, dates)  # warm-up
    started = time.perf_counter()
    forecast(model, store, dates)
    return time.perf_counter() - started


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def prod_cpu(steps: int = 3) -> None:
    """Optimiser steps of the production model on this CPU, with an extrapolation to an epoch
    and a member (printed as such)."""
    config = production_config()
    spec = production_spec(config)
    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    batch = int(spec["train"]["batch_size"])
    times, store, model = production_steps(spec, PROD_SIZE, torch.device("cpu"), steps)
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"# production size on this CPU: {PROD_SIZE} x {PROD_SIZE}, {len(inputs.channel_names)} channels, "
        f"{inputs.leads} leads, {parameters / 1e6:.2f} M parameters, batch {batch}, {threads} thread(s), "
        f"{len(times.step_s)} timed step(s) after a warm-up: {', '.join(f'{s:.1f}' for s in times.step_s)} s; "
        f"random cache of {len(store.dates)} days ({store.nbytes / 1e9:.2f} GB)"
    )
    step_s = times.median_step_s
    print(f"BENCH train_step_prod_cpu_s {step_s:.1f} s")
    print(f"BENCH train_data_fraction_prod_cpu {times.data_fraction:.4f} share")
    val_s = forward_s(model, store, store.init_dates()[:batch])
    print(f"BENCH train_forward_prod_cpu_s {val_s:.1f} s")
    print(f"BENCH train_peak_rss_prod_cpu_gib {peak_rss_gib():.2f} GiB")
    sizes = epoch_sizes(config, inputs)
    epoch_h = sizes.train / batch * step_s / 3600
    validate_h = sizes.validate / batch * val_s / 3600
    pretrain_epoch_h = sizes.pretrain / batch * step_s / 3600
    member_h = sizes.pretrain_epochs * (pretrain_epoch_h + validate_h) + sizes.epochs * (epoch_h + validate_h)
    print(
        f"# EXTRAPOLATION, not a measurement: the step times above times the production config's samples: "
        f"a fine-tuning epoch is {sizes.train} samples (train {config['splits']['train']}, stride "
        f"{config['train']['sample_stride_days']}), a validation pass {sizes.validate}, a pretraining epoch "
        f"{sizes.pretrain} ({len(config['cmip6']['runs'])} CMIP6 runs); a member is {sizes.pretrain_epochs} "
        f"pretraining and at most {sizes.epochs} fine-tuning epochs (early stopping may end it sooner), "
        f"each with a validation pass; loading the caches is not counted"
    )
    print(f"BENCH train_epoch_prod_cpu_h_extrapolated {epoch_h:.1f} h")
    print(f"BENCH train_member_prod_cpu_days_extrapolated {member_h / 24:.0f} days")


def gpu_run(shrink: bool, out: Path | None, budget_s: float) -> None:
    """The prepared device run (see the module's docstring)."""
    from floecast.train import build_model

    report = Report(out)
    started = time.perf_counter()
    if torch.cuda.is_available():
        device = torch.device("cuda")
        name = torch.cuda.get_device_name(device)
    elif shrink:
        device, name = torch.device("cpu"), "CPU (shrunk check, not a GPU figure)"
    else:
        sys.exit("benchmarks/train.py --gpu: no CUDA device here; --shrink runs the same code at a toy size")
    config = production_config()
    spec = shrunk_spec(production_spec(config)) if shrink else production_spec(config)
    size = 32 if shrink else PROD_SIZE
    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    batch = int(spec["train"]["batch_size"])
    report.line(
        f"# {'SHRUNK ' if shrink else ''}GPU run on {name}, torch {torch.__version__}: {size} x {size}, "
        f"{len(inputs.channel_names)} channels, {inputs.leads} leads, batch {batch}"
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, store, model = production_steps(spec, size, device, steps=2 if shrink else 30, budget_s=budget_s)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else peak_rss_gib() * 2**30
    samples_per_s = batch * len(times.step_s) / sum(times.step_s)
    report.line(
        f"# {len(times.step_s)} timed steps after a warm-up, median {times.median_step_s:.3f} s; "
        f"random cache of {len(store.dates)} days ({store.nbytes / 1e9:.2f} GB) in device memory"
    )
    report.bench("train_samples_per_s_gpu", samples_per_s, "samples/s", 2)
    report.bench("train_data_fraction_gpu", times.data_fraction, "share", 4)
    report.bench("train_peak_mem_gpu_gib", peak / 2**30, "GiB", 2)
    per_day = store.nbytes / len(store.dates)
    days = len(pd.date_range("1979-01-01", f"{config['splits']['validate'][1]}-12-31"))
    report.line(
        f"# that peak holds a {store.nbytes / 2**30:.2f} GiB cache; a production member's cache of its "
        f"{days} days adds about {per_day * days / 2**30:.0f} GiB (an estimate from the bytes a day)"
    )
    sizes = epoch_sizes(config, inputs)
    report.line(
        f"# EXTRAPOLATION from the measured step rate: a fine-tuning epoch of {sizes.train} samples "
        f"plus a validation pass of {sizes.validate} samples at the forecast rate below"
    )
    validate_s = sizes.validate / batch * forward_s(model, store, store.init_dates()[:batch])
    members = []
    for seed in range(FORECAST_MEMBERS):  # as load_member makes them: on the device, in eval mode
        torch.manual_seed(seed)
        members.append(build_model(spec).to(device).eval())
    dates = store.init_dates(with_targets=False)[-1:]  # the operational init date: the day after the cache
    forecast_each = [forward_s(member, store, dates) for member in members]
    report.bench("train_epoch_prod_gpu_min_extrapolated", (sizes.train / samples_per_s + validate_s) / 60, "min", 1)
    report.line(
        f"# a forecast: {FORECAST_MEMBERS} members one after another, each gathering its inputs from the cache "
        f"and running {inputs.leads} leads in one forward pass (bf16 on a GPU); loading weights and the store "
        "not counted"
    )
    report.bench("forecast_5_members_93_leads_gpu_s", sum(forecast_each), "s", 3)
    report.line(f"# the GPU run took {time.perf_counter() - started:.0f} s")


def demo_store(root: Path, spec: dict, coarsen: int) -> Path:
    from floecast.grid import Ease2Grid
    from floecast.preprocess import DEFAULT_FIELD_VARIABLES, fit_statistics, regrid_field, regrid_sic_year
    from floecast.sources.synthetic import SyntheticParams, write_atmos_year, write_sic_year
    from floecast.store import build_year_store

    grid = Ease2Grid("north", coarsen)
    params = SyntheticParams(seed=42)
    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    last = dt.date(YEARS[-1], 12, 31)
    interim = {v: [] for v in ("sic", *DEFAULT_FIELD_VARIABLES)}
    for year in YEARS:
        raw = root / "raw" / str(year)
        write_sic_year(str(raw / "sic"), grid, year, last, params)
        interim["sic"].append(root / "interim" / "sic" / f"{year}.nc")
        regrid_sic_year(raw / "sic", interim["sic"][-1], grid)
        for variable in DEFAULT_FIELD_VARIABLES:
            write_atmos_year(str(raw / f"{variable}.nc"), grid, variable, year, last, params)
            interim[variable].append(root / "interim" / variable / f"{year}.nc")
            regrid_field([raw / f"{variable}.nc"], interim[variable][-1], grid, variable, "era5")
    statistics = root / "store" / "statistics.nc"
    fit_statistics(interim["sic"][:2], {v: interim[v][:2] for v in DEFAULT_FIELD_VARIABLES}, statistics, inputs.fields)
    for i, year in enumerate(YEARS):
        fields = {v: [interim[v][i]] for v in DEFAULT_FIELD_VARIABLES}
        build_year_store(
            year,
            interim["sic"][: i + 1],
            fields,
            statistics,
            root / "store" / "obs" / f"{year}.zarr",
            inputs,
            "north",
            grid.cell_area_km2,
        )
    return root / "store" / "obs"


def demo() -> None:
    from floecast.config import load, training_spec
    from floecast.train import train_member

    config = load(REPO / "config" / "demo.yaml")
    spec = training_spec(config)
    spec["splits"] = {"train": [2003, 2004], "validate": [2005, 2005], "test": [2005, 2005]}
    spec["train"].update(pretrain_epochs=0, epochs=2, patience=2, sample_stride_days=1)
    with tempfile.TemporaryDirectory() as tmp:
        store = demo_store(Path(tmp), spec, config["grid"]["coarsen"])
        meta = train_member(copy.deepcopy(spec), 0, store, [], Path(tmp) / "member", threads=config["train"]["threads"])
    print(
        f"# demo size: {meta['parameters']} parameters, {len(meta['channels'])} channels, "
        f"batch {spec['train']['batch_size']}, {meta['threads']} thread(s), device {meta['device']}"
    )
    print(f"BENCH train_samples_per_s {meta['samples_per_s']:.1f} samples/s")
    print(f"BENCH train_data_fraction {meta['data_fraction']:.3f} share")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--prod-cpu", action="store_true", help="only the production-size steps on this CPU")
    mode.add_argument("--gpu", action="store_true", help="only the prepared GPU run")
    parser.add_argument("--shrink", action="store_true", help="with --gpu: a toy size on whatever device (the test)")
    parser.add_argument("--out", type=Path, help="with --gpu: also write the BENCH lines to this file")
    parser.add_argument("--budget-s", type=float, default=120.0, help="with --gpu: at most this long for timed steps")
    args = parser.parse_args()
    if args.gpu:
        gpu_run(args.shrink, args.out, args.budget_s)
        return
    if args.prod_cpu:
        prod_cpu()
        return
    demo()
    sys.stdout.flush()
    subprocess.run([sys.executable, __file__, "--prod-cpu"], check=True)  # its own process: its own peak memory
    if torch.cuda.is_available():
        gpu_run(shrink=False, out=None, budget_s=args.budget_s)
    else:
        print("# production size on a GPU (train_samples_per_s_gpu, train_data_fraction_gpu, ...): not measured, no GPU here")


if __name__ == "__main__":
    main()
