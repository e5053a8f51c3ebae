"""The model folder: weights files plus ``metadata.json`` recording how they were made."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from neuroseg.errors import ModelError, OutputError
from neuroseg.io.atomic import atomic_path

METADATA_FILE = "metadata.json"
WEIGHT_FILES = {"segmenter": "segmenter.pt", "classifier": "classifier.pt"}


def default_model_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "weights"


@dataclass
class Model:
    segmenter: nn.Module
    classifier: nn.Module | None
    metadata: dict
    path: Path
    traced: bool = False  # the segmenter is a traced graph (neuroseg.models.graph), its precision built in

    @property
    def input_size(self) -> int:
        return int(self.metadata["input"]["size"])

    @property
    def context(self) -> int:
        return int(self.metadata["input"]["context_slices"])

    @property
    def shape(self):
        """How the networks answer (a :mod:`neuroseg.models.shape`), as the metadata names it."""
        from neuroseg.models.shape import build_shape

        return build_shape(self.metadata["architecture"], self.segmenter, self.classifier)

    @property
    def preprocessing(self):
        from neuroseg.transforms import Preprocessing

        return Preprocessing.from_metadata(self.metadata["input"])

    def networks(self) -> dict:
        return {name: net for name, net in (("segmenter", self.segmenter), ("classifier", self.classifier))
                if net is not None}

    def to(self, device) -> "Model":
        for network in self.networks().values():
            network.to(device)
        return self


def build_networks(architecture: dict) -> tuple[nn.Module, nn.Module | None]:
    """The networks a model's recorded architecture names: ``(segmenter, classifier)``, with
    classifier None when its shape is a joint net (the segmenter's own head classifies slices)."""
    from neuroseg.models.registry import build
    from neuroseg.models.shape import JointNet, shape_name

    joint = shape_name(architecture) == JointNet.name
    return build(architecture["segmenter"]), (None if joint else build(architecture["classifier"]))


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_metadata(path=None) -> tuple[Path, dict]:
    """A model folder (default: the shipped model) and its ``metadata.json``."""
    path = Path(path) if path is not None else default_model_dir()
    metadata_path = path / METADATA_FILE
    if not metadata_path.is_file():
        raise ModelError(f"Not a model folder (no {METADATA_FILE}): {path}")
    try:
        metadata = json.loads(metadata_path.read_text())
    except ValueError as error:
        raise ModelError(f"{metadata_path}: metadata is incomplete or invalid ({error})") from error
    if not isinstance(metadata, dict) or not all(isinstance(metadata.get(key), dict)
                                                 for key in ("architecture", "weights")):
        raise ModelError(f"{metadata_path}: metadata is incomplete or invalid (no architecture or weights)")
    return path, metadata


def checked_weights(path: Path, metadata: dict) -> dict[str, Path]:
    """Each weights file the metadata records, checked against its sha256."""
    files = {}
    try:
        for name, entry in metadata["weights"].items():
            files[name] = path / entry["file"]
            if not files[name].is_file():
                raise ModelError(f"Weights file missing: {files[name]}")
            if sha256(files[name]) != entry["sha256"]:
                raise ModelError(f"Weights file {files[name]} does not match the sha256 in {METADATA_FILE}")
    except (KeyError, TypeError) as error:
        raise ModelError(f"{path / METADATA_FILE}: metadata is incomplete or invalid ({error})") from error
    return files


def load_model(path=None, device="cpu", metadata: dict | None = None) -> Model:
    """Load a model folder after checking each weights file against its recorded sha256. ``metadata``: its
    ``metadata.json`` as ``read_metadata`` gave it to a caller that has just read it."""
    path, metadata = read_metadata(path) if metadata is None else (Path(path), metadata)
    try:
        segmenter, classifier = build_networks(metadata["architecture"])
    except (ValueError, KeyError, TypeError) as error:
        raise ModelError(f"{path / METADATA_FILE}: metadata is incomplete or invalid ({error})") from error
    files = checked_weights(path, metadata)
    for name, network in (("segmenter", segmenter), ("classifier", classifier)):
        if network is None:
            continue
        if name not in files:
            raise ModelError(f"{path / METADATA_FILE}: no {name} weights recorded")
        try:
            state = torch.load(files[name], map_location="cpu", weights_only=True)
            network.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        except Exception as error:  # torch raises UnpicklingError, EOFError, RuntimeError...
            raise ModelError(f"{files[name]}: weights cannot be loaded or do not fit the recorded "
                             "architecture") from error
        network.eval()
    return Model(segmenter, classifier, metadata, path).to(device)


def check_model_dir(path) -> None:
    """Refuse, before any training, a model folder path that cannot become a folder we can write."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"Output path exists and is not a folder: {path}")
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if not existing.is_dir():
        raise OutputError(f"Cannot create model folder {path}: {existing} is a file")
    if not os.access(existing, os.W_OK):
        raise OutputError(f"Cannot create model folder {path}: {existing} is not writable")


def save_model(path, segmenter: nn.Module, classifier: nn.Module | None, metadata: dict) -> Path:
    """Write weights (float16, to keep the shipped model small) and metadata with hashes.

    Equal weights give equal files (and sha256). metadata.json is written last: a folder
    left without it by an interruption is no model.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    metadata = dict(metadata, weights={})
    for name, network in (("segmenter", segmenter), ("classifier", classifier)):
        if network is None:  # a v2 model's classifier is a head of its segmenter
            continue
        # on the CPU: a file holding CUDA storages cannot be opened without map_location on a CPU-only machine
        # contiguous: a tensor's memory layout is stored too, and should not change the file's sha256
        state = {k: (v.half() if v.is_floating_point() else v).cpu().contiguous()
                 for k, v in network.state_dict().items()}
        target = path / WEIGHT_FILES[name]
        _atomic(target, lambda tmp: _save_state(state, tmp))
        metadata["weights"][name] = {"file": WEIGHT_FILES[name], "sha256": sha256(target)}
    text = json.dumps(_finite(metadata), indent=2, allow_nan=False) + "\n"
    _atomic(path / METADATA_FILE, lambda tmp: Path(tmp).write_text(text))
    return path


def _save_state(state: dict, path) -> None:
    # through a file object: torch then names the archive inside "archive", not after the temporary file
    with open(path, "wb") as handle:
        torch.save(state, handle)


def _finite(value):
    """``value`` with NaN and infinities as None: strict JSON has no NaN (an undefined AUC, say)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _atomic(target: Path, write) -> None:
    with atomic_path(target) as tmp:
        write(tmp)
