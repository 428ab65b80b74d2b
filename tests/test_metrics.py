"""Verification scores on small hand-worked arrays."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from floecast.metrics import (
    anomaly_persistence,
    binary_accuracy,
    crps,
    iiee,
    mae,
    rmse,
    sea_ice_area,
    sea_ice_extent,
    sia_error_km2,
    sie_error_km2,
    spread_skill,
    sps_km2,
)


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


# ----------------------------------------------------------------------------------------------------------------
# MAE


def test_mae_over_mask_only_and_nan_outside_it() -> None:
    forecast = np.array([[0.6, 0.2], [0.9, np.nan]])  # the NaN cell is land
    observed = np.array([[0.0, 1.0], [0.9, 1.0]])
    mask = np.array([[True, True], [True, False]])
    # |errors| 0.6, 0.8, 0.0 -> (0.6 + 0.8 + 0.0) / 3 = 1.4 / 3
    assert mae(forecast, observed, mask) == pytest.approx(1.4 / 3, rel=1e-12)
    # a NaN inside the mask is missing data, not a zero error
    assert np.isnan(mae(forecast, observed, np.ones((2, 2), bool)))
    assert np.isnan(mae(forecast, observed, np.zeros((2, 2), bool)))  # nothing to score


# ----------------------------------------------------------------------------------------------------------------
# area and extent errors on one 3x3 grid, 100 km^2 cells:
#
#   forecast          observed          mask (F = land)
#   0.9  0.9  0.0     1.0  0.0  0.0     T T T
#   0.5  0.1  0.0     0.6  0.8  0.0     T T T
#   0.2  0.0  NaN     0.0  0.0  0.7     T T F
#
# forecast ice (> 0.15) on the mask: (0,0) (0,1) (1,0) (2,0) = 4 cells = 400 km^2
# observed ice on the mask:          (0,0) (1,0) (1,1)       = 3 cells = 300 km^2   ((2,2) is land)
# O (forecast ice, observed none): (0,1) (2,0) = 200 km^2;  U (observed ice, forecast none): (1,1) = 100 km^2
# IIEE = O + U = 300, AEE = |O - U| = 100 (= |SIE error|), ME = 2 min(O, U) = 200; 100 + 200 = 300
# SIA: forecast 0.9 + 0.9 + 0.5 + 0.1 + 0.2 = 2.6 cells = 260 km^2; observed 1.0 + 0.6 + 0.8 = 2.4 cells = 240 km^2

FC = np.array([[0.9, 0.9, 0.0], [0.5, 0.1, 0.0], [0.2, 0.0, np.nan]])
OB = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 0.7]])
MASK = np.array([[True, True, True], [True, True, True], [True, True, False]])


def test_sea_ice_area_by_hand() -> None:
    assert sea_ice_area(FC, 100.0, MASK) == pytest.approx(260.0, rel=1e-12)
    assert sea_ice_area(OB, 100.0, MASK) == pytest.approx(240.0, rel=1e-12)
    # no mask: NaN counts as no ice (like sea_ice_extent), the observed land cell's 0.7 counts: 2.4 + 0.7 = 3.1 cells
    assert sea_ice_area(FC, 100.0) == pytest.approx(260.0, rel=1e-12)
    assert sea_ice_area(OB, 100.0) == pytest.approx(310.0, rel=1e-12)
    # with a mask a NaN inside it is missing, not open water
    assert np.isnan(sea_ice_area(FC, 100.0, np.ones((3, 3), bool)))
    # leading axes: one value per grid
    stacked = sea_ice_area(np.stack([FC, OB]), 100.0, MASK)
    assert stacked.shape == (2,)
    np.testing.assert_allclose(stacked, [260.0, 240.0], rtol=1e-12)


def test_sie_and_sia_errors_by_hand() -> None:
    assert sie_error_km2(FC, OB, 100.0, MASK) == 100.0  # 400 - 300: too much ice
    assert sie_error_km2(OB, FC, 100.0, MASK) == -100.0
    assert sia_error_km2(FC, OB, 100.0, MASK) == pytest.approx(20.0, rel=1e-9)  # 260 - 240
    # averaged over leading axes: errors +100 and -100 cancel to 0
    assert sie_error_km2(np.stack([FC, OB]), np.stack([OB, FC]), 100.0, MASK) == 0.0
    assert sia_error_km2(np.stack([FC, OB]), np.stack([OB, FC]), 100.0, MASK) == pytest.approx(0.0, abs=1e-9)
    # the land NaN matters only when the mask lets it in
    assert np.isnan(sie_error_km2(FC, OB, 100.0, np.ones((3, 3), bool)))


def test_iiee_by_hand() -> None:
    score = iiee(FC, OB, 100.0, MASK)
    assert score.overestimated_km2 == 200.0
    assert score.underestimated_km2 == 100.0
    assert score.iiee_km2 == 300.0
    assert score.absolute_extent_error_km2 == 100.0
    assert score.misplacement_km2 == 200.0
    assert score.absolute_extent_error_km2 == abs(sie_error_km2(FC, OB, 100.0, MASK))
    # forecast and observation swapped: O and U swap, IIEE and its split do not change
    swapped = iiee(OB, FC, 100.0, MASK)
    assert (swapped.overestimated_km2, swapped.underestimated_km2) == (100.0, 200.0)
    assert swapped.iiee_km2 == 300.0
    # both grids at once: means per grid; AEE is the mean |SIE error| (100), not |mean SIE error| (0)
    both = iiee(np.stack([FC, OB]), np.stack([OB, FC]), 100.0, MASK)
    assert both.iiee_km2 == 300.0
    assert both.absolute_extent_error_km2 == 100.0
    assert both.misplacement_km2 == 200.0
    assert iiee(OB, OB, 100.0, MASK).iiee_km2 == 0.0


def test_iiee_decomposition_identity_on_random_fields() -> None:
    rng = np.random.default_rng(6)
    forecast = rng.uniform(0.0, 1.0, (4, 3, 7, 9)) ** 2
    observed = rng.uniform(0.0, 1.0, (4, 3, 7, 9)) ** 2
    mask = rng.uniform(size=(7, 9)) > 0.2
    forecast[:, :, ~mask] = np.nan  # anything outside the mask is ignored
    score = iiee(forecast, observed, 625.0, mask)
    assert score.iiee_km2 > 0
    assert score.iiee_km2 == pytest.approx(score.absolute_extent_error_km2 + score.misplacement_km2, rel=1e-12)
    assert score.iiee_km2 == pytest.approx(score.overestimated_km2 + score.underestimated_km2, rel=1e-12)
    per_grid = [abs(sie_error_km2(forecast[i, k], observed[i, k], 625.0, mask)) for i in range(4) for k in range(3)]
    assert score.absolute_extent_error_km2 == pytest.approx(np.mean(per_grid), rel=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# SPS


def test_sps_by_hand() -> None:
    probability = np.array([[1.0, 0.5, 0.0], [0.75, 0.25, 0.0], [0.0, 0.0, np.nan]])
    # observed ice (OB > 0.15) on the mask: 1 0 0 / 1 1 0 / 0 0 -
    # (p - o)^2: 0, 0.25, 0 / 0.0625, 0.5625, 0 / 0, 0 -> 0.875 cells x 100 km^2 = 87.5 km^2
    assert sps_km2(probability, OB, 100.0, MASK) == pytest.approx(87.5, rel=1e-12)
    assert sps_km2((OB > 0.15).astype(float), OB, 100.0, MASK) == 0.0
    assert np.isnan(sps_km2(probability, OB, 100.0, np.ones((3, 3), bool)))
    with pytest.raises(ValueError, match=r"probability must lie in \[0, 1\]"):
        sps_km2(probability * 2, OB, 100.0, MASK)


def test_sps_of_a_deterministic_forecast_is_the_iiee() -> None:
    # the 0/1 probability of FC is the hand case above: SPS = O + U = 300 km^2
    assert sps_km2((FC > 0.15).astype(float), OB, 100.0, MASK) == pytest.approx(300.0, rel=1e-12)
    rng = np.random.default_rng(2018)
    forecast = rng.uniform(0.0, 1.0, (5, 6, 8))
    observed = rng.uniform(0.0, 1.0, (5, 6, 8))
    mask = rng.uniform(size=(6, 8)) > 0.3
    observed[:, ~mask] = np.nan
    probability = (forecast > 0.15).astype(float)
    assert sps_km2(probability, observed, 625.0, mask) == pytest.approx(iiee(forecast, observed, 625.0, mask).iiee_km2, rel=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# CRPS


def test_crps_two_members_by_hand() -> None:
    members = np.array([0.2, 0.6]).reshape(2, 1, 1)
    observed = np.array([[0.5]])
    mask = np.ones((1, 1), bool)
    # E|X - y| = (0.3 + 0.1) / 2 = 0.2; sum over pairs |xi - xj| = 2 x 0.4 = 0.8
    # standard: 0.2 - 0.5 x 0.8 / 2^2 = 0.1  (= integral of (F - H)^2: 0.5^2 x 0.3 + 0.5^2 x 0.1 = 0.1)
    # fair:     0.2 - 0.5 x 0.8 / (2 x 1) = 0.0
    assert crps(members, observed, mask) == pytest.approx(0.1, rel=1e-12)
    assert crps(members, observed, mask, fair=True) == pytest.approx(0.0, abs=1e-15)


def test_crps_three_members_by_hand() -> None:
    # a 2x2 grid, members on the last axis; cell (1, 0) is masked out (NaN members)
    members = np.full((2, 2, 3), np.nan)
    members[0, 0] = [0.0, 0.5, 1.0]  # y = 1.0
    members[0, 1] = [0.2, 0.2, 0.2]  # y = 0.2
    members[1, 1] = [0.4, 0.4, 0.4]  # y = 0.1
    observed = np.array([[1.0, 0.2], [np.nan, 0.1]])
    mask = np.array([[True, True], [False, True]])
    # (0,0): E|X - y| = (1 + 0.5 + 0) / 3 = 0.5; pairs 2 x (0.5 + 1.0 + 0.5) = 4
    #        standard 0.5 - 0.5 x 4 / 9 = 5/18, fair 0.5 - 0.5 x 4 / 6 = 1/6
    # (0,1): exact and no spread -> 0;  (1,1): no spread, E|X - y| = 0.3 -> 3/10 for both
    # mean over the 3 masked cells: standard (5/18 + 0 + 3/10) / 3 = 26/135, fair (1/6 + 0 + 3/10) / 3 = 7/45
    assert crps(members, observed, mask, member_axis=-1) == pytest.approx(26 / 135, rel=1e-12)
    assert crps(members, observed, mask, member_axis=2, fair=True) == pytest.approx(7 / 45, rel=1e-12)
    # the same with members first and a leading date axis of two identical days
    first = np.moveaxis(members, -1, 0)
    assert crps(first, observed, mask) == pytest.approx(26 / 135, rel=1e-12)
    assert crps(np.stack([first, first], axis=1), np.stack([observed, observed]), mask) == pytest.approx(26 / 135, rel=1e-12)


def test_crps_one_member_is_the_mae() -> None:
    forecast = np.array([[0.6, 0.2], [0.9, np.nan]])
    observed = np.array([[0.0, 1.0], [0.9, 1.0]])
    mask = np.array([[True, True], [True, False]])
    assert crps(forecast[None], observed, mask) == pytest.approx(1.4 / 3, rel=1e-12)  # as in the MAE test
    assert crps(forecast[None], observed, mask) == pytest.approx(mae(forecast, observed, mask), rel=1e-12)
    with pytest.raises(ValueError, match="at least 2 members"):
        crps(forecast[None], observed, mask, fair=True)


def test_crps_matches_the_pairwise_definition_on_random_members() -> None:
    rng = np.random.default_rng(3242)
    members = rng.uniform(size=(5, 4, 6))
    observed = rng.uniform(size=(4, 6))
    mask = np.ones((4, 6), bool)
    skill = np.abs(members - observed).mean(axis=0)
    pairs = np.abs(members[:, None] - members[None]).sum(axis=(0, 1))
    assert crps(members, observed, mask) == pytest.approx(np.mean(skill - pairs / (2 * 25)), rel=1e-12)
    assert crps(members, observed, mask, fair=True) == pytest.approx(np.mean(skill - pairs / (2 * 20)), rel=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# spread-skill


def test_spread_skill_by_hand() -> None:
    members = np.array([[[0.4, 0.2, np.nan]], [[0.6, 0.4, np.nan]]])  # (2 members, 1, 3); the third cell is land
    observed = np.array([[0.3, 0.5, np.nan]])
    mask = np.array([[True, True, False]])
    # cell 1: mean 0.5, error 0.2, variance ((0.1)^2 + (0.1)^2) / (2 - 1) = 0.02
    # cell 2: mean 0.3, error -0.2, variance 0.02
    # spread sqrt(0.02), RMSE sqrt(0.04) = 0.2 -> ratio sqrt(0.02) / 0.2 = sqrt(1/2)
    assert spread_skill(members, observed, mask) == pytest.approx(np.sqrt(0.5), rel=1e-12)
    assert np.isnan(spread_skill(members[:1], observed, mask))  # one member: no spread
    assert spread_skill(members, members.mean(axis=0), mask) == np.inf  # perfect mean, members differ


# ----------------------------------------------------------------------------------------------------------------
# baselines


def test_anomaly_persistence_by_hand() -> None:
    latest = np.array([0.7, 0.1, np.nan]).reshape(1, 1, 1, 3)
    clim_at_init = np.array([0.5, 0.3, np.nan]).reshape(1, 1, 1, 3)  # anomaly +0.2, -0.2, land
    clim_targets = np.array([[0.6, 0.1, np.nan], [0.9, 0.5, np.nan]]).reshape(1, 2, 1, 3)
    # lead 1: 0.6 + 0.2 = 0.8, 0.1 - 0.2 = -0.1 -> 0;  lead 2: 0.9 + 0.2 = 1.1 -> 1, 0.5 - 0.2 = 0.3
    forecast = anomaly_persistence(latest, clim_at_init, clim_targets)
    assert forecast.shape == (1, 2, 1, 3)
    np.testing.assert_allclose(forecast[0, :, 0, :2], [[0.8, 0.0], [1.0, 0.3]], rtol=1e-12)
    assert np.isnan(forecast[..., 2]).all()


# ----------------------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "call",
    [
        lambda f, o, m: rmse(f, o, m),
        lambda f, o, m: mae(f, o, m),
        lambda f, o, m: binary_accuracy(f, o, m),
        lambda f, o, m: sie_error_km2(f, o, 625.0, m),
        lambda f, o, m: sia_error_km2(f, o, 625.0, m),
        lambda f, o, m: iiee(f, o, 625.0, m),
        lambda f, o, m: sps_km2(f, o, 625.0, m),
        lambda f, o, m: crps(f[None], o, m),
        lambda f, o, m: spread_skill(np.stack([f, f]), o, m),
    ],
)
def test_shapes_that_do_not_broadcast_are_named(call: Callable[..., object]) -> None:
    with pytest.raises(ValueError, match=r"shapes do not broadcast: .*\(3, 4\).*\(4, 3\)"):
        call(np.zeros((3, 4)), np.zeros((4, 3)), np.ones((4, 3), bool))
    with pytest.raises(ValueError, match=r"mask \(5, 5\)"):
        call(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), np.ones((5, 5), bool))


def test_other_input_errors() -> None:
    with pytest.raises(ValueError, match=r"latest \(2, 1, 2, 2\).*clim_targets \(3, 5, 2, 2\)"):
        anomaly_persistence(np.zeros((2, 1, 2, 2)), np.zeros((2, 1, 2, 2)), np.zeros((3, 5, 2, 2)))
    with pytest.raises(ValueError, match="last two axes"):
        mae(np.zeros(4), np.zeros(4), np.ones(4, bool))
    with pytest.raises(ValueError, match="cell_area_km2"):
        iiee(FC, OB, 0.0, MASK)
    with pytest.raises(ValueError, match="member_axis 3"):
        crps(np.zeros((2, 3, 3)), OB, MASK, member_axis=3)
