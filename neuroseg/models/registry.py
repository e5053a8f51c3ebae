"""Builders by the architecture ``class`` a model's metadata records: the metadata decides the model."""

from __future__ import annotations

from torch import nn

from neuroseg.errors import ModelError


def _resunet(spec: dict) -> nn.Module:
    from neuroseg.models.resunet import ResUNet

    return ResUNet(spec["in_channels"], 1, spec["features"], spec["depth"])


def _strided_resunet(spec: dict) -> nn.Module:
    from neuroseg.models.strided import StridedResUNet

    return StridedResUNet(spec["in_channels"], spec["features"], spec["depth"], spec.get("full_res_features", 8))


def _resnet_classifier(spec: dict) -> nn.Module:
    from neuroseg.models.classifier import ClassifierEnsemble, build_classifier

    members = [build_classifier(spec["in_channels"], spec["features"], tuple(spec["layers"]), spec.get("pool", "avg"),
                                spec.get("stem_max_pool", True)) for _ in range(spec.get("members", 1))]
    return members[0] if len(members) == 1 else ClassifierEnsemble(members)


BUILDERS = {
    "ResUNet": _resunet,
    "StridedResUNet": _strided_resunet,
    "monai.networks.nets.ResNet": _resnet_classifier,
}


def build(spec: dict) -> nn.Module | None:
    # metadata written before "class" was read back named only a ResUNet and a ResNet
    name = spec.get("class", "ResUNet" if "depth" in spec else "monai.networks.nets.ResNet")
    if name not in BUILDERS:
        raise ModelError(f"Unknown network class {name!r} in the model's metadata "
                         f"(this neuroseg knows {', '.join(sorted(BUILDERS))})")
    return BUILDERS[name](spec)
