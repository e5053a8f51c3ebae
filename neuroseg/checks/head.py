"""The head as the checks see it: axial working slices, a head mask per slice, depth below its surface.

Computed once per input and shared by the coverage, content and sequence checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ANALYSED_SLICES = 40  # the middle slices are sampled evenly: enough for the statistics, fast on a 1 mm volume
MIDDLE_AREA = 0.6  # a slice is a "middle" slice when its head area is at least this part of the largest
HEAD_LEVEL = 0.1  # head: brighter than this fraction of the way from background to the bright end


@dataclass
class HeadView:
    array: np.ndarray  # working orientation (axial slices along axis 2), float32
    spacing: np.ndarray  # mm along the working axes
    head: np.ndarray  # bool, same shape: the head's filled outline on each slice
    middle: np.ndarray  # indices of the analysed middle slices
    depth: np.ndarray  # mm below the head's outline, (I, J, len(middle))

    @property
    def area(self) -> np.ndarray:
        """Head area of each working slice, in voxels."""
        return self.head.sum(axis=(0, 1))

    def middle_values(self, mask: np.ndarray) -> np.ndarray:
        """Intensities of the middle slices where ``mask`` (shaped like ``depth``) is set."""
        return self.array[:, :, self.middle][mask]


def head_view(volume) -> HeadView:
    from scipy import ndimage

    from neuroseg.transforms import Reorientation

    working = Reorientation.to_working(volume).apply_volume(volume)
    array = np.asarray(working.array, dtype=np.float32)
    foreground = head_threshold(array)
    head = np.zeros(array.shape, dtype=bool)
    for k in range(array.shape[2]):
        head[:, :, k] = _largest_filled(foreground[:, :, k])
    area = head.sum(axis=(0, 1))
    candidates = np.flatnonzero(area >= MIDDLE_AREA * area.max()) if area.max() else np.arange(0)
    middle = candidates[np.linspace(0, candidates.size - 1, min(candidates.size, MAX_ANALYSED_SLICES))
                        .round().astype(int)] if candidates.size else candidates
    depth = np.zeros((*array.shape[:2], middle.size), dtype=np.float32)
    for n, k in enumerate(middle):
        depth[:, :, n] = ndimage.distance_transform_edt(head[:, :, k], sampling=working.spacing[:2])
    return HeadView(array, np.asarray(working.spacing), head, middle, depth)


def head_threshold(array: np.ndarray) -> np.ndarray:
    """Voxels brighter than a tenth of the way from the background to the bright end.

    The background is the 1st percentile (0, a noise floor of a few grey levels in the 8-bit tifs,
    or a z-score offset); a fixed fraction of the range keeps the noise floor out, which
    ``normalise_intensity``'s lenient foreground does not try to do.
    """
    sample = array.ravel()[:: max(1, array.size // 2_000_000)]
    low, high = np.percentile(sample, [1, 99.5])
    return array > low + HEAD_LEVEL * (high - low)


def _largest_filled(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    if min(mask.shape) > 8:  # thin noise strands go; a tiny image keeps what it has
        mask = ndimage.binary_opening(mask, iterations=2)
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    largest = labels == int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    return _fill_holes(largest)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``ndimage.binary_fill_holes`` in one labelling pass (it dilates until nothing changes, slower on a
    head): the background parts that do not reach the image's edge are holes."""
    from scipy import ndimage

    background, _ = ndimage.label(~mask)
    edge = np.unique(np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]]))
    outside = np.zeros(background.max() + 1, dtype=bool)
    outside[edge] = True
    outside[0] = False  # label 0 is the mask itself
    return ~outside[background]
