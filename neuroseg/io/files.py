"""Files and folders as every reader sees them: which files are NIfTI, and a tree walk that follows links."""

from __future__ import annotations

import os
from pathlib import Path

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def walk_tree(folder):
    """``os.walk`` that follows folder links (archives are often put together from links), each real folder
    once, so a link back up the tree cannot loop. Callers may prune ``dirs`` in place, as with os.walk."""
    seen = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        yield root, dirs, names
