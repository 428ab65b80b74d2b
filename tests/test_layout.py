"""The file layout: one home (floecast.layout) that the rules, status and deploy use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from floecast import layout

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = {name: value for name, value in vars(layout).items() if name.isupper() and isinstance(value, str)}
SAMPLE = {
    "sic_source": "osisaf",
    "atmos_source": "era5",
    "cmip6_source": "esgf",
    "seas5_source": "cds",
    "hemi": "north",
    "period": "2021/01",
    "variable": "t2m",
    "year": "2021",
    "cmip6_run": "MRI-ESM2-0_r1i1p1f1",
    "cmor": "siconca",
    "quantity": "sic",
    "run": "prod-v1",
    "member": "3",
    "split": "test",
    "date": "2026-11-25",
    "product": "OSI-438-fast-track",
    "month": "03",
    "candidate": "OSI-438",
    "reference": "OSI-430-a",
    "start": "2020-06-01",
    "end": "2020-09-14",
    "rule": "combine_forecast",
    "job": "north_prod-v1_2026-11-25",
}


def test_fill_keeps_the_wildcards_not_given() -> None:
    assert layout.fill(layout.INTERIM_OBS, variable="sic") == "data/interim/{hemi}/obs/sic/{year}.nc"
    assert layout.fill(layout.LOG, rule="scorecard", job="{hemi}_{run}") == "logs/scorecard/{hemi}_{run}.log"


def test_path_needs_every_wildcard(tmp_path: Path) -> None:
    assert layout.path(tmp_path, layout.STATISTICS, hemi="south") == tmp_path / "data/store/south/statistics.nc"
    with pytest.raises(KeyError, match="no value for run"):
        layout.path(tmp_path, layout.SCORECARD, hemi="north")


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_match_reads_back_what_fill_wrote(name: str) -> None:
    template = TEMPLATES[name]
    wildcards = set(re.findall(r"\{(\w+)\}", template))
    values = {key: SAMPLE[key] for key in wildcards}
    assert layout.match(template, template.format(**values)) == values
    assert layout.match(template, "somewhere/else.nc") is None


def test_statistics_sit_beside_the_store_parts() -> None:
    """floecast.store.default_statistics relies on it: parts in STORE_DIR/<dataset>/, statistics in STORE_DIR."""
    for part in (layout.STORE_OBS, layout.STORE_CMIP6):
        assert Path(part).parent.parent == Path(layout.STATISTICS).parent


def test_rules_write_out_no_path() -> None:
    """Every path of the rules comes from floecast.layout (through rules/common.smk)."""
    for smk in sorted((REPO / "rules").glob("*.smk")):
        literal = re.findall(r"[\"'](?:data|models|results|logs)/[^\"']*[\"']", smk.read_text())
        assert not literal, f"{smk.name}: {literal}"
