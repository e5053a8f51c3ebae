import json

import numpy as np
import torch

from neuroseg.inference import Segmenter
from tests.conftest import blob_volume


def test_flip_averaged_classifier_gives_a_mirrored_slice_the_same_score(tiny_model):
    segmenter = Segmenter(tiny_model, device="cpu")
    slices = torch.rand(6, 32, 32)
    mirrored = slices.flip(-2)  # the working grid's left-right axis
    def classify(part, average):
        logits = segmenter._slice_logits(part)
        if average:
            logits = (logits + segmenter._slice_logits(part.flip(-2))) / 2
        return torch.sigmoid(logits).numpy()

    with torch.inference_mode():
        averaged = classify(slices, True), classify(mirrored, True)
        plain = classify(slices, False), classify(mirrored, False)
    np.testing.assert_allclose(*averaged, atol=1e-6)
    # without averaging the random-weight classifier does see the mirror: the check above has teeth
    assert not np.allclose(*plain, atol=1e-6)


def test_the_model_setting_switches_flip_averaging_on_for_the_whole_pipeline(tmp_path, tiny_model):
    from neuroseg.models.store import load_model

    model = load_model(tiny_model)
    volume = blob_volume(shape=(32, 32, 8), centre=(10, 16, 4))
    plain = Segmenter(model, device="cpu").segment(volume)
    model.metadata["inference"]["classifier_flip_tta"] = True
    flipped_segmenter = Segmenter(model, device="cpu")
    averaged = flipped_segmenter.segment(volume)
    without, expected = flipped_segmenter.classifier_probabilities(volume)
    np.testing.assert_allclose(plain.slice_probabilities, without, atol=1e-6)
    assert averaged.report["model"]["settings"]["classifier_flip_tta"] is True
    assert not np.allclose(plain.slice_probabilities, averaged.slice_probabilities)
    json.dumps(averaged.report)  # still plain JSON
    np.testing.assert_allclose(averaged.slice_probabilities, expected, atol=1e-6)
