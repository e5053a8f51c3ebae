"""Per-slice operations of the input checks (axial slices along axis 2): morphology and distances, the
results scipy gives, at a fraction of its cost.

scipy's binary morphology loops over a structuring element voxel by voxel; a 3x3 cross or square is
a few shifted ANDs or ORs of whole arrays (20-50x faster on 24 slices of 256 x 256). A distance
transform needs only the box of what it measures (see :func:`distance_mm`).
"""

from __future__ import annotations

import numpy as np


def opening(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """``ndimage.binary_opening(mask, structure, iterations)`` with the 4-neighbour cross within each axial
    slice (none across slices) as structure: erosions, then as many dilations."""
    for _ in range(iterations):
        mask = _erode_cross(mask)
    for _ in range(iterations):
        mask = _dilate_cross(mask)
    return mask


def _erode_cross(mask: np.ndarray) -> np.ndarray:
    """A pixel stays set where its four in-plane neighbours are; beyond the image nothing is (scipy's
    border_value 0), so the image's edge goes."""
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    out[[0, -1]] = False
    out[:, [0, -1]] = False
    return out


def _dilate_cross(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def dilation(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """``ndimage.binary_dilation(mask, structure, iterations)`` with the in-plane 3x3 square as structure:
    every pixel at most ``iterations`` pixels from a set one along each in-plane axis (the square's
    repeats are a larger square, grown one axis after the other)."""
    out = mask
    for axis in (0, 1):
        source, out = out, out.copy()
        for step in range(1, iterations + 1):
            _or_shifted(out, source, axis, step)
    return out


def _or_shifted(out: np.ndarray, source: np.ndarray, axis: int, step: int) -> None:
    """``out |= source`` moved ``step`` pixels along ``axis`` both ways (what falls off the image is lost)."""
    if step >= source.shape[axis]:
        return
    ahead, behind = [slice(None)] * source.ndim, [slice(None)] * source.ndim
    ahead[axis], behind[axis] = slice(step, None), slice(None, -step)
    out[tuple(ahead)] |= source[tuple(behind)]
    out[tuple(behind)] |= source[tuple(ahead)]


def distance_mm(inside: np.ndarray, spacing, within: np.ndarray | None = None) -> np.ndarray:
    """``ndimage.distance_transform_edt(inside, sampling=spacing)`` of a 2D mask (mm from each pixel to the
    nearest pixel not ``inside``), computed on the box of ``within`` (default ``inside``) grown by one pixel.

    The same numbers wherever they are read, at a fraction of the cost (a head fills half the image, the
    brain less): a pixel outside ``inside``'s grown box is outside it, so for any pixel of the box the
    nearest outside pixel is in the box (moving one into the box brings it nearer). Given ``within``, every
    pixel not ``inside`` must lie in it, and only its pixels are read. Outside the box: 0.
    """
    from scipy import ndimage

    box = grown_box(inside if within is None else within)
    if box is None:
        return np.zeros(inside.shape)
    if inside[box].all():  # nothing outside to measure to: scipy's answer then depends on the image's size
        return ndimage.distance_transform_edt(inside, sampling=spacing)
    distance = np.zeros(inside.shape)
    distance[box] = ndimage.distance_transform_edt(inside[box], sampling=spacing)
    return distance


def grown_box(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The box of a 2D mask's set pixels grown by one pixel on each side (within the image); None if none is."""
    from neuroseg.transforms.box import bounding_box, grown

    box = bounding_box(mask)
    return None if box is None else grown(box)
