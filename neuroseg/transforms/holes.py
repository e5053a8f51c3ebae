"""Holes that a mask encloses, filled within each axial slice."""

from __future__ import annotations

import numpy as np

from neuroseg.transforms.box import bounding_box, grown

# 4-connectivity within each axial slice (axis 2), none across: ndimage.binary_fill_holes' own in 2D
IN_PLANE_CROSS = np.zeros((3, 3, 3), dtype=bool)
IN_PLANE_CROSS[:, :, 1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]


def fill_holes_in_plane(mask: np.ndarray) -> np.ndarray:
    """``ndimage.binary_fill_holes`` of each axial slice of a 3D mask (or of a 2D mask), same dtype.

    One labelling of the background over the mask's box, grown by one pixel in plane, serves all
    slices: a background part that reaches the box's edge reaches the image's edge (all outside the
    box is background), so the parts that do not are the holes. scipy's fill dilates from the image's
    edge until nothing changes, slice by slice over the whole grid: tens of times slower on a lesion.
    """
    from scipy import ndimage

    volume = mask[:, :, None] if mask.ndim == 2 else mask
    filled = volume.astype(bool)
    box = bounding_box(volume)
    if box is not None:
        box = grown(box[:2]) + box[2:]
        background, _ = ndimage.label(~filled[box], structure=IN_PLANE_CROSS)
        edges = [background[0], background[-1], background[:, 0], background[:, -1]]
        hole = np.ones(background.max() + 1, dtype=bool)
        hole[np.unique(np.concatenate([edge.ravel() for edge in edges]))] = False
        hole[0] = False  # label 0 is the mask itself
        filled[box] |= hole[background]
    filled = filled[:, :, 0] if mask.ndim == 2 else filled
    return filled.astype(mask.dtype, copy=False)
