"""Inputs made from the sample FLAIR (sample_data/, in the repository) for the input-check tests."""

from __future__ import annotations

import numpy as np

from neuroseg.volume import Volume
from tests.conftest import REPO

SAMPLE = REPO / "sample_data" / "TCGA-FG-6692_flair.nii.gz"


def sample_flair() -> Volume:
    from neuroseg.io import load_volume

    return load_volume(SAMPLE)


def _scaled(affine, factors) -> np.ndarray:
    out = np.array(affine, dtype=np.float64)
    out[:3, :3] = out[:3, :3] * np.asarray(factors, dtype=np.float64)
    return out


def cropped(volume: Volume, keep: int = 90) -> Volume:
    """The middle ``keep`` x ``keep`` voxels of each slice: a brain-sized window cut out of the head."""
    i0, j0 = (volume.shape[0] - keep) // 2, (volume.shape[1] - keep) // 2
    affine = volume.affine.copy()
    affine[:3, 3] = volume.affine[:3, :3] @ np.array([i0, j0, 0]) + volume.affine[:3, 3]
    return Volume(volume.array[i0:i0 + keep, j0:j0 + keep].copy(), affine, {"format": "nifti"})


def thick_slices(volume: Volume, factor: int = 2) -> Volume:
    """Neighbouring slices averaged: 5.5 mm slices become 11 mm ones."""
    n = volume.shape[2] // factor * factor
    array = volume.array[:, :, :n].reshape(*volume.shape[:2], n // factor, factor).mean(axis=3)
    return Volume(array, _scaled(volume.affine, (1, 1, factor)), {"format": "nifti"})


def low_resolution(volume: Volume, factor: int = 3) -> Volume:
    """In-plane block averages: 0.9 mm becomes 2.7 mm."""
    n_i, n_j = volume.shape[0] // factor * factor, volume.shape[1] // factor * factor
    array = volume.array[:n_i, :n_j].reshape(n_i // factor, factor, n_j // factor, factor, -1).mean(axis=(1, 3))
    return Volume(array, _scaled(volume.affine, (factor, factor, 1)), {"format": "nifti"})


def brain_region(volume: Volume, depth_mm: float = 12.0):
    """(bool mask of the brain on the source grid): deeper than ``depth_mm`` below the outline."""
    from scipy import ndimage

    from neuroseg.checks.head import head_threshold, largest_filled
    from neuroseg.transforms import Reorientation

    working = Reorientation.to_working(volume).apply_volume(volume)
    head = largest_filled(head_threshold(np.asarray(working.array, dtype=np.float32)))  # every slice
    depth = np.zeros(head.shape, dtype=np.float32)
    for k in range(head.shape[2]):
        depth[:, :, k] = ndimage.distance_transform_edt(head[:, :, k], sampling=working.spacing[:2])
    return Reorientation.to_working(volume).invert(depth > depth_mm)


def skull_stripped(volume: Volume) -> Volume:
    """Everything but the brain set to 0, as a skull-stripping tool leaves it."""
    brain = brain_region(volume)
    return Volume(np.where(brain, volume.array, 0).astype(np.float32), volume.affine, {"format": "nifti"})


def inverted_tissue(volume: Volume) -> Volume:
    """A T1-like contrast: inside the brain, tissue brighter than white matter is mirrored below it.

    In FLAIR grey matter is brighter than white; mirrored about white matter's peak intensity it is
    darker, as in T1. CSF and the darker partial-volume tissue stay as they are (dark in both), and so
    does the brightest 2 % (lesion, vessels). 0.83 on the sample FLAIR (1.14 before).
    """
    from neuroseg.checks.sequence import _mode

    brain = brain_region(volume)
    array = volume.array.astype(np.float32).copy()
    tissue = brain & (array > 0.7 * float(np.median(array[brain])))
    white = _mode(array[tissue])
    brighter = tissue & (array > white) & (array < np.percentile(array[tissue], 98))
    array[brighter] = 2 * white - array[brighter]
    return Volume(array, volume.affine, {"format": "nifti"})


def tiny() -> Volume:
    """A 4 x 5 x 7 image: too small to be a head."""
    return Volume(np.random.default_rng(0).random((4, 5, 7)).astype(np.float32) * 100, np.eye(4), {"format": "nifti"})
