"""Two synthetic visits of one head on an oblique DICOM grid, whose lesions changed: lesion A grew, lesion B
went, lesion C is new. The scans show the lesions bright (as FLAIR does), so the two visits' images differ."""

from __future__ import annotations

import numpy as np

from neuroseg.io import load_volume
from neuroseg.longitudinal.compare import TimePoint
from tests.dicom_factory import oblique_affine, write_series

SHAPE = (48, 56, 16)
BEFORE = (((16, 30, 8), 4.0), ((34, 20, 8), 3.0))  # lesions A and B: (centre voxel, radius)
AFTER = (((16, 30, 8), 5.5), ((30, 40, 5), 3.0))  # A grown, C new


def ball(centre, radius) -> np.ndarray:
    grid = np.indices(SHAPE).astype(np.float32)
    return ((grid - np.array(centre, dtype=np.float32)[:, None, None, None]) ** 2).sum(0) < radius ** 2


def lesions(balls) -> np.ndarray:
    return np.logical_or.reduce([ball(c, r) for c, r in balls])


def head(tumour: np.ndarray) -> np.ndarray:
    """A head-like ellipsoid with grey/white-like texture (what a registration aligns), the tumour bright."""
    grid = np.indices(SHAPE).astype(np.float32)
    middle = (np.array(SHAPE) - 1) / 2
    inside = (((grid - middle[:, None, None, None]) / (np.array(SHAPE)[:, None, None, None] * 0.42)) ** 2).sum(0) < 1
    i, j, k = grid
    texture = 30 * np.sin(i / 3.0) * np.cos(j / 4.0) + 10 * np.cos(k / 2.0)
    return np.where(inside, 100 + texture + 60 * tumour, 0).astype(np.int16)


def visits(folder):
    """(baseline, follow-up, the baseline's DICOM files): both DICOM series on one oblique grid."""
    from neuroseg.volume import Volume

    before, after = lesions(BEFORE), lesions(AFTER)
    files = write_series(Volume(head(before), oblique_affine()), folder / "baseline", names="shuffled")
    write_series(Volume(head(after), oblique_affine()), folder / "followup")
    out = []
    for name, mask in (("baseline", before), ("followup", after)):
        image = load_volume(folder / name)
        assert image.meta["format"] == "dicom" and np.allclose(image.affine, oblique_affine(), atol=1e-4)
        out.append(TimePoint(image, image.with_array(mask.astype(np.uint8)), {"path": name}))
    return out[0], out[1], files
