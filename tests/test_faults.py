"""Faults around a good input: unwritable or full output, existing outputs, bad weights, interrupts.

Root ignores permissions, so an unwritable folder is a path under a regular file and a
full disk is a patched write that leaves half a file and raises ENOSPC.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_tiny_model
from tests.test_bad_inputs import (
    EXIT_INPUT, EXIT_MODEL, EXIT_OUTPUT, assert_clean_failure, files_in, good_array, run_cli, save_nifti,
    tree_digest, truncated_gz,
)

OUTPUTS = ["mask.nii.gz", "qc.png", "report.json"]


@pytest.fixture
def scan(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return save_nifti(folder / "scan.nii.gz", good_array())


def segment(scan, output, model, *extra):
    return run_cli(["run", scan, "-o", output, "--model", model, "--device", "cpu", *extra])


def check_fails(scan, output, model, code, match="", extra=()):
    before_in, before_out = tree_digest(scan), tree_digest(output)
    result = segment(scan, output, model, *extra)
    assert_clean_failure(result, code, output, before_out, scan, before_in, match)
    return result


# --------------------------------------------------------------------------- output folder

def test_output_under_a_regular_file(scan, tmp_path, tiny_model):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file\n")
    check_fails(scan, blocker / "out", tiny_model, EXIT_OUTPUT, "not_a_folder")
    assert blocker.read_text() == "a file\n"


def test_output_is_a_regular_file(scan, tmp_path, tiny_model):
    target = tmp_path / "out"
    target.write_text("keep me\n")
    check_fails(scan, target, tiny_model, EXIT_OUTPUT, "not a folder")
    assert target.read_text() == "keep me\n"


def test_output_folder_not_writable(scan, tmp_path, tiny_model, monkeypatch):
    """os.access says no (as for a non-root user on a read-only folder)."""
    output = tmp_path / "out"
    output.mkdir()
    real_access = os.access

    def access(path, mode, **kwargs):
        if Path(path) == output and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    check_fails(scan, output, tiny_model, EXIT_OUTPUT, "not writable")


@pytest.mark.parametrize("existing", OUTPUTS)
def test_existing_output_without_force(scan, tmp_path, tiny_model, existing):
    output = tmp_path / "out"
    output.mkdir()
    (output / existing).write_bytes(b"an earlier result")
    check_fails(scan, output, tiny_model, EXIT_OUTPUT, "--force")
    assert (output / existing).read_bytes() == b"an earlier result"


def test_output_name_taken_by_a_folder_with_force(scan, tmp_path, tiny_model):
    output = tmp_path / "out"
    (output / "mask.nii.gz").mkdir(parents=True)
    check_fails(scan, output, tiny_model, EXIT_OUTPUT, "mask.nii.gz", extra=["--force"])


# --------------------------------------------------------------------------- full disk

def disk_full(path):
    """Write half a file, then fail as a full disk does."""
    with open(path, "wb") as handle:  # not Path.write_bytes, which patch_mask_write replaces
        handle.write(b"\0" * 512)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def patch_mask_write(monkeypatch):
    real = Path.write_bytes

    def write_bytes(self, data):
        if self.name.startswith(".mask.nii.gz."):  # atomic_path's temporary file for the mask
            disk_full(self)
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def patch_qc_write(monkeypatch):
    from PIL import Image

    monkeypatch.setattr(Image.Image, "save", lambda self, fp, *a, **kw: disk_full(fp))


def patch_report_write(monkeypatch):
    real = Path.write_text

    def write_text(self, text, *args, **kwargs):
        if self.name.startswith(".report.json."):
            disk_full(self)
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)


def patch_temp_creation(monkeypatch):
    import tempfile

    def mkstemp(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def patch_rename(monkeypatch):
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == "qc.png" and ".part" in Path(src).name:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


FIRST_WRITE_FAULTS = {"mask": patch_mask_write, "temp_file": patch_temp_creation}
LATER_WRITE_FAULTS = {"qc": patch_qc_write, "report": patch_report_write, "rename": patch_rename}


@pytest.mark.parametrize("fault", sorted(FIRST_WRITE_FAULTS))
def test_disk_full_on_the_first_write(scan, tmp_path, tiny_model, monkeypatch, fault):
    FIRST_WRITE_FAULTS[fault](monkeypatch)
    result = check_fails(scan, tmp_path / "out", tiny_model, EXIT_OUTPUT)
    assert "No space left on device" in result.stderr


@pytest.mark.parametrize("fault", sorted(LATER_WRITE_FAULTS))
def test_disk_full_after_some_outputs_were_written(scan, tmp_path, tiny_model, monkeypatch, fault):
    """No partial result: what was written before the failing file is taken back."""
    LATER_WRITE_FAULTS[fault](monkeypatch)
    check_fails(scan, tmp_path / "out", tiny_model, EXIT_OUTPUT)


def earlier_results(tmp_path) -> Path:
    """An output folder holding an earlier run's files (contents that differ from a new run's)."""
    output = tmp_path / "out"
    output.mkdir()
    for name in OUTPUTS:
        (output / name).write_bytes(f"earlier {name}".encode())
    return output


@pytest.mark.parametrize("fault", sorted(LATER_WRITE_FAULTS))
def test_failed_overwrite_keeps_the_earlier_results(scan, tmp_path, tiny_model, monkeypatch, fault):
    output = earlier_results(tmp_path)
    LATER_WRITE_FAULTS[fault](monkeypatch)
    check_fails(scan, output, tiny_model, EXIT_OUTPUT, extra=["--force"])


def test_failed_first_overwrite_keeps_the_earlier_results(scan, tmp_path, tiny_model, monkeypatch):
    output = earlier_results(tmp_path)
    patch_mask_write(monkeypatch)
    check_fails(scan, output, tiny_model, EXIT_OUTPUT, "No space left", extra=["--force"])


def test_all_or_nothing_takes_back_new_files_and_restores_replaced_ones(tmp_path):
    """The helper the writer needs, on its own."""
    from neuroseg.io.atomic import all_or_nothing, atomic_write_text

    (tmp_path / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), all_or_nothing():
        atomic_write_text(tmp_path / "new.txt", "new")
        atomic_write_text(tmp_path / "old.txt", "replaced")
        raise RuntimeError("the next write failed")
    assert files_in(tmp_path) == ["old.txt"] and (tmp_path / "old.txt").read_text() == "old"
    with all_or_nothing():
        atomic_write_text(tmp_path / "new.txt", "new")
        atomic_write_text(tmp_path / "old.txt", "replaced")
    assert files_in(tmp_path) == ["new.txt", "old.txt"] and (tmp_path / "old.txt").read_text() == "replaced"



def test_a_file_removed_inside_all_or_nothing_comes_back_when_the_block_fails(tmp_path):
    from neuroseg.io.atomic import all_or_nothing, atomic_write_text, remove

    (tmp_path / "stale.txt").write_text("stale")
    with pytest.raises(RuntimeError), all_or_nothing():
        atomic_write_text(tmp_path / "new.txt", "new")
        assert remove(tmp_path / "stale.txt") and not (tmp_path / "stale.txt").exists()
        raise RuntimeError("a later step failed")
    assert files_in(tmp_path) == ["stale.txt"] and (tmp_path / "stale.txt").read_text() == "stale"
    with all_or_nothing():
        atomic_write_text(tmp_path / "new.txt", "new")
        assert remove(tmp_path / "stale.txt")
        assert not remove(tmp_path / "absent.txt")
    assert files_in(tmp_path) == ["new.txt"]  # no backup left behind

# --------------------------------------------------------------------------- model folder

@pytest.fixture
def own_model(tmp_path) -> Path:
    return make_tiny_model(tmp_path / "model")


def test_weights_not_matching_their_sha256_are_refused(scan, tmp_path, own_model):
    weights = own_model / "segmenter.pt"
    data = bytearray(weights.read_bytes())
    data[-20] ^= 0xFF
    weights.write_bytes(bytes(data))
    digest = tree_digest(own_model)
    check_fails(scan, tmp_path / "out", own_model, EXIT_MODEL, "sha256")
    assert tree_digest(own_model) == digest


def test_weights_missing(scan, tmp_path, own_model):
    (own_model / "segmenter.pt").unlink()
    check_fails(scan, tmp_path / "out", own_model, EXIT_MODEL, "segmenter.pt")


def test_model_folder_missing(scan, tmp_path):
    check_fails(scan, tmp_path / "out", tmp_path / "no_model", EXIT_MODEL, "no_model")


def test_model_metadata_not_json(scan, tmp_path, own_model):
    (own_model / "metadata.json").write_text("{ not json")
    check_fails(scan, tmp_path / "out", own_model, EXIT_MODEL, "metadata")


def test_garbage_weights_with_a_matching_hash(scan, tmp_path, own_model):
    """Hash right, content wrong (e.g. a model folder assembled by hand): still exit 4, not a crash."""
    from neuroseg.models.store import sha256

    weights = own_model / "segmenter.pt"
    weights.write_bytes(b"not a torch file" * 10)
    metadata = json.loads((own_model / "metadata.json").read_text())
    metadata["weights"]["segmenter"]["sha256"] = sha256(weights)
    (own_model / "metadata.json").write_text(json.dumps(metadata))
    check_fails(scan, tmp_path / "out", own_model, EXIT_MODEL, "segmenter.pt")


# --------------------------------------------------------------------------- interrupts and crashes

def test_interrupt_is_one_line_and_exit_130(scan, tmp_path, tiny_model, monkeypatch):
    from neuroseg.inference.engine import Segmenter

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Segmenter, "segment", interrupted)
    check_fails(scan, tmp_path / "out", tiny_model, 130, "interrupted")


def test_unexpected_error_is_one_line_and_exit_1(scan, tmp_path, tiny_model, monkeypatch):
    from neuroseg.inference.engine import Segmenter

    def broken(*args, **kwargs):
        raise TypeError("unsupported operand\nsecond line")

    monkeypatch.setattr(Segmenter, "segment", broken)
    monkeypatch.delenv("NEUROSEG_DEBUG", raising=False)
    result = check_fails(scan, tmp_path / "out", tiny_model, 1, "internal error")
    assert "second line" not in result.stderr


def test_out_of_memory_is_one_line(scan, tmp_path, tiny_model, monkeypatch):
    from neuroseg.inference.engine import Segmenter

    def too_big(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(Segmenter, "segment", too_big)
    check_fails(scan, tmp_path / "out", tiny_model, 1, "memory")


# --------------------------------------------------------------------------- a real process

def start_process(*args):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("NEUROSEG_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "neuroseg", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parent.parent)


@pytest.mark.slow  # a neuroseg subprocess
def test_process_stderr_has_no_traceback(tmp_path, tiny_model):
    """Failures in real processes (run side by side): stderr ends in the one error line."""
    source = tmp_path / "in"
    source.mkdir()
    cases = [
        (["run", truncated_gz(source), "-o", tmp_path / "o1", "--model", tiny_model, "--device", "cpu"], EXIT_INPUT),
        (["run", tmp_path / "missing.nii.gz", "-o", tmp_path / "o2", "--model", tmp_path / "no_model"], EXIT_INPUT),  # the input is checked first
    ]
    digest = tree_digest(source)
    processes = [(start_process(*args), args, code) for args, code in cases]
    for process, args, code in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == code, (args, stderr)
        assert "Traceback" not in stderr
        lines = stderr.strip().splitlines()
        assert lines[-1].startswith("neuroseg: error: ")
        assert sum("error" in line.lower() for line in lines) == 1, stderr
    assert tree_digest(source) == digest
    assert files_in(tmp_path / "o1") == [] and files_in(tmp_path / "o2") == []


def test_writers_of_the_same_files_at_once_never_fail_and_leave_no_backups(tmp_path):
    """Three threads overwrite one pair of files inside all_or_nothing(): every write succeeds, the last writer
    wins whole files, and no backup is left behind (a target moved away by another writer between 'does it
    exist' and 'move it aside' used to fail the write, ~1 in 7 here)."""
    import threading

    from neuroseg.io.atomic import all_or_nothing, atomic_write_text

    failures = []

    def writer(n):
        for r in range(200):
            try:
                with all_or_nothing():
                    atomic_write_text(tmp_path / "a.txt", f"{n}-{r}")
                    atomic_write_text(tmp_path / "b.txt", f"{n}-{r}")
            except Exception as error:  # noqa: BLE001  counted, not raised: the test says how many
                failures.append(repr(error))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]
    assert (tmp_path / "a.txt").read_text().endswith("-199")
