"""The head as the checks see it: axial working slices, a head mask per slice, depth below its surface.

Computed once per input and shared by the coverage, content and sequence checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

# The checks are statistics over the head, so a sample of slices serves them: evenly spaced slices
# for the head mask, and among those the middle ones for the depth-based measures. Measured over the
# project's 100 real scans, the same findings as every slice gave, at a fraction of the time
# (scripts/input_checks_real_scans.py).
MAX_HEAD_SLICES = 24
MAX_ANALYSED_SLICES = 12
MIDDLE_AREA = 0.6  # a slice is a "middle" slice when its head area is at least this part of the largest
HEAD_LEVEL = 0.1  # head: brighter than this fraction of the way from background to the bright end


@dataclass
class HeadView:
    array: np.ndarray  # working orientation (axial slices along axis 2), float32; the sampled slices only
    slices: int  # slices of the whole volume
    maximum: float  # the whole volume's largest value
    spacing: np.ndarray  # mm along the working axes
    head: np.ndarray  # bool, same shape as array: the head's filled outline on each sampled slice
    middle: np.ndarray  # indices of the analysed middle slices
    depth: np.ndarray  # mm below the head's outline, (I, J, len(middle))

    # Several checks read the same parts of the view: each is copied out once.
    @cached_property
    def area(self) -> np.ndarray:
        """Head area of each sampled slice, in voxels."""
        return self.head.sum(axis=(0, 1))

    @cached_property
    def middle_array(self) -> np.ndarray:
        """The analysed middle slices of ``array`` (shaped like ``depth``)."""
        return self.array[:, :, self.middle]

    @cached_property
    def middle_head(self) -> np.ndarray:
        """The head mask of the middle slices (shaped like ``depth``)."""
        return self.head[:, :, self.middle]

    @cached_property
    def head_values(self) -> np.ndarray:
        """The intensities inside the head, on every sampled slice."""
        return self.array[self.head]

    def middle_values(self, mask: np.ndarray) -> np.ndarray:
        """Intensities of the middle slices where ``mask`` (shaped like ``depth``) is set."""
        return self.middle_array[mask]


def head_view(volume) -> HeadView:
    from neuroseg.checks.slicewise import distance_mm
    from neuroseg.transforms import Reorientation

    working = Reorientation.to_working(volume).apply_volume(volume, copy=False)  # a view: 24 slices are read
    whole = np.asarray(working.array)
    sampled = _evenly(np.arange(whole.shape[2]), MAX_HEAD_SLICES)
    array = np.ascontiguousarray(whole[:, :, sampled], dtype=np.float32)
    head = largest_filled(head_threshold(array))
    area = head.sum(axis=(0, 1))
    candidates = np.flatnonzero(area >= MIDDLE_AREA * area.max()) if area.max() else np.arange(0)
    middle = _evenly(candidates, MAX_ANALYSED_SLICES)
    depth = np.zeros((*array.shape[:2], middle.size), dtype=np.float32)
    for n, k in enumerate(middle):
        depth[:, :, n] = distance_mm(head[:, :, k], working.spacing[:2])
    return HeadView(array, whole.shape[2], float(whole.max()) if whole.size else 0.0,
                    np.asarray(working.spacing), head, middle, depth)


def _evenly(indices: np.ndarray, count: int) -> np.ndarray:
    """At most ``count`` of ``indices``, evenly spaced from the first to the last."""
    if indices.size <= count:
        return indices
    return indices[np.linspace(0, indices.size - 1, count).round().astype(int)]


def head_threshold(array: np.ndarray) -> np.ndarray:
    """Voxels brighter than a tenth of the way from the background to the bright end.

    The background is the 1st percentile (0, a noise floor of a few grey levels in the 8-bit tifs,
    or a z-score offset); a fixed fraction of the range keeps the noise floor out, which
    ``normalise_intensity``'s lenient foreground does not try to do.
    """
    sample = array.ravel()[:: max(1, array.size // 2_000_000)]
    low, high = np.percentile(sample, [1, 99.5])
    return array > low + HEAD_LEVEL * (high - low)


def largest_filled(mask: np.ndarray) -> np.ndarray:
    """On each axial slice (axis 2) of ``mask``, its largest in-plane component with the holes filled.

    Slice by slice, within the in-plane box of what the opening kept (outside it all is background that
    reaches the image's edge): on the 24 sampled slices scipy's 2D labelling took two thirds of the time
    of one 3D labelling with in-plane elements, which then had to find each part's slice.
    """
    from neuroseg.checks.slicewise import grown_box, opening

    if min(mask.shape[:2]) > 8:  # thin noise strands go; a tiny image keeps what it has
        mask = opening(mask, iterations=2)
    filled = np.zeros_like(mask)
    box = grown_box(mask.any(axis=2))
    if box is not None:
        for k in range(mask.shape[2]):
            filled[box + (k,)] = _largest_filled(mask[box + (k,)])
    return filled


def _largest_filled(part: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a 2D mask (on a tie, the first in scan order), holes filled."""
    from scipy import ndimage

    from neuroseg.transforms.holes import fill_holes_in_plane

    labels, count = ndimage.label(part)
    if count == 0:
        return part
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return fill_holes_in_plane(labels == np.argmax(sizes))
