"""Batch processing: a mixed folder with bad cases, per-case isolation, summaries, interruption and resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neuroseg.inference import Segmenter
from neuroseg.batch import find_cases, is_complete, run_batch, safe_name
from neuroseg.batch.walk import EARLIER_OUTPUTS, LABEL_MAPS
from tests.conftest import REPO, blob_volume
from tests.dicom_factory import new_study, oblique_affine, sagittal_affine, write_series

OUTPUTS = {"mask.nii.gz", "qc.png", "viewer.html", "report.json"}


@pytest.fixture(scope="module")
def segmenter(tiny_model):
    return Segmenter(tiny_model, device="cpu")


def write_nifti(path: Path, volume=None):
    volume = volume or blob_volume()
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(volume.array.astype(np.int16), volume.affine).to_filename(str(path))
    return path


def mixed_folder(root: Path) -> dict:
    """3 NIfTI cases, 1 corrupt NIfTI, one study (FLAIR + T1), one FLAIR with a missing slice, one T1-only study."""
    for name in ("a/case 1.nii.gz", "a/case-2.nii", "b/Doe^Jane.nii.gz"):
        write_nifti(root / name)
    (root / "a" / "corrupt.nii.gz").write_bytes(b"\x1f\x8b broken" * 20)
    study = new_study(patient_name="Secret^Patient", patient_id="ID-9")
    write_series(blob_volume(affine=oblique_affine()), root / "dicom" / "flair", study=study, series_uid="1.2.40.1",
                 names="shuffled")
    write_series(blob_volume(affine=sagittal_affine()), root / "dicom" / "t1", study=study, series_uid="1.2.40.2",
                 description="T1 SE", inversion_time=None, number=2)
    write_series(blob_volume(), root / "dicom" / "gappy", series_uid="1.2.41.1", skip=(6,))
    write_series(blob_volume(), root / "dicom" / "t1only", study=new_study(study_uid="1.2.42"),
                 series_uid="1.2.42.1", description="T1 SE", inversion_time=None)
    (root / "dicom" / "notes.txt").write_text("not an image")
    return {"ok": ["a__case-2", "a__case_1", "b__Doe_Jane", "series-1.2.40.1"],
            "failed": ["a__corrupt", "series-1.2.41.1"], "skipped": ["study-1.2.42"]}


def statuses(result) -> dict:
    return {row["case"]: row["status"] for row in result.rows}


def test_safe_names():
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("Doe^Jane <MRN 123>") == "Doe_Jane_MRN_123"
    assert safe_name("...") == "case"
    assert len(safe_name("x" * 500)) == 120


def test_mixed_folder_isolates_bad_cases(tmp_path, segmenter):
    expected = mixed_folder(tmp_path / "in")
    out = tmp_path / "out"
    result = run_batch(tmp_path / "in", out, segmenter=segmenter, output_format="both")
    got = statuses(result)
    assert sorted(c for c, s in got.items() if s == "done") == expected["ok"]
    assert sorted(c for c, s in got.items() if s == "failed") == expected["failed"]
    assert sorted(c for c, s in got.items() if s == "skipped") == expected["skipped"]
    assert result.failed == 2 and result.total_line().startswith("7 cases: 4 done, 2 failed, 1 skipped")
    rows = {row["case"]: row for row in result.rows}
    assert "not a readable NIfTI" in rows["a__corrupt"]["error"]
    assert "missing slice" in rows["series-1.2.41.1"]["error"]
    assert "no usable series looks like FLAIR" in rows["study-1.2.42"]["error"]
    assert rows["series-1.2.40.1"]["looks_like_flair"] is True and rows["series-1.2.40.1"]["series_uid"] == "1.2.40.1"
    for case in expected["ok"]:
        names = {p.name for p in (out / case).iterdir()}
        assert names == OUTPUTS | ({"seg.dcm"} if case.startswith("series") else set())
        assert is_complete(out / case, "both" if case.startswith("series") else "nifti")
    index = (out / "index.html").read_text()  # every case's page linked beside summary.csv
    assert all(f'href="{case}/viewer.html"' in index for case in expected["ok"])
    assert not any("Secret" in p.name or "ID-9" in p.name for p in out.rglob("*"))
    with open(out / "summary.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["case"] for r in table] == [r["case"] for r in result.rows]
    assert set(table[0]) >= {"case", "source", "series_uid", "series_description", "looks_like_flair",
                             "tumour_found", "volume_ml", "tumour_slices", "seconds", "status", "error"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["failed"] == 2 and len(summary["cases"]) == 7
    # the output folder inside the input folder is not taken for input on a rerun
    again = run_batch(tmp_path / "in", tmp_path / "in" / "results", segmenter=segmenter, workers=0)
    assert len(again.rows) == 7 and statuses(again) == {**got, "series-1.2.40.1": "done"}
    assert len(run_batch(tmp_path / "in", tmp_path / "in" / "results", segmenter=segmenter).rows) == 7


def test_an_unreadable_flair_beside_a_good_one_is_listed_as_skipped(tmp_path, segmenter):
    study = new_study()
    write_series(blob_volume(), tmp_path / "in" / "good", study=study, series_uid="1.2.50.1")
    write_series(blob_volume(), tmp_path / "in" / "gappy", study=study, series_uid="1.2.50.2", number=4, skip=(6,))
    result = run_batch(tmp_path / "in", tmp_path / "out", segmenter=segmenter)
    rows = {row["case"]: row for row in result.rows}
    assert statuses(result) == {"series-1.2.50.1": "done", "series-1.2.50.2": "skipped"}
    why = rows["series-1.2.50.2"]["error"]
    assert "missing slice" in why and "series 3 was processed" in why


def test_series_option_processes_the_t1_of_a_study(tmp_path, segmenter):
    mixed_folder(tmp_path / "in")
    cases, _, _ = find_cases(tmp_path / "in", series_uids=["1.2.42.1"])
    chosen = {c.name: c for c in cases if c.kind == "dicom"}
    assert sorted(chosen) == ["series-1.2.40.1", "series-1.2.41.1", "series-1.2.42.1"]
    assert chosen["series-1.2.42.1"].looks_like_flair is False and not chosen["series-1.2.42.1"].skip


def test_interrupted_then_resumed(tmp_path, segmenter):
    for n in range(5):
        write_nifti(tmp_path / "in" / f"case{n}.nii.gz")
    out = tmp_path / "out"
    done = []

    def stop_after_two(row):
        done.append(row["case"])
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(tmp_path / "in", out, segmenter=segmenter, on_case=stop_after_two)
    first = {row["case"]: row["status"] for row in json.loads((out / "summary.json").read_text())["cases"]}
    assert sorted(first.values()).count("done") >= 2 and "not run" in first.values()
    stamps = {case: (out / case / "mask.nii.gz").stat().st_mtime_ns for case in done}
    result = run_batch(tmp_path / "in", out, segmenter=segmenter)
    assert result.failed == 0
    assert all(statuses(result)[case] == "done earlier" for case in done)
    assert all((out / case / "mask.nii.gz").stat().st_mtime_ns == stamps[case] for case in done)
    for n in range(5):
        assert {p.name for p in (out / f"case{n}").iterdir()} == OUTPUTS


KILLABLE = """
import sys, time
from neuroseg.export import writer
original = writer.write_outputs
def slow(*args, **kwargs):
    time.sleep(0.4)
    return original(*args, **kwargs)
writer.write_outputs = slow
from neuroseg.batch import run_batch
run_batch(sys.argv[1], sys.argv[2], model=sys.argv[3], device="cpu")
"""


@pytest.mark.slow  # a batch subprocess, killed
def test_killed_batch_resumes_without_partial_outputs(tmp_path, segmenter, tiny_model):
    for n in range(6):
        write_nifti(tmp_path / "in" / f"case{n}.nii.gz")
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", KILLABLE, str(tmp_path / "in"), str(out), str(tiny_model)],
                               cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("*/report.json"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    finished = len(list(out.glob("*/report.json")))
    assert 2 <= finished < 6, "the batch was not killed part-way"
    result = run_batch(tmp_path / "in", out, segmenter=segmenter)
    assert result.failed == 0 and result.count("done earlier") >= 2
    assert sorted(p.name for p in out.iterdir()) == ([f"case{n}" for n in range(6)]
                                                     + ["index.html", "summary.csv", "summary.json"])
    for n in range(6):
        assert {p.name for p in (out / f"case{n}").iterdir()} == OUTPUTS  # no .part left, nothing twice
        assert is_complete(out / f"case{n}", "nifti")


def report_of(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


def test_rerun_after_a_clashing_file_segments_it_and_keeps_the_old_folder(tmp_path, segmenter):
    old = write_nifti(tmp_path / "in" / "patient_a.nii.gz")
    out = tmp_path / "out"
    assert statuses(run_batch(tmp_path / "in", out, segmenter=segmenter)) == {"patient_a": "done"}
    stamp = (out / "patient_a" / "mask.nii.gz").stat().st_mtime_ns
    new = write_nifti(tmp_path / "in" / "patient a.nii.gz", blob_volume(shape=(40, 48, 14)))  # sorts first
    result = run_batch(tmp_path / "in", out, segmenter=segmenter)
    rows = {row["case"]: row for row in result.rows}
    assert {case: row["status"] for case, row in rows.items()} == {"patient_a-2": "done", "patient_a": "done earlier"}
    assert rows["patient_a-2"]["source"] == str(new) and rows["patient_a"]["source"] == str(old)
    assert report_of(out / "patient_a-2")["input"]["resolved_path"] == str(new.resolve())
    assert report_of(out / "patient_a")["input"]["resolved_path"] == str(old.resolve())
    assert nib.load(out / "patient_a-2" / "mask.nii.gz").shape == (40, 48, 14)
    assert (out / "patient_a" / "mask.nii.gz").stat().st_mtime_ns == stamp
    again = run_batch(tmp_path / "in", out, segmenter=segmenter)
    assert statuses(again) == {"patient_a-2": "done earlier", "patient_a": "done earlier"}


def test_names_stick_to_the_folder_whose_report_names_the_source(tmp_path):
    from neuroseg.batch import Case, assign_names

    out = tmp_path / "out"
    for folder, source in (("scan", "b/scan.nii.gz"), ("other", "elsewhere.nii.gz")):
        (out / folder).mkdir(parents=True)
        (out / folder / "report.json").write_text(json.dumps(
            {"neuroseg_version": "0", "input": {"format": "nifti", "path": str(tmp_path / source)}}))
    (out / "Broken").mkdir()
    (out / "Broken" / "report.json").write_text("{")  # whose results: unknown, so nobody else's folder
    cases = [Case(name, str(tmp_path / source), "nifti") for name, source in
             (("scan", "a/scan.nii.gz"), ("scan", "b/scan.nii.gz"), ("broken", "broken.nii.gz"),
              ("other", "new/other.nii.gz"), ("fresh", "fresh.nii.gz"))]
    assign_names(cases, out)
    assert [case.name for case in cases] == ["scan-2", "scan", "broken-2", "other-2", "fresh"]


def test_replaced_file_is_segmented_again(tmp_path, segmenter):
    scan = write_nifti(tmp_path / "in" / "scan.nii.gz")
    out = tmp_path / "out"
    run_batch(tmp_path / "in", out, segmenter=segmenter)
    assert statuses(run_batch(tmp_path / "in", out, segmenter=segmenter)) == {"scan": "done earlier"}
    write_nifti(scan, blob_volume(shape=(40, 48, 14)))  # a corrected scan under the same name
    later = (out / "scan" / "report.json").stat().st_mtime_ns + 10**9
    os.utime(scan, ns=(later, later))
    assert statuses(run_batch(tmp_path / "in", out, segmenter=segmenter)) == {"scan": "done"}
    assert nib.load(out / "scan" / "mask.nii.gz").shape == (40, 48, 14)
    assert report_of(out / "scan")["input"]["mtime_ns"] == later
    os.utime(scan, ns=(later + 10**9, later + 10**9))  # touched only: redone too, the stamp differs
    assert statuses(run_batch(tmp_path / "in", out, segmenter=segmenter)) == {"scan": "done"}


def test_earlier_outputs_and_label_maps_are_not_scans(tmp_path, segmenter):
    root = tmp_path / "task"
    write_nifti(root / "imagesTr" / "case1.nii.gz")
    write_nifti(root / "labelsTr" / "case1.nii.gz")
    write_nifti(root / "labelsTs" / "case2.nii.gz")
    first = run_batch(root, root / "results", segmenter=segmenter)
    assert statuses(first) == {"imagesTr__case1": "done"}
    assert first.skipped_line == "skipped 2 files: 2 in labelsTr/labelsTs (label maps, not scans)"
    second = run_batch(root, root / "results2", segmenter=segmenter)
    assert statuses(second) == {"imagesTr__case1": "done"}  # not results/imagesTr__case1/mask.nii.gz
    summary = json.loads((root / "results2" / "summary.json").read_text())
    assert summary["skipped_files"] == {LABEL_MAPS: 2, EARLIER_OUTPUTS: 1}
    assert "1 in earlier neuroseg output folders" in second.skipped_line


def test_cli_prints_each_message_on_one_line(tmp_path, tiny_model):
    from typer.testing import CliRunner

    from neuroseg.cli.main import app

    name = "a_rather_long_file_name_of_a_scan_that_cannot_be_read_at_all"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / f"{name}.nii.gz").write_bytes(b"garbage" * 10)
    write_nifti(tmp_path / "in" / "labelsTr" / "label.nii.gz")
    result = CliRunner().invoke(app, ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model",
                                      str(tiny_model), "--device", "cpu"])
    assert result.exit_code == 6, result.output
    lines = result.output.splitlines()
    failed = next(line for line in lines if line.startswith("failed:"))
    assert len(failed) > 100 and failed.startswith(f"failed: {name}: ") and "not a readable NIfTI" in failed
    assert "skipped 1 file: 1 in labelsTr/labelsTs (label maps, not scans)" in lines


def test_no_viewer_batch_writes_no_pages_and_resumes_without_them(tmp_path, segmenter):
    for name in ("one.nii.gz", "two.nii.gz"):
        write_nifti(tmp_path / "in" / name)
    out = tmp_path / "out"
    first = run_batch(tmp_path / "in", out, segmenter=segmenter, workers=0, viewer=False)
    assert set(statuses(first).values()) == {"done"}
    for case in ("one", "two"):
        assert not (out / case / "viewer.html").exists() and is_complete(out / case, "nifti", viewer=False)
        assert not is_complete(out / case, "nifti")  # a run that writes pages would redo the case
    assert "viewer.html" not in (out / "index.html").read_text()
    again = run_batch(tmp_path / "in", out, segmenter=segmenter, workers=0, viewer=False)
    assert set(statuses(again).values()) == {"done earlier"}
