"""bf16 where it pays, fp32 elsewhere: one rule for training and inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroseg.errors import InputError
from neuroseg.models.precision import autocast, native_bf16, uses_bf16

CPU = torch.device("cpu")


def test_the_three_precisions():
    assert uses_bf16(CPU, "bf16") and not uses_bf16(CPU, "fp32")
    assert uses_bf16(CPU, "auto") == native_bf16(CPU)
    assert uses_bf16(torch.device("cuda"), "auto")  # every GPU torch runs on computes bf16
    with pytest.raises(ValueError, match="precision"):
        uses_bf16(CPU, "fp16")


def test_autocast_is_enabled_only_for_bf16():
    with autocast(CPU, "bf16"):
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype == torch.bfloat16
    with autocast(CPU, "fp32"):
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype == torch.float32


def test_inference_precision_comes_from_the_argument_then_the_model_then_the_device(tiny_model):
    from neuroseg.inference import Segmenter
    from neuroseg.models.store import load_model

    assert not Segmenter(tiny_model, device="cpu").bf16  # a model that names none: fp32 on a CPU, as always
    assert Segmenter(tiny_model, device="cpu", precision="bf16").bf16
    model = load_model(tiny_model)
    model.metadata["inference"]["precision"] = "bf16"
    segmenter = Segmenter(model, device="cpu")
    assert segmenter.bf16
    from neuroseg.inference.engine import ModelInfo

    assert ModelInfo.of(segmenter).settings["precision"] == "bf16"  # the report says which was used
    assert not Segmenter(load_model(tiny_model), device="cpu", precision="fp32").bf16
    with pytest.raises(InputError, match="precision"):
        Segmenter(tiny_model, device="cpu", precision="half")


def test_bf16_inference_gives_nearly_the_fp32_probabilities(tiny_model):
    from tests.conftest import blob_volume

    from neuroseg.inference import Segmenter

    volume = blob_volume()
    fp32 = Segmenter(tiny_model, device="cpu", precision="fp32").predict(volume).probabilities
    bf16 = Segmenter(tiny_model, device="cpu", precision="bf16").predict(volume).probabilities
    assert bf16.dtype == torch.float32  # outputs stay float32 whatever the arithmetic
    assert not torch.equal(fp32, bf16)  # bf16 really ran
    assert float((fp32 - bf16).abs().max()) < 0.05
