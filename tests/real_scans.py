"""The real scans of ../shared/data that the input checks were built and measured on, by expected sequence.

Each entry is (name, sequence, loader); the loader returns a neuroseg Volume. Used by the
input-check tests and by scripts/input_checks_real_scans.py and scripts/false_tumour.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TRIO_T1_UID = "1.3.12.2.1107.5.2.32.35389.2010072308581490237297697.0.0.0"
KAGGLE_CHANNELS = {0: "T1", 1: "FLAIR", 2: "T1c"}


def default_data() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def kaggle_channel(patient_dir: Path, channel: int):
    """One channel of a kaggle_3m patient's tifs as a Volume (the release's grid, see datasets.py)."""
    import re

    from PIL import Image

    from neuroseg.io.datasets import KAGGLE_AFFINE
    from neuroseg.volume import Volume

    pattern = re.compile(re.escape(patient_dir.name) + r"_(\d+)\.tif$")
    numbered = sorted((int(m.group(1)), p) for p in patient_dir.glob("*.tif") if (m := pattern.search(p.name)))
    slices = []
    for _, path in numbered:
        with Image.open(path) as image:
            slices.append(np.asarray(image)[..., channel].T)
    meta = {"path": f"{patient_dir}[channel {channel}]", "format": "kaggle_3m"}
    return Volume(np.stack(slices, axis=-1).astype(np.float32), KAGGLE_AFFINE, meta)


def real_scans(data: Path | None = None, lgg: bool = True) -> list[tuple[str, str, callable]]:
    """(name, expected sequence, loader) for every real scan in ``data`` (default ../shared/data)."""
    from neuroseg.io import load_volume

    data = default_data() if data is None else Path(data)
    scans = []
    clinical = data / "clinical" / "tcga-fg-6692"
    for name, sequence in (("flair", "FLAIR"), ("t1", "T1"), ("t1c", "T1c"), ("t2", "T2")):
        path = clinical / f"{name}.nii.gz"
        scans.append((f"tcga-fg-6692/{name}", sequence, lambda p=path: load_volume(p)))
    brats = data / "clinical" / "brats-gli-00001-000" / "flair.nii.gz"
    scans.append(("brats-gli-00001-000/flair", "FLAIR", lambda: load_volume(brats)))
    trio = data / "dicom" / "study-trio-b17"
    scans.append(("study-trio-b17/t1_mprage", "T1", lambda: load_volume(trio, series_uid=TRIO_T1_UID)))
    for patient in sorted((data / "kaggle-sample" / "kaggle_3m").glob("TCGA_*")):
        for channel, sequence in KAGGLE_CHANNELS.items():
            scans.append((f"kaggle-sample/{patient.name}/channel{channel}", sequence,
                          lambda p=patient, c=channel: kaggle_channel(p, c)))
    if lgg:
        for path in sorted((data / "lgg-flair" / "imagesTr").glob("*.nii.gz")):
            scans.append((f"lgg-flair/{path.name[:-7]}", "FLAIR", lambda p=path: load_volume(p)))
    return [s for s in scans if s[0]]
