"""Training-data readers: the Decathlon layout and the original kaggle_3m release."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroseg.errors import InputError
from neuroseg.volume import Volume

# The release's tifs: voxel [i, j, k] = pixel [row j, column i] of slice k+1, with i
# toward Left, j toward Posterior, k toward Superior (nominal 1 mm; the release records none).
KAGGLE_AFFINE = np.diag([-1.0, -1.0, 1.0, 1.0])
KAGGLE_FLAIR_CHANNEL = 1


@dataclass(frozen=True)
class Case:
    case_id: str
    image: Volume
    label: Volume


def find_cases(data_dir) -> list[tuple[str, callable]]:
    """List ``(case_id, loader)`` pairs for a Decathlon folder or a kaggle_3m folder."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(f"Training data folder not found: {data_dir}")
    if (data_dir / "dataset.json").is_file() and (data_dir / "imagesTr").is_dir():
        return _decathlon_cases(data_dir)
    patient_dirs = sorted(p for p in data_dir.iterdir() if p.is_dir() and any(p.glob("*_mask.tif")))
    if patient_dirs:
        return [(p.name, (lambda p=p: load_kaggle_patient(p))) for p in patient_dirs]
    # The Kaggle download unpacks to a folder that holds kaggle_3m/ (in some versions twice).
    nested = sorted(p for pattern in ("kaggle_3m", "*/kaggle_3m", "*/*/kaggle_3m") for p in data_dir.glob(pattern)
                    if p.is_dir())
    if len(nested) == 1:
        return find_cases(nested[0])
    if nested:
        raise InputError(f"{data_dir}: holds {len(nested)} kaggle_3m folders ({', '.join(map(str, nested))}); "
                         "name one of them")
    raise InputError(
        f"{data_dir}: expected a Decathlon folder (dataset.json, imagesTr/, labelsTr/) "
        "or the kaggle_3m release (one folder of tifs per patient)"
    )


def _decathlon_cases(data_dir: Path):
    from neuroseg.io.nifti import load_nifti

    entries = json.loads((data_dir / "dataset.json").read_text())["training"]
    cases = []
    for entry in entries:
        image_path = data_dir / entry["image"]
        label_path = data_dir / entry["label"]
        case_id = image_path.name.replace(".nii.gz", "").replace(".nii", "")

        def load(image_path=image_path, label_path=label_path, case_id=case_id):
            image, label = load_nifti(image_path), _load_label(label_path)
            if not image.same_grid(label):
                raise InputError(f"{case_id}: label grid differs from the image's")
            return Case(case_id, image, label)

        cases.append((case_id, load))
    return cases


def _load_label(path) -> Volume:
    import nibabel as nib

    img = nib.load(str(path))
    return Volume((np.asarray(img.dataobj) > 0).astype(np.uint8), img.affine, {"path": str(path)})


def load_kaggle_patient(patient_dir) -> Case:
    """Stack one kaggle_3m patient's tifs (FLAIR is channel 1) into image and mask volumes."""
    from PIL import Image

    patient_dir = Path(patient_dir)
    pattern = re.compile(re.escape(patient_dir.name) + r"_(\d+)\.tif$")
    numbered = sorted(
        (int(m.group(1)), p) for p in patient_dir.glob("*.tif") if (m := pattern.search(p.name))
    )
    if not numbered:
        raise InputError(f"{patient_dir}: no slice tifs named {patient_dir.name}_<k>.tif")
    expected = list(range(1, len(numbered) + 1))
    if [k for k, _ in numbered] != expected:
        raise InputError(f"{patient_dir}: slice numbers are not 1..{len(numbered)}")
    images, masks = [], []
    for k, path in numbered:
        rgb = np.asarray(Image.open(path))
        flair = rgb[..., KAGGLE_FLAIR_CHANNEL] if rgb.ndim == 3 else rgb
        mask = np.asarray(Image.open(path.with_name(f"{patient_dir.name}_{k}_mask.tif")))
        images.append(flair.T)  # pixel [row j, column i] -> voxel [i, j]
        masks.append((mask > 127).T)
    image = np.stack(images, axis=-1).astype(np.float32)
    label = np.stack(masks, axis=-1).astype(np.uint8)
    meta = {"path": str(patient_dir), "format": "kaggle_3m"}
    return Case(patient_dir.name, Volume(image, KAGGLE_AFFINE, meta), Volume(label, KAGGLE_AFFINE, meta))
