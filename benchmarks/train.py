"""Training throughput at the demo's size on this machine's CPU: samples per second and the
share of each step spent gathering the batch from the cache (``train_data_fraction``).

Three synthetic years on the demo grid (36 x 36, 300 km) go through the real stages
(raw files, interim files, statistics, yearly store parts), then one member of the demo's
spec trains for two fine-tuning epochs with the demo's batch size and threads. Where a GPU
is present, the production model (432 x 432, 93 leads, batch 4) also trains on a cache of
random days held in GPU memory, reported with the suffix ``_gpu``.
"""

from __future__ import annotations

import copy
import datetime as dt
import tempfile
from pathlib import Path

import torch

from floecast.channels import InputSpec
from floecast.config import load, training_spec
from floecast.grid import Ease2Grid
from floecast.preprocess import DEFAULT_FIELD_VARIABLES, fit_statistics, regrid_field, regrid_sic_year
from floecast.sources.synthetic import SyntheticParams, write_atmos_year, write_sic_year
from floecast.store import build_year_store
from floecast.train import train_member

REPO = Path(__file__).resolve().parents[1]
YEARS = (2003, 2004, 2005)


def demo_store(root: Path, spec: dict, coarsen: int) -> Path:
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


def production_steps(device: torch.device, steps: int, days: int = 200) -> tuple[float, float]:
    """(samples/s, data share) of the production model on a random cache of ``days`` days."""
    import numpy as np
    import pandas as pd

    from floecast.dataset import SampleStore
    from floecast.train import Trainer, build_model, lead_weights

    spec = training_spec(load(REPO / "config" / "config.yaml"))
    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    size = 432
    gen = torch.Generator(device="cpu").manual_seed(0)
    frames = lambda dtype, n=days: (  # noqa: E731
        torch.randint(0, 251, (n, size, size), generator=gen, dtype=torch.uint8)
        if dtype == torch.uint8
        else torch.randn((n, size, size), generator=gen).to(dtype)
    ).to(device)
    coords = (np.arange(size) - size / 2 + 0.5) * 25_000.0
    store = SampleStore(
        inputs,
        pd.date_range("2000-01-01", periods=days),
        sic=frames(torch.uint8),
        trend=frames(torch.uint8, days + inputs.leads + 1),
        fields={f.key: frames(torch.float16) for f in inputs.fields},
        hole_km=torch.zeros(days, device=device),
        land=np.zeros((size, size), bool),
        active=np.ones((12, size, size), bool),
        sic_clim=np.full((366, size, size), 0.5, np.float32),
        yc=coords[::-1].copy(),
        xc=coords,
        device=device,
    )
    model = build_model(spec).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    trainer = Trainer(model, device, lead_weights(inputs.leads, None))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    dates = store.init_dates()
    batch = int(spec["train"]["batch_size"])
    trainer.step(optimiser, store, dates[:batch])  # warm-up (cuDNN autotuning, allocations)
    trainer.timer = type(trainer.timer)()
    for i in range(steps):
        trainer.step(optimiser, store, dates[i * batch : (i + 1) * batch])
    return trainer.timer.samples_per_s, trainer.timer.data_fraction


def main() -> None:
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
    if torch.cuda.is_available():
        samples_per_s, data_fraction = production_steps(torch.device("cuda"), steps=30)
        print(f"# production size on {torch.cuda.get_device_name()}")
        print(f"BENCH train_samples_per_s_gpu {samples_per_s:.2f} samples/s")
        print(f"BENCH train_data_fraction_gpu {data_fraction:.3f} share")
    else:
        print("# production size on a GPU (train_samples_per_s_gpu, train_data_fraction_gpu): not measured, no GPU here")


if __name__ == "__main__":
    main()
