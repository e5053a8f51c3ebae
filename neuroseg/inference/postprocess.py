"""3D clean-up of the thresholded mask."""

from __future__ import annotations

import numpy as np

from neuroseg.transforms.box import bounding_box


def remove_small_components(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    """Drop 3D connected components (26-connectivity) smaller than ``min_voxels``; uint8 in and out."""
    from scipy import ndimage

    if min_voxels <= 1 or not mask.any():
        return mask
    box = bounding_box(mask)  # label only where the mask is: less memory
    labels, count = ndimage.label(mask[box], structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    out = np.zeros_like(mask, dtype=np.uint8)
    out[box] = keep[labels]
    return out


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes the lesion encloses in each slice (axis 2, the working grid's slice axis).

    A dark necrotic or cystic core inside a bright FLAIR rim is tumour too; whole-tumour labels
    include it, and the network outlines only the rim.
    """
    from neuroseg.transforms.holes import fill_holes_in_plane

    return fill_holes_in_plane(mask)
