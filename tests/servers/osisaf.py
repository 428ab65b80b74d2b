"""The OSI SAF services of the product chain on 127.0.0.1: a THREDDS fileServer and an FTP
server, with a helper that publishes a product's file for a day where the chain's URL
template says it lies, in the product's layout (25 km EASE2, or 10 km polar stereographic)."""

from __future__ import annotations

import datetime as dt
import shutil
import string
from pathlib import Path
from typing import Self

import numpy as np

from floecast.grid import Ease2Grid
from floecast.sources.osisaf import EPOCH, POLSTERE_GRIDS, STATUS_LAND, write_osisaf_file, write_polstere_file
from floecast.sources.sicchain import SicChain, SicProduct
from floecast.sources.synthetic import idealised_land

from .ftp import FtpServer
from .thredds import ThreddsServer


def server_key(product: SicProduct) -> str:
    """The server a product's template starts with (``thredds`` or ``ftp``)."""
    first = next(name for _, name, _, _ in string.Formatter().parse(product.url) if name)
    return first


def sic_field(lon: np.ndarray, lat: np.ndarray, day: dt.date, hemisphere: str = "north") -> tuple[np.ndarray, np.ndarray]:
    """Ice poleward of 65 degrees (SIC linear in latitude, drifting slowly with the day), idealised land; (sic, flag)."""
    k = (day - dt.date(2020, 1, 1)).days
    edge = 65.0 + 3.0 * np.sin(2 * np.pi * k / 365.25)
    sic = np.clip((np.abs(lat) - edge) / 10.0, 0.0, 1.0)
    land = idealised_land(lon, lat, hemisphere)
    return np.where(land, np.nan, sic), np.where(land, STATUS_LAND, 0).astype(np.int16)


class OsisafServers:
    """THREDDS + FTP for a chain; a context manager."""

    def __init__(self, root: str | Path, chain: SicChain | None = None) -> None:
        self.root = Path(root)
        self.thredds = ThreddsServer(self.root / "thredds")
        self.ftp = FtpServer(self.root / "ftp")
        self._chain = chain or SicChain.default()

    def __enter__(self) -> Self:
        self.thredds.start()
        self.ftp.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ftp.stop()
        self.thredds.stop()

    @property
    def servers(self) -> dict[str, str]:
        return {"thredds": self.thredds.base_url, "ftp": self.ftp.base_url}

    @property
    def chain(self) -> SicChain:
        """The chain pointed at these servers."""
        return self._chain.with_servers(self.servers)

    def server_for(self, product: SicProduct) -> ThreddsServer | FtpServer:
        return self.ftp if server_key(product) == "ftp" else self.thredds

    def relpath(self, product: SicProduct, hemisphere: str, day: dt.date) -> str:
        """The file's path below its server's root."""
        empty = {key: "" for key in self.chain.servers}
        return product.url_for(empty, hemisphere, day).lstrip("/")

    def publish(
        self,
        product: SicProduct | str,
        hemisphere: str,
        day: dt.date,
        sic: np.ndarray | None = None,
        flag: np.ndarray | None = None,
        grid: Ease2Grid | None = None,
    ) -> Path:
        """Write ``product``'s file for ``day`` on its server (an idealised field unless ``sic`` is given)."""
        product = self.chain.product(product) if isinstance(product, str) else product
        path = self.server_for(product).path(self.relpath(product, hemisphere, day))
        if product.grid == "polstere-100":
            lon, lat = POLSTERE_GRIDS[hemisphere].lonlat
            field, land = sic_field(lon, lat, day, hemisphere)
            write_polstere_file(path, hemisphere, day, field if sic is None else sic, land if flag is None else flag, product)
            return path
        grid = grid or Ease2Grid(hemisphere, 1)
        field, land = sic_field(grid.lon, grid.lat, day, hemisphere)
        write_osisaf_file(path, grid, day, field if sic is None else sic, land if flag is None else flag, product)
        return path

    def publish_copy(self, template: Path, product: SicProduct | str, hemisphere: str, day: dt.date) -> Path:
        """Publish a copy of ``template`` (a file this server wrote) as ``product``'s file for ``day``, with that
        day's time and coverage: much faster than writing a field for every day of a long record."""
        import netCDF4

        product = self.chain.product(product) if isinstance(product, str) else product
        path = self.server_for(product).path(self.relpath(product, hemisphere, day))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        shutil.copy(template, tmp)
        with netCDF4.Dataset(tmp, "a") as nc:
            centre = (dt.datetime.combine(day, dt.time(12)) - EPOCH).total_seconds()
            nc["time"][0] = centre
            nc["time_bnds"][0, :] = [centre - 43200.0, centre + 43200.0]
            nc.time_coverage_start = f"{day:%Y%m%d}T000000Z"
            nc.time_coverage_end = f"{day:%Y%m%d}T235959Z"
        tmp.rename(path)  # the server never serves a half-written file
        return path

    def requests(self, product: SicProduct | str, hemisphere: str, day: dt.date) -> int:
        """Downloads of a product's file for ``day`` so far."""
        product = self.chain.product(product) if isinstance(product, str) else product
        rel = self.relpath(product, hemisphere, day)
        server = self.server_for(product)
        return server.retrievals(rel) if isinstance(server, FtpServer) else server.requests_for(rel)
