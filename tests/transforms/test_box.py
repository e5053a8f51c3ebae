"""The box of a mask, in 2D and 3D, against np.argwhere's extremes; grown, it stops at the array's start."""

import numpy as np

from neuroseg.transforms.box import bounding_box, grown


def test_the_box_holds_every_set_voxel_and_no_empty_border():
    rng = np.random.default_rng(0)
    for shape in [(7, 9), (5, 6, 4), (1, 1), (3, 1, 2)]:
        for density in (0.0, 0.02, 0.3):
            mask = rng.random(shape) < density
            box = bounding_box(mask)
            found = np.argwhere(mask)
            if found.size == 0:
                assert box is None
                continue
            assert [(part.start, part.stop) for part in box] == list(zip(found.min(axis=0), found.max(axis=0) + 1))


def test_a_grown_box_stops_at_the_start_and_numpy_stops_its_end():
    mask = np.zeros((4, 5), dtype=bool)
    mask[0, 4] = True
    box = grown(bounding_box(mask))
    assert box == (slice(0, 2), slice(3, 6))
    assert mask[box].shape == (2, 2)
