"""One definition of preprocessing: the training cache and inference prepare a volume alike, and
its numbers come from the model's metadata."""

import numpy as np
import torch

from neuroseg.transforms import Preprocessing
from tests.conftest import blob_volume


def test_a_model_without_the_recorded_numbers_gets_the_values_it_was_trained_with():
    assert Preprocessing.from_metadata({"size": 192, "context_slices": 1}) == Preprocessing()
    recorded = Preprocessing(size=64, context_slices=2, head_margin=0.1, percentiles=(0.5, 99.5))
    assert Preprocessing.from_metadata(recorded.to_metadata()) == recorded


def test_the_recorded_numbers_change_the_preprocessing():
    volume = blob_volume()
    _, crop_a, a = Preprocessing(size=32).prepare(volume)
    _, crop_b, b = Preprocessing(size=32, head_margin=0.2).prepare(volume)
    assert crop_b.width > crop_a.width and not torch.equal(a, b)
    _, _, c = Preprocessing(size=32, percentiles=(5.0, 95.0)).prepare(volume)
    assert not torch.equal(a, c)


def test_the_training_cache_holds_what_inference_feeds_the_network():
    """Cache slices and the sampler's 2.5D batches equal the engine's, to the cache's uint8 step."""
    from neuroseg.io.datasets import LabelledCase
    from neuroseg.training.cache import QUANTUM, SliceCache, preprocess_case
    from neuroseg.training.train import SliceSampler
    from neuroseg.volume import Volume

    preprocessing = Preprocessing(size=32)
    cases = []
    for k, centre in enumerate([(12, 30, 7), (20, 20, 4)]):
        image = blob_volume(centre=centre)
        label = Volume((image.array > 200).astype(np.uint8), image.affine.copy())
        cases.append((f"case{k}", image, preprocess_case(LabelledCase(f"case{k}", image, label), preprocessing)))
    images = np.concatenate([c[2][0] for c in cases])
    offsets = np.cumsum([0] + [len(c[2][2]) for c in cases])
    cache = SliceCache(images, np.concatenate([c[2][1] for c in cases]), np.concatenate([c[2][2] for c in cases]),
                       [c[0] for c in cases], offsets, {"size": 32, "quantum": QUANTUM})
    sampler = SliceSampler(cache, cache.case_ids, context=1, device="cpu")
    for k, (case_id, image, _) in enumerate(cases):
        _, _, slices = preprocessing.prepare(image)
        rows = torch.arange(offsets[k], offsets[k + 1])
        batch, _, _ = sampler.batch(rows)
        expected = preprocessing.stack(slices, np.arange(len(slices)))
        torch.testing.assert_close(batch, expected, atol=0.51 / QUANTUM, rtol=0)
