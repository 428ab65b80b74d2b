"""The catalogue of input variables: every gridded variable the system reads, declared once.

Each :class:`Variable` says what it is (canonical name, long name, units, valid range, group,
daily or monthly), where each source has it (the ERA5 request, the ECMWF open-data parameter,
the CMIP6 name, table and units conversion, the ORAS5 request and file names), how it is
regridded, its vector partner and how gaps are filled (:class:`Fill`). Everything else derives
from here or is checked against it: the config check of ``channels.fields``, the CLI's
``--variable`` choices, the ERA5 and open-data parameter tables, the CMIP6/ESGF tables, the
rules (which variables each ingest rule serves, the CMIP6 names), preprocessing and the store.
Adding a variable means adding an entry here (and, for the embedded demo, a synthetic
counterpart in ``sources/synthetic.py``).

Canonical units are those of the observational source the model is fine-tuned on (ERA5's for
the atmosphere and SST); other sources are converted on reading (``value * scale + offset``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

Values = TypeVar("Values")  # a numpy array or an xarray object

GROUPS = ("atmosphere", "ocean", "ice")
FREQUENCIES = ("daily", "monthly")
# the config key under ``sources`` that serves a variable's observations
SOURCE_KEYS = ("sic", "atmos", "ocean")
REGRID_METHODS = ("auto", "bilinear", "conservative", "nearest")
FREEZING_POINT_K = 271.35  # sea water of salinity ~34 freezes at about -1.8 C


@dataclass(frozen=True)
class Era5Name:
    """The variable in the CDS ERA5 datasets (single or pressure levels)."""

    request: str  # the CDS request's ``variable``
    short_name: str  # the NetCDF variable the CDS writes
    units: str  # as the CDS NetCDF writes them (the canonical units)
    param_id: int  # GRIB paramId
    pressure_level: int | None = None  # hPa; None: single levels
    accumulated: bool = False  # hourly accumulations (J m**-2), not instantaneous values


@dataclass(frozen=True)
class Cmip6Name:
    """The variable in the CMIP6 data request, converted to canonical units as ``value * scale + offset``."""

    name: str  # CMOR variable_id
    table: str  # table_id: SIday, day, Oday (daily), SImon, Omon, Amon (monthly)
    units: str  # CMOR units
    scale: float = 1.0
    offset: float = 0.0
    grid_label: str | None = None  # the grid label to ask ESGF for where it differs from the model's usual one

    @property
    def frequency(self) -> str:
        return "monthly" if self.table.endswith("mon") else "daily"


@dataclass(frozen=True)
class Oras5Name:
    """The variable in the CDS dataset ``reanalysis-oras5`` (monthly means on the ORCA025 grid)."""

    request: str  # the CDS request's ``variable``
    short_name: str  # the NetCDF variable and the prefix of the delivered file names
    units: str  # as the files write them
    vertical_resolution: str = "single_level"
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class Fill:
    """How the gaps of a variable's fields are filled (in canonical units).

    * ``missing``: the value of a cell a source defines on some days and not on others, where
      that means something physical (no ice: thickness 0; SST under sea ice: the freezing
      point). None: such a gap is an error naming the file and day.
    * ``coast``: cells a source never defines (its land; a climate model's or an ocean
      reanalysis's coastline differs from the observations') take the value of the nearest
      cell it defines. False: an undefined cell is an error.
    * ``land``: ``keep`` uses the values over the observations' land as they are (the
      atmosphere is defined there); ``mean`` sets the normalised channel to 0 there (the
      training years' mean, or climatology for an anomaly): an ocean field means nothing on land.
    """

    missing: float | None = None
    coast: bool = False
    land: str = "keep"

    def __post_init__(self) -> None:
        if self.land not in ("keep", "mean"):
            raise ValueError(f"Fill.land must be 'keep' or 'mean', got {self.land!r}")


@dataclass(frozen=True)
class Variable:
    """One input variable, declared once (see the module docstring)."""

    name: str  # canonical name: interim files, store channels, config keys
    long_name: str  # as ERA5 names it where ERA5 has it (a pressure level's is in ``era5``)
    units: str  # canonical units
    valid_range: tuple[float, float]  # physically possible values (canonical units): corrupt data is refused
    group: str  # atmosphere, ocean or ice
    frequency: str  # of the observational source: daily, or monthly (interpolated to days causally)
    source: str  # the config key under ``sources`` whose product delivers the observations
    era5: Era5Name | None = None
    opendata: str | None = None  # ECMWF open-data parameter of the HRES forecast, for the days ERA5 lacks
    cmip6: Cmip6Name | None = None  # None: pretraining sets the channel to its training-years mean (0)
    oras5: Oras5Name | None = None
    regrid: str = "auto"
    partner: str | None = None  # the other component of a vector (winds are rotated to the grid axes)
    component: str | None = None  # which component of the vector this is: east or north
    fill: Fill = field(default_factory=Fill)

    def __post_init__(self) -> None:
        checks = {
            "group": (self.group, GROUPS),
            "frequency": (self.frequency, FREQUENCIES),
            "source": (self.source, SOURCE_KEYS),
            "regrid": (self.regrid, REGRID_METHODS),
        }
        for key, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"variable {self.name}: {key} {value!r} is not one of {allowed}")
        if (self.partner is None) != (self.component not in ("east", "north")):
            raise ValueError(f"variable {self.name}: a vector component names its partner and is east or north")
        low, high = self.valid_range
        if not low < high:
            raise ValueError(f"variable {self.name}: valid range {self.valid_range} is empty")


_WIND = (-80.0, 80.0)

VARIABLES: tuple[Variable, ...] = (
    Variable(
        "sic",
        "sea-ice area fraction",
        "1",
        (0.0, 1.0),
        "ice",
        "daily",
        "sic",
        cmip6=Cmip6Name("siconca", "SIday", "%", scale=0.01),
        fill=Fill(coast=True),
    ),
    Variable(
        "t2m",
        "2 metre temperature",
        "K",
        (180.0, 340.0),
        "atmosphere",
        "daily",
        "atmos",
        era5=Era5Name("2m_temperature", "t2m", "K", 167),
        opendata="2t",
        cmip6=Cmip6Name("tas", "day", "K"),
    ),
    Variable(
        "u10",
        "10 metre U wind component",
        "m s**-1",
        _WIND,
        "atmosphere",
        "daily",
        "atmos",
        era5=Era5Name("10m_u_component_of_wind", "u10", "m s**-1", 165),
        opendata="10u",
        cmip6=Cmip6Name("uas", "day", "m s-1"),
        partner="v10",
        component="east",
    ),
    Variable(
        "v10",
        "10 metre V wind component",
        "m s**-1",
        _WIND,
        "atmosphere",
        "daily",
        "atmos",
        era5=Era5Name("10m_v_component_of_wind", "v10", "m s**-1", 166),
        opendata="10v",
        cmip6=Cmip6Name("vas", "day", "m s-1"),
        partner="u10",
        component="north",
    ),
    Variable(
        "msl",
        "Mean sea level pressure",
        "Pa",
        (85_000.0, 110_000.0),
        "atmosphere",
        "daily",
        "atmos",
        era5=Era5Name("mean_sea_level_pressure", "msl", "Pa", 151),
        opendata="msl",
        cmip6=Cmip6Name("psl", "day", "Pa"),
    ),
    Variable(  # daily mean of hourly accumulations: J m**-2 per hour; CMIP6 rsds (W m-2) x 3600 s
        "ssrd",
        "Surface short-wave (solar) radiation downwards",
        "J m**-2",
        (-1.0e3, 5.0e6),  # <= 1361 W m**-2 over one hour; a little negative noise
        "atmosphere",
        "daily",
        "atmos",
        era5=Era5Name("surface_solar_radiation_downwards", "ssrd", "J m**-2", 169, accumulated=True),
        cmip6=Cmip6Name("rsds", "day", "W m-2", scale=3600.0),
    ),
    Variable(
        "strd",
        "Surface long-wave (thermal) radiation downwards",
        "J m**-2",
        (-1.0e3, 3.0e6),
        "atmosphere",
        "daily",
        "atmos",
        era5=Era5Name("surface_thermal_radiation_downwards", "strd", "J m**-2", 175, accumulated=True),
        cmip6=Cmip6Name("rlds", "day", "W m-2", scale=3600.0),
    ),
    Variable(  # undefined over land; over sea ice a model's SST is near freezing, a gap there is set to it
        "sst",
        "Sea surface temperature",
        "K",
        (265.0, 320.0),
        "ocean",
        "daily",
        "atmos",
        era5=Era5Name("sea_surface_temperature", "sst", "K", 34),
        cmip6=Cmip6Name("tos", "Oday", "degC", offset=273.15, grid_label="gr"),
        fill=Fill(missing=FREEZING_POINT_K, coast=True, land="mean"),
    ),
    Variable(  # pressure levels: no CMIP6 counterpart wired (zg/ta need a level selection)
        "z250",
        "Geopotential",
        "m**2 s**-2",
        (80_000.0, 115_000.0),
        "atmosphere",
        "daily",
        "atmos",
        era5=Era5Name("geopotential", "z", "m**2 s**-2", 129, pressure_level=250),
    ),
    Variable(
        "z500",
        "Geopotential",
        "m**2 s**-2",
        (40_000.0, 62_000.0),
        "atmosphere",
        "daily",
        "atmos",
        era5=Era5Name("geopotential", "z", "m**2 s**-2", 129, pressure_level=500),
    ),
    Variable(
        "t500",
        "Temperature",
        "K",
        (200.0, 290.0),
        "atmosphere",
        "daily",
        "atmos",
        era5=Era5Name("temperature", "t", "K", 130, pressure_level=500),
    ),
    Variable(  # the floe thickness (mean over the ice-covered part of a cell); 0 where there is no ice
        "sithick",
        "Sea-ice thickness",
        "m",
        (0.0, 30.0),
        "ice",
        "monthly",
        "ocean",
        cmip6=Cmip6Name("sithick", "SImon", "m"),
        oras5=Oras5Name("sea_ice_thickness", "iicethic", "m"),
        fill=Fill(missing=0.0, land="mean"),  # no value: no ice (CMIP6 leaves ice-free cells empty), land included
    ),
    Variable(  # the reference temperature of ORAS5's integral is not verified: the range allows 0 C or 0 K
        "ohc300",
        "Ocean heat content of the upper 300 m",
        "J m-2",
        (-1.0e10, 5.0e11),
        "ocean",
        "monthly",
        "ocean",
        oras5=Oras5Name("ocean_heat_content_for_the_upper_300m", "sohtc300", "J/m2"),
        fill=Fill(coast=True, land="mean"),
    ),
    Variable(
        "mld",
        "Ocean mixed-layer depth (density criterion 0.01 kg m-3)",
        "m",
        (0.0, 6000.0),
        "ocean",
        "monthly",
        "ocean",
        cmip6=Cmip6Name("mlotst", "Omon", "m"),
        oras5=Oras5Name("mixed_layer_depth_0_01", "somxl010", "m"),
        fill=Fill(coast=True, land="mean"),
    ),
)

CATALOGUE: dict[str, Variable] = {v.name: v for v in VARIABLES}
# the variables that can be input channels (``channels.fields``); SIC has channels of its own
FIELD_NAMES: tuple[str, ...] = tuple(v.name for v in VARIABLES if v.source != "sic")


def variable(name: str) -> Variable:
    """The catalogue entry of ``name``; an error lists the known names."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ValueError(f"unknown variable {name!r}; the catalogue (floecast/variables.py) has {sorted(CATALOGUE)}") from None


def by_source(source: str, names: tuple[str, ...] | list[str] = FIELD_NAMES) -> list[str]:
    """The variables among ``names`` whose observations come from config key ``sources.<source>``."""
    return [name for name in names if variable(name).source == source]


def by_cmip6_name(cmor: str) -> Variable:
    """The variable whose CMIP6 counterpart is the CMOR variable ``cmor``."""
    for item in VARIABLES:
        if item.cmip6 is not None and item.cmip6.name == cmor:
            return item
    known = sorted(v.cmip6.name for v in VARIABLES if v.cmip6)
    raise ValueError(f"no catalogue variable has the CMIP6 name {cmor!r}; known: {known}")


def to_canonical(values: Values, scale: float, offset: float) -> Values:
    """``values * scale + offset``, skipping the arithmetic where it is the identity."""
    if scale != 1.0:
        values = values * scale
    if offset != 0.0:
        values = values + offset
    return values
