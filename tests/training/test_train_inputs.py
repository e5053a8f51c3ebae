"""``neuroseg train`` with bad options and bad data: one error line naming what is wrong, before any
slice is prepared where that is cheap; and what a training run writes (cache, metadata, weights)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import pytest
from typer.testing import CliRunner

from neuroseg.cli.main import app
from neuroseg.errors import InputError
from tests.conftest import blob_volume, shared_path

runner = CliRunner()
TINY = ["--epochs", "1", "--size", "32", "--features", "4", "--folds", "2", "--batch-size", "4", "--device", "cpu"]


def make_decathlon(folder: Path, cases: int = 2, empty_label: tuple = ()) -> Path:
    """A Decathlon folder of small blob volumes (the blob is the label), written as NIfTI."""
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(exist_ok=True)
    entries = []
    for k in range(cases):
        volume = blob_volume(shape=(24, 28, 6), centre=(10, 14, 3), radius=3.0 + k)
        label = (volume.array > 200).astype(np.uint8) * (k not in empty_label)
        nib.save(nib.Nifti1Image(volume.array, volume.affine), folder / "imagesTr" / f"case{k}.nii.gz")
        nib.save(nib.Nifti1Image(label, volume.affine), folder / "labelsTr" / f"case{k}.nii.gz")
        entries.append({"image": f"./imagesTr/case{k}.nii.gz", "label": f"./labelsTr/case{k}.nii.gz"})
    (folder / "dataset.json").write_text(json.dumps({"training": entries}))
    return folder


def train(*args):
    return runner.invoke(app, ["train", *map(str, args)])


def assert_one_line_error(result, code: int, *fragments):
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neuroseg: error: "), result.stderr
    assert "Traceback" not in result.output and "internal error" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def no_slices_prepared(monkeypatch):
    """Fail the test if training data are preprocessed: the error must come before."""
    import neuroseg.training.run as run

    def refuse(*args, **kwargs):
        raise AssertionError("slices were prepared before the error")

    monkeypatch.setattr(run, "build_cache", refuse)


# --------------------------------------------------------------------------- options

@pytest.mark.parametrize("options, fragment", [
    (["--epochs", "0"], "--epochs must be at least 1, not 0"),
    (["--epochs", "-3"], "--epochs must be at least 1, not -3"),
    (["--batch-size", "0"], "--batch-size must be at least 2"),
    (["--size", "100"], "--size must be a multiple of 32 and at least 32, not 100 (try --size 96)"),
    (["--size", "16"], "--size must be a multiple of 32 and at least 32, not 16"),
    (["--size", "40", "--network", "resunet"], "--size must be a multiple of 16 and at least 32, not 40"),
    (["--folds", "0"], "--folds must be at least 1"),
    (["--network", "unet"], "--network must be one of strided, resunet, not 'unet'"),
    (["--loss", "focal"], "--loss must be one of dice-ce, dice-ce-image, not 'focal'"),
    (["--ema", "1"], "--ema must be in [0, 1), not 1"),
    (["--classifier-members", "2"], "--classifier-members needs --network resunet"),
    (["--fold", "2"], "--fold must be in 0..1 with --folds 2, not 2"),
    (["--seed", "-1"], "--seed must be in 0..4294967295, not -1"),
    (["--train-seed", "-2"], "--train-seed must be in"),
    (["--max-minutes", "0"], "--max-minutes must be more than 0, not 0"),
    (["--max-minutes", "-1"], "--max-minutes must be more than 0, not -1"),
    (["--learning-rate", "0"], "--learning-rate must be more than 0"),
    (["--features", "0"], "--features must be at least 1, not 0"),
    (["--classifier-features", "0"], "--classifier-features must be at least 1, not 0"),
    (["--classifier-pool", "max"], "--classifier-pool must be one of avg, avgmax, not 'max'"),
])
def test_bad_option_values_are_refused_naming_the_option(tmp_path, no_slices_prepared, options, fragment):
    data = make_decathlon(tmp_path / "data")
    assert_one_line_error(train(data, "-o", tmp_path / "model", *TINY, *options), 2, fragment)
    assert not (tmp_path / "model").exists()


def test_more_folds_than_patients_suggests_a_number_that_works(tmp_path, no_slices_prepared):
    data = make_decathlon(tmp_path / "data", cases=3)
    result = train(data, "-o", tmp_path / "model", *TINY, "--folds", "5")
    assert_one_line_error(result, 2, "--folds 5 is more than the 3 patients", "use --folds 3")


# --------------------------------------------------------------------------- output

@pytest.mark.parametrize("output", ["afile", "afile/sub"])
def test_an_output_that_cannot_be_a_folder_is_refused_before_training(tmp_path, no_slices_prepared, output):
    data = make_decathlon(tmp_path / "data")
    (tmp_path / "afile").write_text("not a folder")
    result = train(data, "-o", tmp_path / output, *TINY)
    assert_one_line_error(result, 3, "afile")
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_ctrl_c_during_training_says_no_model_was_written(tmp_path, monkeypatch):
    import neuroseg.training.run as run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "run_training", interrupted)
    result = train(make_decathlon(tmp_path / "data"), "-o", tmp_path / "model", *TINY)
    assert_one_line_error(result, 130, "interrupted: no model was written")


# --------------------------------------------------------------------------- dataset.json

def _rewrite_training(data: Path, change) -> None:
    description = json.loads((data / "dataset.json").read_text())
    description["training"] = change(description["training"])
    (data / "dataset.json").write_text(json.dumps(description))


def test_a_listed_label_that_is_missing_is_an_input_error_naming_it(tmp_path, no_slices_prepared):
    data = make_decathlon(tmp_path / "data")
    (data / "labelsTr" / "case1.nii.gz").unlink()
    result = train(data, "-o", tmp_path / "model", *TINY)
    assert_one_line_error(result, 2, "dataset.json lists ./labelsTr/case1.nii.gz, which is not a file")


def test_malformed_dataset_json_is_named(tmp_path, no_slices_prepared):
    data = make_decathlon(tmp_path / "data")
    (data / "dataset.json").write_text('{"training": }')
    assert_one_line_error(train(data, "-o", tmp_path / "model", *TINY), 2, "dataset.json: not valid JSON")


def test_an_empty_training_list_is_named(tmp_path, no_slices_prepared):
    data = make_decathlon(tmp_path / "data")
    _rewrite_training(data, lambda entries: [])
    assert_one_line_error(train(data, "-o", tmp_path / "model", *TINY), 2, "the 'training' list is empty")


def test_a_case_listed_twice_is_refused(tmp_path, no_slices_prepared):
    data = make_decathlon(tmp_path / "data")
    _rewrite_training(data, lambda entries: entries + entries[:1])
    assert_one_line_error(train(data, "-o", tmp_path / "model", *TINY), 2, "case case0 is listed twice")


@pytest.mark.parametrize("entry", [{"image": "./imagesTr/case0.nii.gz"}, "case0"])
def test_an_entry_without_image_and_label_is_refused(tmp_path, entry):
    from neuroseg.io.datasets import find_labelled_cases

    data = make_decathlon(tmp_path / "data")
    _rewrite_training(data, lambda entries: [entry])
    with pytest.raises(InputError, match="training entry 1 needs an 'image' and a 'label'"):
        find_labelled_cases(data)


# --------------------------------------------------------------------------- labels

@pytest.mark.parametrize("values, shown", [
    ([0, 1, 2], "[0, 1, 2]"), ([0.0, 0.4], "[0, 0.4]"), ([0.0, 1.0, np.nan], "[0, 1, nan]"), ([0, 255], "[0, 255]"),
])
def test_a_decathlon_label_must_hold_0_and_1(tmp_path, values, shown):
    from neuroseg.io.datasets import find_labelled_cases

    data = make_decathlon(tmp_path / "data")
    label = nib.load(data / "labelsTr" / "case1.nii.gz")
    array = np.zeros(label.shape, np.float32)
    array.flat[:len(values)] = values
    nib.save(nib.Nifti1Image(array, label.affine), data / "labelsTr" / "case1.nii.gz")
    with pytest.raises(InputError) as error:
        dict(find_labelled_cases(data))["case1"]()
    assert str(error.value) == f"labelsTr/case1.nii.gz: label holds values {shown}; expected 0 and 1"


def test_an_empty_label_is_a_patient_without_tumour(tmp_path):
    from neuroseg.io.datasets import find_labelled_cases

    data = make_decathlon(tmp_path / "data", empty_label=(1,))
    assert dict(find_labelled_cases(data))["case1"]().label.array.max() == 0


def _kaggle_copy(tmp_path, mask_values) -> Path:
    """The kaggle-sample release with its 0/255 masks rewritten by ``mask_values(mask)``."""
    import shutil

    from PIL import Image

    folder = tmp_path / "kaggle_3m"
    shutil.copytree(shared_path("kaggle-sample", "kaggle_3m"), folder)
    for path in folder.glob("*/*_mask.tif"):
        Image.fromarray(mask_values(np.asarray(Image.open(path)))).save(path)
    return folder


def test_kaggle_masks_of_0_and_1_are_read_like_0_and_255(tmp_path):
    from neuroseg.io.datasets import find_labelled_cases

    original = dict(find_labelled_cases(shared_path("kaggle-sample", "kaggle_3m")))
    ones = dict(find_labelled_cases(_kaggle_copy(tmp_path, lambda mask: (mask > 0).astype(np.uint8))))
    for case_id, load in ones.items():
        label = load().label.array
        assert label.any()  # 0/1 masks were read as empty before
        np.testing.assert_array_equal(label, original[case_id]().label.array)


def test_kaggle_masks_of_other_values_are_refused_naming_the_file(tmp_path):
    from neuroseg.io.datasets import find_labelled_cases

    cases = find_labelled_cases(_kaggle_copy(tmp_path, lambda mask: (mask // 2).astype(np.uint8)))
    with pytest.raises(InputError, match=r"_mask\.tif: label holds values \[0, 127\]; expected 0 and 255, or 0 and 1"):
        cases[0][1]()


# --------------------------------------------------------------------------- cache

def _build(data, cache_path, size=32):
    from neuroseg.training.run import load_or_build_cache

    notes = []
    return load_or_build_cache(data, size, cache_path, log=notes.append), notes


def test_a_cache_is_reused_only_while_the_data_are_unchanged(tmp_path, monkeypatch):
    import neuroseg.training.run as run

    data, cache_path = make_decathlon(tmp_path / "data", cases=3), tmp_path / "slices.npz"
    _rewrite_training(data, lambda entries: entries[:2])
    first, notes = _build(data, cache_path)
    assert first.case_ids == ["case0", "case1"] and not notes
    with monkeypatch.context() as patch:  # unchanged data: read from the cache, nothing prepared
        patch.setattr(run, "build_cache", lambda *a, **k: pytest.fail("the cache was rebuilt"))
        again, notes = _build(data, cache_path)
    assert again.case_ids == first.case_ids and not notes
    np.testing.assert_array_equal(again.images, first.images)

    _rewrite_training(data, lambda entries: entries + [{"image": "./imagesTr/case2.nii.gz",
                                                        "label": "./labelsTr/case2.nii.gz"}])
    added, notes = _build(data, cache_path)
    assert added.case_ids == ["case0", "case1", "case2"]
    assert len(notes) == 1 and notes[0].startswith(f"rebuilding --cache {cache_path}: it was made from other data")

    label = data / "labelsTr" / "case1.nii.gz"  # a file rewritten in place
    nib.save(nib.Nifti1Image(np.zeros(nib.load(label).shape, np.uint8), nib.load(label).affine), label)
    rewritten, notes = _build(data, cache_path)
    assert len(notes) == 1 and rewritten.masks[rewritten.case_slices("case1")].max() == 0


def test_a_cache_of_another_size_is_refused_not_overwritten(tmp_path, no_slices_prepared):
    from neuroseg.training.cache import build_cache

    data, cache_path = make_decathlon(tmp_path / "data"), tmp_path / "slices.npz"
    build_cache(data, 64).save(cache_path)
    before = cache_path.read_bytes()
    result = train(data, "-o", tmp_path / "model", *TINY, "--cache", cache_path)
    assert_one_line_error(result, 2, f"--cache {cache_path} holds 64 px slices; this run needs 32 px: "
                                     "give another --cache path")
    assert cache_path.read_bytes() == before


@pytest.mark.parametrize("damage", [lambda b: b[:len(b) // 2], lambda b: b"not a cache\n", lambda b: b""])
def test_a_damaged_cache_as_data_is_an_input_error(tmp_path, damage):
    from neuroseg.training.cache import build_cache

    cache_path = tmp_path / "slices.npz"
    build_cache(make_decathlon(tmp_path / "data"), 32).save(cache_path)
    cache_path.write_bytes(damage(cache_path.read_bytes()))
    result = train(cache_path, "-o", tmp_path / "model", *TINY)
    assert_one_line_error(result, 2, str(cache_path))
    assert "allow_pickle" not in result.output


def test_a_damaged_cache_path_is_rebuilt_with_a_note(tmp_path):
    from neuroseg.training.cache import SliceCache

    data, cache_path = make_decathlon(tmp_path / "data"), tmp_path / "slices.npz"
    cache, _ = _build(data, cache_path)
    cache_path.write_bytes(cache_path.read_bytes()[:1000])
    rebuilt, notes = _build(data, cache_path)
    assert len(notes) == 1 and "truncated or damaged" in notes[0]
    assert SliceCache.load(cache_path).case_ids == rebuilt.case_ids == cache.case_ids


# --------------------------------------------------------------------------- what training writes

def test_saving_the_same_networks_twice_gives_the_same_bytes(tmp_path):
    import zipfile

    from neuroseg.models.store import build_networks, save_model
    from neuroseg.training.train import TrainConfig

    config = TrainConfig(size=32, network="resunet", seg_features=4, cls_features=4, seg_depth=2)
    segmenter, classifier = build_networks(config.architecture())
    metadata = {"architecture": config.architecture(), "input": {"size": 32, "context_slices": 1}}
    a = save_model(tmp_path / "a", segmenter, classifier, metadata)
    b = save_model(tmp_path / "b", segmenter, classifier, metadata)
    for name in ("segmenter.pt", "classifier.pt"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
        assert all(entry.startswith("archive/") for entry in zipfile.ZipFile(a / name).namelist())
    assert json.loads((a / "metadata.json").read_text())["weights"] == \
        json.loads((b / "metadata.json").read_text())["weights"]
    # the same values in another memory layout (as training can leave them) give the same file
    with torch.no_grad():
        for parameter in segmenter.parameters():
            if parameter.dim() == 4:
                parameter.set_(parameter.contiguous(memory_format=torch.channels_last))
    assert not all(p.is_contiguous() for p in segmenter.parameters())
    c = save_model(tmp_path / "c", segmenter, classifier, metadata)
    assert (c / "segmenter.pt").read_bytes() == (a / "segmenter.pt").read_bytes()


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_metadata_holds_null_where_a_value_is_not_a_number(tmp_path):
    from neuroseg.models.store import build_networks, load_model, save_model
    from neuroseg.training.train import TrainConfig

    config = TrainConfig(size=32, seg_features=4, cls_features=4, seg_depth=2)
    metadata = {"architecture": config.architecture(), "input": {"size": 32, "context_slices": 1},
                "metrics": {"val_slice_auc": float("nan"), "history": [{"loss": float("inf")}]}}
    folder = save_model(tmp_path / "m", *build_networks(config.architecture()), metadata)
    saved = _strict_json((folder / "metadata.json").read_text())
    assert saved["metrics"] == {"val_slice_auc": None, "history": [{"loss": None}]}
    load_model(folder)


def _tiny_config(**changes):
    from neuroseg.training.train import TrainConfig

    return TrainConfig(**{**dict(size=32, seg_features=4, cls_features=4, seg_depth=2, batch_size=4, epochs=1),
                          **changes})


def test_a_validation_set_of_one_class_gives_a_null_auc_and_no_warning(tmp_path):
    from neuroseg.training.run import run_training

    data = make_decathlon(tmp_path / "data", empty_label=(0, 1))  # no slice holds tumour
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # MONAI warns before returning NaN
        folder = run_training(data, tmp_path / "model", _tiny_config(), folds=2, log=lambda record: None)
    metadata = _strict_json((folder / "metadata.json").read_text())
    assert metadata["metrics"]["validation_model_grid"]["val_slice_auc"] is None


def test_classifier_members_share_max_minutes(tmp_path):
    from neuroseg.training.run import run_training

    data = make_decathlon(tmp_path / "data")
    budget = 0.01
    folder = run_training(data, tmp_path / "model", _tiny_config(epochs=500, cls_members=3, max_minutes=budget, network="resunet"),
                          folds=2, log=lambda record: None)
    training = json.loads((folder / "metadata.json").read_text())["training"]
    shares = training["max_minutes_per_classifier"]
    # each gets an equal part of the time left (what one leaves unused goes to those after it)
    assert len(shares) == 3 and shares[0] == pytest.approx(budget / 3, abs=1e-3)
    assert shares[1] <= budget / 2 + 1e-3 and shares[2] <= budget + 1e-3
    # each classifier stops at its part (one epoch here), not at the whole budget again
    assert all(len(h) < 500 for h in [training["history"], *training["member_histories"]])


def test_minutes_left_divides_the_time_left_among_the_trainings_left():
    import time

    from neuroseg.training.train import minutes_left

    assert minutes_left(None, 3) is None
    assert minutes_left(time.perf_counter() + 60, 2) == pytest.approx(0.5, abs=0.01)
    assert minutes_left(time.perf_counter() - 1, 2) == 0.0


# --------------------------------------------------------------------------- resume and all-data training

class _StopAfterFirstEpoch(Exception):
    pass


def _interrupt_after_epoch_one(record):
    if isinstance(record, dict) and record.get("epoch") == 1:
        raise _StopAfterFirstEpoch


def test_an_interrupted_training_resumes_from_its_checkpoint(tmp_path):
    from neuroseg.training.run import CHECKPOINT, run_training

    data = make_decathlon(tmp_path / "data", cases=3)
    output = tmp_path / "model"
    with pytest.raises(_StopAfterFirstEpoch):
        run_training(data, output, _tiny_config(epochs=3), folds=3, log=_interrupt_after_epoch_one)
    assert (output / CHECKPOINT).is_file() and not (output / "metadata.json").exists()
    notes = []
    run_training(data, output, _tiny_config(epochs=3), folds=3, log=notes.append, resume=True)
    history = json.loads((output / "metadata.json").read_text())["training"]["history"]
    assert [r["epoch"] for r in history] == [1, 2, 3]  # epoch 1 from the first run, not trained again
    assert any("resuming" in str(n) and "after epoch 1 of 3" in str(n) for n in notes)
    assert [r["epoch"] for r in notes if isinstance(r, dict)] == [2, 3]
    assert not (output / CHECKPOINT).exists()


def test_resume_without_a_checkpoint_is_one_line(tmp_path):
    data = make_decathlon(tmp_path / "data")
    assert_one_line_error(train(data, "-o", tmp_path / "model", *TINY, "--resume"), 2, "holds no checkpoint")


@pytest.mark.slow  # a training run, over 3 s
def test_folds_1_trains_on_every_patient_and_says_the_validation_is_elsewhere(tmp_path):
    from neuroseg.training.run import run_training

    data = make_decathlon(tmp_path / "data", cases=3)
    folder = run_training(data, tmp_path / "model", _tiny_config(), folds=1, log=lambda record: None)
    metadata = _strict_json((folder / "metadata.json").read_text())
    assert metadata["training"]["train_cases"] == ["case0", "case1", "case2"]
    assert metadata["training"]["validation_cases"] == []
    assert "cross-validation" in metadata["metrics"]["validation"]


def test_the_preprocessing_numbers_are_recorded_in_the_model(tmp_path):
    from neuroseg.training.run import run_training
    from neuroseg.transforms import Preprocessing

    data = make_decathlon(tmp_path / "data")
    folder = run_training(data, tmp_path / "model", _tiny_config(), folds=2, log=lambda record: None)
    recorded = json.loads((folder / "metadata.json").read_text())["input"]
    assert Preprocessing.from_metadata(recorded) == Preprocessing(size=32)
    assert {"head_margin", "percentiles", "context_slices", "size"} <= set(recorded)


def test_a_slow_first_epoch_does_not_cut_the_time_budgeted_schedule_short():
    from neuroseg.training.train import _epochs_within

    config = _tiny_config(epochs=200, max_minutes=14)
    after_one = _epochs_within(config, 1, 360.0, [])
    assert after_one == 2  # 360 s for the first epoch: only one more seems to fit
    history = [{"seconds": 360.0}]
    after_two = _epochs_within(config, 2, 450.0, history)  # the second took 90 s
    assert after_two == 2 + int((14 * 60 * 0.95 - 450) / 90)
    assert _epochs_within(_tiny_config(epochs=4, max_minutes=14), 2, 450.0, history) == 4  # --epochs still caps
