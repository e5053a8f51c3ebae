"""Intensity normalisation that treats uint8, raw int16 and z-scored inputs alike."""

from __future__ import annotations

import numpy as np

from neuroseg.constants import NORMALISED_RANGE

PERCENTILES = (1.0, 99.0)  # of the foreground, mapped to 0..1


def foreground_mask(array: np.ndarray) -> np.ndarray:
    """Voxels that are not background.

    Background is the value that fills a large part of the image (0 in most scans, a
    constant in z-scored ones) or, for raw scans with noise, anything near the minimum.
    """
    sample = array.ravel()[:: max(1, array.size // 2_000_000)]
    mode, count = _mode(sample)
    if count > 0.1 * sample.size:  # a constant background (0, or a z-score offset)
        rest = sample[sample != mode]
        low, high = np.percentile(rest, [1, 99])
        return (array != mode) & (array > low + 0.02 * (high - low))
    low, high = np.percentile(sample, [1, 99])
    return array > low + 0.1 * (high - low)


def _mode(sample: np.ndarray) -> tuple:
    """The most frequent value (the smallest on a tie) and its count.

    The minimum fills more than half of most scans (their background): a value that does is the mode,
    found in two passes instead of a sort of the sample.
    """
    low = sample.min()
    count = np.count_nonzero(sample == low)
    if count > sample.size // 2:
        return low, count
    values, counts = np.unique(sample, return_counts=True)
    return values[np.argmax(counts)], counts.max()


def normalise_intensity(array: np.ndarray, percentiles=PERCENTILES, clip_range=NORMALISED_RANGE) -> np.ndarray:
    """Map the foreground's ``percentiles`` (1st..99th) to 0..1 and clip to ``clip_range``; background goes to 0."""
    array = np.asarray(array, dtype=np.float32)
    mask = foreground_mask(array)
    if mask.sum() < 100:
        mask = np.ones_like(array, dtype=bool)
    low, high = np.percentile(array[mask], list(percentiles))
    if high - low < 1e-6:
        high = low + 1.0
    out = array - low  # float64, as the percentiles are
    out /= high - low
    out[~mask] = 0.0
    return np.clip(out, *clip_range, out=out).astype(np.float32)
