"""Crop each axial slice to the head's square field of view and resize it; and back.

The training slices show the whole head, so a 0.9 mm clinical matrix, a 1 mm BraTS
slice and a training tif are brought to the model's size by the head's extent in mm,
not by pixel count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neuroseg.transforms.box import bounding_box
from neuroseg.volume import Volume

HEAD_MARGIN = 0.06  # of the head's extent, on each side


@dataclass(frozen=True)
class HeadCrop:
    """A square-in-mm window ``[i0, i0 + width) x [j0, j0 + height)`` of the working slices.

    The window may reach beyond the array (zero padding). ``size`` is the model's
    in-plane size; every slice is resized from the window to ``size x size``.
    """

    i0: int
    j0: int
    width: int
    height: int
    size: int
    source_inplane: tuple[int, int]

    def apply(self, array: np.ndarray, chunk: int = 32) -> torch.Tensor:
        """``(I, J, N)`` array -> ``(N, size, size)`` float32 tensor, ``chunk`` slices at a time."""
        parts = []
        for start in range(0, array.shape[2], chunk):
            slices = torch.from_numpy(self._window(array[:, :, start:start + chunk]))
            parts.append(_resize(slices, (self.size, self.size)))
        return torch.cat(parts)

    def invert(self, slices: torch.Tensor) -> np.ndarray:
        """``(N, size, size)`` float tensor -> ``(I, J, N)`` float32 array on the working grid."""
        resized = _resize(slices.float(), (self.width, self.height)).numpy()
        n_i, n_j = self.source_inplane
        out = np.zeros((n_i, n_j, resized.shape[0]), dtype=np.float32)
        si, di = _overlap(self.i0, self.width, n_i)
        sj, dj = _overlap(self.j0, self.height, n_j)
        out[di, dj, :] = resized[:, si, sj].transpose(1, 2, 0)
        return out

    def _window(self, array: np.ndarray) -> np.ndarray:
        """``(I, J, n)`` slices -> their ``(n, width, height)`` float32 window, zero beyond the array
        (slice-first, as the resizing takes them, in one copy)."""
        n_i, n_j, n_k = array.shape
        window = np.zeros((n_k, self.width, self.height), dtype=np.float32)
        si, di = _overlap(self.i0, self.width, n_i)
        sj, dj = _overlap(self.j0, self.height, n_j)
        window[:, si, sj] = array[di, dj, :].transpose(2, 0, 1)
        return window


def fit_head_crop(volume: Volume, size: int, margin: float = HEAD_MARGIN) -> HeadCrop:
    """Find the head's extent on the working grid and make a square window in mm around it."""
    spacing_i, spacing_j = volume.spacing[:2]
    n_i, n_j = volume.shape[:2]
    box = bounding_box(_head_mask_2d(volume.array)) or (slice(0, n_i), slice(0, n_j))
    (lo_i, hi_i), (lo_j, hi_j) = ((part.start, part.stop) for part in box)
    side_mm = max((hi_i - lo_i) * spacing_i, (hi_j - lo_j) * spacing_j) * (1 + 2 * margin)
    width = max(int(round(side_mm / spacing_i)), 8)
    height = max(int(round(side_mm / spacing_j)), 8)
    i0 = int(round((lo_i + hi_i) / 2 - width / 2))
    j0 = int(round((lo_j + hi_j) / 2 - height / 2))
    return HeadCrop(i0, j0, width, height, size, (n_i, n_j))


def _head_mask_2d(array: np.ndarray) -> np.ndarray:
    """The largest connected bright region of the maximum projection along the slices. Its holes are left
    open: the crop uses only the region's extent, which holes inside it cannot change."""
    from scipy import ndimage

    projection = array.max(axis=2)
    background = np.percentile(projection, 1)
    top = np.percentile(projection, 99.5)
    mask = projection > background + 0.1 * (top - background)
    mask = ndimage.binary_opening(mask, iterations=2)
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = ndimage.sum(mask, labels, index=range(1, count + 1))
    return labels == (int(np.argmax(sizes)) + 1)


def _overlap(start: int, length: int, limit: int) -> tuple[slice, slice]:
    """Slices into the window and into the array where ``[start, start+length)`` meets ``[0, limit)``."""
    lo, hi = max(start, 0), min(start + length, limit)
    return slice(lo - start, hi - start), slice(lo, hi)


def _resize(slices: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    if tuple(slices.shape[-2:]) == tuple(shape):
        return slices.clone()
    shrinking = shape[0] < slices.shape[-2] or shape[1] < slices.shape[-1]
    out = F.interpolate(slices[:, None], size=shape, mode="bilinear", align_corners=False, antialias=shrinking)
    return out[:, 0]
