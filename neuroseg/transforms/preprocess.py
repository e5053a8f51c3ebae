"""The one definition of preprocessing, shared by training (its slice cache) and inference.

Its numbers live in the model's ``metadata.json`` (``input``), so a model is always fed the
way it was trained; a model folder written before they were recorded gets today's values,
which are the ones it was trained with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from neuroseg.constants import NORMALISED_RANGE, WORKING_AXCODES
from neuroseg.errors import ModelError
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
    clip_range: tuple[float, float] = NORMALISED_RANGE
    axis_codes: tuple[str, str, str] = WORKING_AXCODES  # recorded and checked: the slicing is built for these

    @property
    def channels(self) -> int:
        return 2 * self.context_slices + 1

    @classmethod
    def from_metadata(cls, section: dict) -> "Preprocessing":
        """From a model's ``input`` section; keys it lacks take the values older models were made with."""
        defaults = cls()
        axis_codes = tuple(section.get("axis_codes", defaults.axis_codes))
        if axis_codes != WORKING_AXCODES:
            raise ModelError(f"the model takes slices in axis codes {','.join(axis_codes)}; this neuroseg "
                             f"slices in {','.join(WORKING_AXCODES)}")
        return cls(size=int(section.get("size", defaults.size)),
                   context_slices=int(section.get("context_slices", defaults.context_slices)),
                   head_margin=float(section.get("head_margin", defaults.head_margin)),
                   percentiles=tuple(float(p) for p in section.get("percentiles", defaults.percentiles)),
                   clip_range=tuple(float(c) for c in section.get("clip_range", defaults.clip_range)),
                   axis_codes=axis_codes)

    def to_metadata(self) -> dict:
        return dict(asdict(self), percentiles=list(self.percentiles), clip_range=list(self.clip_range),
                    axis_codes=list(self.axis_codes), channels=self.channels)

    def describe(self) -> dict:
        """The steps in words, written from the numbers (for the metadata and the model card)."""
        low, high = self.percentiles
        return {
            "orientation": f"slices axial, working axis codes {','.join(self.axis_codes)} (from the affine; "
                           "nibabel io_orientation)",
            "field_of_view": f"square window in mm around the head's extent (+{100 * self.head_margin:g}% margin), "
                             f"resized bilinearly to {self.size} x {self.size} px",
            "normalisation": f"foreground {low:g}..{high:g} percentile -> 0..1, clipped to "
                             f"{self.clip_range[0]:g}..{self.clip_range[1]:g}, background 0",
            "context": f"{self.context_slices} neighbour slice(s) each side as channels ({self.channels} channels)",
        }

    def prepare(self, volume: Volume) -> tuple[Reorientation, HeadCrop, torch.Tensor]:
        """A volume -> its reorientation, its head crop and the ``(N, size, size)`` normalised slices."""
        reorientation = Reorientation.to_working(volume)
        working = reorientation.apply_volume(volume, copy=False)  # a view: the crop copies what it reads
        crop = fit_head_crop(working, self.size, self.head_margin)
        slices = normalise_intensity(crop.apply(working.array).numpy(), self.percentiles, self.clip_range)
        return reorientation, crop, torch.from_numpy(slices)

    def stack(self, slices: torch.Tensor, indices, first=None, last=None) -> torch.Tensor:
        """2.5D network input for ``indices``: each slice with its neighbours as channels."""
        return with_context(slices, indices, self.context_slices, first, last)
