"""Shared fixtures: tiny random-weight models, synthetic volumes, the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def graph_cache(tmp_path_factory):
    """Traced networks (neuroseg.models.graph) go to a folder of this test session, not the user's cache;
    a second Segmenter of a model in the session runs its traced graph."""
    folder = tmp_path_factory.mktemp("graph-cache")
    previous = os.environ.get("NEUROSEG_CACHE_DIR")
    os.environ["NEUROSEG_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("NEUROSEG_CACHE_DIR", None)
    else:
        os.environ["NEUROSEG_CACHE_DIR"] = previous


def shared_path(*parts) -> Path:
    """A path under ../shared/data; the test is skipped when it is absent (a user's clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's shared data, present in CI)")
    return path


def make_tiny_model(folder: Path, size: int = 32, seed: int = 0, gate: bool = False,
                    network: str = "strided") -> Path:
    """A random-weight model folder small enough to run in milliseconds (``network``: strided is
    v2, one network with a slice head; resunet is v1, a ResUNet beside a ResNet classifier)."""
    from neuroseg.models.store import build_networks, save_model
    from neuroseg.training.train import TrainConfig

    torch.manual_seed(seed)
    config = TrainConfig(size=size, network=network, seg_features=4, cls_features=4, seg_depth=2)
    segmenter, classifier = build_networks(config.architecture())
    metadata = {
        "name": "tiny-test-model", "neuroseg_version": "test", "created": "test",
        "architecture": config.architecture(),
        "input": {"size": size, "context_slices": config.context, "channels": 2 * config.context + 1},
        "inference": {"gate": gate, "gate_threshold": 0.5, "threshold": 0.5, "min_component_ml": 0.0,
                      "flip_tta": False},
    }
    return save_model(folder, segmenter.eval(), classifier.eval() if classifier is not None else None, metadata)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny_model"))


class BrightNet(torch.nn.Module):
    """Logits that mark bright voxels of the centre channel: a known, deterministic 'segmenter'."""

    def forward(self, x):
        return (x[:, x.shape[1] // 2 : x.shape[1] // 2 + 1] - 0.5) * 20


class AlwaysTumour(torch.nn.Module):
    def forward(self, x):
        return torch.full((x.shape[0], 1), 5.0)


def bright_model():
    """A Model whose mask is the bright blob of :func:`blob_volume`, through the whole pipeline."""
    from neuroseg.models.store import Model

    metadata = {"architecture": {"shape": "segmenter+classifier"}, "input": {"size": 64, "context_slices": 1}, "weights": {},
                "inference": {"gate": True, "min_component_ml": 0.0}}
    return Model(BrightNet(), AlwaysTumour(), metadata, path="bright")


def blob_volume(shape=(40, 48, 12), centre=(12, 30, 7), radius=5.0, affine=None) -> "Volume":
    """A head-like ellipsoid with one bright blob; returns a Volume (float32)."""
    from neuroseg.volume import Volume

    grid = np.indices(shape).astype(np.float32)
    middle = (np.array(shape) - 1) / 2
    head = (((grid - middle[:, None, None, None]) / (np.array(shape)[:, None, None, None] * 0.42)) ** 2).sum(0) < 1
    blob = (((grid - np.array(centre)[:, None, None, None]) ** 2).sum(0)) < radius**2
    array = np.where(head, 100.0, 0.0) + np.where(blob, 150.0, 0.0)
    return Volume(array.astype(np.float32), np.diag([-0.9, -0.9, 5.0, 1.0]) if affine is None else affine)


# Fixtures that start a real server: a test using one (directly or through another fixture) is slow, wherever
# it lives, so `pytest -m "not slow"` never waits for a server.
SLOW_FIXTURES = {"orthanc"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
