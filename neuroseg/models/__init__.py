"""Networks (ResUNet segmenter, ResNet slice classifier, the joint StridedResUNet) and the model folder format.

The networks are imported when first named: they import MONAI, which inference from a cached graph
(:mod:`neuroseg.models.graph`) does without.
"""

__all__ = ["ResUNet", "build_classifier"]


def __getattr__(name):
    if name == "ResUNet":
        from neuroseg.models.resunet import ResUNet

        return ResUNet
    if name == "build_classifier":
        from neuroseg.models.classifier import build_classifier

        return build_classifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
