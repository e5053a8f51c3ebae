"""The v2 network: a residual U-Net with a strided stem and a slice-classification head.

One pass gives both answers the pipeline needs: the tumour mask's logits and whether the
slice holds tumour. Sharing the encoder makes the classifier almost free (the v1 model ran
a separate ResNet ensemble eight times per slice) and lets it learn from the segmentation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution, ResidualUnit
from torch import nn


def _residual(in_channels: int, out_channels: int, strides: int = 1, subunits: int = 2) -> ResidualUnit:
    return ResidualUnit(spatial_dims=2, in_channels=in_channels, out_channels=out_channels, strides=strides,
                        subunits=subunits, act="RELU", norm="BATCH")


def _conv(in_channels: int, out_channels: int, strides: int = 1) -> Convolution:
    return Convolution(2, in_channels, out_channels, strides=strides, kernel_size=3, act="RELU", norm="BATCH",
                       adn_ordering="NA")


class StridedResUNet(nn.Module):
    """Residual U-Net for 2D slices whose residual blocks run at half resolution and below.

    - Stem: a stride-2 3x3 conv (the full-resolution residual blocks were most of the v1 cost).
    - Encoder: ``depth`` residual blocks, each after the first halving the resolution (strided conv).
    - Bottleneck: a residual block; its average and max pooling feed a linear slice logit
      (max keeps a small lesion from being averaged away).
    - Decoder: transposed-conv up-sampling, concatenation with the encoder's features, a residual block.
    - Head: the half-resolution features are up-sampled and joined with a cheap full-resolution
      conv of the input, so small tumours and edges keep the input's detail; then a 1x1 conv.

    Input ``(B, in_channels, H, W)``, H and W divisible by ``2 ** (depth + 1)``.
    ``forward`` returns ``(mask_logits (B, 1, H, W), slice_logits (B, 1))``.
    """

    def __init__(self, in_channels: int = 3, features: int = 16, depth: int = 4, full_res_features: int = 8):
        super().__init__()
        if in_channels < 1 or features < 1 or depth < 1 or full_res_features < 1:
            raise ValueError("in_channels, features, depth and full_res_features must be >= 1")
        widths = [features * 2**level for level in range(depth)]
        self.stem = _conv(in_channels, features, strides=2)
        self.encoders = nn.ModuleList(
            _residual(w_in, w_out, strides=1 if level == 0 else 2)
            for level, (w_in, w_out) in enumerate(zip([features] + widths[:-1], widths)))
        self.bottleneck = _residual(widths[-1], widths[-1] * 2, strides=2)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(w * 2, w, kernel_size=2, stride=2) for w in reversed(widths))
        self.decoders = nn.ModuleList(_residual(w * 2, w, subunits=1) for w in reversed(widths))
        self.full_res = _conv(in_channels, full_res_features)
        # 1x1: the 3x3 and batch norm at full resolution cost more than the whole encoder level below
        self.refine = nn.Sequential(nn.Conv2d(features + full_res_features, full_res_features, kernel_size=1),
                                    nn.ReLU())
        self.head = nn.Conv2d(full_res_features, 1, kernel_size=1)
        self.slice_head = nn.Linear(4 * widths[-1], 1)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, slice_logits = self.encode(x)
        return self.decode(x, features), slice_logits

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The encoder's features (skips, then the bottleneck) and the slice logits.

        Split from :meth:`decode` so that inference can decode only the slices the slice
        head lets through: most slices of a head hold no tumour.
        """
        h = self.stem(x)
        features = []
        for encoder in self.encoders:
            h = encoder(h)
            features.append(h)
        h = self.bottleneck(h)
        features.append(h)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return features, self.slice_head(pooled)

    def decode(self, x: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        *skips, h = features
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            h = decoder(torch.cat([up(h), skip], dim=1))
        return self.head(self._refine(x, h))

    def _refine(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``refine(cat(upsampled h, full_res(x)))`` with the 1x1 conv split by its inputs.

        Bilinear up-sampling commutes with a 1x1 conv (its weights sum to one), so the part on ``h``
        runs first, at a quarter of the pixels, and fewer channels are up-sampled; no full-resolution
        concatenation is built. The same function: the up-sampling and the concatenation were half
        the decoder's time on the CPU.
        """
        conv, activation = self.refine
        n = h.shape[1]
        h = F.interpolate(F.conv2d(h, conv.weight[:, :n], conv.bias), size=x.shape[-2:], mode="bilinear",
                          align_corners=False)
        return activation(h + F.conv2d(self.full_res(x), conv.weight[:, n:]))
