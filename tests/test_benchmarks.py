"""The prepared GPU run (benchmarks/gpu.sh, benchmarks/train.py --gpu) at a toy size on this
CPU, with the packages a bare PyTorch image lacks made unimportable, so that the run cannot
first fail on a device lent for a few minutes; and the production figures' inputs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from benchmark_modules import benchmark_module

from floecast.channels import InputSpec
from floecast.config import load, training_spec
from floecast.train import build_model

REPO = Path(__file__).resolve().parents[1]
GPU_FIGURES = {
    "train_samples_per_s_gpu": "samples/s",
    "train_data_fraction_gpu": "share",
    "train_peak_mem_gpu_gib": "GiB",
    "train_epoch_prod_gpu_min_extrapolated": "min",
    "forecast_5_members_93_leads_gpu_s": "s",
}
# project dependencies that the device's PyTorch image does not hold (device KINDS.md)
NOT_ON_THE_DEVICE = ("pyproj", "zarr", "netCDF4", "numcodecs", "cftime", "jsonschema", "rasterio", "cdsapi", "snakemake")
BLOCKER = """
import sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on the device)")
sys.meta_path.insert(0, Absent())
"""


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201 - the benchmarks/train.py module
    with benchmark_module("train") as module:
        yield module


def _figures(text: str) -> dict[str, tuple[float, str]]:
    rows = [line.split() for line in text.splitlines() if line.startswith("BENCH ")]
    return {name: (float(value), unit) for _, name, value, unit in rows}


def test_gpu_run_shrunk_prints_and_writes_every_figure(tmp_path: Path) -> None:
    # the device's python is plain `python3` with the packages of its image: block the others
    sitecustomize = tmp_path / "site" / "sitecustomize.py"
    sitecustomize.parent.mkdir()
    sitecustomize.write_text(BLOCKER.format(blocked=set(NOT_ON_THE_DEVICE)))
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "PYTHONPATH": str(sitecustomize.parent)}
    (tmp_path / "out").mkdir()
    run = subprocess.run(
        ["sh", str(REPO / "benchmarks" / "gpu.sh"), "--shrink"], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    written = (tmp_path / "out" / "bench_gpu.txt").read_text()
    assert "SHRUNK" in written
    figures = _figures(written)
    assert figures == _figures(run.stdout)
    assert {name: unit for name, (_, unit) in figures.items()} == GPU_FIGURES
    assert all(math.isfinite(value) and value > 0 for value, _ in figures.values())
    assert figures["train_data_fraction_gpu"][0] < 1


def test_the_blocker_blocks(tmp_path: Path) -> None:
    """The check above would prove nothing if the blocked packages could still be imported."""
    sitecustomize = tmp_path / "sitecustomize.py"
    sitecustomize.write_text(BLOCKER.format(blocked=set(NOT_ON_THE_DEVICE)))
    run = subprocess.run(
        [sys.executable, "-c", "import floecast.config"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and "not on the device" in run.stderr


def test_gpu_run_without_a_gpu_refuses_the_full_size(bench) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(SystemExit, match="no CUDA device"):
        bench.gpu_run(shrink=False, out=None, budget_s=1)


def test_the_benchmarks_spec_is_the_production_training_spec(bench) -> None:
    """benchmarks/train.py reads config.yaml without floecast.config (pyproj is not on the
    device): it must give the model and batch the workflow trains."""
    config = bench.production_config()
    ours, workflow = bench.production_spec(config), training_spec(load(REPO / "config" / "config.yaml"))
    channels = InputSpec.from_config(ours["channels"], ours["model"]["leads"])
    assert channels == InputSpec.from_config(workflow["channels"], workflow["model"]["leads"])
    assert len(channels.channel_names) == 203 and channels.leads == 93  # 200 + sst, sithick, ohc300 (issue 14)
    shapes = [p.shape for p in build_model(ours).parameters()]
    assert shapes == [p.shape for p in build_model(workflow).parameters()]
    assert 7.5e6 < sum(math.prod(s) for s in shapes) < 8.0e6
    for key in ("batch_size", "learning_rate", "sample_stride_days", "pretrain_epochs", "epochs"):
        assert ours["train"][key] == workflow["train"][key]
    assert ours["splits"] == workflow["splits"]


def test_epoch_sizes_count_the_init_dates_training_uses(bench) -> None:
    spec = bench.shrunk_spec(bench.production_spec(bench.production_config()))
    inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
    days = len(pd.date_range("2000-01-01", "2001-12-31"))
    store = bench.random_store(inputs, 16, days, torch.device("cpu"))  # from 2000-01-01
    config = {
        "splits": {"train": [2000, 2000], "validate": [2001, 2001]},
        "train": {"sample_stride_days": 1, "pretrain_epochs": 5, "epochs": 30},
        "cmip6": {"runs": [{}, {}, {}], "years": [2000, 2001]},
    }
    sizes = bench.epoch_sizes(config, inputs)
    assert sizes.train == len(store.init_dates((2000, 2000))) == 366 - inputs.max_lag
    assert sizes.validate == len(store.init_dates((2001, 2001))) == 365 - inputs.leads
    assert sizes.pretrain == 3 * len(store.init_dates())
    config["train"]["sample_stride_days"] = 7
    assert bench.epoch_sizes(config, inputs).train == len(store.init_dates((2000, 2000), stride=7))


@pytest.fixture(scope="module")
def demo():  # noqa: ANN201 - the benchmarks/demo.py module
    with benchmark_module("demo") as module:
        yield module


def test_demo_reliability_gap_pools_the_lead_groups_within_7_to_30_days(demo) -> None:
    rows = []
    # bin 0.9-1.0: 8-14 d says 0.95 with 0.75 observed over 100 cases, 15-30 d 0.95 with 0.95 over 300:
    # pooled 0.95 against 0.90, a gap of 0.05; bin 0.5-0.6 holds 1 case of 1000 (under 1 %): its gap of 0.55 is left
    # out; the 1-7 d group (leads below 7) and the other methods do not count
    for group, count, observed in (("8-14", 100, 0.75), ("15-30", 300, 0.95)):
        rows.append(("hindcast", "ensemble_mean", group, 0.9, count, 0.95, observed))
        rows.append(("hindcast", "ensemble_mean", group, 0.0, 299, 0.02, 0.03))
    rows.append(("hindcast", "ensemble_mean", "15-30", 0.5, 1, 0.55, 0.0))
    rows.append(("hindcast", "ensemble_mean", "1-7", 0.9, 500, 0.95, 0.2))
    rows.append(("hindcast", "persistence", "8-14", 0.9, 500, 1.0, 0.2))
    table = pd.DataFrame(
        rows,
        columns=["date_set", "method", "lead_group", "bin_lower", "count", "forecast_probability", "observed_frequency"],
    )
    assert demo.reliability_max_dev(table) == pytest.approx(0.05)
