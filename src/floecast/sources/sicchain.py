"""The chain of sea-ice concentration products, as declared in the config (``osisaf.products``).

Each product has a period (first and last day it serves; an open end for the current one),
a URL template, its product id and version, the names of its variables, its grid, its
expected latency and, for a stand-in such as the OSI-438 fast-track files, the product
that replaces it later (``replaced_by``). The products without ``replaced_by`` (the
primary ones) must cover the chain's period without gap or overlap; a stand-in serves a
day only until the product that replaces it has that day. Adding a product (the next
sensor) is a config entry: nothing here names a product.

URL templates are Python format strings with the fields ``{<server>}`` (a key of
``osisaf.servers``, e.g. ``{thredds}`` or ``{ftp}``), ``{hemi}`` (``nh``/``sh``) and
``{date:<strftime>}``; the file name (the last path part) must end with the day as
``_YYYYMMDD`` followed by the rest of the name, as every OSI SAF daily file does
(``..._YYYYMMDD1200.nc``).
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any

HEMI_CODE = {"north": "nh", "south": "sh"}
SCHEMES = ("http://", "https://", "ftp://")
GRIDS = ("ease2-250", "polstere-100")
DEFAULT_VARIABLES = {"ice_conc": "ice_conc", "status_flag": "status_flag"}
_PROBE_DAY = dt.date(2003, 11, 27)  # any day whose parts all differ (year, month, day)


class ChainError(ValueError):
    """A product chain that cannot serve the configured days; the message names the product and day."""


def _day(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ChainError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def day_in_name(name: str) -> dt.date:
    """The day in a daily file's name (``..._YYYYMMDD1200.nc``)."""
    stamp = PurePosixPath(name).name.rsplit("_", 1)[-1][:8]
    return dt.datetime.strptime(stamp, "%Y%m%d").date()


@dataclass(frozen=True)
class SicProduct:
    """One entry of the chain (see the module docstring)."""

    name: str
    product_id: str
    version: str
    first_day: dt.date
    last_day: dt.date | None
    url: str
    grid: str = "ease2-250"
    variables: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_VARIABLES))
    latency_days: float | None = None  # None: a closed record
    replaced_by: str | None = None
    description: str = ""

    @property
    def label(self) -> str:
        """What a manifest, a status line or a forecast file says served a day, e.g. ``OSI-438 v3.0 (OSI-438-fast-track)``."""
        text = f"{self.product_id} v{self.version}"
        return text if self.name == self.product_id else f"{text} ({self.name})"

    def serves(self, day: dt.date) -> bool:
        return self.first_day <= day and (self.last_day is None or day <= self.last_day)

    def overlaps(self, first: dt.date, last: dt.date) -> bool:
        """Whether it serves a day of first..last."""
        return self.first_day <= last and (self.last_day is None or self.last_day >= first)

    def url_for(self, servers: Mapping[str, str], hemisphere: str, day: dt.date) -> str:
        """The file's URL for ``day`` in ``hemisphere`` (``north``/``south``)."""
        values = {key: value.rstrip("/") for key, value in servers.items()}
        return self.url.format(**values, hemi=HEMI_CODE[hemisphere], date=day)

    def filename(self, hemisphere: str, day: dt.date) -> str:
        """The provider's file name of ``day`` (the template's last path part)."""
        return self.url.rsplit("/", 1)[-1].format(hemi=HEMI_CODE[hemisphere], date=day)

    def as_record(self) -> dict[str, str]:
        return {"product": self.name, "product_id": self.product_id, "version": self.version}


def _check_template(product: SicProduct, servers: Mapping[str, str], where: str) -> None:
    bad = f"{where} ({product.name}): url template {product.url!r}"
    try:
        fields = [(name, spec) for _, name, spec, _ in string.Formatter().parse(product.url) if name is not None]
    except ValueError as err:
        raise ChainError(f"{bad} is malformed: {err}") from None
    allowed = set(servers) | {"hemi", "date"}
    unknown = sorted({name for name, _ in fields} - allowed)
    if unknown:
        raise ChainError(
            f"{bad} has unknown field(s) {unknown}; allowed: {{hemi}}, {{date:<strftime>}} and the servers "
            f"{sorted(servers)} (osisaf.servers)"
        )
    name_fields = {name for _, name, _, _ in string.Formatter().parse(product.url.rsplit("/", 1)[-1]) if name}
    if "hemi" not in name_fields or "date" not in name_fields:
        raise ChainError(f"{bad}: the file name (after the last '/') must hold {{hemi}} and {{date:...}}")
    if any(name == "date" and "%" not in (spec or "") for name, spec in fields):
        raise ChainError(f"{bad}: write the day as {{date:<strftime>}}, e.g. {{date:%Y%m%d}}")
    try:
        url = product.url_for(servers, "north", _PROBE_DAY)
        name = product.filename("north", _PROBE_DAY)
    except (KeyError, ValueError, IndexError) as err:
        raise ChainError(f"{bad} cannot be filled in: {err}") from None
    if not url.startswith(SCHEMES):
        raise ChainError(f"{bad} gives {url!r}: the address must start with http://, https:// or ftp://")
    try:
        parsed = day_in_name(name)
    except ValueError:
        parsed = None
    if parsed != _PROBE_DAY or not name.endswith(".nc"):
        raise ChainError(
            f"{bad}: the file name must be a NetCDF file (.nc) ending with the day as _YYYYMMDD...; "
            f"for {_PROBE_DAY} it gives {name!r}"
        )


def _product(entry: Mapping[str, Any], index: int) -> SicProduct:
    where = f"osisaf.products[{index}]"
    missing = [key for key in ("name", "product_id", "version", "first_day", "url") if not entry.get(key)]
    if missing:
        raise ChainError(f"{where}: missing {missing}")
    name = str(entry["name"])
    first = _day(entry["first_day"], f"{where} ({name}) first_day")
    last = None if entry.get("last_day") in (None, "") else _day(entry["last_day"], f"{where} ({name}) last_day")
    if last is not None and last < first:
        raise ChainError(f"{where} ({name}): last_day {last} is before first_day {first}")
    grid = entry.get("grid", "ease2-250")
    if grid not in GRIDS:
        raise ChainError(f"{where} ({name}): grid {grid!r} is not one of {list(GRIDS)}")
    return SicProduct(
        name=name,
        product_id=str(entry["product_id"]),
        version=str(entry["version"]),
        first_day=first,
        last_day=last,
        url=str(entry["url"]),
        grid=grid,
        variables={**DEFAULT_VARIABLES, **(entry.get("variables") or {})},
        latency_days=None if entry.get("latency_days") is None else float(entry["latency_days"]),
        replaced_by=entry.get("replaced_by") or None,
        description=str(entry.get("description", "")),
    )


@dataclass(frozen=True)
class SicChain:
    """The ordered products and the servers their templates name."""

    products: tuple[SicProduct, ...]
    servers: Mapping[str, str]

    @classmethod
    def from_config(cls, osisaf: Mapping[str, Any]) -> SicChain:
        """The chain of an ``osisaf`` config section, checked (raises :class:`ChainError`)."""
        servers = dict(osisaf.get("servers") or {})
        entries = osisaf.get("products") or []
        if not entries:
            raise ChainError("osisaf.products: the chain is empty; declare at least one product")
        products = tuple(_product(entry, i) for i, entry in enumerate(entries))
        chain = cls(products, servers)
        chain._check()
        return chain

    @classmethod
    def default(cls) -> SicChain:
        """The chain of the schema's defaults (the same as config/config.yaml's)."""
        return _default_chain()

    def with_servers(self, servers: Mapping[str, str]) -> SicChain:
        """The same products fetched from other servers (e.g. local test servers)."""
        return SicChain(self.products, {**self.servers, **servers})

    # ---------------------------------------------------------------- checks

    def _check(self) -> None:
        names = [p.name for p in self.products]
        for i, product in enumerate(self.products):
            where = f"osisaf.products[{i}]"
            if names.count(product.name) > 1:
                raise ChainError(f"{where}: the name {product.name!r} is used twice")
            _check_template(product, self.servers, where)
            if product.replaced_by is not None:
                if product.replaced_by not in names or product.replaced_by == product.name:
                    raise ChainError(
                        f"{where} ({product.name}): replaced_by {product.replaced_by!r} is not another product of the chain "
                        f"({names})"
                    )
        for product in self.products:  # a stand-in lies within the period of what replaces it, and there is no loop
            seen = {product.name}
            current = product
            while current.replaced_by is not None:
                nxt = self.product(current.replaced_by)
                if nxt.name in seen:
                    raise ChainError(f"osisaf.products: replaced_by forms a loop through {sorted(seen)}")
                if current.first_day < nxt.first_day or (
                    nxt.last_day is not None and (current.last_day is None or current.last_day > nxt.last_day)
                ):
                    raise ChainError(
                        f"osisaf.products ({current.name}): its period {current.first_day}..{current.last_day or 'open'} "
                        f"reaches beyond that of {nxt.name} ({nxt.first_day}..{nxt.last_day or 'open'}), which replaces it"
                    )
                seen.add(nxt.name)
                current = nxt
        primary = self.primary
        if not primary:
            raise ChainError("osisaf.products: every product has replaced_by; at least one must serve days for good")
        for before, after in zip(primary, primary[1:], strict=False):
            if before.last_day is None:
                raise ChainError(
                    f"osisaf.products ({before.name}): only the last product may be open-ended; "
                    f"{after.name} follows it (from {after.first_day})"
                )
            expected = before.last_day + dt.timedelta(days=1)
            if after.first_day > expected:
                raise ChainError(
                    f"osisaf.products: no product serves {expected}..{after.first_day - dt.timedelta(days=1)} "
                    f"(a gap between {before.name}, which ends {before.last_day}, and {after.name}, which starts "
                    f"{after.first_day})"
                )
            if after.first_day < expected:
                raise ChainError(
                    f"osisaf.products: {after.name} (from {after.first_day}) overlaps {before.name} "
                    f"(to {before.last_day}) on {after.first_day}..{before.last_day}; list the products in time order, "
                    "and give a stand-in such as fast-track files replaced_by"
                )

    def check_covers(self, first_day: dt.date, last_day: dt.date) -> None:
        """Raise :class:`ChainError` naming the first day of first_day..last_day that no product serves."""
        primary = self.primary
        if first_day < primary[0].first_day:
            raise ChainError(
                f"no SIC product serves {first_day}: the chain (osisaf.products) starts with {primary[0].name} "
                f"on {primary[0].first_day}"
            )
        last = primary[-1]
        if last.last_day is not None and last_day > last.last_day:
            raise ChainError(
                f"no SIC product serves {last.last_day + dt.timedelta(days=1)}: the chain (osisaf.products) ends with "
                f"{last.name} on {last.last_day}; add the product that continues it"
            )

    # ---------------------------------------------------------------- lookups

    @property
    def primary(self) -> list[SicProduct]:
        """The products without ``replaced_by``, in chain order."""
        return [p for p in self.products if p.replaced_by is None]

    def product(self, name: str) -> SicProduct:
        for product in self.products:
            if product.name == name:
                return product
        raise KeyError(f"no SIC product {name!r} in osisaf.products ({[p.name for p in self.products]})")

    def nominal(self, day: dt.date) -> SicProduct:
        """The primary product serving ``day`` (raises :class:`ChainError` when none does)."""
        for product in self.primary:
            if product.serves(day):
                return product
        self.check_covers(day, day)
        raise ChainError(f"no SIC product serves {day}")  # unreachable after the checks above

    def candidates(self, day: dt.date) -> list[SicProduct]:
        """The products that may serve ``day``, best first: the primary one, then its stand-ins in turn."""
        best = self.nominal(day)
        order = [best]
        while True:
            stand_in = next(
                (p for p in self.products if p.replaced_by == order[-1].name and p.serves(day) and p not in order), None
            )
            if stand_in is None:
                return order
            order.append(stand_in)

    def identify(self, name: str, hemisphere: str) -> SicProduct | None:
        """The product whose file for its day is called ``name`` (None for a file of no product of the chain)."""
        try:
            day = day_in_name(name)
        except ValueError:
            return None
        for product in self.products:
            if product.filename(hemisphere, day) == name:
                return product
        return None


@lru_cache(maxsize=1)
def _default_chain() -> SicChain:
    from floecast.configschema import load_schema  # the defaults live in the schema, declared once

    osisaf = load_schema()["properties"]["osisaf"]["properties"]
    return SicChain.from_config({"servers": osisaf["servers"]["default"], "products": osisaf["products"]["default"]})
