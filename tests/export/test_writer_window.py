"""write_outputs computes the display window once for the QC picture and the page where the two cannot
differ (a volume whose every voxel is taken), and the outputs are those of each computing its own."""

from __future__ import annotations

import json
import re
import threading
import time

import numpy as np
import pytest
from PIL import Image

import neuroseg.export.qc as qc
import neuroseg.export.viewer as viewer
from neuroseg.export.writer import _once, write_outputs
from neuroseg.inference.engine import SegmentationResult
from neuroseg.volume import Volume


def test_once_computes_once_for_every_thread():
    calls = []

    def slow(value):
        calls.append(value)
        time.sleep(0.05)
        return value * 2

    once = _once(slow, 21)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(once())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [21] and answers == [42] * 4 and once() == 42


def result_of(shape):
    rng = np.random.default_rng(0)
    array = rng.normal(300, 80, shape).astype(np.float32)
    array[:8] = 0  # background
    mask = np.zeros(shape, dtype=np.uint8)
    mask[10:20, 12:22, 2:5] = 1
    affine = np.array([[0.0, -0.9, 0.0, 90.0], [-0.9, 0.0, 0.0, 100.0], [0.0, 0.0, 5.0, -30.0], [0, 0, 0, 1]])
    volume = Volume(array, affine)  # axes not in working order: the picture reorients the scan
    return SegmentationResult(volume, volume.with_array(mask), None, 2, np.zeros(shape[2]))


def page_window(folder):
    text = (folder / "viewer.html").read_text()
    return json.loads(re.search(r"const SETTINGS = (\{.*?\});\n", text, re.S).group(1))["window"]


@pytest.mark.parametrize("shape, computed", [((60, 50, 8), 1), ((200, 200, 51), 2)])  # 24 k and 2 M voxels
def test_the_window_is_computed_once_where_it_is_orderless(tmp_path, monkeypatch, shape, computed):
    result = result_of(shape)
    alone = qc.render_qc(result, tmp_path / "alone.png")  # its own window, of the reoriented scan
    calls = []
    counted = qc.display_window
    for module in (qc, viewer):
        monkeypatch.setattr(module, "display_window", lambda array: calls.append(1) or counted(array))
    write_outputs(result, tmp_path / "out")
    assert len(calls) == computed
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "qc.png")), np.asarray(Image.open(alone)))
    assert page_window(tmp_path / "out") == list(counted(result.image.array))
