"""Exports of a forecast file for users outside NetCDF: GeoTIFFs for GIS, and a regular lat/lon grid.

``to_geotiff`` writes one single-band GeoTIFF per (field, lead) in the forecast's own EASE2 CRS, so a GIS layer is
one quantity on one valid day, carries its own nodata and description, and no resampling touches the values.
``to_latlon`` resamples mean, std and SIP onto a regular lat/lon grid for tools that need one.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from floecast import __version__
from floecast.io import atomic_path, write_netcdf

GEOTIFF_NODATA = -9999.0  # a number, not NaN: every GIS reads it (the fields are fractions 0-1)
GEOTIFF_FIELDS = {"sic_mean": ("sic", "mean"), "sip": ("sip", None)}  # file name part -> (variable, quantity)
LATLON_FIELDS = ("sic", "sip")


def _crs(ds: xr.Dataset) -> pyproj.CRS:
    """The forecast's CRS, from its grid mapping's ``crs_wkt`` (EPSG:6931 north, EPSG:6932 south)."""
    return pyproj.CRS.from_wkt(ds[ds["sic"].attrs["grid_mapping"]].attrs["crs_wkt"])


def _spacing(values: np.ndarray, name: str) -> float:
    """The constant step of a cell-centre axis; GeoTIFF and the interpolation below need a regular grid."""
    steps = np.diff(values)
    if not np.allclose(steps, steps[0], rtol=0, atol=1e-6 * abs(steps[0])):
        raise ValueError(f"{name} is not evenly spaced")
    return float(steps[0])


def geotransform(xc: np.ndarray, yc: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """GDAL geotransform (x0, dx, 0, y0, 0, dy) of cell centres ``xc``/``yc``: (x0, y0) is the outer corner of the
    first cell, half a cell beyond its centre, so pixel centres land exactly on the centres."""
    dx, dy = _spacing(xc, "xc"), _spacing(yc, "yc")
    return (float(xc[0]) - dx / 2, dx, 0.0, float(yc[0]) - dy / 2, 0.0, dy)


def _select_leads(ds: xr.Dataset, leads: Sequence[int] | None) -> list[int]:
    available = [int(k) for k in ds["leadtime"].values]
    if leads is None:
        return available
    missing = sorted(set(map(int, leads)) - set(available))
    if missing:
        raise ValueError(f"leads {missing} are not in the forecast (leads {available[0]}-{available[-1]})")
    return [int(k) for k in leads]


def to_geotiff(
    forecast_nc: str | os.PathLike[str], out_dir: str | os.PathLike[str], leads: Sequence[int] | None = None
) -> list[Path]:
    """Ensemble mean SIC and SIP of each lead as ``<init>_<sic_mean|sip>_lead<k>.tif``, nodata over land.

    Float32, deflate-compressed, tiled; each file is written under a temporary name and renamed, so a file with
    the final name is always complete. Returns the paths, lead by lead.
    """
    import rasterio  # an optional extra (floecast[gis]); to_latlon does without it
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    out_dir = Path(out_dir)
    with xr.open_dataset(forecast_nc, engine="netcdf4") as ds:
        ds = ds.load()
    epsg = _crs(ds).to_epsg()
    if epsg is None:
        raise ValueError(f"{forecast_nc}: the grid mapping's crs_wkt has no EPSG code")
    transform = Affine.from_gdal(*geotransform(ds["xc"].values, ds["yc"].values))
    init = pd.Timestamp(ds["time"].values[0])
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": 1,
        "height": ds.sizes["yc"],
        "width": ds.sizes["xc"],
        "crs": CRS.from_epsg(epsg),
        "transform": transform,
        "nodata": GEOTIFF_NODATA,
        "compress": "deflate",
        "predictor": 3,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    land = ds["land"].values.astype(bool)
    paths = []
    for lead in _select_leads(ds, leads):
        valid = pd.Timestamp(ds["valid_time"].sel(leadtime=lead).values)
        for part, (variable, quantity) in GEOTIFF_FIELDS.items():
            field = ds[variable].isel(time=0).sel(leadtime=lead)
            field = field.sel(quantity=quantity) if quantity else field
            values = field.values.astype(np.float32)
            values = np.where(land | ~np.isfinite(values), np.float32(GEOTIFF_NODATA), values)
            what = f"{variable} {quantity}" if quantity else variable
            path = out_dir / f"{init:%Y-%m-%d}_{part}_lead{lead:03d}.tif"
            with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
                dst.write(values, 1)
                dst.set_band_description(1, f"{what}, lead {lead} d, valid {valid:%Y-%m-%d}")
                attrs = ds[variable].attrs
                dst.update_tags(1, variable=variable, quantity=quantity or "", units=attrs.get("units", ""))
                dst.update_tags(1, long_name=attrs.get("long_name", ""), standard_name=attrs.get("standard_name", ""))
                dst.update_tags(init_date=f"{init:%Y-%m-%d}", valid_date=f"{valid:%Y-%m-%d}", lead_days=str(lead))
                dst.update_tags(model_run=str(ds.attrs.get("model_run", "")), source=Path(forecast_nc).name)
            paths.append(path)
    return paths


def _latlon_axes(hemisphere: str, resolution: float, lat_limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre latitudes (ascending, from ``lat_limit`` to the pole) and longitudes (-180 to 180)."""
    n_lat = int(np.ceil((90.0 - lat_limit) / resolution - 1e-9))
    n_lon = int(round(360.0 / resolution))
    if n_lat < 1 or not np.isclose(n_lon * resolution, 360.0):
        raise ValueError(f"resolution_deg {resolution} must divide 360 and leave a row below the pole (lat_limit {lat_limit})")
    north = 90.0 - (np.arange(n_lat)[::-1] + 0.5) * resolution  # ascending, the last row next to the pole
    lat = north if hemisphere == "north" else -north[::-1]
    lon = -180.0 + (np.arange(n_lon) + 0.5) * resolution
    return lat, lon


def _bounds(centres: np.ndarray, resolution: float) -> np.ndarray:
    return np.stack([centres - resolution / 2, centres + resolution / 2], axis=-1)


class _Resampler:
    """Where each target point falls in the EASE2 grid: its bilinear neighbours and weights, and its containing cell.

    Bilinear needs all four neighbours finite; where one is land (the coast) or the point lies between the outermost
    centres and the grid's edge, the containing cell's value is used instead, so the land mask stays the EASE2 one.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, xc: np.ndarray, yc: np.ndarray) -> None:
        fx = (x - xc[0]) / _spacing(xc, "xc")  # fractional column and row of every point
        fy = (y - yc[0]) / _spacing(yc, "yc")
        nx, ny = len(xc), len(yc)
        self.i0 = np.clip(np.floor(fx).astype(np.int64), 0, nx - 2)
        self.j0 = np.clip(np.floor(fy).astype(np.int64), 0, ny - 2)
        self.wx, self.wy = fx - self.i0, fy - self.j0
        self.inside_centres = (fx >= 0) & (fx <= nx - 1) & (fy >= 0) & (fy <= ny - 1)
        self.ic, self.jc = np.rint(fx).astype(np.int64), np.rint(fy).astype(np.int64)
        self.inside_cells = (fx >= -0.5) & (fx < nx - 0.5) & (fy >= -0.5) & (fy < ny - 0.5)
        self.ic, self.jc = np.clip(self.ic, 0, nx - 1), np.clip(self.jc, 0, ny - 1)

    def __call__(self, field: np.ndarray, method: str) -> np.ndarray:
        """``field`` (..., yc, xc) at the target points (..., points); NaN outside the grid and over land."""
        nearest = np.where(self.inside_cells, field[..., self.jc, self.ic], np.nan)
        if method == "nearest":
            return nearest
        i0, j0, wx, wy = self.i0, self.j0, self.wx, self.wy
        linear = (
            (1 - wx) * (1 - wy) * field[..., j0, i0]
            + wx * (1 - wy) * field[..., j0, i0 + 1]
            + (1 - wx) * wy * field[..., j0 + 1, i0]
            + wx * wy * field[..., j0 + 1, i0 + 1]
        )
        linear = np.where(self.inside_centres, linear, np.nan)
        return np.where(np.isfinite(linear), linear, nearest)


def to_latlon(
    forecast_nc: str | os.PathLike[str],
    out_nc: str | os.PathLike[str],
    resolution_deg: float = 0.25,
    lat_limit: float | None = None,
    method: Literal["linear", "nearest"] = "linear",
) -> xr.Dataset:
    """The forecast's ``sic`` (mean, std) and ``sip`` on a regular lat/lon grid (CF-1.8), for tools without EASE2.

    Rows run from ``lat_limit`` (absolute latitude of the equatorward edge; default: the lowest cell-centre latitude
    of the grid, rounded down to the resolution) to the pole; columns from -180 to 180. Each point takes the bilinear
    interpolation of the EASE2 cell centres around it (``method="nearest"``: the value of the cell it lies in); NaN
    over land and outside the EASE2 grid.
    """
    if not resolution_deg > 0:
        raise ValueError(f"resolution_deg must be positive, got {resolution_deg}")
    if method not in ("linear", "nearest"):
        raise ValueError(f"method must be 'linear' or 'nearest', got {method!r}")
    with xr.open_dataset(forecast_nc, engine="netcdf4") as source:
        src = source.load()
    crs = _crs(src)
    mapping = src[src["sic"].attrs["grid_mapping"]].attrs
    hemisphere = "north" if mapping["latitude_of_projection_origin"] > 0 else "south"
    if lat_limit is None:
        lowest = float(np.abs(src["lat"].values).min())
        lat_limit = np.floor(lowest / resolution_deg) * resolution_deg
    lat, lon = _latlon_axes(hemisphere, resolution_deg, abs(lat_limit))
    lon2, lat2 = np.meshgrid(lon, lat)
    to_grid = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = to_grid.transform(lon2.ravel(), lat2.ravel())
    resample = _Resampler(np.asarray(x), np.asarray(y), src["xc"].values, src["yc"].values)

    variables = {}
    for name in LATLON_FIELDS:
        da = src[name]
        fields = da.values.reshape(-1, *da.shape[-2:])
        values = np.empty((len(fields), len(lat) * len(lon)), np.float32)
        for k, field in enumerate(fields):  # one field at a time: 93 leads x 0.25 degrees would need GBs at once
            values[k] = resample(field.astype(np.float64), method)
        dims = (*da.dims[:-2], "lat", "lon")
        attrs = {k: v for k, v in da.attrs.items() if k not in ("grid_mapping", "ancillary_variables", "cell_methods")}
        variables[name] = (dims, values.reshape(*da.shape[:-2], len(lat), len(lon)), attrs)
    keep = ("time", "leadtime", "forecast_period", "valid_time", "quantity", "sic_threshold")
    coords = {name: src[name].variable for name in keep}
    coords["lat"] = (
        "lat",
        lat,
        {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y", "bounds": "lat_bnds"},
    )
    coords["lon"] = (
        "lon",
        lon,
        {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X", "bounds": "lon_bnds"},
    )
    variables["lat_bnds"] = (("lat", "bnds"), _bounds(lat, resolution_deg), {})
    variables["lon_bnds"] = (("lon", "bnds"), _bounds(lon, resolution_deg), {})
    ds = xr.Dataset(variables, coords=coords, attrs=_latlon_attrs(src.attrs, lat, lon, resolution_deg, method, forecast_nc))
    for name, da in (("sic", src["sic"]), ("sip", src["sip"])):
        names = [c for c in da.encoding.get("coordinates", "").split() if c in ds.coords and c not in ("lat", "lon")]
        ds[name].encoding.update(zlib=True, complevel=4, _FillValue=np.float32(np.nan), coordinates=" ".join(names))
    for name in ("lat", "lon", "lat_bnds", "lon_bnds", "leadtime", "forecast_period", "sic_threshold"):
        ds[name].encoding["_FillValue"] = None
    for name in ("lat_bnds", "lon_bnds"):  # cell bounds: no auxiliary coordinates (xarray would add sic_threshold)
        ds[name].encoding["coordinates"] = None
    for name in ("time", "valid_time"):
        ds[name].encoding.update(units="days since 1970-01-01", calendar="standard", dtype="int32")
    ds["quantity"].encoding.update(dtype="S1", char_dim_name="quantity_strlen")
    write_netcdf(ds, out_nc)
    return ds


def _latlon_attrs(
    attrs: Mapping[Any, Any], lat: np.ndarray, lon: np.ndarray, resolution: float, method: str, source: str | os.PathLike[str]
) -> dict[Any, Any]:
    """The forecast's global attributes with the extent, history and id of the lat/lon copy."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    south, north = (f"{v:g}" for v in (lat[0] - resolution / 2, lat[-1] + resolution / 2))  # the cells' outer edges
    how = "bilinear; at the coast, the value of the containing cell" if method == "linear" else "value of the containing cell"
    out = dict(attrs)
    out.update(
        {
            "title": f"{attrs.get('title', 'floecast forecast')}, on a {resolution:g} degree lat/lon grid",
            "id": f"{attrs.get('id', Path(source).stem)}_latlon{resolution:g}",
            "summary": f"{attrs.get('summary', '')} Resampled to a {resolution:g} degree lat/lon grid.".strip(),
            "comment": f"Resampled from the EASE2 grid of {Path(source).name} ({how}); NaN over land and outside the EASE2 "
            "grid. Lead k is valid on the init date (time) + k days.",
            "history": f"{attrs.get('history', '')}\n{now} floecast {__version__} to_latlon {resolution:g} deg {method}".strip(),
            "date_created": now,
            "date_modified": now,
            "date_metadata_modified": now,
            "geospatial_lat_min": float(lat[0]),  # cell centres, as in the forecast file
            "geospatial_lat_max": float(lat[-1]),
            "geospatial_lon_min": float(lon[0]),
            "geospatial_lon_max": float(lon[-1]),
            "geospatial_bounds": f"POLYGON(({south} -180, {south} 180, {north} 180, {north} -180, {south} -180))",  # lat lon
            "geospatial_bounds_crs": "EPSG:4326",
            "geospatial_lat_resolution": f"{resolution:g} degree",
            "geospatial_lon_resolution": f"{resolution:g} degree",
        }
    )
    return out
