"""The ResNet slice classifier (tumour present in this slice?), from MONAI's ResNet."""

from __future__ import annotations

import torch
from torch import nn

POOLS = ("avg", "avgmax")


class AvgMaxPool(nn.Module):
    """Global average and global max pooling side by side.

    Average pooling alone dilutes a lesion that fills a few cells of the last feature map;
    the max keeps it visible, which is where the classifier's misses were (small areas).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)], dim=1)


def build_classifier(in_channels: int = 3, features: int = 16, layers=(1, 1, 1, 1), pool: str = "avg",
                     stem_max_pool: bool = True) -> nn.Module:
    """A small 2D ResNet with basic residual blocks and one logit output.

    ``stem_max_pool=False`` keeps feature maps twice as fine (for small lesions), at about
    1.7x the training time.
    """
    from monai.networks.nets import ResNet

    if features < 1:
        raise ValueError(f"features must be >= 1, not {features}")
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, not {pool!r}")
    network = ResNet(
        block="basic", layers=list(layers), block_inplanes=[features * 2**i for i in range(4)],
        spatial_dims=2, n_input_channels=in_channels, num_classes=1, conv1_t_size=7, conv1_t_stride=2,
        no_max_pool=not stem_max_pool,
    )
    if pool == "avgmax":
        network.avgpool = AvgMaxPool()
        network.fc = nn.Linear(2 * network.fc.in_features, 1)
    return network


class ClassifierEnsemble(nn.Module):
    """Classifiers trained alike from different seeds; their mean logit is the output."""

    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)
