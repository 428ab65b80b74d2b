"""Verification scores on small hand-worked arrays."""

from __future__ import annotations

import numpy as np
import pytest

from floecast.metrics import binary_accuracy, rmse, sea_ice_extent


def test_rmse_over_mask_only() -> None:
    forecast = np.array([[0.6, 0.2], [0.9, 0.0]])
    observed = np.array([[0.0, 1.0], [0.9, 1.0]])
    mask = np.array([[True, True], [True, False]])  # the masked-out error (1.0) is ignored
    # errors 0.6, 0.8, 0.0 -> mean square (0.36 + 0.64 + 0) / 3 = 1/3
    assert rmse(forecast, observed, mask) == pytest.approx(np.sqrt(1.0 / 3.0), rel=1e-12)
    assert rmse(forecast, observed, np.ones((2, 2), bool)) == pytest.approx(np.sqrt(2.0 / 4.0), rel=1e-12)
    assert rmse(observed, observed, mask) == 0.0


def test_rmse_broadcasts_a_2d_mask() -> None:
    observed = np.zeros((3, 2, 2))
    forecast = np.zeros((3, 2, 2))
    forecast[:, 0, 0] = [0.3, 0.4, 0.5]  # counted
    forecast[:, 1, 1] = 0.9  # masked out
    mask = np.array([[1, 0], [0, 0]])
    assert rmse(forecast, observed, mask) == pytest.approx(np.sqrt((0.09 + 0.16 + 0.25) / 3), rel=1e-12)


def test_binary_accuracy_threshold_is_strictly_above_15_percent() -> None:
    forecast = np.array([[0.16, 0.15], [0.90, 0.10], [0.50, 0.00]])
    observed = np.array([[0.20, 0.00], [0.10, 0.14], [0.15, 1.00]])
    mask = np.array([[1, 1], [1, 1], [0, 0]], bool)
    # classes: (ice, ice) right, (no: 0.15 is not ice, no) right, (ice, no) wrong, (no, no) right
    assert binary_accuracy(forecast, observed, mask) == 0.75
    assert binary_accuracy(forecast, observed, np.ones_like(mask)) == pytest.approx(3 / 6)


def test_binary_accuracy_broadcast_mask() -> None:
    observed = np.array([[[0.5, 0.0]], [[0.5, 0.0]]])  # (2, 1, 2)
    forecast = np.array([[[0.5, 0.0]], [[0.0, 0.0]]])
    assert binary_accuracy(forecast, observed, np.array([[True, True]])) == 0.75
    assert binary_accuracy(forecast, observed, np.array([[False, True]])) == 1.0


def test_sea_ice_extent_counts_cells_above_15_percent() -> None:
    sic = np.array(
        [
            [[0.16, 0.15, np.nan], [1.0, 0.0, 0.5]],  # 0.16, 1.0, 0.5 -> 3 cells (0.15 and NaN are not ice)
            [[np.nan, np.nan, 0.151], [0.0, 0.0, 0.0]],  # 1 cell
        ]
    )
    extent = sea_ice_extent(sic, 625.0)
    np.testing.assert_array_equal(extent, [1875.0, 625.0])
    assert sea_ice_extent(sic[0], 90_000.0) == 270_000.0


def test_sea_ice_extent_leading_axes() -> None:
    sic = np.zeros((2, 3, 4, 4))
    sic[1, 2, :2, :] = 0.8
    extent = sea_ice_extent(sic, 100.0)
    assert extent.shape == (2, 3)
    assert extent[1, 2] == 800.0
    assert extent.sum() == 800.0
