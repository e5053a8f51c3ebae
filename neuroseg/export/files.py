"""Atomic file writing: a temporary name in the target folder, then a rename."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from neuroseg.errors import OutputError


@contextmanager
def atomic_path(target):
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success only."""
    target = Path(target)
    suffix = "".join(target.suffixes) or ".tmp"
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f".part{suffix}")
    except OSError as error:
        raise OutputError(f"Cannot write into {target.parent}: {error.strerror}") from error
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as error:
        raise OutputError(f"Cannot write {target}: {error.strerror or error}") from error
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(target, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def prepare_output_dir(folder, names, force: bool) -> Path:
    """Create ``folder``; refuse (before anything is written) if any output exists without ``force``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"Output path exists and is not a folder: {folder}")
    existing = [name for name in names if (folder / name).exists()]
    if existing and not force:
        raise OutputError(f"Output file exists: {folder / existing[0]} (use --force to overwrite)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"Cannot create output folder {folder}: {error.strerror}") from error
    if not os.access(folder, os.W_OK):
        raise OutputError(f"Output folder is not writable: {folder}")
    return folder
