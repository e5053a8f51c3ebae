"""``neuroseg send``: a run's DICOM results (SEG, and the secondary capture and the STL mesh when written) to a PACS."""

from __future__ import annotations

from pathlib import Path

from neuroseg.errors import InputError

# The DICOM files of a run's output folder that are sent, in this order.
RESULT_FILES = ("seg.dcm", "sc.dcm", "stl.dcm")


def result_files(path) -> list[Path]:
    """``path`` itself (a .dcm file), or the DICOM results in an output folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"Not found: {path}")
    files = [path / name for name in RESULT_FILES if (path / name).is_file()]
    if not files:
        raise InputError(f"{path} holds no seg.dcm: run with --format dicom-seg or both on a DICOM input first")
    return files


def read_datasets(files) -> list:
    import pydicom
    from pydicom.errors import InvalidDicomError

    datasets = []
    for path in files:
        try:
            datasets.append(pydicom.dcmread(path))
        except (InvalidDicomError, OSError, ValueError) as error:
            raise InputError(f"{path}: not a readable DICOM file ({error})") from error
    return datasets


def send(path, *, peer=None, client=None, ae_title: str = "NEUROSEG"):
    """Send the results at ``path`` by C-STORE to ``peer`` or by STOW-RS through ``client``; one Outcome each."""
    files = result_files(path)
    return send_datasets(read_datasets(files), [p.name for p in files], peer=peer, client=client, ae_title=ae_title)


def send_datasets(datasets: list, names: list, *, peer=None, client=None, ae_title: str = "NEUROSEG"):
    """C-STORE ``datasets`` to ``peer``, or STOW-RS them through ``client``; one Outcome each."""
    from neuroseg.net import dicomweb, dimse

    if peer is not None:
        return dimse.store(datasets, peer, ae_title=ae_title, names=names)
    return dicomweb.stow(datasets, client, names=names)


def held_instances(datasets: list, *, peer=None, client=None, ae_title: str = "NEUROSEG") -> set[str]:
    """The SOPInstanceUIDs of ``datasets`` that the destination says it holds (C-FIND or QIDO-RS).

    NetworkError when it cannot be reached or refuses the query."""
    from neuroseg.net import dicomweb, dimse

    if peer is not None:
        return dimse.held_instances(datasets, peer, ae_title=ae_title)
    return dicomweb.held_instances(datasets, client)
