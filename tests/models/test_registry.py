"""The model's metadata decides which networks are built, for both model generations."""

import json

import numpy as np
import pytest
import torch

from neuroseg.errors import ModelError
from neuroseg.models.registry import build
from neuroseg.models.store import load_model
from tests.conftest import blob_volume, make_tiny_model


def test_each_recorded_class_builds_its_network():
    from neuroseg.models.classifier import ClassifierEnsemble
    from neuroseg.models.resunet import ResUNet
    from neuroseg.models.strided import StridedResUNet

    assert isinstance(build({"class": "ResUNet", "in_channels": 3, "features": 4, "depth": 2}), ResUNet)
    assert isinstance(build({"class": "StridedResUNet", "in_channels": 3, "features": 4, "depth": 2}), StridedResUNet)
    ensemble = build({"class": "monai.networks.nets.ResNet", "in_channels": 3, "features": 4, "layers": [1, 1, 1, 1],
                      "members": 2})
    assert isinstance(ensemble, ClassifierEnsemble)


def test_an_unknown_class_is_a_model_error_naming_it(tmp_path):
    folder = make_tiny_model(tmp_path / "m")
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["architecture"]["segmenter"]["class"] = "SwinUNETR"
    (folder / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelError, match="SwinUNETR"):
        load_model(folder)


def test_a_v2_model_has_one_weights_file_and_no_separate_classifier(tmp_path):
    folder = make_tiny_model(tmp_path / "m")
    assert sorted(p.name for p in folder.glob("*.pt")) == ["segmenter.pt"]
    model = load_model(folder)
    assert model.metadata["architecture"]["shape"] == "joint" and model.classifier is None
    assert model.shape.name == "joint"


def test_a_folder_written_before_the_shape_was_named_loads_as_a_joint_net(tmp_path):
    """v2 folders recorded a placeholder classifier class instead of a shape."""
    folder = make_tiny_model(tmp_path / "m")
    metadata = json.loads((folder / "metadata.json").read_text())
    del metadata["architecture"]["shape"]
    metadata["architecture"]["classifier"] = {"class": "StridedResUNet.slice_head"}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    model = load_model(folder)
    assert model.shape.name == "joint" and model.classifier is None


def test_an_unknown_shape_is_a_model_error_naming_it(tmp_path):
    folder = make_tiny_model(tmp_path / "m")
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["architecture"]["shape"] = "cascade"
    (folder / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelError, match="cascade"):
        load_model(folder)


@pytest.mark.parametrize("network", ["strided", "resunet"])
def test_flip_tta_decodes_only_the_gated_slices_and_averages_the_mirror(tmp_path, network):
    """Under flip TTA each shape's mask is the mean of the plain and the mirrored pass on the
    slices the flip-averaged gate opens, and nothing elsewhere."""
    from neuroseg.inference import Segmenter
    from neuroseg.transforms.orientation import mirror_left_right

    model = load_model(make_tiny_model(tmp_path / network, network=network, gate=True))
    segmenter = Segmenter(model, device="cpu", flip_tta=True)
    volume = blob_volume()
    prediction = segmenter.predict(volume)
    _, _, slices = segmenter._prepare(volume)
    batch = model.preprocessing.stack(slices, np.arange(len(slices)))
    with torch.inference_mode():
        plain, mirrored = segmenter.shape.outputs(batch), segmenter.shape.outputs(mirror_left_right(batch))
    slice_probability = torch.sigmoid((plain[1][:, 0] + mirrored[1][:, 0]) / 2).numpy()
    np.testing.assert_allclose(prediction.classifier, slice_probability, atol=1e-4)
    masks = torch.sigmoid((plain[0][:, 0] + mirror_left_right(mirrored[0][:, 0])) / 2)
    gated = torch.from_numpy(prediction.gated)
    np.testing.assert_allclose(prediction.probabilities[gated].numpy(), masks[gated].numpy(), atol=1e-4)
    assert not prediction.probabilities[~gated].any()


@pytest.mark.parametrize("network", ["strided", "resunet"])
def test_both_model_generations_load_and_segment(tmp_path, network):
    from neuroseg.inference import Segmenter

    model = load_model(make_tiny_model(tmp_path / network, network=network, gate=True))
    result = Segmenter(model, device="cpu").segment(blob_volume())
    assert result.mask.shape == result.image.shape
    assert model.metadata["architecture"]["segmenter"]["class"] == {"strided": "StridedResUNet",
                                                                   "resunet": "ResUNet"}[network]
    assert 0 <= result.slice_probabilities.min() and result.slice_probabilities.max() <= 1


def test_the_joint_model_gates_with_its_own_slice_head(tmp_path):
    """Slices its head calls tumour-free get no mask; the probabilities reported are the head's."""
    from neuroseg.inference import Segmenter

    model = load_model(make_tiny_model(tmp_path / "m", gate=True))
    segmenter = Segmenter(model, device="cpu")
    volume = blob_volume()
    prediction = segmenter.predict(volume)
    _, _, slices = segmenter._prepare(volume)
    expected = torch.sigmoid(model.segmenter(model.preprocessing.stack(slices, np.arange(len(slices))))[1][:, 0])
    np.testing.assert_allclose(prediction.classifier, expected.detach().numpy(), atol=1e-4)
    assert not prediction.probabilities[~prediction.gated].any()
    np.testing.assert_array_equal(prediction.gated, prediction.classifier >= segmenter.gate_threshold)


def test_inference_folds_the_v2_batch_norms_without_changing_its_outputs():
    import copy

    from neuroseg.models.graph import prepare_for_inference
    from neuroseg.models.strided import StridedResUNet

    torch.manual_seed(0)
    net = StridedResUNet(3, 8, 3).eval()
    for module in net.modules():  # trained-looking statistics, not the identity of a fresh norm
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    fused = prepare_for_inference(copy.deepcopy(net))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(net(x), fused(x.contiguous(memory_format=torch.channels_last))):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_gated_decoding_gives_the_same_masks_on_the_slices_it_keeps(tmp_path):
    from neuroseg.inference import Segmenter

    ungated = Segmenter(load_model(make_tiny_model(tmp_path / "m")), device="cpu", gate=False)
    volume = blob_volume()
    full = ungated.predict(volume)
    gated = Segmenter(load_model(tmp_path / "m"), device="cpu", gate=True)
    gated.gate_threshold = float(np.median(full.classifier))
    part = gated.predict(volume)
    kept = torch.from_numpy(full.classifier >= gated.gate_threshold)
    assert 0 < kept.sum() < len(kept)
    np.testing.assert_allclose(part.classifier, full.classifier)
    torch.testing.assert_close(part.probabilities[kept], full.probabilities[kept])
    assert not part.probabilities[~kept].any()
