"""Figures: each plot function on a hand-built CF forecast, statistics file and scorecard, checked by numbers.

The fields are built so that every extent is a count of whole rows of ice, worked out by hand below; the PNGs are
decoded and checked for size and for the colours that must be there (the grey land, the red ice edge).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from types import SimpleNamespace

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from floecast.plots import (
    LAND_GREY,
    plot_extent,
    plot_maps,
    plot_month_heatmap,
    plot_reliability,
    plot_skill,
    read_scorecard,
)

N = 16  # grid cells a side
CELL_M = 25_000.0
AREA_KM2 = (CELL_M / 1000) ** 2  # 625 km²
LEADS = [1, 5, 10]
INIT = pd.Timestamp("2021-03-01")
MEMBERS = [0, 1, 2]
ICE_COLS = 12  # ice fills columns 4..15 of its rows: 12 cells a row
REPO = Path(__file__).resolve().parents[1]


def ice_rows(member: int, lead: int) -> int:
    """Rows 0..r-1 of member ``member`` hold ice at ``lead``: 3 + member + lead // 5 (so 3..7 rows)."""
    return 3 + member + lead // 5


def clim_rows(dayofyear: int) -> int:
    """Rows of ice in the climatology of ``dayofyear``: 1..10 cycling with the day."""
    return (dayofyear - 1) % 10 + 1


def land_mask() -> np.ndarray:
    land = np.zeros((N, N), bool)
    land[-4:, :4] = True  # a 4 x 4 land patch in one corner, away from the ice
    return land


def member_sic(member: int) -> np.ndarray:
    """(lead, y, x): 0.9 in the ice rows (columns 4..15), 0.05 elsewhere, NaN on land as in the member files."""
    sic = np.full((len(LEADS), N, N), 0.05, np.float32)
    for i, lead in enumerate(LEADS):
        sic[i, : ice_rows(member, lead), N - ICE_COLS :] = 0.9
    sic[:, land_mask()] = np.nan
    return sic


def coords() -> dict[str, tuple]:
    yc = (np.arange(N)[::-1] - N / 2 + 0.5) * CELL_M  # descending, as EASE2 files are
    xc = (np.arange(N) - N / 2 + 0.5) * CELL_M
    return {"yc": ("yc", yc, {"units": "m"}), "xc": ("xc", xc, {"units": "m"})}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("plots")
    members = []
    for k in MEMBERS:
        path = root / f"member_{k}.nc"
        xr.Dataset(
            {"sic": (("init_time", "leadtime", "yc", "xc"), member_sic(k)[None])},
            coords={"init_time": [INIT.to_datetime64()], "leadtime": ("leadtime", LEADS), **coords()},
            attrs={"member": k},
        ).to_netcdf(path)
        members.append(path)
    stack = np.stack([member_sic(k) for k in MEMBERS])
    land = land_mask()
    lon, lat = np.meshgrid(np.linspace(-180, 180, N), np.linspace(60, 90, N))
    forecast = xr.Dataset(
        {
            "sic": (
                ("time", "leadtime", "quantity", "yc", "xc"),
                np.stack([stack.mean(0), stack.std(0, ddof=1)], axis=1)[None],
                {"standard_name": "sea_ice_area_fraction", "units": "1"},
            ),
            "sip": (("time", "leadtime", "yc", "xc"), np.where(land, np.nan, (stack > 0.15).mean(0))[None]),
            "land": (("yc", "xc"), land.astype(np.int8)),
        },
        coords={
            "time": [INIT.to_datetime64()],
            "leadtime": ("leadtime", LEADS, {"units": "days"}),
            "valid_time": ("leadtime", (INIT + pd.to_timedelta(LEADS, "D")).values),
            "quantity": ["mean", "std"],
            **coords(),
            "lat": (("yc", "xc"), lat),
            "lon": (("yc", "xc"), lon),
        },
        attrs={"Conventions": "CF-1.8", "model_run": "test", "members": "[0, 1, 2]"},
    )
    forecast_path = root / "forecast.nc"
    forecast.to_netcdf(forecast_path)
    clim = np.zeros((366, N, N), np.float32)
    for doy in range(1, 367):
        clim[doy - 1, : clim_rows(doy), N - ICE_COLS :] = 0.5
    statistics_path = root / "statistics.nc"
    xr.Dataset(
        {"land": (("yc", "xc"), land.astype(np.int8)), "sic_clim": (("dayofyear", "yc", "xc"), clim)},
        coords={"dayofyear": np.arange(1, 367), **coords()},
    ).to_netcdf(statistics_path)
    return {"root": root, "members": members, "forecast": forecast_path, "statistics": statistics_path}


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, after checking its signature and that matplotlib decodes the whole image."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert mpimg.imread(path).shape[:2] == (height, width)
    return width, height


def pixels_near(path: Path, rgb: tuple[float, float, float], tol: float = 0.03) -> int:
    image = mpimg.imread(path)[..., :3]
    return int((np.abs(image - np.array(rgb)) <= tol).all(axis=-1).sum())


# ----------------------------------------------------------------------------------------------------------------
# maps


def test_maps_rows_columns_land_and_edge(files: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "maps.png"
    with caplog.at_level("WARNING"):
        drawn = plot_maps(files["forecast"], [1, 10, 99], out)
    assert drawn == [1, 10]
    assert "99" in caplog.text  # the missing lead is reported, not silently dropped
    width, height = png_size(out)
    assert 500 < width < 2500 and 600 < height < 2500
    grey = float(LAND_GREY)
    assert pixels_near(out, (grey, grey, grey)) > 6 * 400  # the land patch, in each of the 6 panels
    assert pixels_near(out, (1.0, 0.0, 0.0), tol=0.15) > 100  # the red ice edge

    one = tmp_path / "one.png"
    assert plot_maps(files["forecast"], [5], one, quantities=["mean"]) == [5]
    one_width, one_height = png_size(one)
    assert one_width < width and one_height < height  # a column per lead, a row per quantity


def test_maps_without_any_lead_is_an_error(files: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="none of the leads"):
        plot_maps(files["forecast"], [2, 3], tmp_path / "maps.png")
    with pytest.raises(ValueError, match="quantities"):
        plot_maps(files["forecast"], [1], tmp_path / "maps.png", quantities=["median"])
    assert not (tmp_path / "maps.png").exists()


# ----------------------------------------------------------------------------------------------------------------
# extent


def test_extent_numbers_by_hand(files: dict, tmp_path: Path) -> None:
    out = tmp_path / "extent.png"
    table = plot_extent(files["forecast"], files["members"], files["statistics"], AREA_KM2, out)
    width, height = png_size(out)
    assert 400 < width < 1500 and 250 < height < 1000

    assert list(table.index) == LEADS and table.index.name == "lead_days"
    assert list(table["valid_time"]) == [pd.Timestamp("2021-03-02"), pd.Timestamp("2021-03-06"), pd.Timestamp("2021-03-11")]
    rows = np.array([[ice_rows(k, lead) for lead in LEADS] for k in MEMBERS])  # (member, lead)
    expected = rows * ICE_COLS * AREA_KM2
    for k in MEMBERS:
        np.testing.assert_allclose(table[f"member_{k}"], expected[k])
    # lead 1: rows 3, 4, 5 -> 36, 48, 60 cells -> mean 48 cells, std 12 cells (ddof=1)
    assert table.loc[1, "mean"] == pytest.approx(48 * AREA_KM2)
    assert table.loc[1, "std"] == pytest.approx(12 * AREA_KM2)
    np.testing.assert_allclose(table["mean"], expected.mean(0))
    np.testing.assert_allclose(table["std"], expected.std(0, ddof=1))
    np.testing.assert_allclose(table["min"], expected.min(0))
    np.testing.assert_allclose(table["max"], expected.max(0))
    # valid 2021-03-02 is day 61: rows (61 - 1) % 10 + 1 = 1; day 65: 5; day 70: 10
    np.testing.assert_allclose(table["climatology"], np.array([1, 5, 10]) * ICE_COLS * AREA_KM2)


def test_extent_rejects_a_bad_cell_area(files: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cell_area_km2"):
        plot_extent(files["forecast"], files["members"], files["statistics"], 0.0, tmp_path / "extent.png")


# ----------------------------------------------------------------------------------------------------------------
# scorecard

METHODS = ["ensemble_mean", "persistence", "climatology"]
SCORE_LEADS = [1, 2, 3, 4]


def score(method: int, lead: int, month: int) -> float:
    """A value that identifies its row: method index, lead and month (0 for all months)."""
    return round(0.01 * lead + 0.1 * method + 0.001 * month, 6)


def old_csv(path: Path) -> Path:
    rows = [
        {"lead_days": lead, "method": m, "rmse": score(i, lead, 0), "binary_accuracy": 1 - score(i, lead, 0), "n_init_dates": 5}
        for lead in SCORE_LEADS
        for i, m in enumerate(METHODS)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def new_csv(path: Path, months: list[int] = list(range(1, 13)), aggregate: str = "") -> Path:  # noqa: B006
    """The scorecard with the new columns, a month column ('' or 'all' on the aggregate rows) and one month missing."""
    rows = []
    for month in [0, *months]:
        for lead in SCORE_LEADS:
            for i, m in enumerate(METHODS):
                value = score(i, lead, month)
                rows.append(
                    {
                        "lead_days": lead,
                        "month": month or aggregate,
                        "method": m,
                        "rmse": value,
                        "binary_accuracy": 1 - value,
                        "n_init_dates": 5,
                        "mae": value / 2,
                        "sie_error_km2": (value - 0.15) * 1e6,
                        "iiee_km2": value * 2e6,
                        "sps_km2": value * 1e6,
                        "crps": value / 3,
                        "spread_skill": 0.8 + value if m == "ensemble_mean" else None,
                    }
                )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_skill_from_the_old_scorecard(tmp_path: Path) -> None:
    out = tmp_path / "skill.png"
    drawn = plot_skill(old_csv(tmp_path / "scorecard.csv"), out)
    assert list(drawn.columns) == ["lead_days", "method", "rmse", "binary_accuracy"]  # no IIEE column: no panel
    assert len(drawn) == len(SCORE_LEADS) * len(METHODS)
    width, height = png_size(out)
    assert 600 < width < 2000 and 250 < height < 800


@pytest.mark.parametrize("aggregate", ["", "all"])
def test_skill_from_the_new_scorecard_uses_the_all_months_rows(tmp_path: Path, aggregate: str) -> None:
    out = tmp_path / "skill.png"
    drawn = plot_skill(new_csv(tmp_path / "scorecard.csv", aggregate=aggregate), out)
    assert list(drawn.columns) == ["lead_days", "method", "rmse", "binary_accuracy", "iiee_km2"]
    assert len(drawn) == len(SCORE_LEADS) * len(METHODS)  # the per-month rows are not drawn
    expected = [score(METHODS.index(m), lead, 0) for lead, m in zip(drawn["lead_days"], drawn["method"], strict=True)]
    np.testing.assert_allclose(drawn["rmse"], expected)
    width, height = png_size(out)
    assert width > 2.5 * height  # three panels side by side

    spread = plot_skill(tmp_path / "scorecard.csv", tmp_path / "spread.png", metrics=["spread_skill", "not_a_column"])
    assert list(spread.columns) == ["lead_days", "method", "spread_skill"]
    assert spread.loc[spread["method"] != "ensemble_mean", "spread_skill"].isna().all()  # empty: no ensemble


def test_skill_errors(tmp_path: Path) -> None:
    csv = old_csv(tmp_path / "scorecard.csv")
    with pytest.raises(ValueError, match="none of the metrics"):
        plot_skill(csv, tmp_path / "skill.png", metrics=["crps"])
    doubled = tmp_path / "doubled.csv"
    table = pd.read_csv(csv)
    pd.concat([table, table]).to_csv(doubled, index=False)
    with pytest.raises(ValueError, match="duplicate"):
        plot_skill(doubled, tmp_path / "skill.png")
    bad = tmp_path / "bad_month.csv"
    table.assign(month=13).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="1-12"):
        read_scorecard(bad)


def test_month_heatmap_table(tmp_path: Path) -> None:
    csv = new_csv(tmp_path / "scorecard.csv", months=list(range(1, 12)))  # no December rows
    out = tmp_path / "heat.png"
    grid = plot_month_heatmap(csv, out)
    assert list(grid.index) == list(range(1, 13)) and list(grid.columns) == SCORE_LEADS
    for month in range(1, 12):
        for lead in SCORE_LEADS:
            assert grid.loc[month, lead] == pytest.approx(score(0, lead, month))
    assert grid.loc[12].isna().all()  # a month without rows stays blank
    width, height = png_size(out)
    assert 300 < width < 2000 and 300 < height < 1000

    iiee = plot_month_heatmap(csv, tmp_path / "iiee.png", metric="iiee_km2", method="persistence")
    assert iiee.loc[3, 2] == pytest.approx(score(1, 2, 3) * 2e6)  # the CSV's units (km²), not the plotted ones
    bias = plot_month_heatmap(csv, tmp_path / "bias.png", metric="sie_error_km2")  # diverging around 0
    assert (bias.loc[1] < 0).all()


def test_month_heatmap_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no 'month' column"):
        plot_month_heatmap(old_csv(tmp_path / "old.csv"), tmp_path / "heat.png")
    csv = new_csv(tmp_path / "new.csv")
    with pytest.raises(ValueError, match="no column 'brier'"):
        plot_month_heatmap(csv, tmp_path / "heat.png", metric="brier")
    with pytest.raises(ValueError, match="no per-month rows for method 'anomaly_persistence'"):
        plot_month_heatmap(csv, tmp_path / "heat.png", method="anomaly_persistence")
    with pytest.raises(ValueError, match="empty"):
        plot_month_heatmap(csv, tmp_path / "heat.png", metric="spread_skill", method="climatology")
    only_all = tmp_path / "only_all.csv"
    pd.read_csv(csv).assign(month="all").drop_duplicates(["lead_days", "method"]).to_csv(only_all, index=False)
    with pytest.raises(ValueError, match="only all-months rows"):
        plot_month_heatmap(only_all, tmp_path / "heat.png")
    assert not (tmp_path / "heat.png").exists()


# ----------------------------------------------------------------------------------------------------------------
# report captions


CONFIG = {
    "run": "demo",
    "hemispheres": ["north"],
    "date": "2020-09-15",
    "plots": {"leads": [1, 7, 14, 30]},
    "splits": {"test": [2017, 2018]},
    "verify": {"stride_days": 7},
    "model": {"leads": 30},
    "train": {"members": 3},
    "sources": {"seas5": "synthetic"},
}


@pytest.mark.parametrize("caption", sorted((REPO / "report").glob("*.rst")), ids=lambda p: p.name)
def test_report_captions_render(caption: Path) -> None:
    """Each caption renders as Snakemake renders it (Jinja2, then docutils) with no reST warning.

    A figure's caption gets the job's wildcards and the config; the workflow description (``report:``) only the config.
    """
    jinja2 = pytest.importorskip("jinja2")
    core = pytest.importorskip("docutils.core")
    if caption.name == "workflow.rst":
        snakemake, part = SimpleNamespace(config=CONFIG), "html_body"
    else:
        wildcards = SimpleNamespace(hemi="north", run="demo", date="2020-09-15")
        snakemake, part = SimpleNamespace(config=CONFIG, wildcards=wildcards), "body"
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    text = env.from_string(caption.read_text()).render(snakemake=snakemake)
    undated = (
        *("workflow.rst", "skill_by_lead.rst", "skill_by_month.rst", "scorecard.rst"),
        *("reliability.rst", "data_check.rst", "sic_consistency.rst"),
    )
    assert "2020-09-15" in text or caption.name in undated
    html = core.publish_parts(text, writer="html", settings_overrides={"halt_level": 2, "report_level": 2})[part]
    assert len(html) > 500 and "System Message" not in html


def test_report_captions_named_by_the_rules_exist() -> None:
    """Every ``caption=`` in the rules and ``report:`` of the Snakefile points at a file (paths as Snakemake reads them)."""
    found = 0
    for source in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        text = source.read_text()
        for name in re.findall(r"caption\s*=\s*['\"]([^'\"]+)['\"]", text) + re.findall(r"^report:\s*['\"]([^'\"]+)", text, re.M):
            assert (source.parent / name).resolve().is_file(), f"{source.name}: {name} does not exist"
            found += 1
    assert (REPO / "report" / "workflow.rst").is_file() or found == 0


def _render(name: str, seas5: str) -> str:
    jinja2 = pytest.importorskip("jinja2")
    config = {**CONFIG, "sources": {"seas5": seas5}}
    wildcards = SimpleNamespace(hemi="north", run="demo", date="2020-09-15")
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.from_string((REPO / "report" / name).read_text()).render(
        snakemake=SimpleNamespace(config=config, wildcards=wildcards)
    )


@pytest.mark.parametrize("seas5", ["none", "synthetic", "cds"])
def test_captions_list_the_methods_truthfully(seas5: str) -> None:
    """The scorecard captions name every method the scorecard has, and SEAS5 as it is: synthetic, real or absent."""
    from floecast.seas5_benchmark import METHODS as SEAS5_METHODS
    from floecast.verify import BASELINES, ENSEMBLE

    text = _render("scorecard.rst", seas5)
    for method in (ENSEMBLE, *BASELINES):
        assert f"``{method}``" in text, method
    for name in ("scorecard.rst", "skill_by_lead.rst", "reliability.rst"):
        text = _render(name, seas5)
        if seas5 == "none":
            assert "seas5" not in text.lower(), name
        else:
            assert SEAS5_METHODS[seas5] in text, name
            assert ("SYNTHETIC" in text) == (seas5 == "synthetic"), name
            if seas5 == "cds":
                assert "seas5_synthetic" not in text, name
            else:  # the date set is called seas5; the real method is not listed
                assert "- ``seas5``:" not in text and "``seas5 on SEAS5 starts``" not in text, name


def seas5_csv(path: Path) -> Path:
    """A scorecard with SEAS5 rows on its starts (date_set seas5) beside the hindcast's."""
    table = pd.read_csv(new_csv(path, months=[]))
    table = table.assign(date_set="hindcast", brier=0.1, bss=0.5, edge_distance_km=table["rmse"] * 1000)
    shared = table[table["method"].isin(["ensemble_mean", "persistence"])].assign(date_set="seas5", n_init_dates=2)
    seas5 = table[table["method"] == "persistence"].assign(method="seas5_synthetic", date_set="seas5", n_init_dates=2, rmse=0.5)
    pd.concat([table, shared, seas5]).to_csv(path, index=False)
    return path


def test_skill_with_seas5_on_its_starts(tmp_path: Path) -> None:
    out = tmp_path / "skill.png"
    drawn = plot_skill(seas5_csv(tmp_path / "scorecard.csv"), out)
    assert list(drawn.columns) == [
        "lead_days",
        "method",
        "rmse",
        "binary_accuracy",
        "iiee_km2",
        "brier",
        "bss",
        "edge_distance_km",
    ]
    methods = set(drawn["method"])
    assert methods == {*METHODS, "seas5_synthetic", "ensemble_mean on SEAS5 starts"}  # persistence's shared rows not twice
    assert (drawn.loc[drawn["method"] == "seas5_synthetic", "rmse"] == 0.5).all()
    width, height = png_size(out)
    assert 1.2 * height < width < 2.5 * height  # six panels in two rows of three


def test_reliability_diagram(tmp_path: Path) -> None:
    from floecast.verify_tables import RELIABILITY_COLUMNS

    rows = []
    for date_set, method in (("hindcast", "ensemble_mean"), ("seas5", "ensemble_mean"), ("seas5", "seas5")):
        for group in ("1-7", "8-14"):
            for b in range(10):
                count = 0 if b == 5 else 100 - 5 * b
                rows.append([date_set, method, group, b / 10, (b + 1) / 10, count, b / 10 + 0.05, b / 10, "0.5.0"])
    csv = tmp_path / "reliability.csv"
    pd.DataFrame(rows, columns=RELIABILITY_COLUMNS).to_csv(csv, index=False)
    out = tmp_path / "reliability.png"
    drawn = plot_reliability(csv, out)
    assert set(drawn["method"]) == {"ensemble_mean", "ensemble_mean on SEAS5 starts", "seas5 on SEAS5 starts"}
    assert len(drawn) == 3 * 2 * 9  # the empty bin is not drawn
    assert drawn["observed_frequency"].max() == pytest.approx(0.9)
    width, height = png_size(out)
    assert width > 1.5 * height  # two panels side by side
