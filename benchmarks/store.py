"""The store and its cache at production size (25 km, 432 x 432): one year's part built from
interim files (time, peak memory), reading it with every chunk checked against its manifest
(and the checking's share), the cache's size for 1979-2020, and the cost of assembling
production samples from the cache against a plain copy of the same bytes.

Interim files are written here with the production channels (5 trend years, t2m anomaly,
winds, 93 leads); their values are smooth fields plus noise, compressed like real ones.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from floecast.channels import InputSpec
from floecast.config import load, training_spec
from floecast.grid import Ease2Grid
from floecast.preprocess import _write_interim

REPO = Path(__file__).resolve().parents[1]
YEAR = 2020
GRID = Ease2Grid("north", 1)


def production_spec() -> InputSpec:
    spec = training_spec(load(REPO / "config" / "config.yaml"))
    return InputSpec.from_config(spec["channels"], spec["model"]["leads"])


def write_interim(root: Path, spec: InputSpec) -> tuple[list[Path], dict[str, list[Path]], Path]:
    rng = np.random.default_rng(0)
    xx, yy = np.meshgrid(GRID.xc, GRID.yc)
    radius = np.hypot(xx, yy) / 1e6  # thousands of km from the pole
    land = radius > 4.5
    coords = GRID.coords()
    sic_paths = []
    for year in range(YEAR - spec.sic_trend_years, YEAR + 1):
        days = pd.date_range(f"{year}-01-01", f"{year}-12-31")
        phase = np.cos(2 * np.pi * days.day_of_year.to_numpy() / 365.25)[:, None, None]
        sic = np.clip(3.0 + 0.8 * phase - radius[None], 0, 1) + 0.01 * rng.standard_normal((len(days), *GRID.shape))
        sic = np.where(land, np.nan, np.clip(sic, 0, 1)).astype(np.float32)
        ds = xr.Dataset(
            {
                "sic": (("time", "yc", "xc"), sic),
                "filled": (("time",), np.zeros(len(days), np.int8)),
                "polar_hole_km": (("time",), np.zeros(len(days), np.float32)),
                "land": (("yc", "xc"), land.astype(np.int8)),
            },
            coords={"time": days, **coords},
        )
        path = root / "sic" / f"{year}.nc"
        _write_interim(ds, path)
        sic_paths.append(path)
    days = pd.date_range(f"{YEAR}-01-01", f"{YEAR}-12-31")
    atmos = {}
    for name, base in (("t2m", 260.0), ("u10", 0.0), ("v10", 0.0)):
        values = base + 5 * np.sin(radius)[None] + 2 * rng.standard_normal((len(days), *GRID.shape))
        path = root / name / f"{YEAR}.nc"
        _write_interim(
            xr.Dataset({name: (("time", "yc", "xc"), values.astype(np.float32))}, coords={"time": days, **coords}), path
        )
        atmos[name] = [path]
    doy = np.arange(1, 367)
    stats = xr.Dataset(
        {
            "land": (("yc", "xc"), land.astype(np.int8)),
            "active": (("month", "yc", "xc"), np.broadcast_to(~land, (12, *GRID.shape)).astype(np.int8)),
            "sic_clim": (
                ("dayofyear", "yc", "xc"),
                np.broadcast_to(np.clip(3.0 - radius, 0, 1), (366, *GRID.shape)).astype(np.float32),
            ),
            "t2m_clim": (
                ("dayofyear", "yc", "xc"),
                np.broadcast_to(260 + 5 * np.sin(radius), (366, *GRID.shape)).astype(np.float32),
            ),
        },
        coords={"month": np.arange(1, 13), "dayofyear": doy, **coords},
        attrs={
            "training_years": json.dumps([1979, 2011]),
            "normalisation": json.dumps({"t2m_anom": [0, 2], "u10": [0, 5], "v10": [0, 5]}),
        },
    )
    statistics = root / "store" / "statistics.nc"
    _write_interim(stats, statistics)
    return sic_paths, atmos, statistics


BUILD = """
import json, sys
from floecast.config import load, training_spec
from floecast.channels import InputSpec
from floecast.store import build_year_store
args = json.loads(sys.argv[1])
spec = training_spec(load(args["config"]))
inputs = InputSpec.from_config(spec["channels"], spec["model"]["leads"])
build_year_store(args["year"], args["sic"], args["atmos"], args["statistics"], args["out"], inputs, "north", 625.0)
"""


def build_part(sic: list[Path], atmos: dict[str, list[Path]], statistics: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GiB) of building one year's part, in a fresh process."""
    args = {"config": str(REPO / "config" / "config.yaml"), "year": YEAR, "statistics": str(statistics), "out": str(out)}
    args.update(sic=[str(p) for p in sic], atmos={k: [str(p) for p in v] for k, v in atmos.items()})
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", BUILD, json.dumps(args)], check=True)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kib / 2**20


def verification_cost(part: Path, statistics: Path, spec: InputSpec) -> tuple[float, float]:
    """Seconds to read the part with every channel (read_store, which checks each chunk against
    the manifest) and seconds of that spent hashing: sha256 over the same chunks, timed alone."""
    from floecast.store import PartReader, _chunk_region, _values_sha256, read_store

    keys = [a.key for a in spec.atmos]
    started = time.perf_counter()
    read_store(part, statistics, leads=spec.leads, atmos=keys, sic_trend_years=spec.sic_trend_years)
    read_s = time.perf_counter() - started
    reader = PartReader(part)
    hashed = 0.0
    for name in ("time", "sic", "atmos", "polar_hole_km", "sic_trend", "trend_time"):
        array = reader.group[name]
        values = array[...]
        started = time.perf_counter()
        for key in (k for k in reader.manifest if k.startswith(f"{name}/c/")):
            _values_sha256(values[_chunk_region(key, array.chunks)])
        hashed += time.perf_counter() - started
    return hashed, read_s


def _median_seconds(action, repeats: int = 7) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main() -> None:
    import torch

    from floecast.dataset import SampleStore

    torch.set_num_threads(1)
    spec = production_spec()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        sic, atmos, statistics = write_interim(root / "interim", spec)
        print(
            f"# interim files for {len(sic)} SIC years and {len(atmos)} atmospheric variables written in "
            f"{time.perf_counter() - started:.0f} s"
        )
        part = root / "store" / "obs" / f"{YEAR}.zarr"
        seconds, peak_gib = build_part(sic, atmos, statistics, part)
        print(f"BENCH store_year_build_s {seconds:.1f} s")
        print(f"BENCH store_peak_mem_gib {peak_gib:.2f} GiB")

        started = time.perf_counter()
        store = SampleStore.open(part, spec, statistics)
        print(f"BENCH cache_year_load_s {time.perf_counter() - started:.1f} s")
        verify_s, read_s = verification_cost(part, statistics, spec)
        print(f"BENCH store_year_read_s {read_s:.2f} s")
        print(f"BENCH store_year_verify_s {verify_s:.2f} s")
        print(f"BENCH store_verify_share {verify_s / read_s:.2f}")
        days_1979_2020 = len(pd.date_range("1979-01-01", "2020-12-31"))
        per_day_tensors = [store.sic, store.trend, store.hole_km, *store.atmos.values()]
        per_day = sum(t[0].numel() * t.element_size() for t in per_day_tensors)
        print(
            f"# cache bytes per day at 432x432: {per_day / 1e6:.2f} MB (SIC and trend uint8, "
            f"{len(spec.atmos)} atmospheric channels float16)"
        )
        print(f"BENCH cache_gb_1979_2020 {per_day * days_1979_2020 / 1e9:.1f} GB")

        batch = 4  # the production batch size
        dates = store.init_dates()[::9][:batch]
        gathered = store.gather(dates)
        nbytes = sum(t.numel() * t.element_size() for t in gathered.values())
        # the baseline copies into fresh memory, as the gather returns fresh tensors
        source = np.random.default_rng(1).integers(0, 255, nbytes, dtype=np.uint8)
        gather_s = _median_seconds(lambda: store.gather(dates))
        copy_s = _median_seconds(lambda: source.copy())
        print(f"# a batch of {batch} production samples holds {nbytes / 1e6:.0f} MB in the cache's dtypes")
        print(f"BENCH loader_gather_s {gather_s:.4f} s")
        print(f"BENCH memcpy_same_bytes_s {copy_s:.4f} s")
        print(f"BENCH loader_cost_vs_memcpy {gather_s / copy_s:.2f} x")
        # and with the conversion to model-ready float32 (on a GPU node this happens in GPU memory)
        full = store.batch(dates)
        fbytes = sum(t.numel() * t.element_size() for t in full.values())
        fsource = np.random.default_rng(2).integers(0, 255, fbytes, dtype=np.uint8)
        batch_s = _median_seconds(lambda: store.batch(dates), repeats=3)
        fcopy_s = _median_seconds(lambda: fsource.copy(), repeats=3)
        print(f"# the float32 batch holds {fbytes / 1e6:.0f} MB")
        print(f"BENCH loader_float_batch_s {batch_s:.3f} s")
        print(f"BENCH memcpy_float_same_bytes_s {fcopy_s:.3f} s")
        print(f"BENCH loader_float_cost_vs_memcpy {batch_s / fcopy_s:.2f} x")


if __name__ == "__main__":
    main()
