"""Invertible spatial steps and intensity normalisation shared by training and inference."""

from neuroseg.transforms.intensity import normalise_intensity
from neuroseg.transforms.inplane import HeadCrop, fit_head_crop
from neuroseg.transforms.orientation import Reorientation
from neuroseg.transforms.preprocess import Preprocessing

__all__ = ["Preprocessing", "Reorientation", "HeadCrop", "fit_head_crop", "normalise_intensity"]
