"""Write DICOM series from a Volume with pydicom, for tests; and read them with SimpleITK to check.

Geometry: the Volume's affine is RAS+, array ``[i, j, k]``; the files are LPS with
DICOM column = ``i``, row = ``j`` and one file per ``k``. The first two affine columns
must be orthogonal (DICOM's in-plane axes are); the third may be anything.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"


def rotation(axis: int, degrees: float) -> np.ndarray:
    """A 4x4 rotation about world axis ``axis``."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [n for n in range(3) if n != axis]
    out = np.eye(4)
    out[i, i], out[i, j], out[j, i], out[j, j] = c, -s, s, c
    return out


def axial_affine(spacing=(0.9, 0.9, 4.0), origin=(20.0, 25.0, -30.0)) -> np.ndarray:
    """Columns toward patient Left, rows toward Posterior, slices toward Superior (axis codes L P S)."""
    return np.array([[-spacing[0], 0, 0, origin[0]], [0, -spacing[1], 0, origin[1]],
                     [0, 0, spacing[2], origin[2]], [0, 0, 0, 1.0]])


def sagittal_affine(spacing=(0.9, 0.9, 3.0), origin=(-20.0, 30.0, 40.0)) -> np.ndarray:
    """Columns toward Posterior, rows toward Inferior, slices toward patient Right (axis codes P I R), as scanners do."""
    return np.array([[0, 0, spacing[2], origin[0]], [-spacing[0], 0, 0, origin[1]],
                     [0, -spacing[1], 0, origin[2]], [0, 0, 0, 1.0]])


def oblique_affine(spacing=(0.9, 0.9, 4.0), origin=(20.0, 25.0, -30.0)) -> np.ndarray:
    """An axial grid tilted 20 degrees about left-right and 12 degrees about anterior-posterior."""
    return rotation(0, 20) @ rotation(1, 12) @ axial_affine(spacing, origin)


def new_instance(sop_class: str) -> Dataset:
    """An empty dataset with file meta and a fresh SOPInstanceUID of ``sop_class``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    return ds


def _base(study: dict, series_uid: str, description: str, number: int, inversion_time, sop_class=MRImageStorage):
    ds = new_instance(sop_class)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = study.get("patient_name", "Doe^Jane")
    ds.PatientID = study.get("patient_id", "PID-0001")
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study["study_uid"]
    ds.StudyDate = study.get("date", "20240102")
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC1"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "BRAIN"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    ds.ProtocolName = description
    ds.Modality = "MR"
    ds.Manufacturer = "TestVendor"
    ds.FrameOfReferenceUID = study["frame_uid"]
    ds.PositionReferenceIndicator = ""
    ds.ScanningSequence = ["SE", "IR"] if inversion_time else ["SE"]
    ds.SequenceVariant = ["SK", "SP"]
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = 9000 if inversion_time else 500
    ds.EchoTime = 120 if inversion_time else 12
    ds.EchoTrainLength = 16
    if inversion_time:
        ds.InversionTime = inversion_time
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.MagneticFieldStrength = 3
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    return ds


def new_study(**fields) -> dict:
    return {"study_uid": generate_uid(), "frame_uid": generate_uid(), **fields}


def _geometry(affine: np.ndarray):
    lps = RAS_TO_LPS @ np.asarray(affine, dtype=np.float64)
    col_spacing, row_spacing = np.linalg.norm(lps[:3, 0]), np.linalg.norm(lps[:3, 1])
    row_dir, col_dir = lps[:3, 0] / col_spacing, lps[:3, 1] / row_spacing
    if abs(np.dot(row_dir, col_dir)) > 1e-6:
        raise ValueError("the first two affine columns must be orthogonal")
    return lps, [float(row_spacing), float(col_spacing)], [*row_dir, *col_dir]


def _stored(array: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    stored = np.round((np.asarray(array, dtype=np.float64) - intercept) / slope)
    return np.clip(stored, -32768, 32767).astype(np.int16)


def write_series(volume, folder, *, study: dict | None = None, series_uid: str | None = None,
                 description: str = "AX T2 FLAIR", number: int = 3, inversion_time: float | None = 2500.0,
                 names: str = "ordered", skip=(), transfer_syntax=None, slope: float = 1.0,
                 intercept: float = 0.0, seed: int = 0) -> list[Path]:
    """One MR Image Storage file per slice ``k``; returns the paths in slice order (skipped slices left out).

    ``names``: "ordered" (IM0001.dcm, …), or "shuffled" (random names, no extension, in
    two sub-folders, InstanceNumber also shuffled). ``skip``: slice indices not written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study = study or new_study()
    series_uid = series_uid or generate_uid()
    lps, pixel_spacing, cosines = _geometry(volume.affine)
    rng = random.Random(seed)
    n = volume.shape[2]
    order = list(range(n))
    rng.shuffle(order)
    paths = []
    for k in range(n):
        if k in skip:
            continue
        ds = _base(study, series_uid, description, number, inversion_time)
        ds.InstanceNumber = (order[k] + 1) if names == "shuffled" else k + 1
        ds.ImagePositionPatient = [round(float(v), 6) for v in (lps @ np.array([0, 0, k, 1.0]))[:3]]
        ds.ImageOrientationPatient = [round(float(v), 10) for v in cosines]
        ds.PixelSpacing = [round(v, 6) for v in pixel_spacing]
        ds.SliceThickness = float(np.linalg.norm(lps[:3, 2]))
        ds.SliceLocation = float(ds.ImagePositionPatient[2])
        pixels = _stored(volume.array[:, :, k].T, slope, intercept)
        ds.Rows, ds.Columns = pixels.shape
        if slope != 1.0 or intercept != 0.0:
            ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "US"
        ds.PixelData = pixels.tobytes()
        if transfer_syntax is not None:
            ds.compress(transfer_syntax)
        if names == "shuffled":
            path = folder / rng.choice(["a", "b"]) / f"{rng.getrandbits(40):010x}"
            path.parent.mkdir(exist_ok=True)
        else:
            path = folder / f"IM{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_localizer(folder, *, study: dict, series_uid: str, size: int = 24, name: str = "LOCALIZER") -> Path:
    """A sagittal scout image of another matrix size, filed in an existing series."""
    ds = _base(study, series_uid, "localizer", 1, None)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.InstanceNumber = 999
    ds.ImagePositionPatient = [0.0, -100.0, 100.0]
    ds.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    ds.PixelSpacing = [8.0, 8.0]
    ds.SliceThickness = 5.0
    ds.Rows = ds.Columns = size
    ds.PixelData = (np.arange(size * size, dtype=np.int16).reshape(size, size) % 300).tobytes()
    path = Path(folder) / name
    ds.save_as(path, enforce_file_format=True)
    return path


def write_enhanced(volume, path, *, study: dict | None = None, series_uid: str | None = None,
                   description: str = "AX FLAIR enhanced", slope: float = 2.0, intercept: float = -10.0,
                   frame_order=None) -> Path:
    """One Enhanced MR Image Storage file holding all slices as frames (frame order ``frame_order`` of k)."""
    study = study or new_study()
    lps, pixel_spacing, cosines = _geometry(volume.affine)
    n = volume.shape[2]
    frame_order = list(range(n)) if frame_order is None else list(frame_order)
    ds = _base(study, series_uid or generate_uid(), description, 5, 2500.0, sop_class=ENHANCED_MR)
    del ds.InversionTime  # enhanced MR keeps it in a functional group
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = n
    frames = np.stack([_stored(volume.array[:, :, k].T, slope, intercept) for k in frame_order])
    ds.Rows, ds.Columns = frames.shape[1:]
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [round(v, 6) for v in pixel_spacing]
    measures.SliceThickness = float(np.linalg.norm(lps[:3, 2]))
    shared.PixelMeasuresSequence = [measures]
    orientation = Dataset()
    orientation.ImageOrientationPatient = [round(float(v), 10) for v in cosines]
    shared.PlaneOrientationSequence = [orientation]
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = slope, intercept, "US"
    shared.PixelValueTransformationSequence = [transform]
    timing = Dataset()
    timing.InversionTimes = [2500.0]
    shared.MRTimingAndRelatedParametersSequence = [timing]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for k in frame_order:
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = [round(float(v), 6) for v in (lps @ np.array([0, 0, k, 1.0]))[:3]]
        item.PlanePositionSequence = [position]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = frames.tobytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return Path(path)


def sitk_volume(files):
    """Read ``files`` with SimpleITK's ImageSeriesReader (GDCM sorts them): (array [i, j, k], RAS affine)."""
    import SimpleITK as sitk

    files = [str(f) for f in files]
    folder = str(Path(files[0]).parent)
    reader = sitk.ImageSeriesReader()
    uid = pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID
    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid)
    reader.SetFileNames(names if len(names) == len(files) else files)
    image = reader.Execute()
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0).astype(np.float32)
    lps = np.eye(4)
    lps[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())[None, :]
    lps[:3, 3] = image.GetOrigin()
    return array, RAS_TO_LPS @ lps
