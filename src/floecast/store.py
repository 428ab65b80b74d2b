"""The zarr store: its format, written by :func:`build_year_store` and read by :func:`read_store`.

A store is one folder of yearly parts per dataset, ``data/store/<hemi>/<dataset>/<year>.zarr``
(``floecast.layout``), beside the training years' ``statistics.nc``. A part holds ``time``
(days since 1970-01-01), ``sic`` (fraction, 0 on land), ``fields`` (time, channel, y, x: the
normalised channels of the catalogue's variables, named in its ``channels`` attribute),
``sic_trend`` on ``trend_time`` (the year and the forecast horizon after it), ``filled`` and
``polar_hole_km``; its attributes carry the hemisphere, the cell area, the trend's years, the
share of ocean cells filled from the sources' nearest ocean cells (``coast_fill_share``), the
days that persist a source's newest data (``persisted_days``), ``content_sha256`` (a hash of
what was written) and ``chunk_sha256``, the chunk manifest: the sha256 of every chunk's values,
keyed by the chunk's path in the part (``sic/c/4/0/0``). Float arrays have NaN as their fill
value, so an absent chunk never reads as data (zarr returns the fill value for it).

:func:`read_store` reads parts into memory in compact dtypes (SIC and trend as uint8 steps of
1/250, field channels as float16) without torch: verification, calibration and plots read
through it, and the training loader (``floecast.dataset``) builds its cache from it. Every chunk it
reads is checked against the manifest first (:class:`StoreIntegrityError` names the part and the
chunk, missing or changed); a part written before the manifest is checked against its
``content_sha256`` as a whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from floecast import __version__, layout
from floecast.channels import InputSpec
from floecast.io import DailyReader, atomic_path
from floecast.variables import variable as catalogue_variable

log = logging.getLogger(__name__)
SIC_STEPS = 250  # uint8 SIC: value / 250, at most 0.002 from the stored fraction
HASHED_ARRAYS = ("fields", "filled", "polar_hole_km", "sic", "sic_trend")  # what content_sha256 covers, by name
EPOCH = pd.Timestamp("1970-01-01")  # the parts' time axes are days since then


class StoreIntegrityError(ValueError):
    """A store part whose chunks are missing or changed since it was written; the message names both."""


def store_parts(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """A store's yearly parts: the given ``<year>.zarr`` paths, or every one in a given folder."""
    given = [paths] if isinstance(paths, str | Path) else list(paths)
    parts: list[Path] = []
    for path in map(Path, given):
        parts += [path] if path.suffix == ".zarr" else sorted(path.glob("*.zarr"))
    if not parts:
        raise FileNotFoundError(f"{', '.join(map(str, given))}: no <year>.zarr store parts")
    return sorted(parts, key=lambda p: (str(p.parent), p.name))


def default_statistics(parts: Sequence[Path]) -> Path:
    """The statistics file beside the parts' dataset folder (layout.STATISTICS for layout.STORE_OBS)."""
    return parts[0].parent.parent / layout.STATISTICS_FILE


def combined_hash(hashes: Sequence[str]) -> str:
    """The store's hash: sha256 over its parts' content hashes, in year order."""
    return hashlib.sha256(json.dumps(list(hashes)).encode()).hexdigest()


def _values_sha256(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()


class PartReader:
    """One store part's arrays, each checked against the part's chunk manifest as it is read.

    A chunk the manifest lists that is absent from the part, or whose values hash differently, is a
    :class:`StoreIntegrityError` naming the part and the chunk (``sic/c/4/0/0``). A part written
    before the manifest existed is checked against its ``content_sha256`` instead, which needs every
    hashed array: :meth:`check_whole` reads those not read yet.
    """

    def __init__(self, part: str | Path) -> None:
        import zarr

        self.part = Path(part)
        try:
            self.group = zarr.open_group(str(self.part), mode="r")
        except (FileNotFoundError, ValueError, KeyError) as err:
            raise StoreIntegrityError(f"{self.part}: not a readable store part ({err}); {self.rebuild}") from None
        self.attrs = dict(self.group.attrs)
        self.manifest: dict[str, str] | None = self.attrs.get("chunk_sha256")
        self._whole: dict[str, np.ndarray] = {}

    @property
    def rebuild(self) -> str:
        return f"rebuild it: snakemake {self.part} --force"

    def read(self, name: str) -> np.ndarray:
        """The whole array ``name``, verified."""
        try:
            array = self.group[name]
        except KeyError:
            raise StoreIntegrityError(f"{self.part}: no array {name!r}; {self.rebuild}") from None
        if self.manifest is None:
            values = array[...]
            if name in HASHED_ARRAYS:
                self._whole[name] = values
            return values
        chunks = {key: sha for key, sha in self.manifest.items() if key.startswith(f"{name}/c/")}
        absent = [key for key in chunks if not (self.part / key).is_file()]
        if absent:
            raise StoreIntegrityError(
                f"{self.part}: chunk {absent[0]} is missing{f' (and {len(absent) - 1} more)' if len(absent) > 1 else ''}; "
                f"the part is incomplete: {self.rebuild}"
            )
        try:
            values = array[...]
        except Exception:  # a chunk that no longer decodes: find it to name it
            for key in chunks:
                try:
                    array[_chunk_region(key, array.chunks)]
                except Exception as err:
                    raise StoreIntegrityError(
                        f"{self.part}: chunk {key} cannot be read ({type(err).__name__}: {err}); {self.rebuild}"
                    ) from None
            raise
        for key, sha in chunks.items():
            if _values_sha256(values[_chunk_region(key, array.chunks)]) != sha:
                raise StoreIntegrityError(
                    f"{self.part}: chunk {key} differs from what was written (its sha256 is not the manifest's); {self.rebuild}"
                )
        return values

    def days(self, name: str = "time") -> pd.DatetimeIndex:
        """A time axis (``time`` or ``trend_time``), verified."""
        units = self.group[name].attrs.get("units")
        if units != "days since 1970-01-01":
            raise StoreIntegrityError(f"{self.part}: {name} has units {units!r}, not 'days since 1970-01-01'")
        return EPOCH + pd.to_timedelta(self.read(name), unit="D")

    def check_whole(self) -> None:
        """A part without a chunk manifest: its ``content_sha256`` recomputed from every hashed array."""
        if self.manifest is not None:
            return
        for name in HASHED_ARRAYS:
            if name not in self._whole:
                self.read(name)
        recorded = self.attrs.get("content_sha256")
        if content_hash({name: self._whole[name] for name in HASHED_ARRAYS}) != recorded:
            raise StoreIntegrityError(
                f"{self.part}: its content hash differs from the recorded content_sha256 (a chunk is missing or "
                f"changed; the part has no chunk manifest to say which); {self.rebuild}"
            )


def _chunk_region(key: str, chunks: tuple[int, ...]) -> tuple[slice, ...]:
    """The index region of the chunk at ``key`` (``<array>/c/i/j/...``)."""
    return tuple(slice(int(i) * c, (int(i) + 1) * c) for i, c in zip(key.split("/")[2:], chunks, strict=True))


def content_hash(arrays: dict[str, np.ndarray]) -> str:
    """A part's ``content_sha256`` from its hashed arrays (``HASHED_ARRAYS``), as written."""
    digests = {name: _values_sha256(arrays[name]) for name in sorted(arrays)}
    return hashlib.sha256("".join(f"{name}:{digest}" for name, digest in digests.items()).encode()).hexdigest()


def part_content_hash(part: str | Path) -> str:
    """A part's ``content_sha256`` recomputed from what it holds now (what ``data-check`` compares)."""
    reader = PartReader(part)
    return content_hash({name: reader.group[name][...] for name in HASHED_ARRAYS})


def read_sic(paths: str | Path | Sequence[str | Path]) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The parts' contiguous days and SIC only, (T, H, W) uint8 steps of 1 / SIC_STEPS, verified as
    :func:`read_store` verifies them (the scorecard's training-year references need nothing else)."""
    parts = store_parts(paths)
    days, sic = [], []
    for part in parts:
        reader = PartReader(part)
        days.append(reader.days())
        sic.append(to_sic_steps(reader.read("sic")))
        reader.check_whole()
    dates = days[0].append(days[1:]) if len(days) > 1 else days[0]
    if len(dates) and not (np.diff(dates.values) == np.timedelta64(1, "D")).all():
        gap = int(np.flatnonzero(np.diff(dates.values) != np.timedelta64(1, "D"))[0])
        raise ValueError(f"{parts[0].parent}: the store's days are not contiguous after {dates[gap].date()}")
    return dates, np.concatenate(sic)


def to_sic_steps(values: np.ndarray) -> np.ndarray:
    """SIC fractions as uint8 steps of 1 / SIC_STEPS (NaN as 0)."""
    return np.rint(np.clip(np.nan_to_num(values), 0.0, 1.0) * SIC_STEPS).astype(np.uint8)


def store_span(paths: str | Path | Sequence[str | Path]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and the last day of a store's parts (reads only the first and the last part's time axis)."""
    parts = store_parts(paths)
    return PartReader(parts[0]).days()[0], PartReader(parts[-1]).days()[-1]


def coast_fill_by_dataset(paths: Sequence[str | Path]) -> dict[str, dict[str, float]]:
    """Each dataset folder's share of ocean cells filled from its source's nearest ocean cell, per
    variable (``coast_fill_share`` of its first part; every part of a run has the same coastline)."""
    shares: dict[str, dict[str, float]] = {}
    for part in store_parts(paths):
        if str(part.parent) not in shares:
            shares[str(part.parent)] = dict(PartReader(part).attrs.get("coast_fill_share", {}))
    return shares


def linear_trend(previous: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """SIC extrapolated to year 0 by a least-squares line through years -1, -2, ... (axis 0).

    NaN entries (years without data) are left out; one year gives its value, none gives
    ``fallback``. Clipped to [0, 1].
    """
    years = -np.arange(1, previous.shape[0] + 1, dtype=np.float32).reshape(-1, *([1] * (previous.ndim - 1)))
    have = np.isfinite(previous)
    y = np.where(have, previous, 0.0)
    x = np.where(have, years, 0.0)
    n, sx, sy = have.sum(0), x.sum(0), y.sum(0)
    sxx, sxy = (x * x).sum(0), (x * y).sum(0)
    det = n * sxx - sx * sx
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(det > 0, (n * sxy - sx * sy) / det, 0.0)
        intercept = np.where(n > 0, (sy - slope * sx) / n, fallback)
    return np.clip(intercept, 0.0, 1.0).astype(np.float32)


STORE_CHUNK_DAYS = 32  # a sample's ~100-day window spans 4-5 chunks of each array


def build_year_store(
    year: int,
    sic_paths: Sequence[str | Path],
    field_paths: dict[str, Sequence[str | Path]],
    statistics_path: str | Path,
    out_path: str | Path,
    spec: InputSpec,
    hemisphere: str,
    cell_area_km2: float,
    chunk_days: int = STORE_CHUNK_DAYS,
    without: Sequence[str] = (),
) -> str:
    """One year of a dataset's channels as a zarr v3 store, written chunk by chunk.

    ``sic_paths`` are the interim SIC files of ``year`` and of the years before it that the
    trend channel uses; ``field_paths`` those of each variable of ``spec.fields`` for ``year``
    (or files spanning it, as CMIP6's). A variable in ``without`` has no source here (a climate
    model without its counterpart): its channels are 0, the training years' mean or climatology.
    Arrays: ``sic`` (fraction, 0 on land), ``fields`` (time, channel, y, x: normalised; 0 on the
    observations' land for a variable whose fill policy says ``land: mean``), ``sic_trend`` on
    ``trend_time`` (the year and ``spec.leads`` days after it), ``filled`` and ``polar_hole_km``.
    Returns the content hash, also stored as an attribute.
    """
    import zarr

    sic_reader = DailyReader(sic_paths, "sic")
    own_year = [p for p in sic_paths if Path(p).stem == str(year)]  # named in errors (not a trend year's file)
    every_day = sic_reader.days
    days = every_day[every_day.year == year]
    if not len(days):
        raise ValueError(f"{', '.join(map(str, sic_paths))}: no SIC days in {year}")
    if not (np.diff(days.values) == np.timedelta64(1, "D")).all():
        raise ValueError(f"{sic_paths[0]}: the SIC days of {year} are not contiguous")
    trend_days = pd.date_range(f"{year}-01-01", pd.Timestamp(f"{year}-12-31") + pd.Timedelta(days=spec.leads + 1), freq="D")
    missing = sorted({f.variable for f in spec.fields} - set(field_paths) - set(without))
    if missing:
        raise ValueError(f"{out_path}: the channels use {', '.join(missing)}, but no interim files were given for them")
    readers = {f.variable: DailyReader(field_paths[f.variable], f.variable) for f in spec.fields if f.variable not in without}
    stats = xr.open_dataset(statistics_path, engine="netcdf4")
    norm = json.loads(stats.attrs["normalisation"])
    land = stats["land"].values.astype(bool)
    ny, nx = land.shape
    digests: dict[str, hashlib._Hash] = {}
    manifest: dict[str, str] = {}  # chunk path -> sha256 of its values

    def record(array: zarr.Array, start: tuple[int, ...], values: np.ndarray) -> None:
        """``values`` fill the chunk of ``array`` that begins at ``start``: its manifest entry."""
        key = "/".join(str(i // c) for i, c in zip(start, array.chunks, strict=True))
        manifest[f"{array.basename}/c/{key}"] = _values_sha256(values)

    def put(array: zarr.Array, region: slice, values: np.ndarray) -> None:
        if values.ndim == 4:  # one channel at a time: zarr writes a region's chunks concurrently, and a
            for c in range(values.shape[1]):  # failed write must not leave writers behind the cleanup
                array[region, c] = values[:, c]
                record(array, (region.start or 0, c, 0, 0), values[:, c : c + 1])
        else:
            array[region] = values
            record(array, (region.start or 0,) + (0,) * (values.ndim - 1), values)
        digests.setdefault(array.basename, hashlib.sha256()).update(np.ascontiguousarray(values).tobytes())

    try:
        with atomic_path(out_path) as tmp:
            group = zarr.create_group(store=str(tmp), zarr_format=3)

            def create(name: str, shape: tuple, chunks: tuple, dims: tuple, dtype: str, attrs: dict | None = None) -> zarr.Array:
                fill = np.nan if np.dtype(dtype).kind == "f" else 0  # an absent float chunk reads as NaN, never as data
                return group.create_array(
                    name,
                    shape=shape,
                    chunks=chunks,
                    dtype=dtype,
                    dimension_names=dims,
                    attributes=attrs or {},
                    fill_value=fill,
                    config={"write_empty_chunks": True},  # every chunk on disk: an absent one is a fault
                )

            def coordinate(name: str, values: np.ndarray, attrs: dict) -> None:
                array = create(name, values.shape, values.shape, (name,), str(values.dtype), attrs)
                array[:] = values
                record(array, (0,), values)

            epoch = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian"}
            coordinate("time", ((days - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)).to_numpy(), epoch)
            coordinate("trend_time", ((trend_days - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)).to_numpy(), epoch)
            coordinate("yc", stats["yc"].values, {"units": "m", "standard_name": "projection_y_coordinate"})
            coordinate("xc", stats["xc"].values, {"units": "m", "standard_name": "projection_x_coordinate"})
            keys = [f.key for f in spec.fields]
            sic = create(
                "sic",
                (len(days), ny, nx),
                (chunk_days, ny, nx),
                ("time", "yc", "xc"),
                "float32",
                {"units": "1", "long_name": "SIC"},
            )
            fields = create(
                "fields",
                (len(days), len(keys), ny, nx),
                (chunk_days, 1, ny, nx),
                ("time", "channel", "yc", "xc"),
                "float32",
                {"channels": keys, "normalisation": {k: norm[k] for k in keys}, "absent": sorted(without)},
            )
            trend = create(
                "sic_trend",
                (len(trend_days), ny, nx),
                (chunk_days, ny, nx),
                ("trend_time", "yc", "xc"),
                "float32",
                {
                    "units": "1",
                    "long_name": f"SIC from a linear trend through the same day of {spec.sic_trend_years} years before",
                },
            )
            filled = create("filled", (len(days),), (len(days),), ("time",), "int8", {"long_name": "day filled in time"})
            hole = create("polar_hole_km", (len(days),), (len(days),), ("time",), "float32", {"units": "km"})
            meta = sic_reader.sources[0][2]
            has_hole = "polar_hole_km" in meta
            put(filled, slice(None), np.nan_to_num(sic_reader.read(days, "filled")).astype(np.int8))
            put(
                hole,
                slice(None),
                np.nan_to_num(sic_reader.read(days, "polar_hole_km")) if has_hole else np.zeros(len(days), np.float32),
            )

            for start in range(0, len(days), chunk_days):
                chunk = days[start : start + chunk_days]
                region = slice(start, start + len(chunk))
                values = sic_reader.read(chunk)
                _require_all(values, chunk, own_year or sic_paths, "sic", land)
                put(sic, region, np.where(land, 0.0, np.nan_to_num(values)).astype(np.float32))
                doy = chunk.day_of_year.to_numpy() - 1
                block = np.zeros((len(chunk), len(keys), ny, nx), np.float32)  # a variable without a source: 0
                for c, channel in enumerate(spec.fields):
                    if channel.variable in without:
                        continue
                    values = readers[channel.variable].read(chunk)
                    _require_all(values, chunk, field_paths[channel.variable], channel.variable, None)
                    if channel.transform == "anomaly":
                        values = values - stats[f"{channel.variable}_clim"].isel(dayofyear=doy).values
                    mean, std = norm[channel.key]
                    block[:, c] = (values - mean) / std
                    if catalogue_variable(channel.variable).fill.land == "mean":  # an ocean field means nothing on land
                        block[:, c][:, land] = 0.0
                put(fields, region, block)

            for start in range(0, len(trend_days), chunk_days):
                chunk = trend_days[start : start + chunk_days]
                region = slice(start, start + len(chunk))
                fallback = stats["sic_clim"].isel(dayofyear=chunk.day_of_year.to_numpy() - 1).values
                if spec.sic_trend_years:
                    years_back = range(1, spec.sic_trend_years + 1)
                    previous = np.stack([sic_reader.read(chunk - pd.DateOffset(years=n)) for n in years_back])
                    values = linear_trend(previous, fallback)
                else:
                    values = fallback
                put(trend, region, np.where(land, 0.0, np.nan_to_num(values)).astype(np.float32))

            store_hash = hashlib.sha256("".join(f"{k}:{digests[k].hexdigest()}" for k in sorted(digests)).encode()).hexdigest()
            persisted = {name: persisted_days(reader, days) for name, reader in readers.items()}
            persisted = {name: found for name, found in persisted.items() if found}
            if persisted:
                log.warning("%s: days persisting a source's newest data: %s", out_path, persisted)
            coast = {"sic": coast_fill_share(sic_reader, land)}
            coast.update({name: coast_fill_share(reader, land) for name, reader in readers.items()})
            if any(coast.values()):
                log.info("%s: share of ocean cells filled from the source's nearest ocean cell: %s", out_path, coast)
            group.attrs.update(
                {
                    "coast_fill_share": coast,
                    "persisted_days": persisted,
                    "hemisphere": hemisphere,
                    "year": year,
                    "cell_area_km2": cell_area_km2,
                    "floecast_version": __version__,
                    "training_years": stats.attrs["training_years"],
                    "sic_trend_years": spec.sic_trend_years,
                    "content_sha256": store_hash,
                    "chunk_sha256": manifest,
                }
            )
            with warnings.catch_warnings():  # consolidated metadata is a zarr-python extension to v3; xarray reads it
                warnings.simplefilter("ignore", category=UserWarning)
                zarr.consolidate_metadata(str(tmp))
    finally:
        sic_reader.close()
        for reader in readers.values():
            reader.close()
        stats.close()
    return store_hash


def persisted_days(reader: DailyReader, days: pd.DatetimeIndex) -> list[str]:
    """The days whose values persist the source's newest data (their ``persisted`` flag), as ISO dates."""
    if "persisted" not in reader.sources[0][2]:
        return []
    flags = np.nan_to_num(reader.read(days, "persisted")) > 0
    return [day.date().isoformat() for day in days[flags]]


def coast_fill_share(reader: DailyReader, land: np.ndarray) -> float:
    """Share of the observations' ocean cells that the source of ``reader``'s files does not define
    (its own land) and that were filled from its nearest defined cell (their ``source_land``)."""
    ds = reader.sources[0][2]
    if "source_land" not in ds:
        return 0.0
    ocean = ~land
    return round(float((ds["source_land"].values.astype(bool) & ocean).sum() / max(int(ocean.sum()), 1)), 4)


def _require_all(
    values: np.ndarray, days: pd.DatetimeIndex, paths: Sequence[str | Path], name: str, land: np.ndarray | None
) -> None:
    """Every day present and finite (over ocean for SIC): else name the file and the day."""
    bad = ~np.isfinite(values)
    if land is not None:
        bad &= ~land
    per_day = bad.reshape(len(days), -1).any(axis=1)
    if per_day.any():
        day = days[per_day][0].date()
        raise ValueError(f"{paths[0]}: {name} is missing or not finite on {day} (the store needs every day of the year)")


@dataclass
class StoreDays:
    """A store's days in memory, in compact dtypes, with the statistics' masks and climatology.

    ``trend`` starts on the first day and reaches ``leads + 1`` days past the last one (the trend
    needs no data of the days it describes), so a forecast from the day after the last stored day
    has its trend channels.
    """

    dates: pd.DatetimeIndex
    sic: np.ndarray  # (T, H, W) uint8 steps of 1 / SIC_STEPS
    trend: np.ndarray  # (T + leads + 1, H, W) uint8 steps
    fields: dict[str, np.ndarray]  # channel key -> (T, H, W) float16
    hole_km: np.ndarray  # (T,) float32, radius of the polar hole of each day
    land: np.ndarray  # (H, W) bool
    active: np.ndarray  # (12, H, W) bool: ice seen in that month in a training year
    sic_clim: np.ndarray  # (366, H, W) float32 by day of year
    yc: np.ndarray
    xc: np.ndarray
    attrs: dict = field(default_factory=dict)

    @cached_property
    def active_ocean(self) -> np.ndarray:
        """(12, H, W) bool: active cells of each month that are not land."""
        return self.active & ~self.land

    @cached_property
    def distance_km(self) -> np.ndarray:
        """(H, W) float32: each cell's distance from the pole (the polar hole is a disc around it)."""
        xx, yy = np.meshgrid(self.xc, self.yc)
        return (np.hypot(xx, yy) / 1000.0).astype(np.float32)

    def mask(self, months: np.ndarray, hole_km: np.ndarray) -> np.ndarray:
        """Active ocean of each month outside that day's polar hole: (*months.shape, H, W) bool, the
        cells the loss and the scores count."""
        return self.active_ocean[np.asarray(months) - 1] & (self.distance_km >= np.asarray(hole_km)[..., None, None])

    def lead(self, dates: pd.DatetimeIndex, k: int) -> dict[str, np.ndarray]:
        """One lead's fields for verification, numpy float32 (n, H, W): the observed SIC of D + k,
        its mask (active ocean outside the polar hole), the climatology of D + k and of D - 1, the
        latest SIC (D - 1) and the trend channel of D + k."""
        base = ((dates - self.dates[0]) // pd.Timedelta(days=1)).to_numpy()
        short = (base < 1) | (base > len(self.dates))
        if short.any():
            raise KeyError(
                f"init date {dates[short][0].date()} needs its day before in the store "
                f"({self.dates[0].date()} .. {self.dates[-1].date()})"
            )
        idx = base + k
        if (idx >= len(self.dates)).any():
            raise KeyError(f"init date {dates[-1].date()}: lead {k} runs past the store's last day {self.dates[-1].date()}")
        target_days = dates + pd.Timedelta(days=k)
        return {
            "observed": self.sic[idx].astype(np.float32) / SIC_STEPS,
            "mask": self.mask(target_days.month.to_numpy(), self.hole_km[idx]),
            "clim_target": self.sic_clim[target_days.day_of_year.to_numpy() - 1],
            "clim_latest": self.sic_clim[(dates - pd.Timedelta(days=1)).day_of_year.to_numpy() - 1],
            "latest": self.sic[base - 1].astype(np.float32) / SIC_STEPS,
            "trend": self.trend[idx].astype(np.float32) / SIC_STEPS,
        }


def read_store(
    paths: str | Path | Sequence[str | Path],
    statistics: str | Path | None = None,
    *,
    leads: int,
    fields: Sequence[str] = (),
    sic_trend_years: int = 0,
) -> StoreDays:
    """Read the parts (contiguous days) and the statistics file (default: beside the parts).

    ``fields`` names the field channels to read (a part lacking one is an error naming it); a non-zero
    ``sic_trend_years`` must be the parts' trend years; ``leads`` is how far past the last day the
    trend is needed.
    """
    parts = store_parts(paths)
    statistics = Path(statistics) if statistics else default_statistics(parts)
    with xr.open_dataset(statistics, engine="netcdf4") as stats:
        land = stats["land"].values.astype(bool)
        active = stats["active"].values.astype(bool)
        sic_clim = stats["sic_clim"].values.astype(np.float32)
        yc, xc = stats["yc"].values, stats["xc"].values
    days, sic, channels, hole, trend, hashes = [], [], {key: [] for key in fields}, [], [], []
    trend_days: list[pd.DatetimeIndex] = []
    attrs: dict = {}
    for part in parts:
        reader = PartReader(part)  # every chunk read is checked against the part's manifest
        part_attrs = reader.attrs
        keys = list(reader.group["fields"].attrs["channels"])
        if sic_trend_years and part_attrs.get("sic_trend_years") != sic_trend_years:
            raise ValueError(
                f"{part}: its trend channel uses {part_attrs.get('sic_trend_years')} years, the model "
                f"{sic_trend_years} (channels.sic_trend_years); rebuild the store"
            )
        for key in fields:
            if key not in keys:
                raise KeyError(f"{part}: no channel {key} (it has {', '.join(keys)}); rebuild the store")
        days.append(reader.days())
        sic.append(to_sic_steps(reader.read("sic")))
        if fields:
            values = reader.read("fields")
            for key in fields:
                channels[key].append(values[:, keys.index(key)].astype(np.float16))
        hole.append(reader.read("polar_hole_km").astype(np.float32))
        trend.append(to_sic_steps(reader.read("sic_trend")))
        trend_days.append(reader.days("trend_time"))
        reader.check_whole()
        hashes.append(part_attrs["content_sha256"])
        attrs = {key: value for key, value in part_attrs.items() if key != "chunk_sha256"}
    dates = days[0].append(days[1:]) if len(days) > 1 else days[0]
    if len(dates) and not (np.diff(dates.values) == np.timedelta64(1, "D")).all():
        gap = int(np.flatnonzero(np.diff(dates.values) != np.timedelta64(1, "D"))[0])
        raise ValueError(f"{parts[0].parent}: the store's days are not contiguous after {dates[gap].date()}")
    attrs["content_sha256"] = combined_hash(hashes)
    attrs["parts"] = [p.name for p in parts]
    wanted = pd.date_range(dates[0], dates[-1] + pd.Timedelta(days=leads + 1), freq="D")
    return StoreDays(
        dates,
        sic=np.concatenate(sic),
        trend=_trend_on(wanted, trend_days, trend, parts),
        fields={key: np.concatenate(v) for key, v in channels.items()},
        hole_km=np.concatenate(hole),
        land=land,
        active=active,
        sic_clim=sic_clim,
        yc=yc,
        xc=xc,
        attrs=attrs,
    )


def _trend_on(
    wanted: pd.DatetimeIndex, trend_days: list[pd.DatetimeIndex], trend: list[np.ndarray], parts: Sequence[Path]
) -> np.ndarray:
    """The trend channel on ``wanted`` days: each part's own year, then the last part's days after it."""
    out = np.zeros((len(wanted), *trend[0].shape[1:]), np.uint8)
    have = np.zeros(len(wanted), bool)
    for days, values in zip(trend_days, trend, strict=True):  # in order: a part's own year wins over the extension before it
        idx = wanted.get_indexer(days)
        ok = idx >= 0
        out[idx[ok]] = values[ok]
        have[idx[ok]] = True
    if not have.all():
        raise KeyError(f"{parts[-1]}: the trend channel does not reach {wanted[~have][0].date()} (rebuild with more leads)")
    return out
