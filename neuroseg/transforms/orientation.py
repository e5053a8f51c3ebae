"""Reorientation to the working axis codes, decided from the affine, and its exact inverse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroseg.constants import WORKING_AXCODES
from neuroseg.volume import Volume

# Left-right is the working grid's first in-plane axis (WORKING_AXCODES: L, P, S), which is the second-to-last
# axis of a batch of slices (..., first in-plane, second in-plane).
LEFT_RIGHT_AXIS = -2


def mirror_left_right(slices):
    """A batch of working-grid slices (a tensor, in-plane axes last) mirrored left to right."""
    return slices.flip(LEFT_RIGHT_AXIS)


@dataclass(frozen=True)
class Reorientation:
    """A permutation and flips of array axes (no resampling, so exactly invertible).

    For oblique acquisitions each array axis is matched to the world axis it is
    closest to (nibabel's ``io_orientation``); the slice axis is the one nearest
    Superior, whatever the order the axes were stored in.
    """

    source_shape: tuple[int, int, int]
    source_ornt: np.ndarray  # nibabel orientation of the source array's axes

    @classmethod
    def to_working(cls, volume: Volume) -> "Reorientation":
        import nibabel.orientations as nio

        return cls(volume.shape, nio.io_orientation(volume.affine))

    @property
    def forward(self) -> np.ndarray:
        import nibabel.orientations as nio

        return nio.ornt_transform(self.source_ornt, nio.axcodes2ornt(WORKING_AXCODES))

    @property
    def slice_axis(self) -> int:
        """The source array axis that becomes the working slice axis (2)."""
        return int(np.flatnonzero(self.forward[:, 0] == 2)[0])

    @property
    def slice_axis_flipped(self) -> bool:
        """True when working slice k is source slice ``n - 1 - k`` along ``slice_axis``."""
        return bool(self.forward[self.slice_axis, 1] < 0)

    def apply(self, array: np.ndarray) -> np.ndarray:
        import nibabel.orientations as nio

        return nio.apply_orientation(array, self.forward)

    def invert(self, array: np.ndarray) -> np.ndarray:
        import nibabel.orientations as nio

        backward = nio.ornt_transform(nio.axcodes2ornt(WORKING_AXCODES), self.source_ornt)
        back = nio.apply_orientation(array, backward)
        if back.shape != self.source_shape:
            raise ValueError(f"Inverted shape {back.shape} differs from the source's {self.source_shape}")
        return np.ascontiguousarray(back)

    def apply_volume(self, volume: Volume, copy: bool = True) -> Volume:
        """``volume`` on the working grid, its array C-ordered; ``copy=False``: a strided view of the input's
        array instead, for a reader of a few slices (a copy of a whole FLAIR costs tens of milliseconds)."""
        import nibabel.orientations as nio

        affine = volume.affine @ nio.inv_ornt_aff(self.forward, volume.shape)
        array = self.apply(volume.array)
        return Volume(np.ascontiguousarray(array) if copy else array, affine, volume.meta)

    def working_to_source_slice(self, k: int, n_slices: int) -> int:
        return n_slices - 1 - k if self.slice_axis_flipped else k

    def to_source_order(self, per_working_slice: np.ndarray) -> np.ndarray:
        """Per-slice values (working slice order) -> the same values in source slice order."""
        values = np.asarray(per_working_slice)
        return values[::-1].copy() if self.slice_axis_flipped else values.copy()
