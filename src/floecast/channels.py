"""The model's input channels as declared in config (``channels``), without torch, so the
preprocessing stage that writes them and the training stage that reads them share one
definition."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldChannel:
    """One variable of the catalogue (``floecast.variables``) as input: its lags, transform and normalisation."""

    variable: str
    lags: tuple[int, ...]
    transform: str = "absolute"
    norm: str = "zscore"

    @property
    def key(self) -> str:
        """Name of the stored channel (``t2m_anom`` for an anomaly)."""
        return f"{self.variable}_anom" if self.transform == "anomaly" else self.variable


DEFAULT_FIELDS = (
    FieldChannel("t2m", (1, 2, 3, 5), "anomaly"),
    FieldChannel("u10", (1,)),
    FieldChannel("v10", (1,)),
)
LEGACY_FIELDS_KEY = "atmos"  # what earlier builds called ``channels.fields``: their checkpoints still say it


@dataclass(frozen=True)
class InputSpec:
    """The channels declared in config (``channels``) and the horizon."""

    sic_lags: tuple[int, ...] = (1, 2, 3, 7, 14)
    fields: tuple[FieldChannel, ...] = DEFAULT_FIELDS
    sic_trend_years: int = 5
    sic_climatology: bool = True
    land: bool = True
    day_of_year: bool = True
    leads: int = 30

    def __post_init__(self) -> None:
        lags = {"sic_lags": self.sic_lags, **{f"fields.{f.variable}.lags": f.lags for f in self.fields}}
        for name, values in lags.items():
            if min(values) < 1:
                raise ValueError(f"channels.{name}: every lag must be >= 1 day before the init date")

    @property
    def max_lag(self) -> int:
        return max(self.sic_lags + tuple(lag for f in self.fields for lag in f.lags))

    @property
    def channel_names(self) -> list[str]:
        names = [f"sic_lag{lag}" for lag in self.sic_lags]
        names += [f"{f.key}_lag{lag}" for f in self.fields for lag in f.lags]
        names += ["land"] if self.land else []
        names += ["cos_doy", "sin_doy"] if self.day_of_year else []
        leads = range(1, self.leads + 1)
        names += [f"sic_trend_lead{k}" for k in leads] if self.sic_trend_years else []
        names += [f"sic_clim_lead{k}" for k in leads] if self.sic_climatology else []
        return names

    @classmethod
    def from_config(cls, channels: dict, leads: int) -> InputSpec:
        entries = channels["fields"] if "fields" in channels else channels[LEGACY_FIELDS_KEY]
        fields = tuple(
            FieldChannel(name, tuple(entry["lags"]), entry.get("transform", "absolute"), entry.get("norm", "zscore"))
            for name, entry in entries.items()
        )
        return cls(
            sic_lags=tuple(channels["sic_lags"]),
            fields=fields,
            sic_trend_years=int(channels["sic_trend_years"]),
            sic_climatology=bool(channels["sic_climatology"]),
            land=bool(channels["land"]),
            day_of_year=bool(channels["day_of_year"]),
            leads=leads,
        )
