"""Verification scores over active ocean cells (SIC as fractions; ice present above 15 %)."""

from __future__ import annotations

import numpy as np

ICE_THRESHOLD = 0.15


def rmse(forecast: np.ndarray, observed: np.ndarray, mask: np.ndarray) -> float:
    """Root-mean-square error over the cells where ``mask`` is true."""
    mask = np.broadcast_to(mask, forecast.shape).astype(bool)
    return float(np.sqrt(np.mean((forecast[mask] - observed[mask]) ** 2)))


def binary_accuracy(forecast: np.ndarray, observed: np.ndarray, mask: np.ndarray) -> float:
    """Share of masked cells whose ice / no-ice class (SIC > 15 %) is right."""
    mask = np.broadcast_to(mask, forecast.shape).astype(bool)
    return float(np.mean((forecast[mask] > ICE_THRESHOLD) == (observed[mask] > ICE_THRESHOLD)))


def sea_ice_extent(sic: np.ndarray, cell_area_km2: float) -> np.ndarray:
    """Extent (km^2) over the last two axes: cells above 15 % times their (equal) area."""
    return (np.nan_to_num(sic) > ICE_THRESHOLD).sum(axis=(-2, -1)) * cell_area_km2
