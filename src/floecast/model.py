"""A U-Net that forecasts SIC for every lead day as a departure from damped persistence.

The base forecast for lead k is the climatology of the target day plus the latest SIC
anomaly damped by a learnt factor per lead (initially exp(-k / 20)). The head's output is
added to it in logit space, so an untrained network forecasts damped anomaly persistence
and every output stays in (0, 1).

With ``spread_head`` the network also forecasts a per-cell spread for every lead (the
standard deviation of a Gaussian about the forecast, trained with its CRPS): the
``distributional`` ensemble method (docs/model-card.md).
"""

from __future__ import annotations

import torch
from torch import nn

CLIM_EPS = 0.01
INITIAL_DAMPING_DAYS = 20.0
INITIAL_SPREAD = 0.05  # SIC: the spread head's output before training
MIN_SPREAD = 1e-4


NORMALISATIONS = ("batch", "group", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"model.normalisation: {kind!r} is not one of {', '.join(NORMALISATIONS)}")


def _block(cin: int, cout: int, norm: str = "batch", dropout: float = 0.0) -> nn.Sequential:
    layers = [
        nn.Conv2d(cin, cout, 3, padding=1),
        _norm(norm, cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        _norm(norm, cout),
        nn.ReLU(inplace=True),
    ]
    if dropout:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """``depth`` poolings, ``filters`` doubled at each level; input H, W divisible by 2**depth."""

    def __init__(
        self,
        in_channels: int,
        leads: int,
        filters: int = 16,
        depth: int = 2,
        norm: str = "batch",
        dropout: float = 0.0,
        spread_head: bool = False,
    ) -> None:
        super().__init__()
        self.depth = depth
        widths = [filters * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList()
        cin = in_channels
        for width in widths:
            self.down.append(_block(cin, width, norm))
            cin = width
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(cin, width, 2, stride=2))
            self.merge.append(_block(2 * width, width, norm, dropout))
            cin = width
        self.head = nn.Conv2d(cin, leads, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.spread_head = nn.Conv2d(cin, leads, 1) if spread_head else None
        if self.spread_head is not None:
            nn.init.zeros_(self.spread_head.weight)
            nn.init.constant_(self.spread_head.bias, float(torch.log(torch.expm1(torch.tensor(INITIAL_SPREAD)))))
        initial = torch.exp(-torch.arange(1, leads + 1) / INITIAL_DAMPING_DAYS)
        self.damping_logit = nn.Parameter(torch.logit(initial).view(1, leads, 1, 1))

    def forward(self, x: torch.Tensor, climatology: torch.Tensor, latest_sic: torch.Tensor) -> torch.Tensor:
        """x (n, C, H, W); climatology of the target days (n, leads, H, W); SIC of D - 1 (n, 1, H, W)."""
        return self._mean(self._features(x), climatology, latest_sic)

    def distribution(
        self, x: torch.Tensor, climatology: torch.Tensor, latest_sic: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The forecast and its spread (the spread head's standard deviation, SIC units), each (n, leads, H, W)."""
        if self.spread_head is None:
            raise ValueError("this model has no spread head (model.ensemble.methods without distributional)")
        features = self._features(x)
        spread = nn.functional.softplus(self.spread_head(features).float()) + MIN_SPREAD
        return self._mean(features, climatology, latest_sic), spread

    def _mean(self, features: torch.Tensor, climatology: torch.Tensor, latest_sic: torch.Tensor) -> torch.Tensor:
        anomaly = latest_sic - climatology[:, :1]  # the 31-day climatology barely moves in 2 days
        base = climatology + torch.sigmoid(self.damping_logit) * anomaly
        return torch.sigmoid(torch.logit(base.clamp(CLIM_EPS, 1 - CLIM_EPS)) + self.head(features))

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level < self.depth:
                skips.append(x)
                x = self.pool(x)
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return x
