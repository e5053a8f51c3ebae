"""Training-data readers: the Decathlon layout and the original kaggle_3m release."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from neuroseg.errors import InputError
from neuroseg.volume import Volume

# The release's tifs: voxel [i, j, k] = pixel [row j, column i] of slice k+1, with i
# toward Left, j toward Posterior, k toward Superior (nominal 1 mm; the release records none).
KAGGLE_AFFINE = np.diag([-1.0, -1.0, 1.0, 1.0])
KAGGLE_FLAIR_CHANNEL = 1
# A label holds 0 and one tumour value; the kaggle masks are 0/255 tifs (0/1 is accepted too).
DECATHLON_LABEL_VALUES = ({0, 1},)
KAGGLE_MASK_VALUES = ({0, 255}, {0, 1})


@dataclass(frozen=True)
class LabelledCase:
    """A scan and its tumour label, for training and evaluation (a batch's cases are neuroseg.batch.cases.Case)."""

    case_id: str
    image: Volume
    label: Volume


@dataclass(frozen=True)
class CaseSource:
    """One case of a training folder before it is read: its files and how to load them."""

    case_id: str
    files: tuple[Path, ...]
    load: Callable[[], LabelledCase]


def find_labelled_cases(data_dir) -> list[tuple[str, callable]]:
    """List ``(case_id, loader)`` pairs for a Decathlon folder or a kaggle_3m folder."""
    return [(source.case_id, source.load) for source in list_cases(data_dir)]


def list_cases(data_dir) -> list[CaseSource]:
    """The cases of a Decathlon folder or a kaggle_3m folder, with their files; nothing is read yet."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(f"Training data folder not found: {data_dir}")
    if (data_dir / "dataset.json").is_file() and (data_dir / "imagesTr").is_dir():
        return _decathlon_cases(data_dir)
    patient_dirs = sorted(p for p in data_dir.iterdir() if p.is_dir() and any(p.glob("*_mask.tif")))
    if patient_dirs:
        return [CaseSource(p.name, tuple(sorted(p.glob("*.tif"))), lambda p=p: load_kaggle_patient(p))
                for p in patient_dirs]
    # The Kaggle download unpacks to a folder that holds kaggle_3m/ (in some versions twice).
    nested = sorted(p for pattern in ("kaggle_3m", "*/kaggle_3m", "*/*/kaggle_3m") for p in data_dir.glob(pattern)
                    if p.is_dir())
    if len(nested) == 1:
        return list_cases(nested[0])
    if nested:
        raise InputError(f"{data_dir}: holds {len(nested)} kaggle_3m folders ({', '.join(map(str, nested))}); "
                         "name one of them")
    raise InputError(
        f"{data_dir}: expected a Decathlon folder (dataset.json, imagesTr/, labelsTr/) "
        "or the kaggle_3m release (one folder of tifs per patient)"
    )


def _decathlon_cases(data_dir: Path) -> list[CaseSource]:
    cases, seen = [], set()
    for image_name, label_name in _training_entries(data_dir / "dataset.json"):
        image_path, label_path = data_dir / image_name, data_dir / label_name
        case_id = image_path.name.replace(".nii.gz", "").replace(".nii", "")
        if case_id in seen:
            raise InputError(f"{data_dir / 'dataset.json'}: case {case_id} is listed twice in 'training'")
        seen.add(case_id)
        for path, name in ((image_path, image_name), (label_path, label_name)):
            if not path.is_file():  # checked now, not when training reaches this case
                raise InputError(f"{data_dir / 'dataset.json'} lists {name}, which is not a file in {data_dir}")
        label_name = str(Path(label_name))  # ./labelsTr/x.nii.gz -> labelsTr/x.nii.gz in messages
        load = partial(_load_decathlon_case, image_path, label_path, case_id, label_name)
        cases.append(CaseSource(case_id, (image_path, label_path), load))
    return cases


def _training_entries(path: Path) -> list[tuple[str, str]]:
    """``(image, label)`` relative paths of dataset.json's ``training`` list, checked for shape."""
    try:
        training = json.loads(path.read_text())["training"]
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from error
    except (KeyError, TypeError) as error:
        raise InputError(f"{path}: has no 'training' list of cases") from error
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot be read ({error})") from error
    if not isinstance(training, list):
        raise InputError(f"{path}: 'training' must be a list of cases, not {type(training).__name__}")
    if not training:
        raise InputError(f"{path}: the 'training' list is empty; there is nothing to train on")
    entries = []
    for number, entry in enumerate(training, start=1):
        if not (isinstance(entry, dict) and all(isinstance(entry.get(key), str) for key in ("image", "label"))):
            raise InputError(f"{path}: training entry {number} needs an 'image' and a 'label' path, not {entry!r}")
        entries.append((entry["image"], entry["label"]))
    return entries


def _load_decathlon_case(image_path: Path, label_path: Path, case_id: str, label_name: str) -> LabelledCase:
    from neuroseg.io.nifti import load_nifti

    image, label = load_nifti(image_path), _load_label(label_path, label_name)
    if not image.same_grid(label):
        raise InputError(f"{case_id}: label grid differs from the image's")
    return LabelledCase(case_id, image, label)


def _load_label(path, name=None) -> Volume:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        array = np.asarray(img.dataobj)
    except Exception as error:  # nibabel raises many types for bad files
        raise InputError(f"{name or path}: not a readable NIfTI label ({error})") from error
    check_label_values(array, name or path, DECATHLON_LABEL_VALUES)
    return Volume((array > 0).astype(np.uint8), img.affine, {"path": str(path)})


def check_label_values(array: np.ndarray, source, allowed) -> int:
    """Refuse a label that is not 0 plus one tumour value (one of ``allowed``, sets of values);
    returns the tumour value it uses (0 when the label is empty)."""
    values = np.unique(array)
    if any(set(values.tolist()) <= rule for rule in allowed):  # NaN is in no rule
        return int(values.max()) if values.size else 0
    shown = ", ".join(f"{v:g}" for v in values[:8].tolist()) + (", ..." if values.size > 8 else "")
    expected = ", or ".join(" and ".join(str(v) for v in sorted(rule)) for rule in allowed)
    raise InputError(f"{source}: label holds values [{shown}]; expected {expected}")


def load_kaggle_patient(patient_dir) -> LabelledCase:
    """Stack one kaggle_3m patient's tifs (FLAIR is channel 1) into image and mask volumes."""
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
    images, masks, tumour_values = [], [], {}
    for k, path in numbered:
        rgb = _read_tif(path)
        flair = rgb[..., KAGGLE_FLAIR_CHANNEL] if rgb.ndim == 3 else rgb
        mask_path = path.with_name(f"{patient_dir.name}_{k}_mask.tif")
        mask = _read_tif(mask_path)
        value = check_label_values(mask, Path(patient_dir.name) / mask_path.name, KAGGLE_MASK_VALUES)
        if value:
            tumour_values.setdefault(value, mask_path)
        images.append(flair.T)  # pixel [row j, column i] -> voxel [i, j]
        masks.append((mask > 0).T)
    if len(tumour_values) > 1:  # 0/1 and 0/255 masks mixed: one of them is not what it seems
        (a, first), (b, second) = tumour_values.items()
        raise InputError(f"{patient_dir}: masks mix tumour values {a} ({first.name}) and {b} ({second.name}); "
                         "expected one of them throughout")
    image = np.stack(images, axis=-1).astype(np.float32)
    label = np.stack(masks, axis=-1).astype(np.uint8)
    meta = {"path": str(patient_dir), "format": "kaggle_3m"}
    return LabelledCase(patient_dir.name, Volume(image, KAGGLE_AFFINE, meta), Volume(label, KAGGLE_AFFINE, meta))


def _read_tif(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image)
    except OSError as error:  # missing, or not an image PIL can read
        raise InputError(f"{path}: cannot be read as a tif ({error.strerror or error})") from error
