"""Random augmentation of whole batches on their own device (GPU when training there).

Spatial changes go through MONAI's batched ``AffineTransform``; intensity changes
mimic what clinical scans vary in: contrast, gamma, a smooth bias field, noise and
lower resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neuroseg.transforms.orientation import mirror_left_right


@dataclass
class RandomSliceAugment:
    rotate_degrees: float = 20.0
    scale_range: tuple[float, float] = (0.8, 1.25)
    translate: float = 0.08
    flip_probability: float = 0.5
    gamma_range: tuple[float, float] = (0.7, 1.5)
    contrast: float = 0.15
    bias_strength: float = 0.3
    noise_std: float = 0.05
    lowres_probability: float = 0.2

    def __call__(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images (B, C, H, W)`` float, ``masks (B, 1, H, W)`` float {0, 1}."""
        images, masks = self._spatial(images, masks)
        return self._intensity(images), masks

    def _spatial(self, images, masks):
        from monai.networks.layers import AffineTransform

        batch, device = images.shape[0], images.device
        angle = _uniform(batch, -1, 1, device) * math.radians(self.rotate_degrees)
        scale = torch.exp(_uniform(batch, *map(math.log, self.scale_range), device))
        shift = _uniform((batch, 2), -self.translate, self.translate, device) * 2
        theta = torch.zeros(batch, 2, 3, device=device)
        theta[:, 0, 0] = torch.cos(angle) / scale
        theta[:, 0, 1] = -torch.sin(angle) / scale
        theta[:, 1, 0] = torch.sin(angle) / scale
        theta[:, 1, 1] = torch.cos(angle) / scale
        theta[:, :, 2] = shift
        warp = AffineTransform(normalized=True, mode="bilinear", padding_mode="zeros", align_corners=False)
        both = warp(torch.cat([images, masks], dim=1), theta)
        images, masks = both[:, :-1], (both[:, -1:] >= 0.5).float()
        flip = torch.rand(batch, device=device) < self.flip_probability
        images = torch.where(flip[:, None, None, None], mirror_left_right(images), images)
        masks = torch.where(flip[:, None, None, None], mirror_left_right(masks), masks)
        return images, masks

    def _intensity(self, images):
        batch, _, height, width = images.shape
        device = images.device
        foreground = images > 0
        gamma = torch.exp(_uniform((batch, 1, 1, 1), *map(math.log, self.gamma_range), device))
        images = images.clamp(min=0) ** gamma
        images = images * _uniform((batch, 1, 1, 1), 1 - self.contrast, 1 + self.contrast, device)
        coarse = torch.randn(batch, 1, 4, 4, device=device) * self.bias_strength
        bias = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
        images = images * torch.exp(bias)
        lowres = torch.rand(batch, device=device) < self.lowres_probability
        if lowres.any():
            factor = float(_uniform(1, 1.3, 2.0, "cpu"))
            small = F.interpolate(images[lowres], scale_factor=1 / factor, mode="bilinear", antialias=True)
            images[lowres] = F.interpolate(small, size=(height, width), mode="bilinear")
        noise = torch.randn_like(images) * _uniform((batch, 1, 1, 1), 0, self.noise_std, device)
        return ((images + noise) * foreground).clamp(0, 2.5)


def _uniform(shape, low, high, device):
    shape = (shape,) if isinstance(shape, int) else shape
    return torch.rand(shape, device=device) * (high - low) + low


def random_crops(images: torch.Tensor, masks: torch.Tensor, size: int,
                 tumour_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``size``-px crops of a batch: with probability ``tumour_fraction`` centred on a random tumour
    pixel of a slice that has one, anywhere otherwise. The networks are fully convolutional, so
    they train on crops (about 2.5x cheaper at 128 of 192 px) and still infer on whole slices."""
    batch, _, height, width = images.shape
    if size >= min(height, width):
        return images, masks
    device = images.device
    top = torch.randint(0, height - size + 1, (batch,), device=device)
    left = torch.randint(0, width - size + 1, (batch,), device=device)
    centred = (torch.rand(batch, device=device) < tumour_fraction) & (masks.flatten(1).amax(1) > 0)
    for b in torch.nonzero(centred).flatten().tolist():
        rows, cols = torch.nonzero(masks[b, 0], as_tuple=True)
        pick = int(torch.randint(0, len(rows), (1,)))
        top[b] = (rows[pick] - size // 2).clamp(0, height - size)
        left[b] = (cols[pick] - size // 2).clamp(0, width - size)
    corners = list(zip(top.tolist(), left.tolist()))
    return (torch.stack([images[b, :, t:t + size, l:l + size] for b, (t, l) in enumerate(corners)]),
            torch.stack([masks[b, :, t:t + size, l:l + size] for b, (t, l) in enumerate(corners)]))
