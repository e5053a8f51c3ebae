"""Networks made ready for inference, and kept ready: folded, channels-last, traced once into a cache.

Importing MONAI loads every one of its submodules, which takes longer (about 2.5 s on a 2-core machine)
than segmenting a scan. A joint model's network is therefore traced once (TorchScript, under the
precision it runs in, so its casts are part of the graph) into a cache folder; later runs load the traced
graph with torch alone. The graph gives the same numbers as the network it was traced from. Its file is
named by everything that decides those numbers (the weights' sha256, the precision, the device type,
the versions of torch and MONAI, and the source of the network's module), so a change to any of them
traces anew, and a graph that cannot be read is traced anew too.

The cache: ``$NEUROSEG_CACHE_DIR``, else ``$XDG_CACHE_HOME/neuroseg``, else ``~/.cache/neuroseg``;
``NEUROSEG_CACHE_DIR=none`` turns it off (every run then imports MONAI and runs the network eagerly).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

GRAPH_VERSION = 1  # of the cache's layout
# the joint network's module and this one (the folding and the tracing): their code decides the graph too
_NETWORK_SOURCES = ("strided.py", "graph.py")


def cache_dir() -> Path | None:
    """Where traced graphs are kept, or None when the cache is off."""
    configured = os.environ.get("NEUROSEG_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "none", "off") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "neuroseg"


def prepare_for_inference(network: nn.Module) -> nn.Module:
    """Fold batch norms into convolutions and use channels-last memory: ~1.5-2x faster on CPU.

    A network whose parts inference calls one by one (the v2 encoder and decoder) is fused in
    place, block by block, so its methods survive; others are traced and fused whole.
    """
    from torch.fx.experimental.optimization import fuse

    network = network.eval()
    if hasattr(network, "encode"):
        _fuse_conv_norm(network)
        return network.to(memory_format=torch.channels_last)
    return fuse(network).to(memory_format=torch.channels_last)


def _fuse_conv_norm(network: nn.Module) -> None:
    """Each MONAI ``Convolution`` whose batch norm directly follows its conv gets the norm folded in."""
    from monai.networks.blocks import Convolution
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for block in network.modules():
        adn = getattr(block, "adn", None)
        if not isinstance(block, Convolution) or adn is None or not isinstance(getattr(adn, "N", None),
                                                                                 nn.BatchNorm2d):
            continue
        order = list(adn._modules)
        if order.index("N") != 0:  # a norm after the activation cannot be folded into the conv
            continue
        block.conv = fuse_conv_bn_eval(block.conv, adn.N)
        adn.N = nn.Identity()


def graph_file(metadata: dict, device: torch.device, precision: str) -> Path | None:
    """The cache file of this model's traced network on ``device`` in ``precision`` (None: no cache)."""
    folder = cache_dir()
    if folder is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        monai = version("monai")
    except PackageNotFoundError:
        monai = "none"
    here = Path(__file__).resolve().parent
    key = {"graph": GRAPH_VERSION, "weights": {k: v["sha256"] for k, v in sorted(metadata["weights"].items())},
           "architecture": metadata["architecture"], "input": metadata["input"], "device": device.type,
           "precision": precision, "torch": torch.__version__, "monai": monai,
           "source": [hashlib.sha256((here / name).read_bytes()).hexdigest() for name in _NETWORK_SOURCES]}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return folder / f"network-{digest}.pt"


def load_graph(path: Path | None, device: torch.device):
    """The traced network in ``path``, or None when there is none or it cannot be read."""
    if path is None or not path.is_file():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is in maintenance (see save_graph)
            return torch.jit.load(str(path), map_location=device).eval()
    except Exception:  # noqa: BLE001 - torch raises many kinds for a partial or foreign file: trace anew
        return None


def save_graph(network: nn.Module, path: Path | None, channels: int, size: int, device: torch.device,
               precision: str) -> None:
    """Trace ``network``'s ``encode`` and ``decode`` under ``precision`` and keep them in ``path``.

    Best effort: a cache that cannot be written leaves inference as it is (the eager network).
    """
    if path is None:
        return
    from neuroseg.io.atomic import atomic_path
    from neuroseg.models.precision import autocast

    example = torch.zeros(2, channels, size, size, device=device).contiguous(memory_format=torch.channels_last)
    try:
        with warnings.catch_warnings():
            # TorchScript is in maintenance, and tracing says so (torch.export would be its successor, but
            # loading an exported program imports sympy and dynamo: 1.8 s, no start-up saved); it also
            # warns of the encoder's list output, whose length is the network's depth, fixed
            warnings.simplefilter("ignore")
            with torch.inference_mode(), autocast(device, precision):
                features, _ = network.encode(example)
                traced = torch.jit.trace_module(network, {"encode": (example,), "decode": (example, features)},
                                                check_trace=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp))
    except Exception as error:  # noqa: BLE001 - a cache is never worth a failed run
        warnings.warn(f"the network could not be cached for faster start-up ({error})", RuntimeWarning,
                      stacklevel=2)


def load_inference_model(path: Path, metadata: dict, device: torch.device, precision: str):
    """A model folder's networks (``path`` and its metadata, as ``store.read_metadata`` gives them) ready for
    inference on ``device`` in ``precision``: a joint model's network from the cache when it holds its
    traced graph (torch alone: no MONAI), else built, folded, and traced into the cache for the next run.
    The weights files are checked against their sha256 either way."""
    from neuroseg.models.precision import uses_bf16
    from neuroseg.models.shape import JointNet, shape_name
    from neuroseg.models.store import Model, checked_weights, load_model

    joint = shape_name(metadata["architecture"]) == JointNet.name
    effective = "bf16" if uses_bf16(device, precision) else "fp32"
    target = graph_file(metadata, device, effective) if joint else None
    graph = load_graph(target, device)
    if graph is not None:
        checked_weights(path, metadata)  # the graph stands for these weights, as recorded
        return Model(graph, None, metadata, path, traced=True)
    model = load_model(path, device=device, metadata=metadata)
    model.segmenter = prepare_for_inference(model.segmenter).to(device)
    if model.classifier is not None:
        model.classifier = prepare_for_inference(model.classifier).to(device)
    if joint:
        channels, size = model.preprocessing.channels, model.input_size
        save_graph(model.segmenter, target, channels, size, device, effective)
    return model
