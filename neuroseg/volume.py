"""The Volume type that moves between modules: a 3D array, its affine, and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neuroseg.errors import InputError


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image on a voxel grid.

    ``array`` is indexed ``[i, j, k]`` in voxel order. ``affine`` maps voxel indices
    to world millimetres in nibabel's RAS+ convention (x grows toward the patient's
    Right, y toward Anterior, z toward Superior; DICOM's LPS is converted on
    reading). ``meta`` holds source information (path, format,
    NIfTI header, DICOM series attributes) that writers may need.
    """

    array: np.ndarray
    affine: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        array = np.asarray(self.array)
        affine = np.asarray(self.affine, dtype=np.float64)
        if array.ndim != 3:
            raise InputError(f"Expected a 3D image, got {array.ndim}D with shape {array.shape}")
        if affine.shape != (4, 4):
            raise InputError(f"Affine shape must be (4, 4), not {affine.shape}")
        if not np.all(np.isfinite(affine)):
            raise InputError("Affine holds NaN or infinite values")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
            raise InputError("Affine is singular: voxel size is zero along some axis")
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "affine", affine)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape)

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along each array axis."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def axcodes(self) -> tuple[str, str, str]:
        import nibabel as nib

        return tuple(nib.aff2axcodes(self.affine))

    @property
    def voxel_volume_ml(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    def with_array(self, array: np.ndarray, **meta) -> "Volume":
        """The same grid with other voxel values (shape must match)."""
        if tuple(array.shape) != self.shape:
            raise ValueError(f"Array shape {array.shape} differs from the volume's {self.shape}")
        return Volume(array, self.affine.copy(), {**self.meta, **meta})

    def same_grid(self, other: "Volume", atol: float = 1e-4) -> bool:
        return self.shape == other.shape and np.allclose(self.affine, other.affine, atol=atol)
