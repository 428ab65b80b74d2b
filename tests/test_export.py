"""GeoTIFF and lat/lon exports of the forecast: CRS, geotransform, values, nodata, and a known field resampled."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr
from conftest import TinyData
from test_forecast_file import INIT, LEADS, assert_compliant, climatology_members, write_members

from floecast.combine import combine_forecast
from floecast.export import GEOTIFF_NODATA, geotransform, to_geotiff, to_latlon
from floecast.grid import Ease2Grid

EDGE_M = 5_400_000.0  # the EASE2 grid's outer edge (432 cells of 25 km)


def linear(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A field linear in EASE2 x, y (0.175 ... 0.925, all ice): bilinear interpolation reproduces it exactly."""
    return 0.55 + x / (4 * EDGE_M) + y / (8 * EDGE_M)


@pytest.fixture(scope="module")
def forecast(tiny_data: TinyData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    out = root / "forecast.nc"
    combine_forecast(climatology_members(tiny_data, root / "members"), tiny_data.store, tiny_data.grid, "tiny", out)
    return out


def linear_forecast(tiny_data: TinyData, root: Path, land: bool) -> Path:
    """Every member's SIC is ``linear`` at every lead; ``land=False`` replaces the land mask by all-ocean."""
    grid = tiny_data.grid
    with xr.open_dataset(tiny_data.statistics) as stats:
        stats = stats.load()
    if not land:
        stats["land"][:] = 0
    stats.to_netcdf(root / "statistics.nc")
    xx, yy = np.meshgrid(grid.xc, grid.yc)
    field = np.broadcast_to(linear(xx, yy), (len(LEADS), *xx.shape))
    members = write_members(root / "members", grid, stats["land"].values.astype(bool), lambda k: field)
    out = root / "forecast.nc"
    combine_forecast(members, tiny_data.store, grid, "tiny", out, statistics=root / "statistics.nc")
    return out


def as_south(forecast: Path, out: Path) -> Path:
    """The same file said to be on the south grid (same xc/yc): only the CRS and lat/lon change."""
    south = Ease2Grid("south", 27)
    with xr.open_dataset(forecast) as ds:
        ds = ds.load()
    ds["Lambert_Azimuthal_Grid"].attrs.update(south.grid_mapping_attrs())
    lon, lat = south.lonlat
    for name, values in (("lat", lat), ("lon", lon)):
        ds = ds.assign_coords({name: (("yc", "xc"), values.astype(np.float32), ds[name].attrs)})
    ds.attrs["hemisphere"] = "south"
    ds.to_netcdf(out)
    return out


def test_geotiff_crs_transform_values_nodata(forecast: Path, tmp_path: Path) -> None:
    rasterio = pytest.importorskip("rasterio")
    out_dir = tmp_path / "tif"
    paths = to_geotiff(forecast, out_dir)
    expected = [out_dir / f"{INIT:%Y-%m-%d}_{part}_lead{k:03d}.tif" for k in LEADS for part in ("sic_mean", "sip")]
    assert paths == expected
    assert sorted(out_dir.iterdir()) == sorted(expected)  # no temporary files left
    with xr.open_dataset(forecast) as ds:
        land = ds["land"].values.astype(bool)
        fields = {"sic_mean": ds["sic"].isel(time=0).sel(quantity="mean").values, "sip": ds["sip"].isel(time=0).values}
        xc, yc = ds["xc"].values, ds["yc"].values
    for path in paths:
        part, lead = path.stem.split("_", 1)[1].rsplit("_lead", 1)
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 6931 and src.count == 1 and src.dtypes == ("float32",)
            assert (src.width, src.height) == (len(xc), len(yc))
            rows, cols = np.meshgrid(np.arange(src.height), np.arange(src.width), indexing="ij")
            x, y = (np.reshape(v, rows.shape) for v in rasterio.transform.xy(src.transform, rows, cols, offset="center"))
            np.testing.assert_array_equal(x, np.broadcast_to(xc, x.shape))  # pixel centres are the cell centres, exactly
            np.testing.assert_array_equal(y, np.broadcast_to(yc[:, None], y.shape))
            assert src.nodata == GEOTIFF_NODATA
            values = src.read(1)
            np.testing.assert_array_equal(values[~land], fields[part][int(lead) - 1][~land])
            assert (values[land] == GEOTIFF_NODATA).all()
            assert src.read(1, masked=True).mask.tolist() == land.tolist()
            assert src.tags()["valid_date"] == f"{INIT + pd.Timedelta(days=int(lead)):%Y-%m-%d}"


def test_geotiff_transform_of_the_25km_grid() -> None:
    grid = Ease2Grid("north")
    assert geotransform(grid.xc, grid.yc) == (-EDGE_M, 25_000.0, 0.0, EDGE_M, 0.0, -25_000.0)


def test_geotiff_leads_and_south(forecast: Path, tmp_path: Path) -> None:
    rasterio = pytest.importorskip("rasterio")
    paths = to_geotiff(as_south(forecast, tmp_path / "south.nc"), tmp_path / "tif", leads=[7])
    assert [p.name for p in paths] == [f"{INIT:%Y-%m-%d}_sic_mean_lead007.tif", f"{INIT:%Y-%m-%d}_sip_lead007.tif"]
    with rasterio.open(paths[0]) as src:
        assert src.crs.to_epsg() == 6932
    with pytest.raises(ValueError, match=r"leads \[11\] are not in the forecast"):
        to_geotiff(forecast, tmp_path / "tif", leads=[1, 11])


def _expected(out: xr.Dataset, crs: pyproj.CRS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``linear`` at every lat/lon point of ``out``, and the EASE2 x, y of each point."""
    lon, lat = np.meshgrid(out["lon"].values, out["lat"].values)
    x, y = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return linear(x, y), x, y


def test_latlon_reproduces_a_linear_field(tiny_data: TinyData, tmp_path: Path) -> None:
    grid = tiny_data.grid
    out = to_latlon(linear_forecast(tiny_data, tmp_path, land=False), tmp_path / "latlon.nc", resolution_deg=1.0, lat_limit=10)
    truth, x, y = _expected(out, grid.crs)
    mean = out["sic"].isel(time=0).sel(quantity="mean").values
    between_centres = (np.abs(x) <= grid.xc[-1]) & (np.abs(y) <= grid.xc[-1])
    inside = (np.abs(x) < EDGE_M) & (np.abs(y) < EDGE_M)
    assert between_centres.sum() > 1000 and (~inside).sum() > 1000  # lat 10 lies beyond the grid's corners
    # between the outermost centres and the grid's edge: the value of the cell the point lies in
    edge_band = inside & ~between_centres
    col = np.rint((x[edge_band] - grid.xc[0]) / grid.cell_m).astype(int)
    row = np.rint((grid.yc[0] - y[edge_band]) / grid.cell_m).astype(int)
    for lead in range(len(LEADS)):
        np.testing.assert_allclose(mean[lead][between_centres], truth[between_centres], atol=1e-6)
        np.testing.assert_allclose(mean[lead][edge_band], linear(grid.xc[col], grid.yc[row]), atol=1e-6)
        assert np.isnan(mean[lead][~inside]).all()
    np.testing.assert_allclose(out["sic"].sel(quantity="std").values[..., between_centres], 0.0, atol=1e-6)
    np.testing.assert_allclose(out["sip"].values[..., between_centres], 1.0)


def test_latlon_keeps_the_land_mask(tiny_data: TinyData, tmp_path: Path) -> None:
    grid = tiny_data.grid
    out = to_latlon(linear_forecast(tiny_data, tmp_path, land=True), tmp_path / "latlon.nc", resolution_deg=1.0)
    truth, x, y = _expected(out, grid.crs)
    with xr.open_dataset(tiny_data.statistics) as stats:
        land = stats["land"].values.astype(bool)
    inside = (np.abs(x) < EDGE_M) & (np.abs(y) < EDGE_M)
    col = np.clip(np.rint((x - grid.xc[0]) / grid.cell_m).astype(int), 0, grid.size - 1)  # the cell each point lies in
    row = np.clip(np.rint((grid.yc[0] - y) / grid.cell_m).astype(int), 0, grid.size - 1)
    on_land = inside & land[row, col]
    c0 = np.clip(np.floor((x - grid.xc[0]) / grid.cell_m).astype(int), 0, grid.size - 2)
    r0 = np.clip(np.floor((grid.yc[0] - y) / grid.cell_m).astype(int), 0, grid.size - 2)
    open_sea = ~(land[r0, c0] | land[r0, c0 + 1] | land[r0 + 1, c0] | land[r0 + 1, c0 + 1])
    open_sea &= (np.abs(x) <= grid.xc[-1]) & (np.abs(y) <= grid.xc[-1])
    coast = inside & ~on_land & ~open_sea
    assert on_land.any() and open_sea.any() and coast.any() and (~inside).any()
    mean = out["sic"].isel(time=0, leadtime=0).sel(quantity="mean").values
    assert np.isnan(mean[on_land | ~inside]).all()
    np.testing.assert_allclose(mean[open_sea], truth[open_sea], atol=1e-6)
    xx, yy = np.meshgrid(grid.xc, grid.yc)
    np.testing.assert_allclose(mean[coast], linear(xx, yy)[row, col][coast], atol=1e-6)  # the containing cell's value


def test_latlon_file_is_cf(forecast: Path, tmp_path: Path) -> None:
    out = tmp_path / "latlon.nc"
    to_latlon(forecast, out, resolution_deg=0.5)
    with xr.open_dataset(out) as ds:
        assert ds["sic"].dims == ("time", "leadtime", "quantity", "lat", "lon")
        assert ds["sip"].dims == ("time", "leadtime", "lat", "lon")
        assert ds["lat"].attrs["units"] == "degrees_north" and ds["lon"].attrs["units"] == "degrees_east"
        lat, lon = ds["lat"].values, ds["lon"].values
        np.testing.assert_allclose(np.diff(lat), 0.5)
        np.testing.assert_allclose(np.diff(lon), 0.5)
        assert lat[-1] == 89.75 and lon[0] == -179.75 and lon[-1] == 179.75
        assert ds.attrs["model_run"] == "tiny" and "to_latlon" in ds.attrs["history"]
        assert "grid_mapping" not in ds["sic"].attrs
    with netCDF4.Dataset(out) as nc:  # bounds carry no auxiliary coordinates
        assert "coordinates" not in nc["lat_bnds"].ncattrs() and "coordinates" not in nc["lon_bnds"].ncattrs()
    assert_compliant(out)


def test_latlon_south(forecast: Path, tmp_path: Path) -> None:
    out = to_latlon(as_south(forecast, tmp_path / "south.nc"), tmp_path / "latlon.nc", resolution_deg=1.0, method="nearest")
    lat = out["lat"].values
    assert lat[0] == -89.5 and (lat < 0).all() and (np.diff(lat) > 0).all()
    with xr.open_dataset(forecast) as ds:
        ocean = np.isfinite(ds["sic"].values)
        values = ds["sic"].values[ocean]
    resampled = out["sic"].values
    assert np.isfinite(resampled).any()
    assert np.isin(resampled[np.isfinite(resampled)], values).all()  # nearest: only values of the EASE2 cells
