"""neuroseg: brain-tumour segmentation of FLAIR MRI, from NIfTI or DICOM."""

from neuroseg._version import __version__


def segment(source, model=None, device="auto", force_input=False):
    """Segment the tumour in a FLAIR scan.

    ``source`` is a path (NIfTI file or DICOM series folder), a list of pydicom Datasets held in
    memory (one series, pixel data included) or a :class:`Volume`.
    Returns a :class:`neuroseg.inference.SegmentationResult` whose ``mask`` is a
    ``Volume`` on exactly the input's grid and whose ``report`` is a dict (its
    ``input_checks`` say when the answer should not be trusted; an input they refuse raises
    ``neuroseg.checks.InputRefused`` unless ``force_input``).
    """
    from neuroseg.inference.engine import Segmenter

    return Segmenter(model, device=device).segment(source, force_input=force_input)


def __getattr__(name):
    # Volume on first use: `neuroseg --help` stays free of numpy's import time
    if name == "Volume":
        from neuroseg.volume import Volume

        return Volume
    raise AttributeError(f"module 'neuroseg' has no attribute {name!r}")


__all__ = ["__version__", "segment", "Volume"]
