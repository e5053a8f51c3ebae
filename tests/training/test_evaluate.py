"""`neuroseg evaluate`: where it writes, what it warns about, which fold models it accepts."""

import json
import shutil

import nibabel as nib
import numpy as np
from typer.testing import CliRunner

from neuroseg.cli.main import app
from tests.conftest import blob_volume

runner = CliRunner()


def decathlon(folder, cases=("case_a", "case_b")):
    """A tiny labelled Decathlon folder: blob heads whose label is the blob."""
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    entries = []
    for index, case in enumerate(cases):
        volume = blob_volume(centre=(12 + 4 * index, 30, 7))
        image, label = f"imagesTr/{case}.nii.gz", f"labelsTr/{case}.nii.gz"
        nib.Nifti1Image(volume.array.astype(np.int16), volume.affine).to_filename(folder / image)
        blob = (volume.array > 200).astype(np.uint8)
        nib.Nifti1Image(blob, volume.affine).to_filename(folder / label)
        entries.append({"image": f"./{image}", "label": f"./{label}"})
    (folder / "dataset.json").write_text(json.dumps({"training": entries}))
    return folder


def model_with(tmp_path, tiny_model, name, **training):
    """A copy of the tiny model whose metadata records ``training`` (weights unchanged)."""
    folder = tmp_path / name
    shutil.copytree(tiny_model, folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["training"] = training
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def test_evaluate_writes_its_json_by_default_and_warns_about_training_patients(tmp_path, tiny_model, monkeypatch):
    data = decathlon(tmp_path / "data")
    model = model_with(tmp_path, tiny_model, "model", train_cases=["case_a"], validation_cases=["case_b"])
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["evaluate", str(data), "--model", str(model), "--cases", "all", "--no-tta",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    (written,) = tmp_path.glob("evaluation-*.json")
    evaluation = json.loads(written.read_text())
    assert sorted(evaluation["cases"]) == ["case_a", "case_b"]
    assert "1 of the 2 cases were among the model's training patients (case_a)" in evaluation["warnings"][0]
    assert "warning:" in result.output and f"wrote {written.name}" in result.output
    # only the model's own post-processing is printed unless asked
    assert result.output.count(" Dice mean ") == 1 and "--variants" in result.output
    listed = runner.invoke(app, ["evaluate", str(data), "--model", str(model), "--no-tta", "--device", "cpu",
                                 "--variants", "-o", str(tmp_path / "all.json")])
    assert listed.exit_code == 0 and listed.output.count(" Dice mean ") == len(evaluation["summary"]["variants"])
    assert "warning:" not in listed.output  # the validation case only


def test_an_existing_output_is_refused_before_any_work(tmp_path):
    out = tmp_path / "eval.json"
    out.write_text("{}")
    # a missing model would be exit code 4: code 3 shows the output was checked first
    result = runner.invoke(app, ["evaluate", str(tmp_path), "--model", str(tmp_path / "none"), "-o", str(out)])
    assert result.exit_code == 3 and "--force" in result.output
    assert out.read_text() == "{}"


def test_cross_validation_refuses_fold_models_of_another_split(tmp_path, tiny_model):
    data = decathlon(tmp_path / "data", cases=("a", "b", "c"))
    model_with(tmp_path / "cv", tiny_model, "fold0", fold=0, folds=2, split_seed=0, validation_cases=["a"])
    result = runner.invoke(app, ["evaluate", str(data), "--folds", "3", "--models-dir", str(tmp_path / "cv"),
                                 "-o", str(tmp_path / "cv.json")])
    assert result.exit_code == 2
    assert "was trained as fold 0 of 2, not fold 0 of 3" in result.output
    assert not (tmp_path / "cv.json").exists()
