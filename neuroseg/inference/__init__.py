"""Whole-volume inference: classifier gating, slice segmentation, mask on the input grid."""

from neuroseg.inference.engine import SegmentationResult, Segmenter, resolve_device

__all__ = ["Segmenter", "SegmentationResult", "resolve_device"]
