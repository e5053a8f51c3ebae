"""`neuroseg run` through typer's CliRunner: outputs, geometry, exit codes."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from neuroseg.cli.main import app
from tests.conftest import blob_volume
from tests.geometry import reorder, rotate_affine

runner = CliRunner()


def _write(volume, path):
    nib.Nifti1Image(volume.array.astype(np.int16), volume.affine).to_filename(str(path))
    return path


@pytest.fixture
def scan(tmp_path):
    base = blob_volume()
    volume = reorder(type(base)(base.array, rotate_affine(base.affine, 12, 0)), (1, 0, 2), (True, False, False))
    return _write(volume, tmp_path / "scan.nii.gz")


def test_run_writes_mask_report_and_picture_on_the_input_grid(scan, tmp_path, tiny_model):
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(scan), "-o", str(out), "--model", str(tiny_model), "--probabilities"])
    assert result.exit_code == 0, result.output
    source, mask = nib.load(str(scan)), nib.load(str(out / "mask.nii.gz"))
    assert mask.shape == source.shape
    assert np.array_equal(mask.affine, source.affine)
    assert np.array_equal(mask.get_qform(), source.get_qform()) and np.array_equal(mask.get_sform(), source.get_sform())
    assert mask.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1}
    report = json.loads((out / "report.json").read_text())
    assert report["files"] == ["mask.nii.gz", "probabilities.nii.gz", "qc.png", "viewer.html", "report.json"]
    assert report["input"]["shape"] == list(source.shape)
    assert report["input"]["axis_codes"] == "".join(nib.aff2axcodes(source.affine))
    assert len(report["slices"]) == source.shape[report["slice_axis"]]
    assert report["model"]["weights_sha256"]["segmenter"]
    assert (out / "qc.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in out.iterdir()) == sorted(report["files"])


def test_run_no_viewer_writes_no_page(scan, tmp_path, tiny_model):
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(scan), "-o", str(out), "--model", str(tiny_model), "--no-viewer"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["mask.nii.gz", "qc.png", "report.json"]


def test_mask_geometry_matches_in_an_independent_reader(scan, tmp_path, tiny_model):
    import SimpleITK as sitk

    out = tmp_path / "out"
    assert runner.invoke(app, ["run", str(scan), "-o", str(out), "--model", str(tiny_model)]).exit_code == 0
    source, mask = sitk.ReadImage(str(scan)), sitk.ReadImage(str(out / "mask.nii.gz"))
    assert mask.GetSize() == source.GetSize()
    np.testing.assert_allclose(mask.GetOrigin(), source.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(mask.GetDirection(), source.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(mask.GetSpacing(), source.GetSpacing(), atol=1e-6)


def test_existing_outputs_are_refused_without_force(scan, tmp_path, tiny_model):
    out = tmp_path / "out"
    args = ["run", str(scan), "-o", str(out), "--model", str(tiny_model)]
    assert runner.invoke(app, args).exit_code == 0
    before = (out / "mask.nii.gz").stat().st_mtime_ns
    refused = runner.invoke(app, args)
    assert refused.exit_code == 3
    assert "exists" in refused.output and "--force" in refused.output
    assert (out / "mask.nii.gz").stat().st_mtime_ns == before
    assert runner.invoke(app, args + ["--force"]).exit_code == 0


@pytest.mark.parametrize("options", [["--format", "dicom-seg"], ["--format", "both"], ["--series", "1.2.3"]])
def test_dicom_only_options_for_nifti_input_are_refused_before_the_model_loads(scan, tmp_path, options):
    out = tmp_path / "out"
    # a model that does not exist would be exit code 4: code 2 shows the input was refused first
    result = runner.invoke(app, ["run", str(scan), "-o", str(out), "--model", str(tmp_path / "no-model")] + options)
    assert result.exit_code == 2, result.output
    assert "DICOM" in result.output and "is a file" in result.output
    assert not out.exists()


def test_cuda_request_without_gpu_is_a_clear_error(scan, tmp_path, tiny_model):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = runner.invoke(app, ["run", str(scan), "-o", str(tmp_path / "o"), "--model", str(tiny_model),
                                 "--device", "cuda"])
    assert result.exit_code == 2 and "CUDA" in result.output


def test_version_and_help():
    from neuroseg import __version__

    assert runner.invoke(app, ["--version"]).output.strip() == f"neuroseg {__version__}"
    for command in ([], ["run", "--help"], ["train", "--help"], ["evaluate", "--help"]):
        result = runner.invoke(app, command)
        assert "Usage" in result.output


def test_help_does_not_import_torch():
    code = "import sys; from neuroseg.cli.main import app; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_folder_of_nifti_files_points_to_batch(scan, tmp_path, tiny_model):
    result = runner.invoke(app, ["run", str(scan.parent), "-o", str(tmp_path / "o"), "--model", str(tiny_model)])
    assert result.exit_code == 2
    assert "neuroseg batch" in result.output


def test_summary_names_the_device_used(scan, tmp_path, tiny_model):
    result = runner.invoke(app, ["run", str(scan), "-o", str(tmp_path / "o"), "--model", str(tiny_model),
                                 "--device", "cpu"])
    assert result.exit_code == 0 and " on cpu" in result.output


def _headers(tmp_path):
    """Inputs whose headers a writer easily gets wrong: how each is saved, by name."""
    volume = blob_volume()
    data, affine = volume.array.astype(np.int16), volume.affine
    shifted = affine.copy()
    shifted[0, 3] += 30
    four_d = nib.Nifti1Image(data[..., None], affine)
    nifti2 = nib.Nifti2Image(data, affine)
    no_form = nib.Nifti1Image(data, affine)
    no_form.set_qform(None, code=0)
    no_form.set_sform(None, code=0)
    disagree = nib.Nifti1Image(data, affine)
    disagree.set_qform(shifted, code=1)
    disagree.set_sform(affine, code=2)
    images = {"4d": four_d, "nifti2": nifti2, "no_form": no_form, "disagree": disagree}
    for name, image in images.items():
        image.to_filename(str(tmp_path / f"{name}.nii.gz"))
    return images


@pytest.mark.parametrize("name, warning", [("4d", None), ("nifti2", None), ("no_form", "neither qform nor sform"),
                                           ("disagree", "disagree by up to 30.0 mm")])
def test_the_mask_keeps_the_input_header_and_odd_geometry_is_flagged(tmp_path, tiny_model, name, warning):
    _headers(tmp_path)
    scan, out = tmp_path / f"{name}.nii.gz", tmp_path / name
    result = runner.invoke(app, ["run", str(scan), "-o", str(out), "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    source, mask = nib.load(str(scan)), nib.load(str(out / "mask.nii.gz"))
    assert type(mask) is type(source) and mask.shape == source.shape
    assert np.array_equal(mask.affine, source.affine)
    for field in ("qform_code", "sform_code"):
        assert mask.header[field] == source.header[field]
    warnings = json.loads((out / "report.json").read_text())["warnings"]
    assert warnings == [] if warning is None else warning in warnings[0]
    if warning:  # one line in a log, however long (rich folds at 80 columns when not on a terminal)
        assert any(line.startswith("warning:") and line.endswith(warnings[0]) for line in result.output.splitlines())
