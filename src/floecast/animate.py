"""Animations: a forecast over its leads, and the input SIC over a period (MP4, or GIF by the file's suffix).

Frames are drawn with matplotlib and encoded by its animation writers: ``FFMpegWriter`` for ``.mp4`` with the
ffmpeg binary of the ``imageio-ffmpeg`` wheel (no system ffmpeg needed), ``PillowWriter`` for ``.gif``. Each
frame of a forecast shows the ensemble-mean SIC, the sea-ice probability's 10/50/90 % contours and the ice edge of
the mean (15 %), with land grey; each frame of the inputs shows the day's SIC and its ice edge.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib import animation  # noqa: E402

from floecast.io import atomic_path  # noqa: E402
from floecast.metrics import ICE_THRESHOLD  # noqa: E402

SIP_LEVELS = (0.1, 0.5, 0.9)
FPS = 4
LAND = "0.6"


def _writer(path: Path, fps: int) -> animation.AbstractMovieWriter:
    if path.suffix == ".gif":
        return animation.PillowWriter(fps=fps)
    if path.suffix != ".mp4":
        raise ValueError(f"{path}: animations are .mp4 or .gif")
    import imageio_ffmpeg

    matplotlib.rcParams["animation.ffmpeg_path"] = imageio_ffmpeg.get_ffmpeg_exe()
    # yuv420p plays everywhere; it needs even frame sizes, which the figure sizes below give at the dpi used
    return animation.FFMpegWriter(fps=fps, codec="libx264", extra_args=["-pix_fmt", "yuv420p"])


def _save(anim: animation.FuncAnimation, out: str | Path, fps: int, dpi: int) -> None:
    out = Path(out)
    writer = _writer(out, fps)
    with atomic_path(out) as tmp:
        staged = tmp.with_suffix(out.suffix)  # the writers pick the format by the suffix
        anim.save(str(staged), writer=writer, dpi=dpi)
        staged.rename(tmp)


def _extent(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    half = abs(float(x[1] - x[0])) / 2
    return (float(x[0]) - half, float(x[-1]) + half, float(y[-1]) - half, float(y[0]) + half)


def _figure(x: np.ndarray, y: np.ndarray, land: np.ndarray, first: np.ndarray, label: str) -> tuple:
    """The figure every frame redraws: SIC (blue, 0-1) with land grey and a colour bar; returns (fig, ax, image)."""
    fig, ax = plt.subplots(figsize=(6, 6.4), layout="constrained")
    extent = _extent(x, y)
    image = ax.imshow(np.where(land, np.nan, first), extent=extent, cmap="Blues_r", vmin=0, vmax=1)
    ax.imshow(np.where(land, 1.0, np.nan), extent=extent, cmap=matplotlib.colors.ListedColormap([LAND]))
    fig.colorbar(image, ax=ax, shrink=0.8, label=label)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig, ax, image


def _edge(ax: plt.Axes, x: np.ndarray, y: np.ndarray, sic: np.ndarray, land: np.ndarray, width: float) -> list:
    """The 15 % contour of ``sic`` (red), if the field crosses it."""
    field = np.where(land, 0.0, np.nan_to_num(sic))
    if field.max() > ICE_THRESHOLD > field.min():
        return [ax.contour(x, y, field, levels=[ICE_THRESHOLD], colors="red", linewidths=width)]
    return []


def animate_forecast(forecast_nc: str | Path, out: str | Path, fps: int = FPS, dpi: int = 80) -> int:
    """One frame per lead of a forecast file; returns the number of frames."""
    _writer(Path(out), fps)  # an unknown format fails before any drawing
    with xr.open_dataset(forecast_nc, engine="netcdf4") as ds:
        mean = ds["sic"].sel(quantity="mean").isel(time=0).values
        sip = ds["sip"].isel(time=0).values
        land = ds["land"].values.astype(bool)
        valid = pd.DatetimeIndex(ds["valid_time"].values)
        leads = ds["leadtime"].values
        init = pd.Timestamp(ds["time"].values[0])
        x, y = ds["xc"].values, ds["yc"].values
        title = f"{ds.attrs.get('hemisphere', '')} {ds.attrs.get('model_run', '')}".strip()
    fig, ax, image = _figure(x, y, land, mean[0], "ensemble-mean SIC")
    artists: list = []

    def draw(i: int) -> list:
        for artist in artists:
            artist.remove()
        artists.clear()
        image.set_data(np.where(land, np.nan, mean[i]))
        probability = np.where(land, 0.0, np.nan_to_num(sip[i]))
        if np.ptp(probability) > 0:
            artists.append(ax.contour(x, y, probability, levels=SIP_LEVELS, colors="black", linewidths=(0.6, 1.2, 0.6)))
        artists.extend(_edge(ax, x, y, mean[i], land, 1.4))
        ax.set_title(
            f"floecast {title}: init {init:%Y-%m-%d}, lead {int(leads[i])} d, valid {valid[i]:%Y-%m-%d}\n"
            "SIP 10/50/90 % (black), ice edge of the mean (red)",
            fontsize=9,
        )
        return [image, *artists]

    anim = animation.FuncAnimation(fig, draw, frames=len(leads), blit=False)
    _save(anim, out, fps, dpi)
    plt.close(fig)
    return len(leads)


def animate_inputs(
    interim_paths: Sequence[str | Path], first: dt.date, last: dt.date, out: str | Path, fps: int = 8, dpi: int = 80
) -> int:
    """One frame per day first..last of the interim SIC files; returns the number of frames."""
    _writer(Path(out), fps)
    days = pd.date_range(first, last, freq="D")
    fields, land, x, y = [], None, None, None
    for path in interim_paths:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            have = pd.DatetimeIndex(ds["time"].values)
            pick = have[(have >= days[0]) & (have <= days[-1])]
            if len(pick):
                fields.append(ds["sic"].sel(time=pick))
                fields[-1] = fields[-1].load()
            land = ds["land"].values.astype(bool) if "land" in ds else land
            x, y = ds["xc"].values, ds["yc"].values
    if not fields:
        raise ValueError(f"no interim SIC day in {first}..{last} ({', '.join(map(str, interim_paths))})")
    sic = xr.concat(fields, dim="time").sortby("time")
    missing = days.difference(pd.DatetimeIndex(sic["time"].values))
    if len(missing):
        raise ValueError(f"the interim files lack {len(missing)} days of {first}..{last}, e.g. {missing[0].date()}")
    values = sic.values
    land = np.zeros(values.shape[1:], bool) if land is None else land
    fig, ax, image = _figure(x, y, land, values[0], "SIC")
    artists: list = []

    def draw(i: int) -> list:
        for artist in artists:
            artist.remove()
        artists.clear()
        image.set_data(np.where(land, np.nan, values[i]))
        artists.extend(_edge(ax, x, y, values[i], land, 1.2))
        ax.set_title(f"input SIC (interim, EASE2) {days[i]:%Y-%m-%d}, ice edge (red)", fontsize=9)
        return [image, *artists]

    anim = animation.FuncAnimation(fig, draw, frames=len(days), blit=False)
    _save(anim, out, fps, dpi)
    plt.close(fig)
    return len(days)
