"""Every preprocessing number lives in a model's metadata, and comes back from it."""

from __future__ import annotations

import numpy as np
import pytest

from neuroseg.errors import ModelError
from neuroseg.transforms import Preprocessing


def test_every_number_round_trips_through_the_metadata():
    custom = Preprocessing(size=160, context_slices=2, head_margin=0.1, percentiles=(2.0, 98.0), clip_range=(0.0, 3.0))
    section = custom.to_metadata()
    for key in ("size", "context_slices", "head_margin", "percentiles", "clip_range", "axis_codes", "channels"):
        assert key in section
    assert Preprocessing.from_metadata(section) == custom


def test_an_older_model_folder_gets_todays_values():
    assert Preprocessing.from_metadata({"size": 192, "context_slices": 1}) == Preprocessing()


def test_a_model_for_other_axis_codes_is_refused():
    with pytest.raises(ModelError, match="axis codes R,A,S"):
        Preprocessing.from_metadata({**Preprocessing().to_metadata(), "axis_codes": ["R", "A", "S"]})


def test_the_clip_range_is_applied():
    rng = np.random.default_rng(0)
    array = rng.gamma(2.0, 50.0, (64, 64, 4)).astype(np.float32)
    array[:4, :4] = 5000.0  # far above the 99th percentile
    from neuroseg.transforms.intensity import normalise_intensity

    assert normalise_intensity(array, clip_range=(0.0, 1.5)).max() == pytest.approx(1.5)
    assert normalise_intensity(array).max() == pytest.approx(2.5)


def test_the_description_is_written_from_the_numbers():
    text = Preprocessing(size=160, percentiles=(2.0, 98.0), clip_range=(0.0, 3.0)).describe()
    assert "160 x 160" in text["field_of_view"] and "2..98" in text["normalisation"] and "0..3" in text["normalisation"]
