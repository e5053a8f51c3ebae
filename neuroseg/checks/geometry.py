"""Coverage and resolution: is this a whole head, sampled as finely as the scans the model was checked on?"""

from __future__ import annotations

import numpy as np

from neuroseg.checks import ranges as R
from neuroseg.checks.findings import OK, REFUSE, WARN, Finding


def field_of_view(view) -> Finding:
    n_i, n_j = view.array.shape[:2]
    fov = (round(float(n_i * view.spacing[0]), 1), round(float(n_j * view.spacing[1]), 1))
    if min(n_i, n_j) < R.REFUSE_MATRIX or max(fov) < R.REFUSE_FOV_MM:
        return Finding("coverage.field_of_view", REFUSE, fov, "mm", R.VALIDATED_FOV,
                       f"{n_i} x {n_j} voxels, {fov[0]:.0f} x {fov[1]:.0f} mm is too small to be a head image")
    if min(fov) < R.WARN_FOV_MM:
        return Finding("coverage.field_of_view", WARN, fov, "mm", R.VALIDATED_FOV,
                       "the field of view is smaller than a head: a cropped or partial image")
    return Finding("coverage.field_of_view", OK, fov, "mm", R.VALIDATED_FOV)


def head_cut(view) -> Finding:
    """How often the head's outline runs along two or more sides of the image (cut off by the field of view).

    One side is common in the training tifs (heads registered and tilted within 256 x 256); a crop
    around the brain cuts several sides.
    """
    if view.middle.size == 0:
        return Finding("coverage.head_cut", WARN, "no head found", "", R.VALIDATED_CUT,
                       "no head outline was found in the image")
    cut = 0
    for k in view.middle:
        head = view.head[:, :, k]
        border = max(1, int(0.1 * min(head.shape)))  # a tenth of a side along an edge counts as cut
        edges = (head[0, :].sum(), head[-1, :].sum(), head[:, 0].sum(), head[:, -1].sum())
        cut += sum(edge >= border for edge in edges) >= 2
    fraction = cut / view.middle.size
    level = WARN if fraction > R.WARN_CUT else OK
    return Finding("coverage.head_cut", level, round(100 * fraction, 1), "% of middle slices", R.VALIDATED_CUT,
                   "the head runs off the image's edge: a cropped or partial head" if level == WARN else "")


def slices(view) -> Finding:
    n = int(view.slices)
    extent = round(float(n * view.spacing[2]), 1)
    value = f"{n} slices, {extent:g} mm"
    if n < R.WARN_SLICES:
        return Finding("coverage.slices", WARN, value, "", R.VALIDATED_SLICES,
                       "too few slices for a whole head: a slab or partial volume")
    return Finding("coverage.slices", OK, value, "", R.VALIDATED_SLICES)


def in_plane_spacing(view) -> Finding:
    spacing = round(float(max(view.spacing[:2])), 3)
    low, high = R.INPLANE_MM
    if not low <= spacing <= high:
        return Finding("resolution.in_plane", WARN, spacing, "mm", R.VALIDATED_INPLANE,
                       "coarser than any scan the model was checked on" if spacing > high
                       else "finer than any scan the model was checked on")
    return Finding("resolution.in_plane", OK, spacing, "mm", R.VALIDATED_INPLANE)


def slice_thickness(view) -> Finding:
    thickness = round(float(view.spacing[2]), 3)
    low, high = R.THICKNESS_MM
    if not low <= thickness <= high:
        return Finding("resolution.slice_thickness", WARN, thickness, "mm", R.VALIDATED_THICKNESS,
                       "slices thicker than any scan the model was checked on: small lesions blur away"
                       if thickness > high else "slices thinner than any scan the model was checked on")
    return Finding("resolution.slice_thickness", OK, thickness, "mm", R.VALIDATED_THICKNESS)


CHECKS = (field_of_view, head_cut, slices, in_plane_spacing, slice_thickness)


def field_of_view_only(volume) -> Finding:
    """The size check from the grid alone, before the head is analysed (a 4x5x7 image stops here)."""
    from types import SimpleNamespace

    from neuroseg.transforms import Reorientation

    order = Reorientation.to_working(volume).forward[:, 0].astype(int)  # source axis a -> working axis order[a]
    shape, spacing = [0, 0, 0], [0.0, 0.0, 0.0]
    for axis, target in enumerate(order):
        shape[target], spacing[target] = volume.shape[axis], float(volume.spacing[axis])
    return field_of_view(SimpleNamespace(array=SimpleNamespace(shape=tuple(shape)), spacing=spacing))
