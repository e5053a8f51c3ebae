"""A compact cache of training slices, preprocessed exactly as inference preprocesses them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroseg.errors import InputError
from neuroseg.transforms import Reorientation, fit_head_crop, normalise_intensity

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
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, images=self.images, masks=self.masks, slice_labels=self.slice_labels,
                            case_ids=np.array(self.case_ids), offsets=self.offsets,
                            info=np.array(json.dumps(self.info)))
        tmp.replace(path)

    @classmethod
    def load(cls, path) -> "SliceCache":
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(data["images"], data["masks"], data["slice_labels"], [str(c) for c in data["case_ids"]],
                           data["offsets"], json.loads(str(data["info"])))
        except (OSError, KeyError, ValueError) as error:
            raise InputError(f"{path}: not a neuroseg training cache ({error})") from error


def preprocess_case(case, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One case -> (images uint8, masks uint8, slice labels) on the model grid, working orientation."""
    reorientation = Reorientation.to_working(case.image)
    image = reorientation.apply_volume(case.image)
    label = reorientation.apply(case.label.array).astype(np.float32)
    crop = fit_head_crop(image, size)
    slices = normalise_intensity(crop.apply(image.array).numpy())
    masks = (crop.apply(label).numpy() >= 0.5).astype(np.uint8)
    labels = (label.reshape(-1, label.shape[2]).max(axis=0) > 0).astype(np.uint8)
    return np.round(slices * QUANTUM).astype(np.uint8), masks, labels


def build_cache(data_dir, size: int, progress=None) -> SliceCache:
    from neuroseg.io.datasets import find_cases

    cases = find_cases(data_dir)
    images, masks, labels, ids, offsets = [], [], [], [], [0]
    for case_id, load in (progress(cases) if progress else cases):
        image, mask, label = preprocess_case(load(), size)
        images.append(image)
        masks.append(mask)
        labels.append(label)
        ids.append(case_id)
        offsets.append(offsets[-1] + len(label))
    info = {"size": size, "quantum": QUANTUM, "source": str(data_dir), "cases": len(ids)}
    return SliceCache(np.concatenate(images), np.concatenate(masks), np.concatenate(labels), ids,
                      np.array(offsets), info)


def patient_folds(case_ids, folds: int, seed: int) -> list[list[str]]:
    """Split cases (patients) into ``folds`` groups with a fixed seed; never slices."""
    if folds < 2 or folds > len(case_ids):
        raise ValueError(f"folds must be between 2 and the number of cases ({len(case_ids)}), not {folds}")
    order = np.random.default_rng(seed).permutation(sorted(case_ids))
    return [sorted(str(c) for c in order[k::folds]) for k in range(folds)]
