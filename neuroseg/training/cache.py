"""A compact cache of training slices, preprocessed exactly as inference preprocesses them."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroseg.errors import InputError
from neuroseg.io.atomic import atomic_path
from neuroseg.transforms import Preprocessing

QUANTUM = 100.0  # normalised intensities are stored as uint8 steps of 1/QUANTUM


@dataclass
class SliceCache:
    """All cases' slices on the model grid, concatenated along axis 0, case by case."""

    images: np.ndarray  # (S, size, size) uint8, normalised * QUANTUM
    masks: np.ndarray  # (S, size, size) uint8 {0, 1}
    slice_labels: np.ndarray  # (S,) uint8: tumour on this slice in the original grid
    case_ids: list[str]
    offsets: np.ndarray  # (cases + 1,) start of each case
    info: dict

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    def case_slices(self, case_id: str) -> slice:
        index = self.case_ids.index(case_id)
        return slice(int(self.offsets[index]), int(self.offsets[index + 1]))

    def save(self, path) -> None:
        with atomic_path(Path(path)) as tmp, open(tmp, "wb") as stream:  # a stream: numpy adds no .npz to it
            np.savez_compressed(stream, images=self.images, masks=self.masks, slice_labels=self.slice_labels,
                                case_ids=np.array(self.case_ids), offsets=self.offsets,
                                info=np.array(json.dumps(self.info)))

    @classmethod
    def load(cls, path) -> "SliceCache":
        data = _read(path, ("images", "masks", "slice_labels", "case_ids", "offsets", "info"))
        cache = cls(data["images"], data["masks"], data["slice_labels"], [str(c) for c in data["case_ids"]],
                    data["offsets"], json.loads(str(data["info"])))
        if len(cache.offsets) != len(cache.case_ids) + 1 or cache.offsets[-1] != len(cache.images):
            raise InputError(f"{path}: a damaged neuroseg training cache (its case offsets do not fit its slices)")
        return cache

    @staticmethod
    def read_info(path) -> dict:
        """The cache's ``info`` alone, without decompressing its slices."""
        return json.loads(str(_read(path, ("info",))["info"]))


# a truncated zip fails as BadZipFile or EOFError, a damaged member as zlib.error, another file as ValueError
_READ_FAILURES = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _read(path, keys) -> dict:
    """Arrays of a cache file; every way a damaged or foreign file fails is one InputError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in keys}
    except _READ_FAILURES as error:
        if isinstance(error, FileNotFoundError):
            raise InputError(f"{path}: cache file not found") from error
        if isinstance(error, KeyError) or "pickled" in str(error):  # np.load's guess for a file that is no .npz
            raise InputError(f"{path}: not a neuroseg training cache (made by `neuroseg train --cache`)") from error
        raise InputError(f"{path}: the training cache is truncated or damaged "
                         f"({type(error).__name__}: {error})") from error


def preprocess_case(case, preprocessing: Preprocessing) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One case -> (images uint8, masks uint8, slice labels) on the model grid, working orientation,
    prepared by the same code inference uses."""
    reorientation, crop, slices = preprocessing.prepare(case.image)
    label = reorientation.apply(case.label.array).astype(np.float32)
    masks = (crop.apply(label).numpy() >= 0.5).astype(np.uint8)
    labels = (label.reshape(-1, label.shape[2]).max(axis=0) > 0).astype(np.uint8)
    return np.round(slices.numpy() * QUANTUM).astype(np.uint8), masks, labels


def build_cache(data_dir, size: int, progress=None, sources=None,
                preprocessing: Preprocessing | None = None) -> SliceCache:
    """Preprocess every case of ``data_dir`` (or its already listed ``sources``).

    Context slices are not stored: neighbours are stacked when batches are drawn.
    """
    preprocessing = Preprocessing(size=size) if preprocessing is None else preprocessing
    from neuroseg.io.datasets import list_cases

    sources = list_cases(data_dir) if sources is None else sources
    images, masks, labels, ids, offsets = [], [], [], [], [0]
    for source in (progress(sources) if progress else sources):
        image, mask, label = preprocess_case(source.load(), preprocessing)
        images.append(image)
        masks.append(mask)
        labels.append(label)
        ids.append(source.case_id)
        offsets.append(offsets[-1] + len(label))
    info = {"size": size, "quantum": QUANTUM, "preprocessing": preprocessing.to_metadata(), "source": str(data_dir), "cases": len(ids),
            "fingerprint": fingerprint(data_dir, sources)}
    return SliceCache(np.concatenate(images), np.concatenate(masks), np.concatenate(labels), ids,
                      np.array(offsets), info)


def fingerprint(data_dir, sources) -> str:
    """A cheap digest of what a cache was made from: case IDs and each file's name, size and mtime.

    Adding, removing or rewriting a case changes it; reading the files is not needed.
    """
    listing = []
    for source in sources:
        files = []
        for path in source.files:
            stat = Path(path).stat()
            files.append([os.path.relpath(path, data_dir), stat.st_size, stat.st_mtime_ns])
        listing.append([source.case_id, files])
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def patient_folds(case_ids, folds: int, seed: int) -> list[list[str]]:
    """Split cases (patients) into ``folds`` groups with a fixed seed; never slices."""
    if folds < 2 or folds > len(case_ids):
        raise ValueError(f"folds must be between 2 and the number of cases ({len(case_ids)}), not {folds}")
    order = np.random.default_rng(seed).permutation(sorted(case_ids))
    return [sorted(str(c) for c in order[k::folds]) for k in range(folds)]
