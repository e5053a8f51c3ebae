import numpy as np
import torch

from neuroseg.transforms import fit_head_crop
from neuroseg.transforms.inplane import HeadCrop
from neuroseg.volume import Volume
from tests.conftest import blob_volume


def test_crop_without_resize_round_trips_exactly_inside_the_window():
    volume = blob_volume(shape=(40, 40, 6))
    volume = Volume(volume.array, np.diag([1.0, 1.0, 3.0, 1.0]))
    crop = fit_head_crop(volume, size=8)
    exact = HeadCrop(crop.i0, crop.j0, crop.width, crop.height, crop.width, crop.source_inplane)
    slices = exact.apply(volume.array)
    assert tuple(slices.shape) == (6, crop.width, crop.width)
    back = exact.invert(slices)
    np.testing.assert_array_equal(back, volume.array)  # the head lies inside the window


def test_window_is_square_in_millimetres_for_anisotropic_pixels():
    volume = blob_volume(shape=(60, 30, 4))
    volume = Volume(volume.array, np.diag([0.5, 1.0, 5.0, 1.0]))
    crop = fit_head_crop(volume, size=32)
    assert abs(crop.width * 0.5 - crop.height * 1.0) <= 1.0


def test_head_is_centred_and_fills_the_frame_alike_at_any_pixel_size():
    fine = blob_volume(shape=(80, 80, 4), centre=(40, 40, 2), radius=1)
    coarse = blob_volume(shape=(40, 40, 4), centre=(20, 20, 2), radius=1)
    fine = Volume(fine.array, np.diag([0.5, 0.5, 5.0, 1.0]))
    coarse = Volume(coarse.array, np.diag([1.0, 1.0, 5.0, 1.0]))
    a = fit_head_crop(fine, 32).apply(fine.array)
    b = fit_head_crop(coarse, 32).apply(coarse.array)
    head_a, head_b = (a[2] > 50).float().mean(), (b[2] > 50).float().mean()
    assert abs(float(head_a - head_b)) < 0.03


def test_resize_round_trip_is_close():
    volume = blob_volume(shape=(64, 64, 5), centre=(32, 32, 2), radius=10)
    crop = fit_head_crop(volume, 48)
    back = crop.invert(crop.apply(volume.array))
    inside = volume.array > 0
    error = np.abs(back - volume.array)[inside].mean() / volume.array[inside].mean()
    assert error < 0.1
    assert isinstance(crop.apply(volume.array), torch.Tensor)
