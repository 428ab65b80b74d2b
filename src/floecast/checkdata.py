"""``floecast check-data``: is a hemisphere's SIC sound, from the raw files to the store, before a model sees it?

Checks (each finding names the level, the day or file, the value and the threshold):

* every level: all-zero or constant days over the ocean; NaN or out-of-range shares over the ocean; missing and
  duplicated days; grids (``xc``/``yc``) or units that changed from the level's first file;
* day-to-day extent jumps beyond ``jump_sigma`` robust standard deviations (1.4826 x the median absolute deviation
  of the day-to-day changes in a centred ``jump_window_days`` window) and at least ``jump_min_km2``: a jump in and
  a jump back out the next day is a spike (a bad day, an error); a jump that stays is a step (a warning: a product
  or sensor change to look at);
* store parts: the content hash recomputed from the arrays (as ``store.build_year_store`` computes it while
  writing) against the part's ``content_sha256``; where it differs, the days whose SIC differs from the interim
  file are named.

Errors mean the data must not be used (the command exits 1 naming the days); warnings and notes are reported only.
Days with day-level errors are proposed as ``osisaf.known_bad_days`` entries; days already listed there are noted
and not flagged again. Outputs: a CSV of the findings, a PNG of the extent series with the flagged days marked.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from floecast import __version__
from floecast.io import atomic_path
from floecast.store import part_content_hash

if TYPE_CHECKING:
    from floecast.sources.sicchain import SicChain

log = logging.getLogger(__name__)

ICE_THRESHOLD = 0.15
ERROR, WARNING, NOTE = "error", "warning", "note"
FINDING_COLUMNS = ["level", "check", "severity", "day", "file", "value", "threshold", "message"]
# checks that condemn one day: their days are proposed as known_bad_days
DAY_CHECKS = ("all_zero", "constant", "nan_share", "out_of_range", "extent_spike")


@dataclass(frozen=True)
class CheckSettings:
    """Thresholds of the checks (config ``checks``)."""

    nan_share_max: float = 0.02  # share of ocean cells missing in a raw day before it is a bad day
    jump_sigma: float = 6.0
    jump_window_days: int = 31
    jump_min_km2: float = 400_000.0
    known_bad_days: tuple[dt.date, ...] = ()


@dataclass
class Finding:
    level: str
    check: str
    severity: str
    day: dt.date | None
    file: str
    value: float | str | None
    threshold: float | str | None
    message: str


@dataclass
class DailySeries:
    """One level's days: their extent (km^2) and the file each came from."""

    days: list[dt.date] = field(default_factory=list)
    extent_km2: list[float] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"extent_km2": self.extent_km2, "file": self.files}, index=pd.DatetimeIndex(self.days))


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    series: dict[str, pd.DataFrame] = field(default_factory=dict)

    def add(self, *findings: Finding) -> None:
        self.findings.extend(findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(f) for f in self.findings], columns=FINDING_COLUMNS)

    def bad_days(self) -> list[dt.date]:
        """Days with a day-level error: the ``known_bad_days`` to propose."""
        return sorted({f.day for f in self.errors if f.check in DAY_CHECKS and f.day is not None})


# ---------------------------------------------------------------------------------------
# per-day field checks, shared by the levels


def _day_findings(
    level: str, day: dt.date, file: str, sic: np.ndarray, ocean: np.ndarray, settings: CheckSettings, nan_is_error: bool
) -> list[Finding]:
    """All-zero, constant, NaN share and out-of-range checks of one day's SIC (a fraction) over ``ocean``."""
    values = sic[ocean]
    found = []
    nan_share = float(np.isnan(values).mean()) if values.size else 1.0
    limit = 0.0 if nan_is_error else settings.nan_share_max
    if nan_share > limit:
        found.append(
            Finding(level, "nan_share", ERROR, day, file, round(nan_share, 4), limit, f"{nan_share:.1%} of the ocean is missing")
        )
    finite = values[np.isfinite(values)]
    if finite.size:
        outside = float(((finite < 0.0) | (finite > 1.0)).mean())
        if outside > 0:
            found.append(
                Finding(
                    level, "out_of_range", ERROR, day, file, round(outside, 4), 0.0,
                    f"{outside:.1%} of the ocean outside 0-100 % ({finite.min():.3g} .. {finite.max():.3g} as a fraction)",
                )
            )  # fmt: skip
        if finite.size > 1 and np.all(finite == 0):
            found.append(Finding(level, "all_zero", ERROR, day, file, 0.0, None, "no ice anywhere: an all-zero field"))
        elif finite.size > 1 and np.all(finite == finite[0]):
            found.append(
                Finding(level, "constant", ERROR, day, file, float(finite[0]), None, f"every ocean cell is {finite[0]:.3g}")
            )
    return found


def extent_jumps(series: pd.Series, settings: CheckSettings, level: str, cell_area_km2: float = 0.0) -> list[Finding]:
    """Spikes (a jump and back: error) and steps (a jump that stays: warning) of a daily extent series (km^2).

    A jump must exceed ``jump_sigma`` robust standard deviations, ``jump_min_km2`` and 2.5 cells (on a coarse grid
    the extent moves in whole cells, and a quiet spell has no spread at all).
    """
    series = series.sort_index()
    diff = series.diff()
    # only consecutive days are compared (a gap is the missing-day check's business)
    consecutive = pd.Series(series.index, index=series.index).diff() == pd.Timedelta(days=1)
    diff = diff.where(consecutive)
    window = settings.jump_window_days
    centre = diff.rolling(window, center=True, min_periods=window // 3).median()
    mad = (diff - centre).abs().rolling(window, center=True, min_periods=window // 3).median()
    spread = 1.4826 * mad
    excess = (diff - centre).abs()
    floor = max(settings.jump_min_km2, 2.5 * cell_area_km2)
    jump = (excess > settings.jump_sigma * spread) & (excess > floor)
    found = []
    days = list(series.index)
    skip_next = False
    for i, day in enumerate(days):
        if skip_next:
            skip_next = False
            continue
        if not bool(jump.iloc[i]):
            continue
        back = i + 1 < len(days) and bool(jump.iloc[i + 1]) and np.sign(diff.iloc[i + 1]) != np.sign(diff.iloc[i])
        threshold = float(max(settings.jump_sigma * spread.iloc[i], floor))
        change = float(diff.iloc[i])
        if back:
            message = f"extent jumps by {change / 1e6:+.2f} million km² and back the next day (a bad day)"
            found.append(Finding(level, "extent_spike", ERROR, day.date(), "", round(change), round(threshold), message))
            skip_next = True
        else:
            message = f"extent jumps by {change / 1e6:+.2f} million km² and stays (a product or sensor change?)"
            found.append(Finding(level, "extent_step", WARNING, day.date(), "", round(change), round(threshold), message))
    return found


def _days_findings(level: str, days: Sequence[dt.date], files: Sequence[str], expected: Iterable[dt.date]) -> list[Finding]:
    """Duplicated days (error) and days of ``expected`` that no file has (error)."""
    found = []
    counts = pd.Series(list(days)).value_counts()
    for day, n in counts[counts > 1].items():
        where = ", ".join(sorted({f for d, f in zip(days, files, strict=True) if d == day}))
        found.append(Finding(level, "duplicated_day", ERROR, day, where, int(n), 1, f"{n} fields for this day ({where})"))
    have = set(days)
    for day in sorted(set(expected) - have):
        found.append(Finding(level, "missing_day", ERROR, day, "", None, None, "no field for this day"))
    return found


def _grid_findings(level: str, file: str, grid: tuple, first: tuple, units: str, first_units: str, day=None) -> list[Finding]:
    found = []
    if grid != first:
        found.append(Finding(level, "grid_changed", ERROR, day, file, None, None, "xc/yc differ from the first file's grid"))
    if units != first_units:
        found.append(
            Finding(
                level, "units_changed", ERROR, day, file, units, first_units, f"units {units!r}, the first file's {first_units!r}"
            )
        )
    return found


# ---------------------------------------------------------------------------------------
# levels


def check_raw(
    manifests: Sequence[str | Path],
    settings: CheckSettings,
    cell_area_km2: float,
    report: Report,
    hemisphere: str = "north",
    chain: SicChain | None = None,
) -> None:
    """Daily OSI-SAF(-like) files listed by ingest manifests (the files lie in the folder of each manifest's name),
    each read with its product's variable names (the SIC product chain). A day on another grid than the 25 km
    EASE2 one (a near-real-time stand-in) is checked after regridding, in the interim level."""
    import netCDF4

    from floecast.sources.osisaf import STATUS_LAKE, STATUS_LAND, read_osisaf_file
    from floecast.sources.sicchain import SicChain, day_in_name

    chain = chain or SicChain.default()

    series = DailySeries()
    first_grid = first_units = None
    expected: set[dt.date] = set()
    listed_missing: set[dt.date] = set()
    for manifest_path in manifests:
        manifest = json.loads(Path(manifest_path).read_text())
        folder = Path(manifest_path).with_suffix("")
        first, last = (dt.date.fromisoformat(manifest[k]) for k in ("first_day", "last_day"))
        expected |= {d.date() for d in pd.date_range(first, last, freq="D")}
        listed_missing |= {dt.date.fromisoformat(str(d)[:10]) for d in manifest.get("missing", [])}
        for name in sorted(p.name for p in folder.glob("ice_conc_*.nc")):
            path = folder / name
            day = day_in_name(name)
            product = chain.identify(name, hemisphere)
            if product is None:
                report.add(Finding("raw", "unknown_product", ERROR, day, str(path), None, None, "no product of the SIC chain"))
                continue
            if product.grid != "ease2-250":
                continue
            sic, flag = read_osisaf_file(path, product.variables)
            flag = flag.astype(np.int64)
            with netCDF4.Dataset(path) as nc:
                units = str(getattr(nc[product.variables.get("ice_conc", "ice_conc")], "units", ""))
                grid = (tuple(np.round(nc["xc"][:], 3)), tuple(np.round(nc["yc"][:], 3)))
            if first_grid is None:
                first_grid, first_units = grid, units
            report.add(*_grid_findings("raw", str(path), grid, first_grid, units, first_units, day))
            ocean = ~((flag & STATUS_LAND).astype(bool) | (flag & STATUS_LAKE).astype(bool))
            report.add(*_day_findings("raw", day, str(path), sic, ocean, settings, nan_is_error=False))
            series.days.append(day)
            series.files.append(str(path))
            series.extent_km2.append(float((np.nan_to_num(sic[ocean]) > ICE_THRESHOLD).sum() * cell_area_km2))
    for day in sorted(listed_missing & expected - set(series.days)):
        known = day in settings.known_bad_days
        message = "a known bad day (osisaf.known_bad_days)" if known else "not delivered by the provider; filled in time"
        report.add(Finding("raw", "missing_day", NOTE if known else WARNING, day, "", None, None, message))
    report.add(*_days_findings("raw", series.days, series.files, expected - listed_missing))
    if series.days:
        report.series["raw"] = series.frame()


def check_interim(paths: Sequence[str | Path], settings: CheckSettings, cell_area_km2: float, report: Report) -> None:
    """Interim SIC files (EASE2, a fraction, a year each): complete, finite and in range over the ocean."""
    series = DailySeries()
    first_grid = first_units = None
    for path in map(Path, paths):
        with xr.open_dataset(path, engine="netcdf4") as ds:
            days = [d.date() for d in pd.DatetimeIndex(ds["time"].values)]
            units = str(ds["sic"].attrs.get("units", ""))
            grid = (tuple(np.round(ds["xc"].values, 3)), tuple(np.round(ds["yc"].values, 3)))
            ocean = ds["land"].values == 0 if "land" in ds else np.ones(ds["sic"].shape[1:], bool)
            filled = ds["filled"].values.astype(bool) if "filled" in ds else np.zeros(len(days), bool)
            sic = ds["sic"].values
        if first_grid is None:
            first_grid, first_units = grid, units
        report.add(*_grid_findings("interim", str(path), grid, first_grid, units, first_units))
        year = int(path.stem) if path.stem.isdigit() else None
        expected = [d for d in pd.date_range(min(days), max(days), freq="D").date] if days else []
        if year is not None and days:
            expected = [d for d in expected if d.year == year]
        report.add(*_days_findings("interim", days, [str(path)] * len(days), expected))
        for i, day in enumerate(days):
            if day in settings.known_bad_days:
                report.add(Finding("interim", "known_bad_day", NOTE, day, str(path), None, None, "in osisaf.known_bad_days"))
            report.add(*_day_findings("interim", day, str(path), sic[i], ocean, settings, nan_is_error=True))
            if filled[i]:
                report.add(Finding("interim", "filled_day", NOTE, day, str(path), None, None, "filled in time (flagged)"))
            series.days.append(day)
            series.files.append(str(path))
            series.extent_km2.append(float((np.nan_to_num(sic[i][ocean]) > ICE_THRESHOLD).sum() * cell_area_km2))
    if series.days:
        report.series["interim"] = series.frame()


def check_store(parts: Sequence[str | Path], interim: Sequence[str | Path], report: Report) -> None:
    """Store parts: content hash, contiguous days, SIC finite and in range; a changed part's days are named."""
    interim_by_year = {Path(p).stem: Path(p) for p in interim}
    for part in map(Path, parts):
        with xr.open_zarr(part, consolidated=True) as ds:
            recorded = str(ds.attrs.get("content_sha256", ""))
            days = [d.date() for d in pd.DatetimeIndex(ds["time"].values)]
            sic = ds["sic"].values
        report.add(*_days_findings("store", days, [str(part)] * len(days), pd.date_range(min(days), max(days)).date))
        bad = ~np.isfinite(sic) | (sic < 0) | (sic > 1)
        for i in np.flatnonzero(bad.reshape(len(days), -1).any(axis=1)):
            report.add(Finding("store", "out_of_range", ERROR, days[i], str(part), None, "0..1", "SIC missing or outside 0..1"))
        actual = part_content_hash(part)
        if actual == recorded:
            continue
        changed = _changed_days(sic, days, interim_by_year.get(part.stem))
        where = ", ".join(map(str, changed[:10])) if changed else "days not identified (no interim file to compare with)"
        message = f"content hash {actual[:12]} differs from the recorded {recorded[:12]}: the part changed after writing"
        report.add(Finding("store", "hash_mismatch", ERROR, None, str(part), actual, recorded, f"{message} ({where})"))
        for day in changed:
            report.add(Finding("store", "changed_day", ERROR, day, str(part), None, None, "SIC differs from the interim file"))


def _changed_days(sic: np.ndarray, days: list[dt.date], interim: Path | None) -> list[dt.date]:
    if interim is None or not interim.exists():
        return []
    with xr.open_dataset(interim, engine="netcdf4") as ds:
        source = ds["sic"].sel(time=pd.DatetimeIndex(days)).values
        land = ds["land"].values.astype(bool) if "land" in ds else np.zeros(source.shape[1:], bool)
    expected = np.where(land, 0.0, np.nan_to_num(source)).astype(np.float32)
    differs = ~np.isclose(sic, expected, atol=1e-6).reshape(len(days), -1).all(axis=1)
    return [days[i] for i in np.flatnonzero(differs)]


# ---------------------------------------------------------------------------------------
# the whole check


def check_data(
    raw: Sequence[str | Path],
    interim: Sequence[str | Path],
    store: Sequence[str | Path],
    cell_area_km2: float,
    settings: CheckSettings = CheckSettings(),
    hemisphere: str = "north",
    chain: SicChain | None = None,
) -> Report:
    """Every level given; extent jumps on the interim series (the raw one if there is no interim)."""
    report = Report()
    if raw:
        check_raw(raw, settings, cell_area_km2, report, hemisphere, chain)
    if interim:
        check_interim(interim, settings, cell_area_km2, report)
    if store:
        check_store(store, interim, report)
    for level in ("interim", "raw"):
        if level in report.series:
            extent = report.series[level]["extent_km2"]
            jumps = extent_jumps(extent[~extent.index.duplicated()], settings, level, cell_area_km2)
            report.add(*[j for j in jumps if j.day not in settings.known_bad_days])
            break
    known = set(settings.known_bad_days)
    for finding in report.findings:  # a day already known bad is noted, not flagged again
        if finding.day in known and finding.severity == ERROR and finding.check in DAY_CHECKS:
            finding.severity = NOTE
            finding.message += " (in osisaf.known_bad_days)"
    return report


def write_outputs(report: Report, csv: str | Path | None, plot: str | Path | None, propose: str | Path | None) -> None:
    if csv:
        with atomic_path(csv) as tmp:
            report.frame().assign(floecast_version=__version__).to_csv(tmp, index=False)
    if plot:
        plot_extent_flags(report, plot)
    if propose:
        days = report.bad_days()
        text = "# proposed by floecast check-data: days to add to osisaf.known_bad_days\n"
        text += "osisaf:\n  known_bad_days: [" + ", ".join(f'"{d}"' for d in days) + "]\n"
        with atomic_path(propose) as tmp:
            tmp.write_text(text)


def plot_extent_flags(report: Report, out_png: str | Path) -> None:
    """The extent series of each level with the flagged days marked (errors red, warnings orange)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4), layout="constrained")
    for level, style in (("raw", {"color": "0.6", "lw": 0.8}), ("interim", {"color": "tab:blue", "lw": 1.0})):
        if level in report.series:
            frame = report.series[level]
            ax.plot(frame.index, frame["extent_km2"] / 1e6, label=f"{level} extent", **style)
    reference = report.series.get("interim", report.series.get("raw"))
    for severity, colour in ((WARNING, "tab:orange"), (ERROR, "red")):
        days = sorted({f.day for f in report.findings if f.severity == severity and f.day is not None})
        if not days:
            continue
        if reference is not None:
            at = reference["extent_km2"].reindex(pd.DatetimeIndex(days)) / 1e6
            ax.scatter(
                at.index, at.fillna(0.0), color=colour, marker="x", s=40, zorder=3, label=f"{severity}s ({len(days)} days)"
            )
        for day in days:
            ax.axvline(pd.Timestamp(day), color=colour, lw=0.6, alpha=0.5)
    ax.set_ylabel("sea-ice extent (million km²)")
    ax.set_title(f"floecast check-data: {len(report.errors)} errors, {len(report.findings)} findings")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def error_summary(report: Report, limit: int = 10) -> str:
    """One line per error (the first ``limit``), naming the level, check, day and file."""
    lines = []
    for f in report.errors[:limit]:
        where = f.file or ""
        lines.append(f"{f.level} {f.check} on {f.day or '-'}: {f.message}" + (f" [{where}]" if where else ""))
    if len(report.errors) > limit:
        lines.append(f"... and {len(report.errors) - limit} more (see the CSV)")
    return "\n".join(lines)
