"""Response categories: exact boundaries on known products, and ellipsoids measured on oblique, anisotropic grids."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from neuroseg.longitudinal import response
from neuroseg.longitudinal.response import (COMPLETE, MINOR, PARTIAL, PROGRESSION, STABLE, change_map,
                                            classify_change, lesion_labels, match_lesions, rano_category,
                                            volumetric_category)
from neuroseg.measure import Bidimensional, Lesion, LesionMeasurements, measure_lesions
from neuroseg.volume import Volume
from tests.shapes import ellipsoid, grid_affine


def lesion(label, longest, perpendicular, volume_ml=1.0):
    limit = 10.0
    return Lesion(label, 100, volume_ml, longest, Bidimensional(2, 0, longest, perpendicular),
                  longest >= limit and perpendicular >= limit, (0.0, 0.0, 0.0), (0.0,) * 3, (0.0,) * 3)


def measurements(*lesions):
    return LesionMeasurements(tuple(lesions), sum(x.volume_ml for x in lesions), None, None, 2, 5.0)


def one_to_one(n=1):
    return response.Matching(pairs=[(k, k, 10) for k in range(1, n + 1)])


@pytest.mark.parametrize("after, expected", [
    ((50, 25), PROGRESSION),  # 1250 mm2 from 1000: +25 % exactly
    ((50, 24.9999), STABLE),
    ((50, 15.0001), STABLE),  # -24.9998 %
    ((50, 15), MINOR),  # -25 % exactly
    ((50, 10.0001), MINOR),
    ((50, 10), PARTIAL),  # -50 % exactly
    ((40, 5), PARTIAL),
])
def test_rano_boundaries_are_exact_on_the_sum_of_products(after, expected):
    before = measurements(lesion(1, 50, 20))  # 1000 mm2
    result = rano_category(before, measurements(lesion(1, *after)), one_to_one())
    assert result["category"] == expected, result
    assert result["spd_baseline_mm2"] == 1000.0


def test_classify_change_on_its_own_boundaries():
    assert [classify_change(v) for v in (25.0, 24.999, -25.0, -24.999, -50.0, -49.999)] == \
           [PROGRESSION, STABLE, MINOR, STABLE, PARTIAL, MINOR]


def test_a_new_measurable_lesion_is_progression_even_when_the_target_shrinks():
    before = measurements(lesion(1, 50, 20))
    after = measurements(lesion(1, 30, 10), lesion(2, 12, 10))
    matching = response.Matching(pairs=[(1, 1, 5)], new=[2])
    assert rano_category(before, after, matching)["category"] == PROGRESSION
    small = measurements(lesion(1, 30, 10), lesion(2, 12, 9))  # 9 mm: not measurable
    assert rano_category(before, small, matching)["category"] == PARTIAL


def test_complete_response_only_when_every_lesion_is_gone():
    before = measurements(lesion(1, 50, 20), lesion(2, 8, 6))
    assert rano_category(before, measurements(), response.Matching(resolved=[1, 2]))["category"] == COMPLETE
    rest = measurements(lesion(1, 8, 6))  # the non-target lesion remains
    assert rano_category(before, rest, response.Matching(pairs=[(2, 1, 3)], resolved=[1]))["category"] == PARTIAL


def test_no_measurable_lesion_at_baseline_gives_no_bidimensional_category():
    result = rano_category(measurements(lesion(1, 8, 6)), measurements(lesion(1, 9, 6)), one_to_one())
    assert result["category"] is None and "no measurable" in result["rule"]


@pytest.mark.parametrize("after_ml, expected", [(14.0, PROGRESSION), (13.99, STABLE), (3.5, PARTIAL),
                                                (3.51, STABLE), (0.0, COMPLETE)])
def test_volumetric_boundaries(after_ml, expected):
    assert volumetric_category(10.0, after_ml)["category"] == expected


def test_withheld_keeps_the_numbers_and_drops_the_category():
    section = response.withheld(volumetric_category(10.0, 20.0), ["head-mask Dice 0.7 < 0.88"])
    assert section["category"] is None and section["withheld"] and section["change_percent"] == 100.0
    assert "0.7" in section["rule"]


# Ellipsoids: a 40 x 30 mm axial section (semi-axes 20 and 15 mm) on two oblique, anisotropic grids.
BASE_GRID = grid_affine((0.9, 0.9, 3.0), degrees=15, axis=0, origin=(-30.0, -33.0, -30.0))
FOLLOW_GRID = grid_affine((1.0, 0.8, 2.0), degrees=-10, axis=1, origin=(-33.0, -30.0, -28.0))
SHAPE = (68, 72, 22)
FOLLOW_SHAPE = (62, 78, 30)


@functools.cache
def measured(grid_name, semi_axes):
    grid, shape = (BASE_GRID, SHAPE) if grid_name == "base" else (FOLLOW_GRID, FOLLOW_SHAPE)
    mask = ellipsoid(shape, grid, (0.0, 0.0, 0.0), semi_axes)
    assert not (mask.array[[0, -1]].any() or mask.array[:, [0, -1]].any() or mask.array[:, :, [0, -1]].any())
    return measure_lesions(mask)


@pytest.mark.parametrize("scale, expected", [(1.0, STABLE), (1.2, PROGRESSION), (0.84, MINOR), (0.65, PARTIAL)])
def test_categories_of_ellipsoids_measured_on_two_oblique_anisotropic_grids(scale, expected):
    # products scale with scale**2: 1.44 (+44 %), 0.71 (-29 %), 0.42 (-58 %): clear of every boundary by
    # more than the measurement's error on these grids (one voxel on each diameter)
    before = measured("base", (20, 15, 12))
    after = measured("follow-up", (20 * scale, 15 * scale, 12))
    result = rano_category(before, after, one_to_one())
    assert result["category"] == expected, result
    assert abs(result["spd_baseline_mm2"] - 1200) < 0.1 * 1200
    volume = volumetric_category(before.total_volume_ml, after.total_volume_ml)
    assert volume["change_percent"] == pytest.approx(100 * (scale ** 2 - 1), abs=6)


def test_labels_follow_measure_lesions_and_matching_finds_new_and_resolved():
    grid = np.diag([1.0, 1.0, 2.0, 1.0])
    big = ellipsoid((60, 60, 20), grid, (20, 30, 20), (12, 12, 8)).array
    small = ellipsoid((60, 60, 20), grid, (45, 30, 20), (5, 5, 4)).array
    other = ellipsoid((60, 60, 20), grid, (45, 10, 20), (6, 6, 4)).array
    before, after = big | small, big | other
    labels = lesion_labels(before)
    found = measure_lesions(Volume(before, grid))
    assert [int((labels == n).sum()) for n in (1, 2)] == [x.voxels for x in found.lesions]
    matching = match_lesions(labels, lesion_labels(after), followup_count=2)
    assert [(b, f) for b, f, _ in matching.pairs] == [(1, 1)]
    assert matching.new == [2] and matching.resolved == [2]
    change = change_map(before, after)
    assert set(np.unique(change)) == {0, 1, 2, 3}
    assert (change == 1).sum() == big.sum() and (change == 2).sum() == other.sum() and (change == 3).sum() == small.sum()
