"""The ResUNet segmenter, built from MONAI blocks."""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution, ResidualUnit
from torch import nn


def _residual(in_channels: int, out_channels: int) -> ResidualUnit:
    return ResidualUnit(
        spatial_dims=2, in_channels=in_channels, out_channels=out_channels,
        subunits=2, act="RELU", norm="BATCH",
    )


class ResUNet(nn.Module):
    """Residual U-Net for 2D slices.

    Encoder: a 3x3 conv + ReLU + batch norm stem, then ``depth`` residual blocks each
    followed by 2x2 max pooling, features doubling per block. A residual bottleneck,
    then ``depth`` decoder blocks: 2x2 up-sampling, concatenation with the encoder's
    features at that scale, a residual block. A final 1x1 conv gives logits.
    Input ``(B, in_channels, H, W)`` with H and W divisible by ``2 ** depth``.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 1, features: int = 16, depth: int = 4):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, not {in_channels}, {out_channels}")
        if features < 1 or depth < 1:
            raise ValueError(f"features and depth must be >= 1, not {features}, {depth}")
        widths = [features * 2**level for level in range(depth)]
        self.stem = Convolution(2, in_channels, features, kernel_size=3, act="RELU", norm="BATCH", adn_ordering="AN")
        self.encoders = nn.ModuleList(
            _residual(w_in, w_out) for w_in, w_out in zip([features] + widths[:-1], widths)
        )
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _residual(widths[-1], widths[-1] * 2)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(w * 2, w, kernel_size=2, stride=2) for w in reversed(widths)
        )
        self.decoders = nn.ModuleList(_residual(w * 2, w) for w in reversed(widths))
        self.head = nn.Conv2d(widths[0], out_channels, kernel_size=1)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        x = self.stem(x)
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = decoder(torch.cat([up(x), skip], dim=1))
        return self.head(x)
