"""3D clean-up of the thresholded mask."""

from __future__ import annotations

import numpy as np


def remove_small_components(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    """Drop 3D connected components (26-connectivity) smaller than ``min_voxels``; uint8 in and out."""
    from scipy import ndimage

    if min_voxels <= 1 or not mask.any():
        return mask
    box = ndimage.find_objects(mask.astype(np.uint8))[0]  # label only where the mask is: less memory
    labels, count = ndimage.label(mask[box], structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    out = np.zeros_like(mask, dtype=np.uint8)
    out[box] = keep[labels]
    return out
