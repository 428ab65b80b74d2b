"""The catalogue of input variables is the one place a variable is declared: the source tables, the
config check, the CLI and the rules derive from it, and a new variable needs nothing else."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from floecast import config as floecast_config
from floecast.cli import build_parser
from floecast.sources import cmip6, ecmwf_opendata, era5, esgf, oras5
from floecast.sources.synthetic import SYNTHETIC_FIELDS
from floecast.variables import CATALOGUE, FIELD_NAMES, VARIABLES, Fill, Variable, by_cmip6_name, by_source, variable

REPO = Path(__file__).resolve().parents[1]


def test_every_entry_is_complete_and_unique() -> None:
    assert len(CATALOGUE) == len(VARIABLES)
    cmor = [v.cmip6.name for v in VARIABLES if v.cmip6]
    assert len(cmor) == len(set(cmor))
    for item in VARIABLES:
        assert item.long_name and item.units, item.name
        assert (item.source == "atmos") == (item.era5 is not None), item.name  # the daily ERA5 product
        assert (item.source == "ocean") == (item.oras5 is not None), item.name  # the monthly ORAS5 product
        assert item.frequency == ("monthly" if item.source == "ocean" else "daily"), item.name
        if item.partner:
            partner = variable(item.partner)
            assert partner.partner == item.name and {item.component, partner.component} == {"east", "north"}
        if item.fill.land == "mean":
            assert item.group in ("ocean", "ice"), item.name  # only fields that mean nothing on land
    assert FIELD_NAMES == tuple(v.name for v in VARIABLES if v.name != "sic")
    assert by_source("ocean") == ["sithick", "ohc300", "mld"]


def test_entries_are_checked() -> None:
    with pytest.raises(ValueError, match="group 'sky'"):
        Variable("x", "x", "1", (0, 1), "sky", "daily", "atmos")
    with pytest.raises(ValueError, match="valid range"):
        Variable("x", "x", "1", (1, 0), "ocean", "daily", "atmos")
    with pytest.raises(ValueError, match="names its partner"):
        Variable("x", "x", "1", (0, 1), "atmosphere", "daily", "atmos", partner="y")
    with pytest.raises(ValueError, match="Fill.land"):
        Fill(land="zero")
    with pytest.raises(ValueError, match="unknown variable 'nope'.*floecast/variables.py"):
        variable("nope")


def test_source_tables_are_the_catalogues() -> None:
    """ERA5's request names, the open-data parameters, the CMIP6/ESGF tables and ORAS5's names."""
    assert set(era5.ERA5_CDS_VARIABLES) == {v.name for v in VARIABLES if v.era5}
    for key, item in era5.ERA5_CDS_VARIABLES.items():
        entry = variable(key)
        assert (item.request_name, item.short_name, item.units, item.grib_param_id) == (
            entry.era5.request,
            entry.era5.short_name,
            entry.era5.units,
            entry.era5.param_id,
        )
        assert era5.VALID_RANGE[key] == entry.valid_range
    assert era5.ERA5_CDS_VARIABLES["sst"].request_name == "sea_surface_temperature"
    assert ecmwf_opendata.OPENDATA_PARAMS == {"t2m": "2t", "u10": "10u", "v10": "10v", "msl": "msl"}
    assert "sst" not in ecmwf_opendata.OPENDATA_PARAMS  # the open-data HRES has no SST: ERA5's newest day persists
    for name, (table, units, canonical) in cmip6.CMIP6_VARIABLES.items():
        entry = variable(canonical)
        assert (entry.cmip6.name, entry.cmip6.table, entry.cmip6.units) == (name, table, units)
        assert esgf.cmip6_table(name) == table and by_cmip6_name(name) is entry
    assert cmip6.CMIP6_VARIABLES["tos"] == ("Oday", "degC", "sst") and variable("sst").cmip6.offset == 273.15
    assert cmip6.CMIP6_VARIABLES["sithick"] == ("SImon", "m", "sithick")
    assert esgf.default_grid_label("MRI-ESM2-0", "tos") == "gr" and esgf.default_grid_label("MRI-ESM2-0", "sithick") == "gn"
    assert oras5.oras5_filename("sithick", 2014, 3) == "iicethic_control_monthly_highres_2D_201403_CONS_v0.1.nc"
    assert oras5.oras5_filename("ohc300", 2015, 12) == "sohtc300_control_monthly_highres_2D_201512_OPER_v0.1.nc"


def _config(**fields: dict) -> dict:
    config = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text())
    config["channels"]["fields"] = fields
    return config


def test_the_config_check_reads_the_catalogue() -> None:
    """The schema names no variable (a pattern only; both schema files are one file), so the check against
    the catalogue is the one list; it names the known variables."""
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    names = schema["properties"]["channels"]["properties"]["fields"]["propertyNames"]
    assert "enum" not in names and re.fullmatch(names["pattern"], "sithick")
    assert (REPO / "config" / "schema.yaml").resolve() == (REPO / "src/floecast/schema/config.schema.yaml").resolve()
    lag = {"lags": [1]}
    every = floecast_config.validate(_config(**{name: lag for name in FIELD_NAMES}))
    assert list(every["channels"]["fields"]) == list(FIELD_NAMES)
    with pytest.raises(floecast_config.ConfigError, match=r"channels.fields: 'ice' is not a variable of the catalogue.*sithick"):
        floecast_config.validate(_config(ice=lag))
    with pytest.raises(floecast_config.ConfigError, match="u10 and v10 come together"):
        floecast_config.validate(_config(u10=lag))


def test_the_command_takes_the_catalogues_names() -> None:
    parser = build_parser()
    regrid = next(a for a in parser._subparsers._group_actions[0].choices["regrid"]._actions if a.dest == "variable")
    assert list(regrid.choices) == [*CATALOGUE, "seas5"]  # and SEAS5's forecasts, scored, never an input
    with pytest.raises(SystemExit):
        parser.parse_args(["regrid", "nope", "--hemisphere", "north", "--raw", "x", "--out", "y"])


def test_the_rules_derive_their_tables_from_the_catalogue() -> None:
    common = (REPO / "rules" / "common.smk").read_text()
    assert "by_source(" in common and "variable(v).cmip6.name" in common
    for name in ("siconca", "tas", "uas", "tos", "sithick"):
        assert f'"{name}"' not in common  # no CMIP6 name written out in the rules
    assert set(SYNTHETIC_FIELDS) <= set(CATALOGUE)


# --- adding a variable ----------------------------------------------------------------------------

THROWAWAY = """    Variable(  # added by tests/test_variables.py
        "skt",
        "Skin temperature",
        "K",
        (180.0, 350.0),
        "atmosphere",
        "daily",
        "atmos",
        era5=Era5Name("skin_temperature", "skt", "K", 235),
        opendata="skt",
    ),
"""


@pytest.mark.workflow
def test_a_new_variable_touches_the_catalogue_and_the_synthetic_generator_only(tmp_path: Path) -> None:
    """A copy of the repository gets a new variable (skin temperature, without a CMIP6 counterpart) in
    the catalogue and its synthetic counterpart, and nothing else in src/ or rules/; the tiny workflow
    then ingests, regrids, normalises and stores it (and pretrains with it set to 0)."""
    copy = tmp_path / "repo"
    top = {".git", ".venv", ".snakemake", "data", "models", "results", "logs"}  # not src/floecast/data

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n == "__pycache__" or (Path(folder) == REPO and n in top)}

    shutil.copytree(REPO, copy, symlinks=True, ignore=ignore)
    catalogue = copy / "src/floecast/variables.py"
    text = catalogue.read_text()
    anchor = "VARIABLES: tuple[Variable, ...] = (\n"
    catalogue.write_text(text.replace(anchor, anchor + THROWAWAY, 1))
    generator = copy / "src/floecast/sources/synthetic.py"
    anchor = "SYNTHETIC_FIELDS: dict[str, Callable[[SyntheticDays], np.ndarray]] = {\n"
    generator.write_text(generator.read_text().replace(anchor, anchor + '    "skt": lambda days: days.t2m - 1.0,\n', 1))
    changed = sorted(
        str(path.relative_to(copy))
        for folder in ("src", "rules")
        for path in (copy / folder).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.read_bytes() != (REPO / path.relative_to(copy)).read_bytes()
    )
    assert changed == ["src/floecast/sources/synthetic.py", "src/floecast/variables.py"]

    config = yaml.safe_load((REPO / "tests/config/tiny.yaml").read_text())
    config["channels"]["fields"]["skt"] = {"lags": [1], "transform": "anomaly"}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "work"
    targets = ["data/store/north/obs/2004.zarr", "data/store/north/cmip6_SYN-ESM_r1i1p1f1/2000.zarr"]
    env = dict(os.environ, PYTHONPATH=str(copy / "src"), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(copy / "Snakefile"), "--directory", str(workdir)]
    proc = subprocess.run(
        [*cmd, "--configfile", str(configfile), "--cores", "2", *targets], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    with (
        xr.open_dataset(workdir / "data/interim/north/obs/skt/2004.nc") as skt,
        xr.open_dataset(workdir / "data/interim/north/obs/t2m/2004.nc") as t2m,
    ):
        np.testing.assert_allclose(skt["skt"].values, t2m["t2m"].values - 1.0, atol=1e-4)
    with xr.open_zarr(workdir / targets[0]) as obs:
        assert "skt_anom" in obs["fields"].attrs["channels"] and obs["fields"].attrs["absent"] == []
    with xr.open_zarr(workdir / targets[1]) as model:
        keys = model["fields"].attrs["channels"]
        assert model["fields"].attrs["absent"] == ["skt"]  # no CMIP6 counterpart: its channel is 0
        assert (model["fields"].values[:, keys.index("skt_anom")] == 0).all()


def test_the_data_sources_page_lists_every_variable_and_its_names() -> None:
    text = (REPO / "docs" / "data-sources.md").read_text()
    section = text.split("## The catalogue of input variables", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    for item in VARIABLES:
        (row,) = [r for r in rows if f"`{item.name}`" in r.split("|")[1]]
        names = [item.cmip6.name if item.cmip6 else None, item.oras5.short_name if item.oras5 else None, item.opendata]
        assert all(f"`{n}`" in row for n in names if n), (item.name, row)
