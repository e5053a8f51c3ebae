"""The shipped model on the shipped sample: the outline lies on the patient's real tumour."""

import nibabel as nib
import numpy as np
import pytest

import neuroseg
from tests.conftest import REPO, shared_path

SAMPLE = REPO / "sample_data" / "TCGA-FG-6692_flair.nii.gz"


@pytest.fixture(scope="module")
def sample_result():
    return neuroseg.segment(SAMPLE, device="cpu")


def _side(points_x, head_x):
    return "right" if np.mean(points_x) > head_x else "left"  # RAS+: x grows toward the right


def test_sample_mask_is_on_the_input_grid(sample_result):
    source = nib.load(str(SAMPLE))
    assert sample_result.mask.shape == source.shape
    assert np.array_equal(sample_result.mask.affine, source.affine)


def test_sample_tumour_side_and_slices_match_the_patients_own_mask(sample_result):
    label = nib.load(str(shared_path("lgg-flair", "labelsTr", "TCGA_FG_6692_20020606.nii.gz")))
    image = nib.load(str(shared_path("lgg-flair", "imagesTr", "TCGA_FG_6692_20020606.nii.gz")))
    truth = np.asarray(label.dataobj) > 0
    assert sample_result.report["tumour_found"]

    def world_x(volume_affine, mask):
        points = np.c_[np.argwhere(mask), np.ones(mask.sum())]
        return (volume_affine @ points.T)[0]

    truth_head = world_x(image.affine, np.asarray(image.dataobj) > 20).mean()
    sample_head = world_x(sample_result.image.affine, sample_result.image.array > 100).mean()
    assert _side(world_x(sample_result.mask.affine, sample_result.mask.array > 0), sample_head) == \
        _side(world_x(label.affine, truth), truth_head)

    # Both stacks are the same 26 axial slices, inferior to superior.
    true_slices = set(np.flatnonzero(truth.any(axis=(0, 1))))
    found = set(sample_result.tumour_slices)
    assert len(found & true_slices) >= 0.6 * len(true_slices)
    assert len(found - true_slices) <= 3
