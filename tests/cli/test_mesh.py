"""`neuroseg mesh`, `run --mesh` and `batch --mesh` through typer's CliRunner."""

import json
import sys

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from neuroseg.cli.main import app
from tests.conftest import blob_volume
from tests.shapes import ellipsoid, grid_affine

pytest.importorskip("trimesh", reason="needs the mesh extra: pip install 'neuroseg[mesh]'")
pytest.importorskip("skimage", reason="needs the mesh extra: pip install 'neuroseg[mesh]'")
runner = CliRunner()
MESH_FILES = ["tumour.gii", "tumour.obj", "tumour.stl"]


@pytest.fixture
def mask_file(tmp_path):
    affine = grid_affine((0.9, 0.9, 5.0), 8, origin=(-60.0, -70.0, -30.0))
    mask = ellipsoid((90, 90, 14), affine, (-20.0, -30.0, 5.0), (15.0, 10.0, 12.0))
    path = tmp_path / "mask.nii.gz"
    nib.Nifti1Image(mask.array, affine).to_filename(str(path))
    return path


def test_mesh_command_writes_the_surfaces_and_the_measurements(mask_file, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["mesh", str(mask_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "lesions: 1 lesion" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["lesions.json", *MESH_FILES]
    report = json.loads((out / "lesions.json").read_text())
    assert report["lesions"]["foci"] == 1
    assert report["lesions"]["lesions"][0]["longest_diameter_mm"] == pytest.approx(30.0, abs=5.0)
    assert report["mesh"]["lesions"][0]["failures"] == []
    again = runner.invoke(app, ["mesh", str(mask_file), "-o", str(out)])
    assert again.exit_code == 3 and "--force" in again.output


def test_mesh_command_refuses_a_probability_map_in_one_line(tmp_path):
    path = tmp_path / "probabilities.nii.gz"
    nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8), np.float32), np.eye(4)).to_filename(str(path))
    result = runner.invoke(app, ["mesh", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("neuroseg: error:") and "not a mask" in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_missing_mesh_extra_is_one_line_naming_it(mask_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "trimesh", None)  # what an environment without the extra imports
    result = runner.invoke(app, ["mesh", str(mask_file), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "pip install 'neuroseg[mesh]'" in result.output and len(result.output.strip().splitlines()) == 1


def test_run_mesh_adds_the_surfaces_and_the_lesions_section(tmp_path, tiny_model):
    scan = tmp_path / "scan.nii.gz"
    volume = blob_volume()
    nib.Nifti1Image(volume.array.astype(np.int16), volume.affine).to_filename(str(scan))
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(scan), "-o", str(out), "--model", str(tiny_model), "--mesh",
                                 "--no-viewer"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert set(MESH_FILES) <= set(report["files"])
    assert sorted(p.name for p in out.iterdir()) == sorted(report["files"])
    assert report["lesions"]["foci"] == len(report["mesh"]["lesions"])
    assert report["lesions"]["total_volume_ml"] == pytest.approx(report["tumour_volume_ml"], abs=1e-3)


def test_batch_mesh_writes_each_cases_surfaces(tmp_path, tiny_model):
    cases = tmp_path / "cases"
    cases.mkdir()
    for name in ("a", "b"):
        volume = blob_volume()
        nib.Nifti1Image(volume.array.astype(np.int16), volume.affine).to_filename(str(cases / f"{name}.nii.gz"))
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(cases), "-o", str(out), "--model", str(tiny_model), "--mesh",
                                 "--no-viewer", "--workers", "0"])
    assert result.exit_code == 0, result.output
    for name in ("a", "b"):
        assert all((out / name / f).is_file() for f in MESH_FILES)
