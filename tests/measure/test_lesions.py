"""Lesion measurements against the known geometry of synthetic ellipsoids, on any grid."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from neuroseg.measure import axial_axis, measure_lesions
from neuroseg.volume import Volume
from tests.geometry import FLIPS, PERMUTATIONS, reorder
from tests.shapes import ellipsoid, ellipsoid_ml, grid_affine

SEMI = (16.0, 11.0, 9.0)  # mm: diameters 32, 22, 18


def grid_aligned(spacing, degrees, centre_shift=(0.3, -0.2, 0.4), size_mm=60.0):
    """An ellipsoid whose axes follow the grid's (tilted by ``degrees``), and its centre's voxel position."""
    affine = grid_affine(spacing, degrees, 0, origin=(-40.0, -30.0, -20.0))
    shape = tuple(int(np.ceil(size_mm / s)) for s in spacing)
    centre_index = np.array(shape) / 2.0 + np.array(centre_shift)
    centre = affine[:3, :3] @ centre_index + affine[:3, 3]
    axes = affine[:3, :3] / np.asarray(spacing)
    return ellipsoid(shape, affine, centre, SEMI, axes), centre, centre_index


@pytest.mark.parametrize("spacing, degrees", [((1.0, 1.0, 1.0), 0), ((1.0, 1.0, 1.0), 25),
                                              ((0.9, 1.1, 3.0), 20), ((1.0, 1.0, 5.0), 15),
                                              ((0.5, 0.5, 6.0), 10)])
def test_ellipsoid_diameters_match_its_geometry(spacing, degrees):
    mask, centre, centre_index = grid_aligned(spacing, degrees)
    result = measure_lesions(mask)
    assert result.foci == 1 and result.axial_axis == 2
    lesion = result.lesions[0]
    # Surface points lie within half a voxel step of the true surface: each end of a length is off by that.
    assert lesion.longest_diameter_mm == pytest.approx(2 * SEMI[0], abs=max(spacing))
    # The axial section on the measured slice is an ellipse of known axes at its distance from the centre.
    dz = (lesion.bidimensional.slice_index - centre_index[2]) * spacing[2]
    scale = np.sqrt(1.0 - (dz / SEMI[2]) ** 2)
    assert abs(dz) < SEMI[2] / 2  # a slice near the middle (voxelised sections of nearby slices may tie)
    in_plane = max(spacing[:2])
    assert lesion.bidimensional.longest_mm == pytest.approx(2 * SEMI[0] * scale, abs=in_plane)
    assert lesion.bidimensional.perpendicular_mm == pytest.approx(2 * SEMI[1] * scale, abs=in_plane)
    assert lesion.volume_ml == pytest.approx(mask.array.sum() * mask.voxel_volume_ml)
    assert np.linalg.norm(np.array(lesion.centroid_ras) - centre) < max(spacing) / 8 + 0.05
    assert lesion.measurable


@pytest.mark.parametrize("spacing, degrees", [((1.0, 1.0, 1.0), 30), ((0.9, 1.1, 3.0), 20)])
def test_volume_and_centroid_within_the_tolerances_of_the_mesh_checks(spacing, degrees):
    mask, centre, _ = grid_aligned(spacing, degrees)
    lesion = measure_lesions(mask).lesions[0]
    assert lesion.volume_ml == pytest.approx(ellipsoid_ml(SEMI), rel=0.03)
    assert np.linalg.norm(np.array(lesion.centroid_ras) - centre) < 0.5


def test_bounding_box_and_centroid_are_exact_when_the_surface_falls_on_voxel_faces():
    # Semi-axes of n + 1/2 voxels about a voxel centre: the voxel faces lie on the ellipsoid's tips.
    affine = grid_affine((1.0, 2.0, 1.5), origin=(-31.0, 12.0, 7.5))
    centre = affine[:3, :3] @ np.array([20.0, 15.0, 12.0]) + affine[:3, 3]
    semi = (12.5, 9.0, 6.75)  # 12.5 voxels of 1 mm, 4.5 of 2 mm, 4.5 of 1.5 mm
    lesion = measure_lesions(ellipsoid((41, 31, 25), affine, centre, semi)).lesions[0]
    np.testing.assert_allclose(lesion.centroid_ras, centre, atol=1e-9)
    np.testing.assert_allclose(lesion.bbox_min_ras, centre - semi, atol=1e-9)
    np.testing.assert_allclose(lesion.bbox_max_ras, centre + semi, atol=1e-9)
    np.testing.assert_allclose(lesion.centroid_lps, [-centre[0], -centre[1], centre[2]], atol=1e-9)
    lps_min, lps_max = lesion.bbox_lps
    np.testing.assert_allclose(lps_min, [-(centre[0] + 12.5), -(centre[1] + 9.0), centre[2] - 6.75], atol=1e-9)
    np.testing.assert_allclose(lps_max, [-(centre[0] - 12.5), -(centre[1] - 9.0), centre[2] + 6.75], atol=1e-9)


@pytest.mark.parametrize("permutation", PERMUTATIONS)
@pytest.mark.parametrize("flips", FLIPS)
def test_every_axis_order_and_flip_measures_the_same_tumour(permutation, flips):
    mask, reference = _two_lesions()
    stored = reorder(mask, permutation, flips)
    result = measure_lesions(stored)
    assert result.axial_axis == list(permutation).index(2)  # the axial slices follow the S axis
    got = result.to_json()
    for key in ("foci", "total_volume_ml", "longest_diameter_mm", "largest_focus_distance_mm"):
        assert got[key] == pytest.approx(reference[key], abs=0.011)
    for mine, theirs in zip(got["lesions"], reference["lesions"]):
        for key in ("voxels", "volume_ml", "longest_diameter_mm", "measurable", "centroid_ras_mm",
                    "centroid_lps_mm", "bounding_box_ras_mm", "bounding_box_lps_mm"):
            assert mine[key] == pytest.approx(theirs[key], abs=0.011)
        for key in ("longest_mm", "perpendicular_mm"):
            assert mine["bidimensional"][key] == pytest.approx(theirs["bidimensional"][key], abs=0.11)


@functools.lru_cache(maxsize=1)
def _two_lesions():
    """An ellipsoid and a small satellite on an anisotropic grid, and their measurements as stored."""
    mask, _, _ = grid_aligned((1.0, 1.2, 2.5), 0, size_mm=40.0)
    mask = mask.with_array(mask.array + _satellite(mask.shape))
    return mask, measure_lesions(mask).to_json()


def _satellite(shape):
    """A 3x3x2-voxel second lesion in a corner, apart from the ellipsoid."""
    extra = np.zeros(shape, dtype=np.uint8)
    extra[1:4, 1:4, 1:3] = 1
    return extra


def test_foci_are_counted_and_their_distance_measured():
    affine = grid_affine((1.0, 1.0, 1.0), 15)
    big = ellipsoid((70, 50, 50), affine, affine[:3, :3] @ [20, 25, 25] + affine[:3, 3], (10, 8, 8))
    small_centre = affine[:3, :3] @ [55, 25, 25] + affine[:3, 3]
    small = ellipsoid((70, 50, 50), affine, small_centre, (4, 4, 4))
    result = measure_lesions(big.with_array(big.array | small.array))
    assert result.foci == 2
    assert result.lesions[0].voxels > result.lesions[1].voxels  # largest first
    assert [lesion.label for lesion in result.lesions] == [1, 2]
    assert result.largest_focus_distance_mm == pytest.approx(35.0, abs=0.05)
    assert result.longest_diameter_mm == pytest.approx(10 + 35 + 4, abs=1.0)
    assert result.total_volume_ml == pytest.approx(result.lesions[0].volume_ml + result.lesions[1].volume_ml)
    assert not result.lesions[1].measurable  # 8 mm across: under RANO's 10 mm
    assert "2 lesions" in result.summary()


def test_voxels_touching_at_a_corner_are_one_lesion():
    array = np.zeros((6, 6, 6), dtype=np.uint8)
    array[1, 1, 1] = array[2, 2, 2] = 1
    assert measure_lesions(Volume(array, np.eye(4))).foci == 1


def test_thick_slices_raise_the_measurable_size_to_twice_their_thickness():
    semi = (7.0, 7.0, 14.0)  # 14 mm across in plane
    thin = grid_affine((1.0, 1.0, 2.0))
    thick = grid_affine((1.0, 1.0, 8.0))
    assert measure_lesions(ellipsoid((40, 40, 20), thin, (20, 20, 20), semi)).lesions[0].measurable
    result = measure_lesions(ellipsoid((40, 40, 6), thick, (20, 20, 20), semi))
    assert result.slice_thickness_mm == pytest.approx(8.0)
    assert not result.lesions[0].measurable  # 14 mm < 2 x 8 mm


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_lesion_seen_on_one_axial_slice_is_not_measurable_however_wide(axis):
    # RANO: measurable lesions are seen on two or more axial slices; a one-slice blot of a
    # segmentation once made a scan compared with itself read as progression.
    shape = [30, 30, 30]
    array = np.zeros(shape, dtype=np.uint8)
    wide = [slice(5, 25)] * 3
    wide[axis] = slice(10, 11)  # one slice along the axial axis, 20 mm across in plane
    array[tuple(wide)] = 1
    affine = np.eye(4)
    order = [a for a in range(3) if a != axis] + [axis]  # array axis ``axis`` runs along S
    affine[:3, :3] = np.eye(3)[:, np.argsort(order)]
    one = measure_lesions(Volume(array, affine))
    assert one.axial_axis == axis and one.lesions[0].axial_slices == 1
    assert not one.lesions[0].measurable
    wide[axis] = slice(10, 12)
    array[tuple(wide)] = 1
    two = measure_lesions(Volume(array, affine)).lesions[0]
    assert two.axial_slices == 2 and two.measurable
    assert two.to_json()["axial_slices"] == 2


def test_axial_axis_follows_the_scanner_s_axis_on_a_tilted_sagittal_grid():
    sagittal = np.array([[0, 0, -1.0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]])
    assert axial_axis(sagittal) == 1
    tilted = grid_affine((1.0, 1.0, 1.0), 40, axis=0)  # array axis 2 is 40 degrees off S, axis 1 50 degrees
    assert axial_axis(tilted) == 2


def test_an_empty_mask_has_no_lesion_and_serialises():
    result = measure_lesions(Volume(np.zeros((4, 4, 4), np.uint8), np.eye(4)))
    assert result.foci == 0 and result.total_volume_ml == 0 and result.longest_diameter_mm is None
    assert json.loads(json.dumps(result.to_json()))["lesions"] == []
    assert result.summary() == "No lesion."


def test_to_json_names_both_conventions():
    mask, centre, _ = grid_aligned((1.0, 1.0, 1.0), 0)
    lesion = json.loads(json.dumps(measure_lesions(mask).to_json()))["lesions"][0]
    ras, lps = lesion["centroid_ras_mm"], lesion["centroid_lps_mm"]
    assert lps == pytest.approx([-ras[0], -ras[1], ras[2]])
    assert lesion["bounding_box_lps_mm"]["min"][0] == pytest.approx(-lesion["bounding_box_ras_mm"]["max"][0])


def test_the_perpendicular_chord_is_exact_on_a_rectangle_across_its_diagonal():
    from neuroseg.measure.lesions import _chord_across

    section = np.ones((20, 10), dtype=bool)  # 20 x 10 mm pixels edge to edge: corners at -0.5 and 19.5, 9.5
    p, q = np.array([-0.5, -0.5]), np.array([19.5, 9.5])
    # Perpendicular to the diagonal, a chord from one long side to the other is 10 / cos = 10 * d / 20.
    assert _chord_across(section, np.eye(2), p, q) == pytest.approx(10 * np.hypot(20, 10) / 20, abs=1e-6)
    # Anisotropic pixels (0.5 x 2 mm): 10 x 10 mm, measured across in mm.
    assert _chord_across(np.ones((20, 5), bool), np.diag([0.5, 2.0]), np.array([-0.25, 4.0]),
                         np.array([9.75, 4.0])) == pytest.approx(10.0, abs=1e-6)


def test_the_perpendicular_chord_does_not_cross_a_gap():
    from neuroseg.measure.lesions import _chord_across

    section = np.zeros((10, 10), dtype=bool)
    section[:, :4] = section[:, 6:] = True  # two bars 4 pixels wide, 2 apart, across the line p-q
    assert _chord_across(section, np.eye(2), np.array([-0.5, 1.5]), np.array([9.5, 1.5])) == pytest.approx(4.0)


def test_bounding_box_and_tumour_voxels_match_argwhere_on_any_mask():
    from neuroseg.measure import tumour_voxels
    from neuroseg.transforms.box import bounding_box

    rng = np.random.default_rng(5)
    for n in range(300):
        shape = tuple(int(s) for s in rng.integers(1, 10, 3))
        mask = (rng.random(shape) < rng.random() * 0.2).astype(np.uint8)
        if n % 4 == 0:
            mask = np.asfortranarray(mask)
        voxels = np.argwhere(mask > 0)
        assert np.array_equal(tumour_voxels(mask), voxels) and tumour_voxels(mask).shape == voxels.shape
        box = bounding_box(mask)
        if voxels.size == 0:
            assert box is None
        else:
            assert [(s.start, s.stop) for s in box] == list(zip(voxels.min(axis=0), voxels.max(axis=0) + 1))
