"""Networks (ResUNet segmenter, ResNet slice classifier) and the model folder format."""

from neuroseg.models.classifier import build_classifier
from neuroseg.models.resunet import ResUNet

__all__ = ["ResUNet", "build_classifier"]
