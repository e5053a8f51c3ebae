"""Helpers that re-store one volume under another axis order, flips, or an oblique affine."""

from __future__ import annotations

import itertools

import numpy as np

from neuroseg.volume import Volume

FLIPS = list(itertools.product((False, True), repeat=3))
PERMUTATIONS = list(itertools.permutations(range(3)))


def reorder(volume: Volume, permutation, flips) -> Volume:
    """The same world content, stored with array axes permuted then flipped."""
    array = np.transpose(volume.array, permutation)
    affine = volume.affine.copy()
    affine[:, :3] = affine[:, list(permutation)]
    for axis, flip in enumerate(flips):
        if flip:
            n = array.shape[axis]
            array = np.flip(array, axis)
            affine[:3, 3] += affine[:3, axis] * (n - 1)
            affine[:3, axis] *= -1
    return Volume(np.ascontiguousarray(array), affine, dict(volume.meta))


def rotate_affine(affine: np.ndarray, degrees: float, axis: int = 0) -> np.ndarray:
    """Tilt the grid in the world by ``degrees`` around world axis ``axis``."""
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    a, b = [i for i in range(3) if i != axis]
    rotation = np.eye(4)
    rotation[a, a], rotation[a, b], rotation[b, a], rotation[b, b] = c, -s, s, c
    return rotation @ affine
