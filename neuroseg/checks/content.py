"""Intensity and content: a head with skull or without, a constant or near-empty head, a clipped range,
an image that is mostly background."""

from __future__ import annotations

import numpy as np

from neuroseg.checks import ranges as R
from neuroseg.checks.findings import OK, WARN, Finding

RING_VOXELS = 3  # the band just outside the head's outline, on each slice


def background_ring(view) -> float | None:
    """Part of the band just outside the head's outline that holds exactly the background value.

    A skull-stripped brain is cut out of its scan and set in a constant background, right up to
    its edge; a whole head fades into scanner noise (or the 8-bit tifs' noise floor) there.
    """
    from neuroseg.checks.slicewise import dilation

    if view.middle.size == 0:
        return None
    head = view.middle_head
    ring = dilation(head, iterations=RING_VOXELS) & ~head  # in-plane 3x3 squares
    outside = ~dilation(head, iterations=1)
    values = view.middle_array
    if ring.sum() < 100 or outside.sum() < 100:
        return None
    levels, counts = np.unique(values[outside], return_counts=True)
    return float(np.mean(values[ring] == levels[np.argmax(counts)]))


def skull_stripped(view) -> Finding:
    ring = background_ring(view)
    if ring is None:
        return Finding("content.skull_stripped", OK, "not measurable", "", R.VALIDATED_SKULL)
    stripped = ring > R.SKULL_RING
    value = f"{'yes' if stripped else 'no'} ({100 * ring:.0f} % of the outline's outer band is exact background)"
    return Finding("content.skull_stripped", OK, value, "", R.VALIDATED_SKULL,
                   "skull-stripped: the model was checked on one such scan only" if stripped else "")


def head_fraction(view) -> Finding:
    if view.middle.size == 0:
        return Finding("content.background", WARN, 0.0, "% head", R.VALIDATED_HEAD_FRACTION,
                       "no head found: the image is background")
    slice_area = view.array.shape[0] * view.array.shape[1]
    fraction = float(view.area[view.middle].mean()) / slice_area
    level = WARN if fraction < R.WARN_HEAD_FRACTION else OK
    return Finding("content.background", level, round(100 * fraction, 1), "% head", R.VALIDATED_HEAD_FRACTION,
                   "the image is mostly background: the head is small in it, or missing" if level == WARN else "")


def clipped(view) -> Finding:
    values = view.head_values
    if values.size == 0:
        return Finding("content.clipped", OK, "no head", "", R.VALIDATED_CLIPPED)
    fraction = float(np.mean(values >= view.maximum))
    level = WARN if fraction > R.WARN_CLIPPED else OK
    return Finding("content.clipped", level, round(100 * fraction, 2), "% at maximum", R.VALIDATED_CLIPPED,
                   "many voxels sit at the maximum value: the intensity range was clipped" if level == WARN else "")


def contrast(view) -> Finding:
    """Distinct intensities and their spread inside the head: a constant, binary or near-empty head warns."""
    values = view.head_values
    if values.size < 1000:
        return Finding("content.contrast", WARN, f"{values.size} head voxels", "", R.VALIDATED_SPREAD,
                       "the head is near-empty")
    values = values[:: max(1, values.size // 200_000)]  # a sample: sorting a million values took 0.1 s
    levels = int(np.unique(values).size)
    p5, p50, p95 = np.percentile(values, [5, 50, 95])
    spread = float((p95 - p5) / abs(p50)) if p50 else float("inf")
    value = f"{levels} levels, spread {spread:.2f}"
    if levels < R.WARN_LEVELS:
        return Finding("content.contrast", WARN, value, "", R.VALIDATED_LEVELS,
                       "only a few distinct intensities: a mask or a quantised image, not an MR scan")
    if spread < R.WARN_SPREAD:
        return Finding("content.contrast", WARN, value, "", R.VALIDATED_SPREAD,
                       "the head is nearly constant: no tissue contrast")
    return Finding("content.contrast", OK, value, "", R.VALIDATED_SPREAD)


def structure(view) -> Finding:
    """Correlation of each head voxel with its in-plane neighbour: anatomy is smooth, pure noise is not."""
    head, values = view.middle_head, view.middle_array
    pair = head[:-1] & head[1:]
    if pair.sum() < 1000:
        return Finding("content.structure", OK, "not measurable", "", R.VALIDATED_STRUCTURE)
    a, b = values[:-1][pair], values[1:][pair]
    correlation = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0
    level = WARN if correlation < R.WARN_STRUCTURE else OK
    return Finding("content.structure", level, round(correlation, 3), "neighbour correlation",
                   R.VALIDATED_STRUCTURE,
                   "neighbouring voxels are barely related: noise, not anatomy" if level == WARN else "")


CHECKS = (skull_stripped, contrast, structure, clipped, head_fraction)
