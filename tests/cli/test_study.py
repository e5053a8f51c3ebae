"""`neuroseg scan`, `neuroseg batch`, and `neuroseg run` on DICOM folders, through typer's CliRunner."""

from __future__ import annotations

import json
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from neuroseg.cli.main import app
from tests.conftest import blob_volume, shared_path
from tests.dicom_factory import new_study, write_series

runner = CliRunner()


def test_scan_lists_the_real_study_and_processes_nothing():
    folder = shared_path("dicom", "study-trio-b17")
    result = runner.invoke(app, ["scan", str(folder)])
    assert result.exit_code == 0, result.output
    assert "t1_MPRAGEcr_noGRAPPA" in result.output and "gre_field_mapping" in result.output
    assert "Nothing to process in this study" in result.output
    assert result.output.count(" skip ") == 3 and "│ process" not in result.output
    listing = json.loads(runner.invoke(app, ["scan", str(folder), "--json"]).output)
    (study,) = listing["studies"]
    assert study["chosen"] is None and [s["action"] for s in study["series"]] == ["skip"] * 3
    assert [s["orientation"] for s in study["series"]] == ["axial", "axial", "sagittal"]


def test_scan_of_a_nifti_folder_points_to_run_and_batch(tmp_path):
    volume = blob_volume()
    for name in ("a.nii.gz", "b.nii"):
        nib.Nifti1Image(volume.array, volume.affine).to_filename(str(tmp_path / name))
    result = runner.invoke(app, ["scan", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "no DICOM series found (2 NIfTI files here" in result.output and "neuroseg batch" in result.output


@pytest.mark.slow  # several runs on a real study, over 3 s
def test_run_on_real_study_needs_series_and_warns_not_flair(tmp_path, tiny_model):
    folder = shared_path("dicom", "study-trio-b17")
    refused = runner.invoke(app, ["run", str(folder), "-o", str(tmp_path / "no"), "--model", str(tiny_model)])
    assert refused.exit_code == 2 and "choose one with --series" in refused.output
    assert not (tmp_path / "no").exists()
    listing = json.loads(runner.invoke(app, ["scan", str(folder), "--json"]).output)
    t1 = next(s["series_uid"] for s in listing["studies"][0]["series"] if s["number"] == 19)
    out = tmp_path / "t1"
    result = runner.invoke(app, ["run", str(folder), "-o", str(out), "--model", str(tiny_model), "--series", t1,
                                 "--format", "both", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "NOT FLAIR" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["input"]["looks_like_flair"] is False and report["warnings"][0].startswith("NOT FLAIR")
    assert nib.load(out / "mask.nii.gz").shape == (256, 256, 176) and (out / "seg.dcm").exists()
    if shutil.which("dciodvfy"):  # a SEG over a real scanner's series passes the validator too
        check = subprocess.run(["dciodvfy", str(out / "seg.dcm")], capture_output=True, text=True, timeout=60)
        assert not [line for line in check.stderr.splitlines() if line.startswith("Error")], check.stderr


def test_outputs_left_inside_the_dicom_folder_are_not_inputs(tmp_path, tiny_model):
    write_series(blob_volume(), tmp_path / "series")
    args = ["run", str(tmp_path / "series"), "-o", str(tmp_path / "series" / "out"), "--model", str(tiny_model),
            "--format", "both"]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args + ["--force"])  # its own mask.nii.gz and seg.dcm are not new inputs
    assert again.exit_code == 0, again.output
    elsewhere = runner.invoke(app, args[:2] + ["-o", str(tmp_path / "elsewhere")] + args[4:])
    assert elsewhere.exit_code == 0, elsewhere.output  # an earlier run's outputs are never inputs


def test_run_dicom_seg_refused_for_nifti(tmp_path, tiny_model):
    volume = blob_volume()
    path = tmp_path / "scan.nii.gz"
    nib.Nifti1Image(volume.array, volume.affine).to_filename(str(path))
    result = runner.invoke(app, ["run", str(path), "-o", str(tmp_path / "out"), "--model", str(tiny_model),
                                 "--format", "dicom-seg"])
    assert result.exit_code == 2 and "needs a DICOM input series" in result.output


def test_batch_exit_codes(tmp_path, tiny_model):
    good = tmp_path / "good"
    write_series(blob_volume(), good / "dicom", study=new_study())
    volume = blob_volume()
    nib.Nifti1Image(volume.array, volume.affine).to_filename(str(good / "one.nii.gz"))
    args = ["-o", str(tmp_path / "out"), "--model", str(tiny_model), "--device", "cpu", "--format", "both"]
    result = runner.invoke(app, ["batch", str(good), *args])
    assert result.exit_code == 0, result.output
    assert "2 cases: 2 done" in result.output
    (good / "bad.nii.gz").write_bytes(b"garbage" * 10)
    result = runner.invoke(app, ["batch", str(good), *args])
    assert result.exit_code == 6, result.output
    assert "3 cases: 2 done (2 by an earlier run), 1 failed" in result.output
    assert "1 of 3 cases failed" in result.output
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())["cases"]
    assert [r["status"] for r in rows] == ["failed", "done earlier", "done earlier"]
    assert np.asarray(nib.load(tmp_path / "out" / "one" / "mask.nii.gz").dataobj).shape == (40, 48, 12)
