import numpy as np

from neuroseg.transforms import normalise_intensity
from tests.conftest import blob_volume


def _tissue(array):
    return array[array > 0]


def test_uint8_int16_and_z_scored_inputs_normalise_alike():
    base = blob_volume(shape=(40, 40, 8)).array
    rng = np.random.default_rng(0)
    tissue = base > 0
    base = np.where(tissue, base + rng.normal(0, 5, base.shape), 0).astype(np.float32)
    as_uint8 = np.round(base / base.max() * 255)
    as_int16 = np.round(base * 7.3 + 0).astype(np.int16).astype(np.float32)
    z = np.where(tissue, (base - base[tissue].mean()) / base[tissue].std(), 0).astype(np.float32)
    outputs = [normalise_intensity(a) for a in (as_uint8, as_int16, z)]
    for out in outputs[1:]:
        assert np.abs(out[tissue] - outputs[0][tissue]).mean() < 0.02
        assert np.all(out[~tissue] == 0)


def test_noisy_background_goes_to_zero_and_range_is_clipped():
    base = blob_volume(shape=(40, 40, 8)).array
    noisy = base + np.random.default_rng(1).uniform(0, 8, base.shape).astype(np.float32)
    out = normalise_intensity(noisy)
    assert out.min() >= 0 and out.max() <= 2.5
    assert np.median(out[base == 0]) == 0
