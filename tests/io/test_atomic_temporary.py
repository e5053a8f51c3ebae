"""atomic_path's temporary files: found after a crash by their names, never mistaken for finished files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from neuroseg.errors import OutputError
from neuroseg.io.atomic import atomic_path, is_temporary, temporary_files

REPO = Path(__file__).resolve().parents[2]


def test_a_write_killed_midway_leaves_a_file_that_temporary_files_finds(tmp_path):
    """What holds: a process that dies inside atomic_path (os._exit, as a kill) leaves its temporary file and
    no target; temporary_files finds exactly it, under subfolders too, and not a finished file beside it."""
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    (folder / "1.2.3.dcm").write_bytes(b"finished")
    (folder / ".hidden.json").write_text("{}")  # a dot file that is not ours
    code = ("import os, sys\nfrom neuroseg.io.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1] + '/1.2.4.dcm', keep_suffix=False) as tmp:\n"
            "    tmp.write_bytes(b'half')\n"
            "    os._exit(3)\n")
    assert subprocess.run([sys.executable, "-c", code, str(folder)], cwd=REPO, check=False).returncode == 3
    left = temporary_files(tmp_path)
    assert len(left) == 1 and left[0].read_bytes() == b"half"
    assert left[0].name.startswith(".1.2.4.dcm.") and left[0].name.endswith(".part")  # not *.dcm
    assert not (folder / "1.2.4.dcm").exists()
    assert not is_temporary(folder / "1.2.3.dcm") and not is_temporary(folder / ".hidden.json")


def test_temporary_names_keep_the_suffix_by_default_and_are_recognised(tmp_path):
    with atomic_path(tmp_path / "mask.nii.gz") as tmp:
        assert tmp.name.endswith(".nii.gz") and is_temporary(tmp)  # nibabel picks the format by the suffix
        assert temporary_files(tmp_path) == [tmp]
        tmp.write_bytes(b"x")
    assert temporary_files(tmp_path) == []
    with atomic_path(tmp_path / "1.2.3.dcm", keep_suffix=False, mode=0o600) as tmp:
        assert not tmp.name.endswith(".dcm") and is_temporary(tmp)
        tmp.write_bytes(b"x")
    assert (tmp_path / "1.2.3.dcm").stat().st_mode & 0o777 == 0o600


def test_an_oserror_in_the_block_is_an_output_error_and_leaves_nothing(tmp_path):
    target = tmp_path / "1.2.3.dcm"
    with pytest.raises(OutputError, match="No space left"), atomic_path(target, keep_suffix=False) as tmp:
        tmp.write_bytes(b"half")
        raise OSError(28, os.strerror(28))
    assert list(tmp_path.iterdir()) == []
