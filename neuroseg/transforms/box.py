"""The box of a mask: the slices that crop it to the smallest block holding all its set voxels."""

from __future__ import annotations

import numpy as np


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """The slices cropping a 2D or 3D ``mask`` to the smallest box that holds all its non-zero voxels; None
    when there are none. What is measured on a lesion's or a head's box costs the box, not the grid.

    In 3D one pass over the volume (which in-plane positions hold any), then one over the columns found.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3:
        in_plane = bounding_box(mask.any(axis=2))
        if in_plane is None:
            return None
        return in_plane + (_extent(mask[in_plane].any(axis=(0, 1))),)
    rows = mask.any(axis=1)
    if not rows.any():
        return None
    return _extent(rows), _extent(mask.any(axis=0))


def grown(box: tuple[slice, ...], by: int = 1) -> tuple[slice, ...]:
    """``box`` grown by ``by`` voxels on each side, stopping at the array's start (numpy stops the end)."""
    return tuple(slice(max(part.start - by, 0), part.stop + by) for part in box)


def _extent(occupied: np.ndarray) -> slice:
    found = np.flatnonzero(occupied)
    return slice(int(found[0]), int(found[-1]) + 1)
