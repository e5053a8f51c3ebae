"""The QC picture shows axial slices in radiological view, whatever the input's axis order."""

import numpy as np
import pytest
from PIL import Image

from neuroseg.export.qc import TILE, render_qc
from neuroseg.inference.engine import SegmentationResult
from neuroseg.volume import Volume
from tests.geometry import reorder


def _marked_volume():
    """RAS+ grid (i toward Right, j toward Anterior); a marker at the far right, far anterior."""
    array = np.zeros((40, 40, 6), dtype=np.float32)
    array[2:38, 2:38, :] = 100.0
    array[30:36, 30:36, 3] = 1000.0  # large i = right, large j = anterior
    array[30:36, 4:10, 3] = 1000.0  # right, posterior: tells a transposed picture apart
    return Volume(array, np.diag([1.0, 1.0, 3.0, 1.0]))


@pytest.mark.parametrize("permutation,flips", [((0, 1, 2), (False, False, False)),
                                               ((2, 1, 0), (True, False, True)),
                                               ((1, 2, 0), (False, True, False))])
def test_marker_appears_top_left_in_the_picture(tmp_path, permutation, flips):
    volume = reorder(_marked_volume(), permutation, flips)
    mask = volume.with_array((volume.array > 500).astype(np.uint8))
    slice_axis = int(np.argmax(np.abs(volume.affine[2, :3])))
    result = SegmentationResult(volume, mask, None, slice_axis, np.zeros(volume.shape[slice_axis]))
    picture = np.asarray(Image.open(render_qc(result, tmp_path / "qc.png")).convert("RGB"))
    tile = picture[14:14 + TILE, :TILE]  # one tumour slice: the first tile, below its caption
    red = (tile[..., 0] > 200) & (tile[..., 1] < 100)
    rows, columns = np.nonzero(red)
    assert rows.size, "the outline is drawn"
    assert columns.max() < TILE / 2, "the patient's right is on the image's left"
    assert rows.min() < TILE / 4 and rows.max() > 3 * TILE / 4, "anterior at the top, posterior at the bottom"
    top = columns[rows < TILE / 2]
    assert top.size and top.max() < TILE / 2, "the anterior marker is top left"


@pytest.mark.parametrize("permutation,flips", [((2, 1, 0), (True, False, True)), ((1, 2, 0), (False, True, False))])
def test_the_writers_shared_window_draws_the_same_picture(tmp_path, permutation, flips):
    """write_outputs hands the picture the page's display window (of the scan as read) where that cannot
    differ from the picture's own (of the reoriented scan): the same pixels."""
    from neuroseg.export.qc import display_window, window_is_orderless

    volume = reorder(_marked_volume(), permutation, flips)
    volume = volume.with_array(volume.array + np.random.default_rng(0).random(volume.shape, dtype=np.float32) * 50)
    mask = volume.with_array((volume.array > 500).astype(np.uint8))
    slice_axis = int(np.argmax(np.abs(volume.affine[2, :3])))
    result = SegmentationResult(volume, mask, None, slice_axis, np.zeros(volume.shape[slice_axis]))
    assert window_is_orderless(volume.array)
    alone = np.asarray(Image.open(render_qc(result, tmp_path / "alone.png")))
    shared = render_qc(result, tmp_path / "shared.png", window=lambda: display_window(volume.array))
    assert np.array_equal(np.asarray(Image.open(shared)), alone)
