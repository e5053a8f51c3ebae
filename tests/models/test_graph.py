"""The traced network in the cache: written on the first load, used on the next, the same numbers, and
never trusted blindly (a foreign file is traced anew, changed weights are refused)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from neuroseg.errors import ModelError
from neuroseg.inference import Segmenter
from neuroseg.models.store import default_model_dir
from tests.conftest import blob_volume, make_tiny_model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("NEUROSEG_CACHE_DIR", str(folder))
    return folder


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_second_load_runs_the_traced_graph_with_the_same_numbers(tmp_path, cache, precision):
    model = make_tiny_model(tmp_path / "model", gate=True)
    volume = blob_volume()
    eager = Segmenter(model, device="cpu", precision=precision)
    assert not eager.model.traced and len(list(cache.glob("network-*.pt"))) == 1
    traced = Segmenter(model, device="cpu", precision=precision)
    assert traced.model.traced
    for flip in (False, True):
        eager.flip_tta = traced.flip_tta = flip
        a, b = eager.segment(volume), traced.segment(volume)
        assert np.array_equal(a.slice_probabilities, b.slice_probabilities)
        assert np.array_equal(a.mask.array, b.mask.array)
    other = Segmenter(model, device="cpu", precision="fp32" if precision == "bf16" else "bf16")
    assert not other.model.traced  # another precision is another graph
    assert len(list(cache.glob("network-*.pt"))) == 2


def test_a_foreign_file_in_the_cache_is_traced_anew(tmp_path, cache):
    model = make_tiny_model(tmp_path / "model")
    Segmenter(model, device="cpu")
    (graph,) = cache.glob("network-*.pt")
    graph.write_bytes(b"not a TorchScript archive")
    again = Segmenter(model, device="cpu")
    assert not again.model.traced
    assert Segmenter(model, device="cpu").model.traced  # traced anew by the run before


def test_weights_that_differ_from_their_record_are_refused_with_a_graph_cached(tmp_path, cache):
    model = make_tiny_model(tmp_path / "model")
    Segmenter(model, device="cpu")
    weights = model / json.loads((model / "metadata.json").read_text())["weights"]["segmenter"]["file"]
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="does not match the sha256"):
        Segmenter(model, device="cpu")


def test_no_cache_when_it_is_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROSEG_CACHE_DIR", "none")
    model = make_tiny_model(tmp_path / "model")
    assert not Segmenter(model, device="cpu").model.traced
    assert not Segmenter(model, device="cpu").model.traced


def test_a_model_with_a_separate_classifier_is_not_traced(tmp_path, cache):
    model = make_tiny_model(tmp_path / "model", network="resunet")
    Segmenter(model, device="cpu")
    assert not Segmenter(model, device="cpu").model.traced and not list(cache.glob("*"))


@pytest.mark.skipif(not (default_model_dir() / "metadata.json").is_file(), reason="needs the shipped weights")
def test_the_shipped_model_from_the_cache_needs_no_monai(cache):
    """The point of the cache: a process that segments imports torch, not MONAI (about 2.5 s)."""
    Segmenter(device="cpu")  # traces into the cache
    code = ("import sys; from neuroseg.inference import Segmenter; s = Segmenter(device='cpu'); "
            "print(s.model.traced, 'monai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, NEUROSEG_CACHE_DIR=str(cache))).stdout.split()
    assert out == ["True", "False"]
