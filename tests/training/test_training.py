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
    from neuroseg.io.datasets import find_labelled_cases

    kaggle = dict(find_labelled_cases(shared_path("kaggle-sample", "kaggle_3m")))
    decathlon = dict(find_labelled_cases(shared_path("lgg-flair")))
    for case_id, load in kaggle.items():
        a, b = load(), decathlon[case_id]()
        np.testing.assert_array_equal(a.image.array, b.image.array)
        np.testing.assert_array_equal(a.label.array, b.label.array)
        np.testing.assert_array_equal(a.image.affine, b.image.affine)


def test_the_folder_a_kaggle_download_unpacks_to_is_accepted(tmp_path):
    from neuroseg.errors import InputError
    from neuroseg.io.datasets import find_labelled_cases

    release = shared_path("kaggle-sample", "kaggle_3m")
    expected = [case_id for case_id, _ in find_labelled_cases(release)]
    assert [case_id for case_id, _ in find_labelled_cases(release.parent)] == expected
    (tmp_path / "archive" / "lgg-mri-segmentation").mkdir(parents=True)
    (tmp_path / "archive" / "kaggle_3m").symlink_to(release)
    assert [case_id for case_id, _ in find_labelled_cases(tmp_path / "archive")] == expected
    (tmp_path / "archive" / "lgg-mri-segmentation" / "kaggle_3m").symlink_to(release)
    with pytest.raises(InputError, match="2 kaggle_3m folders"):
        find_labelled_cases(tmp_path / "archive")


@pytest.mark.slow
def test_train_then_evaluate_from_the_kaggle_release(tmp_path):
    data = shared_path("kaggle-sample", "kaggle_3m")
    model = tmp_path / "model"
    result = runner.invoke(app, ["train", str(data), "-o", str(model), "--epochs", "1", "--size", "64",
                                 "--features", "4", "--folds", "2", "--batch-size", "8", "--device", "cpu",
                                 "--context-slices", "2"])
    assert result.exit_code == 0, result.output
    metadata = json.loads((model / "metadata.json").read_text())
    assert metadata["input"]["context_slices"] == 2 and metadata["architecture"]["segmenter"]["in_channels"] == 5
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
    assert "Dice mean" in result.output and "flip-averaged" in result.output
    assert set(evaluation["summary"]["classifier_flip"]) == set(evaluation["summary"]["classifier"])


def test_existing_model_folder_is_refused(tmp_path, tiny_model):
    result = runner.invoke(app, ["train", str(tmp_path), "-o", str(tiny_model)])
    assert result.exit_code == 3 and "exists" in result.output


KAGGLE_TINY = ["--epochs", "1", "--size", "64", "--features", "4", "--folds", "2", "--batch-size", "8",
               "--device", "cpu"]


def _train_on_kaggle_sample(output, *options):
    result = runner.invoke(app, ["train", str(shared_path("kaggle-sample", "kaggle_3m")), "-o", str(output),
                                 *KAGGLE_TINY, *options])
    assert result.exit_code == 0, result.output
    return output


@pytest.fixture(scope="module")
def kaggle_base(tmp_path_factory):
    """A tiny model trained on the two kaggle-sample patients, whose segmenter later runs keep."""
    return _train_on_kaggle_sample(tmp_path_factory.mktemp("kaggle") / "base", "--network", "resunet")


@pytest.mark.slow
def test_training_only_the_classifier_keeps_the_segmenter_and_records_where_it_came_from(tmp_path, kaggle_base):
    import torch

    from neuroseg.models.store import load_model

    base = kaggle_base
    derived = _train_on_kaggle_sample(tmp_path / "derived", "--segmenter-from", str(base), "--network", "resunet",
                                      "--classifier-pool", "avgmax", "--no-classifier-stem-max-pool", "--seed", "0")
    old, new = load_model(base), load_model(derived)
    for (name, a), b in zip(old.segmenter.state_dict().items(), new.segmenter.state_dict().values()):
        assert torch.equal(a, b), name
    assert new.metadata["architecture"]["classifier"]["pool"] == "avgmax"
    assert not new.metadata["architecture"]["classifier"]["stem_max_pool"]
    command = new.metadata["training"]["command"].split()
    assert "--no-classifier-stem-max-pool" in command and "--force" not in command
    kept = new.metadata["training"]["segmenter_from"]
    assert kept["sha256"] == old.metadata["weights"]["segmenter"]["sha256"]
    assert kept["training"]["train_cases"] == new.metadata["training"]["train_cases"]

    other_split = runner.invoke(app, ["train", str(shared_path("kaggle-sample", "kaggle_3m")), "-o",
                                      str(tmp_path / "x"), *KAGGLE_TINY, "--fold", "1", "--segmenter-from", str(base),
                                      "--network", "resunet"])
    assert other_split.exit_code == 4  # a model that does not fit the run
    assert "other patients" in other_split.output and "Traceback" not in other_split.output


@pytest.mark.slow
def test_a_classifier_ensemble_trains_saves_and_loads(tmp_path, kaggle_base):
    import torch

    from neuroseg.models.classifier import ClassifierEnsemble
    from neuroseg.models.store import load_model

    ensemble = _train_on_kaggle_sample(tmp_path / "ensemble", "--segmenter-from", str(kaggle_base),
                                       "--network", "resunet", "--classifier-members", "2", "--train-seed", "2")
    model = load_model(ensemble)
    assert isinstance(model.classifier, ClassifierEnsemble) and len(model.classifier.members) == 2
    first, second = (m.state_dict() for m in model.classifier.members)
    assert any(not torch.equal(first[k], second[k]) for k in first)  # two seeds, two classifiers
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        mean = (model.classifier.members[0](x) + model.classifier.members[1](x)) / 2
        torch.testing.assert_close(model.classifier(x), mean)
    metadata = model.metadata
    assert metadata["architecture"]["classifier"]["members"] == 2
    assert len(metadata["training"]["member_histories"]) == 1
    assert "--classifier-members 2" in metadata["training"]["command"]
    # training seeds 2 and 3 on the split of seed 0 (the split must match the kept segmenter's)
    assert metadata["training"]["classifier_seeds"] == [2, 3] and metadata["training"]["split_seed"] == 0
