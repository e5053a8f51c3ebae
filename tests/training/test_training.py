import json

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroseg.cli.main import app
from neuroseg.training.cache import patient_folds
from tests.conftest import shared_path

runner = CliRunner()


def test_patient_folds_partition_the_cases_with_a_fixed_seed():
    ids = [f"case{i:02d}" for i in range(23)]
    folds = patient_folds(ids, 5, seed=0)
    assert sorted(sum(folds, [])) == ids
    assert all(len(f) in (4, 5) for f in folds)
    assert folds == patient_folds(ids, 5, seed=0) and folds != patient_folds(ids, 5, seed=1)


def test_kaggle_layout_reads_the_same_volumes_as_the_decathlon_layout():
    from neuroseg.io.datasets import find_cases

    kaggle = dict(find_cases(shared_path("kaggle-sample", "kaggle_3m")))
    decathlon = dict(find_cases(shared_path("lgg-flair")))
    for case_id, load in kaggle.items():
        a, b = load(), decathlon[case_id]()
        np.testing.assert_array_equal(a.image.array, b.image.array)
        np.testing.assert_array_equal(a.label.array, b.label.array)
        np.testing.assert_array_equal(a.image.affine, b.image.affine)


@pytest.mark.slow
def test_train_then_evaluate_from_the_kaggle_release(tmp_path):
    data = shared_path("kaggle-sample", "kaggle_3m")
    model = tmp_path / "model"
    result = runner.invoke(app, ["train", str(data), "-o", str(model), "--epochs", "1", "--size", "64",
                                 "--features", "4", "--folds", "2", "--batch-size", "8", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    metadata = json.loads((model / "metadata.json").read_text())
    training = metadata["training"]
    assert len(training["train_cases"]) == 1 and len(training["validation_cases"]) == 1
    assert not set(training["train_cases"]) & set(training["validation_cases"])
    assert metadata["input"]["size"] == 64 and training["command"].startswith("neuroseg train")
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", str(data), "--model", str(model), "--no-tta", "-o", str(out),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    evaluation = json.loads(out.read_text())
    assert list(evaluation["cases"]) == training["validation_cases"]
    assert 0.0 <= evaluation["summary"]["variants"]["gated0.5_min0ml"]["dice_mean"] <= 1.0
    assert "Dice mean" in result.output


def test_existing_model_folder_is_refused(tmp_path, tiny_model):
    result = runner.invoke(app, ["train", str(tmp_path), "-o", str(tiny_model)])
    assert result.exit_code == 3 and "exists" in result.output
