"""The head as the checks see it: axial working slices, a head mask per slice, depth below its surface.

Computed once per input and shared by the coverage, content and sequence checks.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def area(self) -> np.ndarray:
        """Head area of each sampled slice, in voxels."""
        return self.head.sum(axis=(0, 1))

    def middle_values(self, mask: np.ndarray) -> np.ndarray:
        """Intensities of the middle slices where ``mask`` (shaped like ``depth``) is set."""
        return self.array[:, :, self.middle][mask]


def head_view(volume) -> HeadView:
    from scipy import ndimage

    from neuroseg.transforms import Reorientation

    working = Reorientation.to_working(volume).apply_volume(volume)
    whole = np.asarray(working.array)
    sampled = _evenly(np.arange(whole.shape[2]), MAX_HEAD_SLICES)
    array = np.asarray(whole[:, :, sampled], dtype=np.float32)
    head = largest_filled(head_threshold(array))
    area = head.sum(axis=(0, 1))
    candidates = np.flatnonzero(area >= MIDDLE_AREA * area.max()) if area.max() else np.arange(0)
    middle = _evenly(candidates, MAX_ANALYSED_SLICES)
    depth = np.zeros((*array.shape[:2], middle.size), dtype=np.float32)
    for n, k in enumerate(middle):
        depth[:, :, n] = ndimage.distance_transform_edt(head[:, :, k], sampling=working.spacing[:2])
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

    One call over the whole volume with in-plane structuring elements: the same result as slice by
    slice, without a Python loop of scipy calls per slice (about 3x faster on a 155-slice volume).
    """
    from scipy import ndimage

    if min(mask.shape[:2]) > 8:  # thin noise strands go; a tiny image keeps what it has
        mask = ndimage.binary_opening(mask, IN_PLANE_CROSS, iterations=2)
    labels, count = ndimage.label(mask, IN_PLANE_CROSS)
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    slice_of = np.array([found[2].start for found in ndimage.find_objects(labels)])
    # per slice, the label of its largest part: written in order of size, so the largest lands last
    # (on a tie, the lowest label, as argmax chose)
    label = np.arange(1, count + 1)
    order = np.lexsort((-label, sizes[1:]))
    largest = np.zeros(mask.shape[2], dtype=np.int64)
    largest[slice_of[order]] = label[order]
    keep = np.zeros(count + 1, dtype=bool)
    keep[largest[np.unique(slice_of)]] = True
    keep[0] = False
    return _fill_holes(keep[labels])


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``ndimage.binary_fill_holes`` on each slice in one labelling pass (it dilates until nothing
    changes, slower on a head): the background parts that do not reach the slice's edge are holes."""
    from scipy import ndimage

    background, _ = ndimage.label(~mask, IN_PLANE_CROSS)
    edge = np.unique(np.concatenate([background[0].ravel(), background[-1].ravel(),
                                     background[:, 0].ravel(), background[:, -1].ravel()]))
    outside = np.zeros(background.max() + 1, dtype=bool)
    outside[edge] = True
    outside[0] = False  # label 0 is the mask itself
    return ~outside[background]


IN_PLANE_CROSS = np.zeros((3, 3, 3), dtype=bool)  # 4-connectivity within each axial slice, none across
IN_PLANE_CROSS[:, :, 1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
