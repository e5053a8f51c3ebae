import json

import pytest
import torch

from neuroseg.errors import ModelError
from neuroseg.models.store import load_model, sha256
from tests.conftest import make_tiny_model


def test_saved_model_loads_with_its_recorded_hashes(tmp_path):
    folder = make_tiny_model(tmp_path / "m")
    metadata = json.loads((folder / "metadata.json").read_text())
    for entry in metadata["weights"].values():
        assert sha256(folder / entry["file"]) == entry["sha256"]
    model = load_model(folder)
    assert not model.segmenter.training and model.input_size == 32


def test_tampered_weights_are_refused(tmp_path):
    folder = make_tiny_model(tmp_path / "m")
    state = torch.load(folder / "segmenter.pt", weights_only=True)
    first = next(iter(state))
    state[first] = state[first] + 1
    torch.save(state, folder / "segmenter.pt")
    with pytest.raises(ModelError, match="sha256"):
        load_model(folder)


def test_missing_model_folder_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="metadata.json"):
        load_model(tmp_path / "nothing")


def test_shipped_model_is_complete_and_small():
    from neuroseg.models.store import default_model_dir

    folder = default_model_dir()
    metadata = json.loads((folder / "metadata.json").read_text())
    assert sum((folder / w["file"]).stat().st_size for w in metadata["weights"].values()) <= 30 * 2**20
    training = metadata["training"]
    assert training["train_cases"] and not set(training["validation_cases"]) & set(training["train_cases"])
    if not training["validation_cases"]:  # an all-data model: its validation is its recipe's cross-validation
        cross_validation = metadata["metrics"]["cross_validation"]
        assert cross_validation["folds"] >= 5 and cross_validation["patients"] == len(training["train_cases"])
        assert metadata["inference"]["chosen_by"].startswith(cross_validation["rule"])
    load_model(folder)


@pytest.mark.parametrize("pool, stem", [("avgmax", False), ("avg", True)])
def test_classifier_options_are_stored_and_rebuilt(tmp_path, pool, stem):
    from neuroseg.models.store import build_networks, save_model
    from neuroseg.training.train import TrainConfig

    config = TrainConfig(size=32, network="resunet", seg_features=4, cls_features=4, seg_depth=2, cls_pool=pool,
                         cls_stem_max_pool=stem)
    segmenter, classifier = build_networks(config.architecture())
    metadata = {"architecture": config.architecture(), "input": {"size": 32, "context_slices": 1}}
    model = load_model(save_model(tmp_path / "m", segmenter, classifier, metadata))  # strict state-dict load
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(model.classifier(x), classifier.eval()(x), atol=1e-2, rtol=1e-2)  # float16 weights


def test_model_folders_from_before_the_classifier_options_load_as_average_pooling(tmp_path):
    folder = make_tiny_model(tmp_path / "m", network="resunet")
    metadata = json.loads((folder / "metadata.json").read_text())
    for key in ("pool", "stem_max_pool"):
        del metadata["architecture"]["classifier"][key]
    (folder / "metadata.json").write_text(json.dumps(metadata))
    assert type(load_model(folder).classifier.avgpool).__name__ == "AdaptiveAvgPool2d"
