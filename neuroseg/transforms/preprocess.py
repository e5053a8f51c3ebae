"""The one definition of preprocessing, shared by training (its slice cache) and inference.

Its numbers live in the model's ``metadata.json`` (``input``), so a model is always fed the
way it was trained; a model folder written before they were recorded gets today's values,
which are the ones it was trained with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from neuroseg.transforms.context import with_context
from neuroseg.transforms.inplane import HEAD_MARGIN, HeadCrop, fit_head_crop
from neuroseg.transforms.intensity import PERCENTILES, normalise_intensity
from neuroseg.transforms.orientation import Reorientation
from neuroseg.volume import Volume


@dataclass(frozen=True)
class Preprocessing:
    size: int = 192
    context_slices: int = 1
    head_margin: float = HEAD_MARGIN
    percentiles: tuple[float, float] = PERCENTILES

    @property
    def channels(self) -> int:
        return 2 * self.context_slices + 1

    @classmethod
    def from_metadata(cls, section: dict) -> "Preprocessing":
        """From a model's ``input`` section; keys it lacks take the values older models were made with."""
        defaults = cls()
        return cls(size=int(section.get("size", defaults.size)),
                   context_slices=int(section.get("context_slices", defaults.context_slices)),
                   head_margin=float(section.get("head_margin", defaults.head_margin)),
                   percentiles=tuple(float(p) for p in section.get("percentiles", defaults.percentiles)))

    def to_metadata(self) -> dict:
        return dict(asdict(self), percentiles=list(self.percentiles), channels=self.channels)

    def prepare(self, volume: Volume) -> tuple[Reorientation, HeadCrop, torch.Tensor]:
        """A volume -> its reorientation, its head crop and the ``(N, size, size)`` normalised slices."""
        reorientation = Reorientation.to_working(volume)
        working = reorientation.apply_volume(volume)
        crop = fit_head_crop(working, self.size, self.head_margin)
        slices = normalise_intensity(crop.apply(working.array).numpy(), self.percentiles)
        return reorientation, crop, torch.from_numpy(slices)

    def stack(self, slices: torch.Tensor, indices, first=None, last=None) -> torch.Tensor:
        """2.5D network input for ``indices``: each slice with its neighbours as channels."""
        return with_context(slices, indices, self.context_slices, first, last)
