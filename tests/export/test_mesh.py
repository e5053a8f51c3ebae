"""Tumour meshes: closed, outward, on the mask in scanner mm over any grid, and as Slicer/NiiVue read them."""

from __future__ import annotations

import functools
import json

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("skimage", reason="needs the mesh extra: pip install 'neuroseg[mesh]'")
trimesh = pytest.importorskip("trimesh", reason="needs the mesh extra: pip install 'neuroseg[mesh]'")

from neuroseg.export.mesh import SPACE_TAG, build_mesh, write_mesh  # noqa: E402
from neuroseg.measure import surface_points, voxel_to_ras  # noqa: E402
from neuroseg.volume import Volume  # noqa: E402
from tests.geometry import FLIPS, PERMUTATIONS, reorder  # noqa: E402
from tests.shapes import ellipsoid, ellipsoid_ml, grid_affine  # noqa: E402

SEMI = (16.0, 11.0, 9.0)


def _tumour(spacing, degrees=0.0, size_mm=60.0, semi=SEMI):
    affine = grid_affine(spacing, degrees, 0, origin=(-40.0, -30.0, -20.0))
    shape = tuple(int(np.ceil(size_mm / s)) for s in spacing)
    centre = affine[:3, :3] @ (np.array(shape) / 2.0 + 0.3) + affine[:3, 3]
    return ellipsoid(shape, affine, centre, semi), centre


def _mask_centroid(mask: Volume) -> np.ndarray:
    return voxel_to_ras(np.argwhere(mask.array > 0).mean(axis=0, keepdims=True), mask.affine)[0]


@pytest.mark.parametrize("spacing, degrees", [((1.0, 1.0, 1.0), 0), ((1.0, 1.0, 1.0), 25), ((0.9, 1.1, 3.0), 20),
                                              ((1.0, 1.0, 5.0), 15), ((0.5, 0.5, 6.0), 10)])
def test_ellipsoid_mesh_passes_every_check_on_oblique_and_anisotropic_grids(spacing, degrees):
    mask, centre = _tumour(spacing, degrees)
    tumour = build_mesh(mask)
    (check,) = tumour.checks
    assert check.failures == []
    assert check.watertight and check.outward and check.shells == 1
    assert abs(check.volume_error) < 0.03
    assert check.centroid_error_mm < 0.5
    assert check.max_boundary_distance_mm <= check.voxel_diagonal_mm
    mesh = tumour.meshes[0]
    assert mesh.volume / 1000 == pytest.approx(ellipsoid_ml(SEMI), rel=0.03)  # and the true tumour's too
    assert np.linalg.norm(mesh.center_mass - centre) < 0.5


def _terrace_share(mesh, axis) -> float:
    """The share of the surface area whose normal lies within 18 degrees of ``axis`` (a sphere: 1 - cos 18 = 0.049)."""
    facing = np.abs(mesh.face_normals @ axis) > np.cos(np.radians(18.0))
    return float(mesh.area_faces[facing].sum() / mesh.area)


def test_thick_slices_give_sloped_walls_not_a_staircase_and_keep_the_volume():
    mask, centre = _tumour((1.0, 1.0, 5.0), 0, semi=(12.0, 12.0, 12.0))
    tumour = build_mesh(mask)
    assert tumour.supersampling == (1, 1, 4)
    sphere, rough = tumour.meshes[0], build_mesh(mask, smooth=False).meshes[0]
    # Terraces (faces normal to the slice axis) were 0.29 of the area with the blurred occupancy of old;
    # shape-based interpolation slopes the walls before any smoothing, and Taubin keeps the volume.
    assert _terrace_share(sphere, np.array([0.0, 0.0, 1.0])) < 0.15
    assert _terrace_share(rough, np.array([0.0, 0.0, 1.0])) < 0.15
    assert sphere.volume == pytest.approx(rough.volume, rel=0.01)
    assert sphere.volume / 1000 == pytest.approx(mask.array.sum() * mask.voxel_volume_ml, rel=0.03)
    assert np.linalg.norm(sphere.center_mass - centre) < 0.5


@functools.lru_cache(maxsize=1)
def _reference():
    mask, _ = _tumour((1.0, 1.2, 2.5), 0, size_mm=40.0, semi=(12.0, 8.0, 7.0))
    tumour = build_mesh(mask)
    return mask, tumour.meshes[0].volume, tumour.meshes[0].center_mass


@pytest.mark.parametrize("permutation", PERMUTATIONS)
@pytest.mark.parametrize("flips", FLIPS)
def test_every_axis_order_and_flip_gives_the_same_closed_outward_mesh(permutation, flips):
    mask, volume, centre = _reference()
    tumour = build_mesh(reorder(mask, permutation, flips))
    (check,) = tumour.checks
    assert check.failures == [] and check.watertight and check.outward
    mesh = tumour.meshes[0]
    assert mesh.volume == pytest.approx(volume, rel=0.01)
    assert np.linalg.norm(mesh.center_mass - centre) < 0.1


def test_each_lesion_is_its_own_closed_shell_even_at_the_image_border():
    array = np.zeros((30, 30, 12), dtype=np.uint8)
    array[0:8, 0:8, 0:5] = 1  # touches three faces of the image
    array[18:26, 15:25, 4:10] = 1
    array[28, 28, 11] = 1  # one voxel in the far corner
    tumour = build_mesh(Volume(array, grid_affine((0.8, 0.8, 2.0), 10)))
    assert len(tumour.meshes) == 3
    assert [c.label for c in tumour.checks] == [1, 2, 3]
    for mesh, check in zip(tumour.meshes, tumour.checks):
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
        assert check.max_boundary_distance_mm <= check.voxel_diagonal_mm


def test_stl_re_read_with_its_lps_tag_lands_on_the_mask(tmp_path):
    mask, _ = _tumour((0.9, 1.1, 3.0), 20)
    mask = reorder(mask, (2, 0, 1), (True, False, True))  # stored against RAS: a mirroring affine
    tumour = build_mesh(mask)
    stl, obj, gii = write_mesh(tumour, tmp_path)
    header = stl.read_bytes()[:80].decode("ascii")
    assert SPACE_TAG in header and not header.startswith("solid")  # binary, and not mistaken for ASCII
    read = trimesh.load(stl, force="mesh")
    space = {"SPACE=LPS": np.array([-1.0, -1.0, 1.0]), "SPACE=RAS": np.ones(3)}[SPACE_TAG]
    ras = read.vertices * space  # what Slicer does with the tag
    boundary = voxel_to_ras(surface_points(mask.array > 0), mask.affine)
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(boundary).query(ras)
    assert distance.max() <= np.linalg.norm(mask.spacing)
    placed = trimesh.Trimesh(ras, read.faces)
    assert placed.is_watertight and placed.volume > 0  # outward after the LPS flip too
    assert np.linalg.norm(placed.center_mass - _mask_centroid(mask)) < 0.5
    assert placed.volume / 1000 == pytest.approx(mask.array.sum() * mask.voxel_volume_ml, rel=0.03)
    # The OBJ says the same in its comment; the GIfTI holds RAS.
    assert obj.read_text().splitlines()[0].endswith(SPACE_TAG)
    obj_mesh = trimesh.load(obj, force="mesh", process=False)
    np.testing.assert_allclose(np.sort(obj_mesh.vertices * space, axis=0), np.sort(ras, axis=0), atol=1e-3)
    image = nib.load(str(gii))
    points = image.agg_data("NIFTI_INTENT_POINTSET")
    np.testing.assert_allclose(np.sort(points, axis=0), np.sort(ras, axis=0), atol=1e-3)
    assert image.darrays[0].coordsys.dataspace == nib.nifti1.xform_codes.code["scanner"]


def test_a_mask_without_tumour_writes_empty_but_valid_files(tmp_path):
    tumour = build_mesh(Volume(np.zeros((5, 5, 5), np.uint8), np.eye(4)))
    assert tumour.meshes == () and tumour.checks == ()
    stl, obj, gii = write_mesh(tumour, tmp_path)
    assert len(stl.read_bytes()) == 84
    assert nib.load(str(gii)).agg_data("NIFTI_INTENT_POINTSET").shape == (0, 3)


@pytest.mark.slow
def test_real_lgg_flair_masks_pass_every_check():
    from neuroseg.export.mesh import load_mask
    from tests.conftest import shared_path

    files = sorted(shared_path("lgg-flair", "labelsTr").glob("*.nii.gz"))[:6]
    for path in files:
        for check in build_mesh(load_mask(path)).checks:
            assert check.failures == [], (path.name, check.label, check.failures)
