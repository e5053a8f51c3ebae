"""Atomic file writing: a temporary name in the target folder, then a rename. The one writer of every file
neuroseg makes (outputs, models, checkpoints, caches), so a reader never finds half a file.

``all_or_nothing()`` groups several atomic writes: if the block fails, the files it
renamed into place are removed again (or, where ``--force`` replaced an older file,
the older file is put back), so a folder never holds half of a run's outputs. A file
``remove()``d inside the block comes back too.
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from neuroseg.errors import OutputError

# (target, backup of the file it replaced or None) for each rename made inside all_or_nothing()
_COMMITS: ContextVar[list | None] = ContextVar("neuroseg_output_commits", default=None)
# atomic_path's temporary names: ".NAME.RANDOM.part", then NAME's suffixes unless told not to keep them
_TEMPORARY_NAME = re.compile(r"^\..+\.[a-z0-9_]+\.part(\..+)?$")


def _temporary_affixes(target: Path, keep_suffix: bool) -> tuple[str, str]:
    """The prefix and suffix of ``target``'s temporary name. Its suffixes are kept by default, for writers
    that choose the format by them (nibabel's .nii.gz)."""
    suffix = ("".join(target.suffixes) or ".tmp") if keep_suffix else ""
    return f".{target.name}.", f".part{suffix}"


def is_temporary(path) -> bool:
    """A name atomic_path gives a file it is writing: one found later was left by a crash or a kill."""
    return bool(_TEMPORARY_NAME.match(Path(path).name))


def temporary_files(folder) -> list[Path]:
    """The files under ``folder`` that atomic_path was writing when its process was interrupted (or still is)."""
    return [path for path in Path(folder).rglob(".*.part*") if is_temporary(path) and path.is_file()]


@contextmanager
def atomic_path(target, *, keep_suffix: bool = True, mode: int = 0o644):
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success only.

    ``keep_suffix=False`` gives a temporary name that does not end as ``target`` does (no reader globbing
    ``*.dcm`` takes it for a finished file); ``mode`` is the finished file's permission bits. An OSError,
    in the block or in the rename, is raised as OutputError; the temporary file is removed either way."""
    target = Path(target)
    prefix, suffix = _temporary_affixes(target, keep_suffix)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=suffix)
    except OSError as error:
        raise OutputError(f"Cannot write into {target.parent}: {error.strerror or error}") from error
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        _commit(Path(tmp), target)
    except OSError as error:
        raise OutputError(f"Cannot write {target}: {error.strerror or error}") from error
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _commit(tmp: Path, target: Path) -> None:
    commits = _COMMITS.get()
    if commits is None:
        os.replace(tmp, target)
        return
    backup = _backup(target)
    try:
        os.replace(tmp, target)
    except OSError:
        if backup is not None:
            _restore(backup, target)
        raise
    commits.append((target, backup))


def _restore(backup: str, target: Path) -> None:
    """Put ``backup`` back as ``target``. A rename between two links of one file does nothing (POSIX), so a
    backup that still is the target's own file is just unlinked."""
    try:
        if os.path.samefile(backup, target):
            os.unlink(backup)
            return
    except FileNotFoundError:
        pass
    os.replace(backup, target)


def _backup(target: Path) -> str | None:
    """A second name for what ``target`` holds now, so a failed block can put it back; None when nothing is there.

    One step each, never "exists, then move": another writer of the same case may replace or move the
    target in between. A hard link leaves ``target`` in place meanwhile (a reader never finds it missing);
    a file system without hard links gets a rename instead.
    """
    fd, backup = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old")
    os.close(fd)
    os.unlink(backup)  # a free random name for the link
    try:
        os.link(target, backup)
        return backup
    except FileNotFoundError:
        return None
    except OSError:
        pass
    try:
        os.replace(target, backup)
        return backup
    except FileNotFoundError:
        return None


@contextmanager
def all_or_nothing():
    """Atomic writes inside this block appear together or not at all (see the module's docstring)."""
    commits: list = []
    token = _COMMITS.set(commits)
    try:
        yield
    except BaseException:
        for target, backup in reversed(commits):
            try:
                if backup is None:
                    os.unlink(target)
                else:
                    _restore(backup, target)
            except OSError:
                pass
        raise
    else:
        for _, backup in commits:
            if backup is not None:
                try:
                    os.unlink(backup)
                except OSError:
                    pass
    finally:
        _COMMITS.reset(token)


def remove(target) -> bool:
    """Remove ``target`` if it is there; inside ``all_or_nothing()`` a failure of the block puts it back.
    True when something was removed."""
    target = Path(target)
    commits = _COMMITS.get()
    try:
        if commits is None:
            os.unlink(target)
            return True
        backup = _backup(target)
        if backup is None:
            return False
        if os.path.lexists(target):  # a hard link was made: the target is still there
            os.unlink(target)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise OutputError(f"Cannot remove {target}: {error.strerror or error}") from error
    commits.append((target, backup))
    return True


def atomic_write_text(target, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)
