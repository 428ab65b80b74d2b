"""Figures of a forecast (maps, extent by lead) and of the hindcast scorecard (skill by lead, by month).

Each function writes one PNG (atomically, so a killed job leaves no half-written figure for the report or the
egress) and returns what it drew, so that tests and callers check numbers rather than pixels.

Scorecard CSVs are read by :func:`read_scorecard`: one row per (lead_days, method) and, when the CSV has a
``month`` column, also per month; a row whose month is empty or ``all`` is the all-months aggregate, which the
skill-by-lead figure draws, and rows with a month 1-12 feed the month heat map. Score columns that are empty
(``spread_skill`` for a method without an ensemble) read as NaN and are left out of the lines.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

from floecast import __version__

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import CenteredNorm, ListedColormap, Normalize  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from floecast.io import atomic_path  # noqa: E402
from floecast.members import open_members  # noqa: E402
from floecast.metrics import ICE_THRESHOLD, sea_ice_extent  # noqa: E402

log = logging.getLogger(__name__)

MAP_QUANTITIES = ("mean", "std", "sip")
SIP_LEVEL = 0.5  # the SIP contour: half the members have SIC above 15 %
LAND_GREY = "0.6"
EDGE_COLOUR = "red"
SIP_EDGE_COLOUR = "black"
SKILL_METRICS = ("rmse", "binary_accuracy", "iiee_km2", "brier", "bss", "edge_distance_km")
SEAS5_DATE_SET = "seas5"  # scorecard rows over the init dates shared with SEAS5 (floecast.verify)
ON_SEAS5_STARTS = " on SEAS5 starts"
METHOD_ORDER = ("ensemble_mean", "persistence", "climatology")
METHOD_STYLE = {
    "ensemble_mean": {"color": "tab:blue", "lw": 2.0, "ls": "-"},
    "persistence": {"color": "tab:orange", "lw": 1.4, "ls": "--"},
    "climatology": {"color": "0.3", "lw": 1.4, "ls": ":"},
    "anomaly_persistence": {"color": "tab:red", "lw": 1.4, "ls": "-."},
    "linear_trend": {"color": "tab:green", "lw": 1.4, "ls": (0, (5, 1, 1, 1, 1, 1))},
    "climatological_ensemble": {"color": "0.3", "lw": 1.4, "ls": "--"},
    "dressed_anomaly_persistence": {"color": "tab:red", "lw": 1.4, "ls": ":"},
    "seas5": {"color": "tab:purple", "lw": 1.8, "ls": "-"},
    "seas5_synthetic": {"color": "tab:purple", "lw": 1.8, "ls": "-"},
    f"ensemble_mean{ON_SEAS5_STARTS}": {"color": "tab:blue", "lw": 1.2, "ls": ":"},
}


@dataclass(frozen=True)
class MapStyle:
    """How one row of the map figure is drawn; ``vmax=None`` scales the row to its data (the std)."""

    label: str
    cmap: str
    vmax: float | None


MAP_STYLES = {
    "mean": MapStyle("ensemble mean SIC", "Blues_r", 1.0),
    "std": MapStyle("ensemble std of SIC", "magma", None),
    "sip": MapStyle("sea-ice probability", "viridis", 1.0),
}


@dataclass(frozen=True)
class Metric:
    """A scorecard column: its name in titles, its axis label, the factor to its plotted unit, which way is better."""

    short: str
    label: str
    scale: float = 1.0
    better: str = "lower"  # "lower", "higher", or "closer to <centre>"
    centre: float | None = None  # diverging colours around this value in the heat map


METRICS = {
    "rmse": Metric("RMSE", "RMSE (SIC fraction)"),
    "mae": Metric("MAE", "MAE (SIC fraction)"),
    "binary_accuracy": Metric("binary accuracy", "binary accuracy (share of cells)", better="higher"),
    "iiee_km2": Metric("IIEE", "IIEE (million km²)", 1e-6),
    "sie_error_km2": Metric("SIE error", "SIE error, forecast − observed (million km²)", 1e-6, "closer to 0", 0.0),
    "sps_km2": Metric("SPS", "SPS (million km²)", 1e-6),
    "crps": Metric("CRPS", "CRPS (SIC fraction)"),
    "spread_skill": Metric("spread/skill", "spread/skill ratio", better="closer to 1", centre=1.0),
    "brier": Metric("Brier score", "Brier score of P(SIC > 15 %)"),
    "bss": Metric("Brier skill score", "Brier skill score vs climatological probability", better="higher", centre=0.0),
    "edge_distance_km": Metric("ice-edge distance", "mean ice-edge distance (km)"),
}


def _metric(name: str) -> Metric:
    return METRICS.get(name, Metric(name, name))


def _save(fig: plt.Figure, out_png: str | Path) -> None:
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", metadata={"Software": f"floecast {__version__}"})
    plt.close(fig)


# ----------------------------------------------------------------------------------------------------------------
# forecast maps


def _contour(ax: plt.Axes, x: np.ndarray, y: np.ndarray, field: np.ma.MaskedArray, level: float, **style: object) -> None:
    """Contour at ``level`` only where the field crosses it (matplotlib warns on a field without the level)."""
    values = field.compressed()
    if values.size and values.min() < level < values.max():
        ax.contour(x, y, field, levels=[level], **style)


def _std_vmax(std: np.ndarray) -> float:
    """The std row's colour scale: its largest value rounded up to 0.05, so the scale is readable and stable."""
    top = float(np.nanmax(std)) if np.isfinite(std).any() else 0.0
    return max(0.05, float(np.ceil(top / 0.05 - 1e-9)) * 0.05)


def plot_maps(
    forecast_path: str | Path,
    leads: Sequence[int],
    out_png: str | Path,
    *,
    quantities: Sequence[str] = MAP_QUANTITIES,
    std_max: float | None = None,
) -> list[int]:
    """Maps of the ensemble mean, std and SIP (a row each) at each lead (a column each), land in grey.

    Every panel has the ice edge (the 15 % contour of the ensemble mean, red); SIP panels also the 0.5 contour
    (black, dashed), which is where the members disagree most. Mean and SIP share the fixed 0-1 scale so panels and
    dates compare; the std gets its own scale (``std_max``, default: its maximum over the panels rounded up to 0.05).
    Leads not in the forecast are left out with a warning. Returns the leads drawn.
    """
    unknown = [q for q in quantities if q not in MAP_STYLES]
    if unknown or not quantities:
        raise ValueError(f"quantities must be among {list(MAP_STYLES)}, got {list(quantities)}")
    with xr.open_dataset(forecast_path) as ds:
        ds = ds.load()
    available = [int(v) for v in ds["leadtime"].values]
    drawn = [int(lead) for lead in leads if int(lead) in available]
    if len(drawn) < len(leads):
        log.warning(
            "%s: leads %s are not in the forecast (leads %d-%d); left out",
            forecast_path,
            sorted(set(map(int, leads)) - set(drawn)),
            min(available),
            max(available),
        )
    if not drawn:
        raise ValueError(f"{forecast_path}: none of the leads {list(leads)} is in the forecast (leads {available})")
    if "sip" in quantities and "sip" not in ds:
        log.warning("%s has no sip variable; the SIP row is left out", forecast_path)
        quantities = [q for q in quantities if q != "sip"]
    land = ds["land"].values.astype(bool)
    sic = ds["sic"].isel(time=0).sel(leadtime=drawn)
    fields = {q: sic.sel(quantity=q).values for q in quantities if q != "sip"}
    if "sip" in quantities:
        fields["sip"] = ds["sip"].isel(time=0).sel(leadtime=drawn).values
    mean = sic.sel(quantity="mean").values
    valid = pd.DatetimeIndex(ds["valid_time"].sel(leadtime=drawn).values)
    init = pd.Timestamp(ds["time"].values[0])
    x, y = ds["xc"].values / 1000.0, ds["yc"].values / 1000.0

    def masked(field: np.ndarray) -> np.ma.MaskedArray:
        return np.ma.masked_where(land | ~np.isfinite(field), field)

    rows, cols = len(quantities), len(drawn)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 1.4, 2.6 * rows + 0.9), squeeze=False, layout="constrained")
    land_cmap = ListedColormap([LAND_GREY])
    for row, quantity in enumerate(quantities):
        style = MAP_STYLES[quantity]
        vmax = style.vmax if style.vmax is not None else (std_max or _std_vmax(fields[quantity]))
        for col, lead in enumerate(drawn):
            ax = axes[row, col]
            image = ax.pcolormesh(x, y, masked(fields[quantity][col]), cmap=style.cmap, vmin=0.0, vmax=vmax, shading="nearest")
            ax.pcolormesh(x, y, np.ma.masked_where(~land, land), cmap=land_cmap, shading="nearest")
            _contour(ax, x, y, masked(mean[col]), ICE_THRESHOLD, colors=EDGE_COLOUR, linewidths=1.0)
            if quantity == "sip":
                _contour(ax, x, y, masked(fields["sip"][col]), SIP_LEVEL, colors=SIP_EDGE_COLOUR, linewidths=1.0, linestyles="--")
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{quantity}, lead {lead} d\nvalid {valid[col]:%Y-%m-%d}", fontsize=9)
            if col == 0:
                ax.set_ylabel(style.label, fontsize=9)
        fig.colorbar(image, ax=axes[row, :], shrink=0.9, label=style.label + (" (0-1)" if style.vmax else ""))
    handles = [
        Line2D([], [], color=EDGE_COLOUR, lw=1.0, label="ice edge: mean SIC = 15 %"),
        Patch(facecolor=LAND_GREY, label="land"),
    ]
    if "sip" in quantities:
        handles.insert(1, Line2D([], [], color=SIP_EDGE_COLOUR, lw=1.0, ls="--", label="SIP = 0.5"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    about = [f"{key} {ds.attrs[attr]}" for key, attr in (("run", "model_run"), ("members", "members")) if ds.attrs.get(attr)]
    fig.suptitle(f"SIC forecast initialised {init:%Y-%m-%d}" + (f" ({', '.join(about)})" if about else ""))
    _save(fig, out_png)
    return drawn


# ----------------------------------------------------------------------------------------------------------------
# extent by lead


def plot_extent(
    forecast_path: str | Path,
    member_paths: Sequence[str | Path],
    statistics_path: str | Path,
    cell_area_km2: float,
    out_png: str | Path,
) -> pd.DataFrame:
    """Extent by lead of every member, their mean, min-max and ±1 std, and the observed climatology.

    Extent is the area of the cells with SIC above 15 % (EASE2 cells are equal-area). The climatology is the extent
    of the training years' day-of-year mean SIC (``sic_clim`` of the statistics file) on each valid date: the
    forecast is worth reading against what an average year looks like on that day. The x axis is the valid date,
    with the lead on the top axis.

    Returns one row per lead (index ``lead_days``): ``valid_time``, ``member_<k>`` for each member, ``mean``,
    ``std`` (ddof=1 as in the forecast file; 0 for one member), ``min``, ``max`` and ``climatology``, in km².
    """
    if not np.isfinite(cell_area_km2) or cell_area_km2 <= 0:
        raise ValueError(f"cell_area_km2 must be a positive number of km², got {cell_area_km2!r}")
    members = open_members(member_paths).isel(init_time=0)
    leads = [int(v) for v in members["leadtime"].values]
    with xr.open_dataset(forecast_path) as ds:
        valid = pd.DatetimeIndex(ds["valid_time"].sel(leadtime=leads).values)
        init = pd.Timestamp(ds["time"].values[0])
    with xr.open_dataset(statistics_path) as stats:
        clim = stats["sic_clim"].isel(dayofyear=valid.day_of_year.to_numpy() - 1).values
    if clim.shape[-2:] != members.shape[-2:]:
        raise ValueError(f"{statistics_path}: grid {clim.shape[-2:]} differs from the members' {members.shape[-2:]}")
    per_member = sea_ice_extent(members.values, cell_area_km2)  # (member, lead)
    table = pd.DataFrame(
        {f"member_{int(k)}": series for k, series in zip(members["member"].values, per_member, strict=True)},
        index=pd.Index(leads, name="lead_days"),
    )
    n = per_member.shape[0]
    table.insert(0, "valid_time", valid)
    table["mean"] = per_member.mean(axis=0)
    table["std"] = per_member.std(axis=0, ddof=1) if n > 1 else 0.0
    table["min"] = per_member.min(axis=0)
    table["max"] = per_member.max(axis=0)
    table["climatology"] = sea_ice_extent(clim, cell_area_km2)

    mkm2 = table.drop(columns="valid_time") / 1e6
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    ax.fill_between(valid, mkm2["min"], mkm2["max"], color="tab:blue", alpha=0.15, lw=0, label="ensemble min-max")
    ax.fill_between(
        valid,
        mkm2["mean"] - mkm2["std"],
        mkm2["mean"] + mkm2["std"],
        color="tab:blue",
        alpha=0.3,
        lw=0,
        label="ensemble mean ± 1 std",
    )
    for k, column in enumerate(c for c in mkm2 if c.startswith("member_")):
        ax.plot(valid, mkm2[column], color="tab:blue", lw=0.6, alpha=0.7, label=f"members ({n})" if k == 0 else None)
    ax.plot(valid, mkm2["mean"], color="tab:blue", lw=2, label="ensemble mean")
    ax.plot(valid, mkm2["climatology"], color="k", ls="--", label="observed climatology (training years)")
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    origin = mdates.date2num(init)
    top = ax.secondary_xaxis("top", functions=(lambda d: d - origin, lambda lead: lead + origin))
    top.set_xlabel("lead time (days)")
    ax.set_xlabel("valid date")
    ax.set_ylabel("sea-ice extent (million km²)")
    ax.set_title(f"Sea-ice extent (SIC > 15 %) forecast initialised {init:%Y-%m-%d}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out_png)
    return table


# ----------------------------------------------------------------------------------------------------------------
# scorecard


def read_scorecard(scorecard_csv: str | Path, month_column: str = "month") -> pd.DataFrame:
    """The scorecard with ``month_column`` (if any) as nullable integers 1-12, NA on the all-months rows.

    Empty cells and ``all`` (any case) mean the aggregate; anything else that is not 1-12 is an error, so a scorecard
    written with another convention fails loudly instead of being plotted wrong.
    """
    table = pd.read_csv(scorecard_csv, dtype={month_column: "string"})
    if month_column in table:
        text = table[month_column].str.strip()
        aggregate = text.isna() | text.str.lower().isin(["", "all"]).fillna(False)
        months = pd.to_numeric(text.where(~aggregate), errors="coerce")
        bad = ~aggregate & ~months.isin(range(1, 13))
        if bad.any():
            raise ValueError(f"{scorecard_csv}: {month_column} must be 1-12, empty or 'all'; got {sorted(set(text[bad]))}")
        table[month_column] = months.astype("Int64")
    return table


def _unique_rows(table: pd.DataFrame, keys: list[str], source: str | Path) -> None:
    duplicated = table.duplicated(keys)
    if duplicated.any():
        first = table.loc[duplicated, keys].iloc[0].to_dict()
        raise ValueError(f"{source}: {int(duplicated.sum())} duplicate rows of {keys}, e.g. {first}")


def _methods(table: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(table["method"]))
    return [m for m in METHOD_ORDER if m in present] + sorted(m for m in present if m not in METHOD_ORDER)


def _with_seas5_starts(table: pd.DataFrame) -> pd.DataFrame:
    """The rows over every hindcast init date, plus SEAS5 and the ensemble mean on the init dates SEAS5 starts from
    (the ensemble relabelled ``ensemble_mean on SEAS5 starts``, so both systems are compared on the same dates)."""
    if "date_set" not in table:
        return table
    date_set = table["date_set"].fillna("hindcast").astype(str)
    main = table[date_set == "hindcast"]
    shared = table[(date_set == SEAS5_DATE_SET) & ~table["method"].isin(main["method"].unique())]
    ensemble = table[(date_set == SEAS5_DATE_SET) & (table["method"] == "ensemble_mean")]
    ensemble = ensemble.assign(method="ensemble_mean" + ON_SEAS5_STARTS)
    return pd.concat([main, shared, ensemble], ignore_index=True).drop(columns="date_set")


def plot_skill(
    scorecard_csv: str | Path,
    out_png: str | Path,
    *,
    metrics: Sequence[str] = SKILL_METRICS,
    month_column: str = "month",
) -> pd.DataFrame:
    """Skill against lead for each method, a panel per metric, from the all-months rows of the scorecard.

    Metrics whose column is missing or empty are left out (an older scorecard has only RMSE and binary accuracy), so
    the figure follows the CSV it is given. Returns the rows and columns drawn: lead_days, method and the metrics.
    """
    table = read_scorecard(scorecard_csv, month_column)
    if month_column in table:
        table = table[table[month_column].isna()].drop(columns=month_column)
        if table.empty:
            raise ValueError(f"{scorecard_csv}: no all-months rows ({month_column} empty or 'all') to plot by lead")
    table = _with_seas5_starts(table)
    _unique_rows(table, ["lead_days", "method"], scorecard_csv)
    drawn = [m for m in metrics if m in table and table[m].notna().any()]
    if not drawn:
        raise ValueError(f"{scorecard_csv}: none of the metrics {list(metrics)} has values (columns {list(table)})")
    skipped = [m for m in metrics if m not in drawn]
    if skipped:
        log.info("%s: no values for %s; those panels are left out", scorecard_csv, skipped)
    order = {method: i for i, method in enumerate(_methods(table))}
    table = table.sort_values(["method", "lead_days"], key=lambda c: c.map(order) if c.name == "method" else c)
    ncols = min(len(drawn), 3)
    nrows = -(-len(drawn) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows + 0.6), squeeze=False, layout="constrained")
    for ax in axes.ravel()[len(drawn) :]:
        ax.set_visible(False)
    for ax, metric in zip(axes.ravel(), drawn, strict=False):
        info = _metric(metric)
        for method in _methods(table):
            rows = table[table["method"] == method]
            if rows[metric].notna().any():
                ax.plot(rows["lead_days"], rows[metric] * info.scale, label=method, **METHOD_STYLE.get(method, {}))
        if info.centre is not None:
            ax.axhline(info.centre, color="0.5", lw=0.8)
        ax.set_xlabel("lead time (days)")
        ax.set_ylabel(info.label)
        ax.set_title(f"{info.short} ({info.better} is better)", fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=9, frameon=False)
    n_dates = f", {int(table['n_init_dates'].max())} init dates" if "n_init_dates" in table else ""
    shared = table[table["method"].str.endswith(ON_SEAS5_STARTS)]
    if not shared.empty and "n_init_dates" in shared:
        n_dates += f" ({int(shared['n_init_dates'].max())} shared with SEAS5)"
    fig.suptitle(f"Hindcast skill by lead, test years, all months{n_dates}")
    _save(fig, out_png)
    return table[["lead_days", "method", *drawn]].reset_index(drop=True)


def plot_month_heatmap(
    scorecard_csv: str | Path,
    out_png: str | Path,
    metric: str = "rmse",
    method: str = "ensemble_mean",
    *,
    month_column: str = "month",
) -> pd.DataFrame:
    """Heat map of one method's metric by month (rows 1-12) and lead (columns), to show when in the year skill drops.

    Reads the rows of the scorecard with a month 1-12 (see :func:`read_scorecard`); months without rows stay blank.
    Raises ValueError if the CSV has no month column or no per-month rows (an older scorecard), or lacks the metric
    or the method. Returns the table drawn (index month 1-12, columns lead_days, values in the CSV's units).
    """
    table = read_scorecard(scorecard_csv, month_column)
    if month_column not in table:
        raise ValueError(
            f"{scorecard_csv}: no '{month_column}' column, so no scores by month to map "
            f"(columns {list(table)}); the scorecard was written without per-month rows"
        )
    by_month = table[table[month_column].notna()]
    if by_month.empty:
        raise ValueError(f"{scorecard_csv}: the '{month_column}' column has only all-months rows, no month 1-12")
    if metric not in table:
        raise ValueError(f"{scorecard_csv}: no column {metric!r} (columns {list(table)})")
    if method not in set(by_month["method"]):
        raise ValueError(f"{scorecard_csv}: no per-month rows for method {method!r} (methods {_methods(by_month)})")
    rows = by_month[by_month["method"] == method]
    _unique_rows(rows, [month_column, "lead_days"], scorecard_csv)
    if rows[metric].isna().all():
        raise ValueError(f"{scorecard_csv}: {metric!r} is empty for method {method!r}")
    grid = rows.pivot(index=month_column, columns="lead_days", values=metric).sort_index(axis=1)
    grid = grid.reindex(pd.Index(range(1, 13), name="month")).astype(float)
    grid.columns.name = "lead_days"

    info = _metric(metric)
    values = grid.to_numpy() * info.scale
    cmap = plt.get_cmap("RdBu_r" if info.centre is not None else "viridis").with_extremes(bad="0.85")
    norm = CenteredNorm(vcenter=info.centre) if info.centre is not None else Normalize()
    leads = list(grid.columns)
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 2.5 + 0.45 * len(leads))), 5.2), layout="constrained")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    step = max(1, int(np.ceil(len(leads) / 31)))
    ax.set_xticks(range(0, len(leads), step), [str(lead) for lead in leads[::step]])
    ax.set_yticks(range(12), calendar.month_abbr[1:])
    if len(leads) <= 12:
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                shade = image.cmap(image.norm(value))
                ink = "white" if 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.5 else "black"
                ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=7, color=ink)
    ax.set_xlabel("lead time (days)")
    ax.set_ylabel("month" if month_column == "month" else f"month ({month_column})")
    fig.colorbar(image, ax=ax, label=f"{info.label}, {info.better} is better")
    ax.set_title(f"{info.short} of {method} by month and lead")
    _save(fig, out_png)
    return grid


def plot_reliability(reliability_csv: str | Path, out_png: str | Path) -> pd.DataFrame:
    """Reliability diagram of the sea-ice probability by lead group, one panel per group (``reliability.csv`` of the
    scorecard): observed frequency of ice against forecast probability per bin, the diagonal being perfect
    reliability; the bars underneath are the share of cells in each bin (sharpness). Methods on the SEAS5 starts
    are drawn with their label suffixed. Returns the points drawn (method, lead_group, forecast, observed, count).
    """
    table = pd.read_csv(reliability_csv)
    if table.empty:
        raise ValueError(f"{reliability_csv}: no rows")
    date_set = table["date_set"].fillna("hindcast").astype(str)
    label = table["method"].where(date_set == "hindcast", table["method"] + ON_SEAS5_STARTS)
    table = table.assign(label=label)
    groups = list(dict.fromkeys(table["lead_group"]))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.0 * len(groups), 4.4), squeeze=False, layout="constrained")
    drawn = []
    for ax, group in zip(axes[0], groups, strict=True):
        rows = table[table["lead_group"] == group]
        ax.plot([0, 1], [0, 1], color="0.5", lw=0.8, ls="--")
        bars = ax.twinx()
        labels = list(dict.fromkeys(rows["label"]))
        width = 0.8 / max(len(labels), 1) / 10
        for i, name in enumerate(labels):
            own = rows[(rows["label"] == name) & (rows["count"] > 0)]
            style = METHOD_STYLE.get(name, METHOD_STYLE.get(name.removesuffix(ON_SEAS5_STARTS), {}))
            ax.plot(own["forecast_probability"], own["observed_frequency"], marker="o", ms=3, label=name, **style)
            share = own["count"] / own["count"].sum()
            centre = (own["bin_lower"] + own["bin_upper"]) / 2
            bars.bar(centre - 0.04 + i * width, share, width=width, color=style.get("color"), alpha=0.35)
            drawn.append(own[["label", "lead_group", "forecast_probability", "observed_frequency", "count"]])
        bars.set_ylim(0, 4)  # the bars stay in the lower quarter
        bars.set_yticks([])
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("forecast probability of SIC > 15 %")
        ax.set_title(f"leads {group} days", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("observed frequency")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 4), fontsize=9, frameon=False)
    fig.suptitle("Reliability of the sea-ice probability by lead (bars: share of cells per bin)")
    _save(fig, out_png)
    return pd.concat(drawn, ignore_index=True).rename(columns={"label": "method"})
