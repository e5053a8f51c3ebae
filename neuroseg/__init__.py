"""neuroseg: brain-tumour segmentation of FLAIR MRI, from NIfTI or DICOM."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neuroseg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"


def segment(source, model=None, device="auto"):
    """Segment the tumour in a FLAIR scan.

    ``source`` is a path (NIfTI file or DICOM series folder) or a :class:`Volume`.
    Returns a :class:`neuroseg.inference.SegmentationResult` whose ``mask`` is a
    ``Volume`` on exactly the input's grid and whose ``report`` is a dict.
    """
    from neuroseg.inference.engine import Segmenter

    return Segmenter(model, device=device).segment(source)


__all__ = ["__version__", "segment"]
