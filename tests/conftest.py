"""Shared fixtures: a tiny 16 x 16 EASE2 grid and a tiny synthetic dataset built once per session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from floecast.channels import InputSpec
from floecast.grid import Ease2Grid
from floecast.preprocess import ATMOS_VARIABLES, fit_statistics, regrid_atmos, regrid_sic_year
from floecast.sources.synthetic import SyntheticParams, write_atmos_year, write_sic_year
from floecast.store import build_year_store, combined_hash

TINY_COARSEN = 27  # 432 / 27 = 16 cells a side, 675 km cells
YEARS = (2003, 2004, 2005)
TRAIN_YEARS = (2003, 2004)
LAST_DAY = dt.date(2005, 4, 30)  # the test year is short, to keep the session fixture fast
SEED = 42
SPEC = InputSpec(sic_lags=(1, 2, 3, 7, 14), sic_trend_years=2, leads=10)  # the store's channels


@dataclass(frozen=True)
class TinyData:
    """Paths of a tiny synthetic dataset: raw files, interim files, statistics and store."""

    root: Path
    grid: Ease2Grid
    years: tuple[int, ...]
    train_years: tuple[int, ...]
    params: SyntheticParams
    store_hash: str  # the hashes of the parts, combined as the loader does

    def raw_sic_dir(self, year: int) -> Path:
        return self.root / "raw" / "sic" / str(year)

    def raw_atmos(self, variable: str, year: int) -> Path:
        return self.root / "raw" / variable / f"{year}.nc"

    def interim(self, variable: str, year: int) -> Path:
        return self.root / "interim" / variable / f"{year}.nc"

    def interim_paths(self, years: tuple[int, ...]) -> tuple[list[Path], dict[str, list[Path]]]:
        sic = [self.interim("sic", y) for y in years]
        atmos = {v: [self.interim(v, y) for y in years] for v in ATMOS_VARIABLES}
        return sic, atmos

    @property
    def statistics(self) -> Path:
        return self.root / "store" / "statistics.nc"

    @property
    def store(self) -> Path:
        """The folder of the store's yearly parts (``<year>.zarr``)."""
        return self.root / "store" / "obs"


@pytest.fixture(scope="session")
def tiny_grid() -> Ease2Grid:
    return Ease2Grid("north", TINY_COARSEN)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory, tiny_grid: Ease2Grid) -> TinyData:
    """Synthetic raw files -> interim files -> statistics (training years only) -> zarr store."""
    root = tmp_path_factory.mktemp("tiny")
    params = SyntheticParams(seed=SEED)
    data = TinyData(root, tiny_grid, YEARS, TRAIN_YEARS, params, store_hash="")
    for year in YEARS:
        write_sic_year(str(data.raw_sic_dir(year)), tiny_grid, year, LAST_DAY, params)
        regrid_sic_year(data.raw_sic_dir(year), data.interim("sic", year), tiny_grid)
        for variable in ATMOS_VARIABLES:
            write_atmos_year(str(data.raw_atmos(variable, year)), tiny_grid, variable, year, LAST_DAY, params)
            regrid_atmos(data.raw_atmos(variable, year), data.interim(variable, year), tiny_grid, variable)
    fit_statistics(*data.interim_paths(TRAIN_YEARS), data.statistics)
    hashes = []
    for year in YEARS:
        sic, atmos = data.interim_paths(tuple(y for y in YEARS if y <= year))
        atmos = {v: [data.interim(v, year)] for v in atmos}
        part = data.store / f"{year}.zarr"
        hashes.append(build_year_store(year, sic, atmos, data.statistics, part, SPEC, "north", tiny_grid.cell_area_km2))
    return TinyData(root, tiny_grid, YEARS, TRAIN_YEARS, params, combined_hash(hashes))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny workflow (tests/config/tiny.yaml) run once through `snakemake` for the session:
    test_workflow asserts on it, and the fault tests run Snakemake again on copies of it."""
    from test_workflow import snakemake

    workdir = tmp_path_factory.mktemp("tiny")
    snakemake(workdir)
    return workdir
