"""The ResNet slice classifier (tumour present in this slice?), from MONAI's ResNet."""

from __future__ import annotations

from torch import nn


def build_classifier(in_channels: int = 3, features: int = 16, layers=(1, 1, 1, 1)) -> nn.Module:
    """A small 2D ResNet with basic residual blocks and one logit output."""
    from monai.networks.nets import ResNet

    if features < 1:
        raise ValueError(f"features must be >= 1, not {features}")
    return ResNet(
        block="basic", layers=list(layers), block_inplanes=[features * 2**i for i in range(4)],
        spatial_dims=2, n_input_channels=in_channels, num_classes=1, conv1_t_size=7, conv1_t_stride=2,
    )
