"""DICOM networking: send results to a PACS, pull studies from one, and run as a DICOM node.

Needs the ``pacs`` extra (pynetdicom, dicomweb-client): ``pip install 'neuroseg[pacs]'``.
Every module here calls the same :class:`neuroseg.inference.Segmenter` and writers as ``run``.
"""

from __future__ import annotations

from neuroseg.errors import NeurosegError

PACS_EXTRA = "pip install 'neuroseg[pacs]'"


def require_pacs(command: str) -> None:
    """One line saying what to install when pynetdicom or dicomweb-client is missing."""
    import importlib.util

    missing = [name for name in ("pynetdicom", "dicomweb_client") if importlib.util.find_spec(name) is None]
    if missing:
        raise NeurosegError(f"neuroseg {command} needs {' and '.join(missing)}: {PACS_EXTRA}")
