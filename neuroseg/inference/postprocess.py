"""3D clean-up of the thresholded mask."""

from __future__ import annotations

import numpy as np


def remove_small_components(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    """Drop 3D connected components (26-connectivity) smaller than ``min_voxels``; uint8 in and out."""
    from scipy import ndimage

    if min_voxels <= 1 or not mask.any():
        return mask
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[labels].astype(np.uint8)
