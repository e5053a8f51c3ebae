"""A model's shape: how its networks answer the two questions, which slices hold tumour and where.

Named in ``metadata.json`` (``architecture.shape``) and built by the registry, so that inference
and training call a shape without asking which one it is:

- ``joint`` (v2): one network; its encoder's slice head classifies the slice, its decoder outlines
  the tumour, and the decoder runs only on the slices the gate lets through.
- ``segmenter+classifier`` (v1): a segmenter beside a separate slice classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from neuroseg.errors import ModelError


class JointNet:
    name = "joint"

    def __init__(self, segmenter: nn.Module, classifier: nn.Module | None = None):
        self.network = segmenter

    @property
    def networks(self) -> list[nn.Module]:
        return [self.network]

    def classify(self, batch: torch.Tensor):
        """``(B,)`` slice logits, and the encoder's features for :meth:`segment`."""
        features, logits = self.network.encode(batch)
        return logits.float()[:, 0], features

    def segment(self, batch: torch.Tensor, features, keep: torch.Tensor) -> torch.Tensor:
        """``(K, H, W)`` mask logits of the slices ``keep`` marks, decoded from their features."""
        return self.network.decode(batch[keep], [f[keep] for f in features]).float()[:, 0]

    def outputs(self, batch: torch.Tensor, with_mask: bool = True):
        """Training's ``(mask logits (B, 1, H, W) or None, slice logits (B, 1))``: one pass gives both."""
        masks, slices = self.network(batch)
        return (masks if with_mask else None), slices


class SegmenterBesideClassifier:
    name = "segmenter+classifier"

    def __init__(self, segmenter: nn.Module, classifier: nn.Module):
        self.segmenter, self.classifier = segmenter, classifier

    @property
    def networks(self) -> list[nn.Module]:
        return [self.segmenter, self.classifier]

    def classify(self, batch: torch.Tensor):
        return self.classifier(batch).float()[:, 0], None

    def segment(self, batch: torch.Tensor, state, keep: torch.Tensor) -> torch.Tensor:
        return self.segmenter(batch[keep]).float()[:, 0]

    def outputs(self, batch: torch.Tensor, with_mask: bool = True):
        return (self.segmenter(batch) if with_mask else None), self.classifier(batch)


SHAPES = {shape.name: shape for shape in (JointNet, SegmenterBesideClassifier)}


def shape_name(architecture: dict) -> str:
    """The shape an architecture names; folders written before it was named are read here, once."""
    name = architecture.get("shape")
    if name is None:  # before the shape was named, a joint net recorded a placeholder classifier
        joint = architecture.get("classifier", {}).get("class") == "StridedResUNet.slice_head"
        name = JointNet.name if joint else SegmenterBesideClassifier.name
    if name not in SHAPES:
        raise ModelError(f"Unknown model shape {name!r} in the model's metadata "
                         f"(this neuroseg knows {', '.join(sorted(SHAPES))})")
    return name


def build_shape(architecture: dict, segmenter: nn.Module, classifier: nn.Module | None):
    return SHAPES[shape_name(architecture)](segmenter, classifier)
