"""DICOM series reading with pydicom: headers, slice geometry and sorting, pixel decoding.

``load_dicom_series`` (choose a folder's FLAIR series and read it) lives in :mod:`neuroseg.io.catalogue`,
beside ``scan_dicom``, so this module imports nothing from there.

A folder is searched recursively; every file that parses as DICOM counts, whatever its
name. Images are grouped by SeriesInstanceUID; each 2D image (a single-frame file, or one
frame of an enhanced multi-frame file) becomes a :class:`SliceHeader`. A series is turned
into a :class:`SeriesPlan`: the images that share the dominant orientation and size,
sorted by their position along the slice normal (ImagePositionPatient · normal), with a
note for every image left out (a duplicate file, same SOPInstanceUID and pixels, is one) and
a ``problem`` (a one-line reason) when the series cannot become one 3D volume, e.g. a missing
slice.

Geometry conventions: DICOM positions are LPS; the Volume affine is RAS+
(``RAS = diag(-1, -1, 1, 1) @ LPS``). The volume array is indexed ``[i, j, k]`` where
``i`` is the DICOM column, ``j`` the DICOM row and ``k`` the position in the sorted
slice list, so ``meta["source_files"][k]`` is the file that holds slice ``k``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuroseg.errors import InputError, first_line
from neuroseg.io.validate import check_dimensions, check_spacing, check_values
from neuroseg.io.files import is_nifti, walk_tree
from neuroseg.io.outputs import REPORT_FILE, is_output_folder
from neuroseg.io.values import as_int
from neuroseg.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
MEMORY = "<memory>"  # the "folder" of datasets held in memory

# Relative deviation of one slice gap from the series' median gap that counts as a missing slice.
GAP_TOLERANCE = 0.2
# Orientation cosines are compared after rounding to this many decimals.
ORIENTATION_DECIMALS = 3
# SOP classes and modalities that hold no image to segment.
NON_IMAGE_MODALITIES = {"SEG", "SR", "PR", "KO", "RTSTRUCT", "REG", "DOC", "RWV"}
SKIPPED_NAMES = {"DICOMDIR"}


@dataclass(frozen=True)
class SliceHeader:
    """One 2D image: a single-frame file (``frame`` None) or frame ``frame`` (1-based) of a multi-frame file.

    ``path`` names where the image came from: a file, or for a dataset held in memory (as a listener
    receives it) ``<memory>/SOPInstanceUID``, with the dataset itself in ``dataset``.
    """

    path: str
    frame: int | None
    sop_instance_uid: str
    orientation: tuple  # six direction cosines (row direction, column direction), LPS
    position: tuple  # ImagePositionPatient of the first pixel, LPS mm
    pixel_spacing: tuple  # (between rows, between columns) mm
    rows: int
    columns: int
    slope: float = 1.0
    intercept: float = 0.0
    instance_number: int = 0
    echo_number: int = 0
    dataset: object = field(default=None, compare=False, repr=False)  # the in-memory Dataset, or None for a file

    @property
    def normal(self) -> np.ndarray:
        cosines = np.asarray(self.orientation, dtype=np.float64)
        normal = np.cross(cosines[:3], cosines[3:])
        return normal / np.linalg.norm(normal)

    def layout(self) -> tuple:
        """What every slice of one volume must share: orientation, matrix and pixel spacing."""
        return (tuple(np.round(self.orientation, ORIENTATION_DECIMALS) + 0.0), self.rows, self.columns,
                tuple(np.round(self.pixel_spacing, 3)))


@dataclass
class SeriesHeaders:
    """The headers (no pixel data) of one series, as found in a folder."""

    uid: str
    dataset: object  # the first file's pydicom Dataset (header only), for series attributes
    files: list = field(default_factory=list)
    slices: list = field(default_factory=list)  # SliceHeader
    notes: list = field(default_factory=list)  # images without usable geometry, etc.


@dataclass
class SeriesPlan:
    """How a series becomes a volume: the slices kept, in order, and the grid they span."""

    headers: SeriesHeaders
    slices: list  # SliceHeader, sorted along the normal
    notes: list  # one line per thing left out
    problem: str | None  # why the series cannot be read as one volume, or None
    affine_lps: np.ndarray | None = None  # voxel [column, row, slice] -> LPS mm

    @property
    def shape(self) -> tuple[int, int, int]:
        first = self.slices[0]
        return (first.columns, first.rows, len(self.slices))

    @property
    def affine_ras(self) -> np.ndarray:
        return LPS_TO_RAS @ self.affine_lps

    @property
    def spacing(self) -> np.ndarray:
        return np.sqrt((self.affine_lps[:3, :3] ** 2).sum(axis=0))


def iter_dicom_files(folder, exclude=(), nifti: list | None = None) -> list[Path]:
    """Every regular file under ``folder`` (recursively, sorted) that may be DICOM; ``exclude``: folders to skip.

    ``nifti``: a list that collects the NIfTI files passed over (a folder holding them holds other inputs).
    """
    excluded = {Path(p).resolve() for p in exclude}
    found = []
    for root, dirs, names in walk_tree(folder):
        if REPORT_FILE in names and is_output_folder(root):  # an earlier run's mask and SEG are not inputs
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (Path(root) / d).resolve() not in excluded)
        for name in sorted(names):
            path = Path(root) / name
            if name.startswith(".") or name.upper() in SKIPPED_NAMES or not path.is_file():
                continue
            if is_nifti(path):
                if nifti is not None:
                    nifti.append(path)
                continue
            found.append(path)
    return found


def read_header(path):
    """The pydicom header of ``path`` (no pixel data), or None when it is not a DICOM file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        return None


def collect_series(folder, exclude=(), nifti: list | None = None) -> tuple[dict[str, SeriesHeaders], list[str]]:
    """Group the DICOM images under ``folder`` by SeriesInstanceUID; also return one note per unreadable file.

    ``nifti``: as for :func:`iter_dicom_files`.
    """
    series: dict[str, SeriesHeaders] = {}
    unreadable = []
    for path in iter_dicom_files(folder, exclude, nifti):
        try:
            dataset = read_header(path)
        except (OSError, ValueError, EOFError, KeyError, TypeError, AttributeError) as error:
            unreadable.append(f"{path}: unreadable DICOM header ({type(error).__name__}: {error})")
            continue
        if dataset is not None:
            _add_to_series(series, dataset, str(path))
    return series, unreadable


def collect_datasets(datasets) -> dict[str, SeriesHeaders]:
    """Group pydicom Datasets held in memory (pixel data included) by SeriesInstanceUID."""
    from pydicom.dataset import Dataset

    series: dict[str, SeriesHeaders] = {}
    for dataset in datasets:
        if not isinstance(dataset, Dataset):
            raise InputError(f"Expected pydicom Datasets of one series, got a {type(dataset).__name__}")
        name = f"{MEMORY}/{dataset.get('SOPInstanceUID', '')}"
        _add_to_series(series, dataset, name, in_memory=True)
    return series


def _add_to_series(series: dict, dataset, name: str, in_memory: bool = False) -> None:
    """File one header (and its 2D images) under its series; a header without a series is passed over."""
    if "SeriesInstanceUID" not in dataset:
        return
    uid = str(dataset.SeriesInstanceUID)
    entry = series.setdefault(uid, SeriesHeaders(uid, dataset))
    entry.files.append(name)
    if str(dataset.get("Modality", "")).upper() in NON_IMAGE_MODALITIES or "Rows" not in dataset:
        return
    try:
        headers = slice_headers(dataset, name)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        entry.notes.append(f"left out {Path(name).name}: no usable image geometry ({error})")
        return
    if in_memory:
        headers = [dataclasses.replace(header, dataset=dataset) for header in headers]
    entry.slices.extend(headers)


def slice_headers(dataset, path: str) -> list[SliceHeader]:
    """The 2D images of one file: one for a classic image, one per frame for an enhanced multi-frame one."""
    common = dict(path=path, sop_instance_uid=str(dataset.SOPInstanceUID), rows=int(dataset.Rows),
                  columns=int(dataset.Columns), instance_number=as_int(dataset.get("InstanceNumber")))
    if "PerFrameFunctionalGroupsSequence" in dataset:
        slices = []
        for index in range(int(dataset.get("NumberOfFrames", 1))):
            orientation = _functional(dataset, index, "PlaneOrientationSequence").ImageOrientationPatient
            position = _functional(dataset, index, "PlanePositionSequence").ImagePositionPatient
            spacing = _functional(dataset, index, "PixelMeasuresSequence").PixelSpacing
            transform = _functional(dataset, index, "PixelValueTransformationSequence", required=False)
            slices.append(SliceHeader(
                frame=index + 1, orientation=_floats(orientation, 6), position=_floats(position, 3),
                pixel_spacing=_floats(spacing, 2), **_rescale(transform if transform is not None else dataset),
                **common))
        return slices
    if "ImageOrientationPatient" not in dataset or "ImagePositionPatient" not in dataset:
        raise ValueError("ImageOrientationPatient or ImagePositionPatient is missing")
    spacing = dataset.get("PixelSpacing") or dataset.get("ImagerPixelSpacing")
    if spacing is None:
        raise ValueError("PixelSpacing is missing")
    return [SliceHeader(frame=None, orientation=_floats(dataset.ImageOrientationPatient, 6),
                        position=_floats(dataset.ImagePositionPatient, 3), pixel_spacing=_floats(spacing, 2),
                        echo_number=as_int(dataset.get("EchoNumbers")), **_rescale(dataset), **common)]


def _functional(dataset, index: int, name: str, required: bool = True):
    """A functional-group item for frame ``index``: per-frame first, then shared."""
    for groups in (dataset.PerFrameFunctionalGroupsSequence[index],
                   (dataset.get("SharedFunctionalGroupsSequence") or [None])[0]):
        if groups is not None and name in groups and len(groups[name].value):
            return groups[name].value[0]
    if required:
        raise ValueError(f"{name} is missing for frame {index + 1}")
    return None


def _floats(values, count: int) -> tuple:
    numbers = tuple(float(v) for v in values)
    if len(numbers) != count or not all(np.isfinite(numbers)):
        raise ValueError(f"expected {count} finite numbers, got {list(values)}")
    return numbers


def _rescale(item) -> dict:
    slope = item.get("RescaleSlope", 1.0) if item is not None else 1.0
    intercept = item.get("RescaleIntercept", 0.0) if item is not None else 0.0
    slope = 1.0 if slope in (None, "") else float(slope)
    return {"slope": slope if slope != 0 else 1.0, "intercept": 0.0 if intercept in (None, "") else float(intercept)}


def plan_series(headers: SeriesHeaders) -> SeriesPlan:
    """Keep the images of the dominant layout, sort them along the normal, and check the spacing."""
    notes = list(headers.notes)
    if not headers.slices:
        return SeriesPlan(headers, [], notes, "holds no image with position and orientation")
    unique, problem = _drop_duplicates(headers.slices, notes)
    if problem:
        return SeriesPlan(headers, [], notes, problem)
    layouts = Counter(s.layout() for s in unique)
    main_layout, _ = layouts.most_common(1)[0]
    kept = [s for s in unique if s.layout() == main_layout]
    left_out = len(unique) - len(kept)
    if left_out:
        notes.append(f"left out {left_out} image{'s' * (left_out > 1)} with another orientation, matrix or "
                     f"pixel spacing (localizer/scout?)")
    normal = kept[0].normal
    kept.sort(key=lambda s: (float(np.dot(normal, s.position)), s.echo_number, s.instance_number, s.frame or 0))
    kept, problem = _drop_repeats(kept, normal, notes)
    if problem:
        return SeriesPlan(headers, kept, notes, problem)
    if len(kept) < 2:
        return SeriesPlan(headers, kept, notes, "holds a single slice, not a 3D volume")
    distances = np.array([float(np.dot(normal, s.position)) for s in kept])
    gaps = np.diff(distances)
    expected = float(np.median(gaps))
    uneven = np.flatnonzero(np.abs(gaps - expected) > GAP_TOLERANCE * expected)
    if uneven.size:
        k = int(uneven[0])
        missing = int(round(gaps[k] / expected)) - 1 if expected > 0 else 0
        what = f"{missing} missing slice{'s' * (missing > 1)}" if missing >= 1 else "uneven slice spacing"
        return SeriesPlan(headers, kept, notes, (
            f"{what}: gap of {gaps[k]:.2f} mm between sorted slices {k} and {k + 1} of {len(kept)} "
            f"(at {distances[k]:.2f} and {distances[k + 1]:.2f} mm along the slice normal; files "
            f"{Path(kept[k].path).name} and {Path(kept[k + 1].path).name}), where the other gaps are "
            f"{expected:.2f} mm" + (f"; {uneven.size} uneven gaps in all" if uneven.size > 1 else "")))
    first = kept[0]
    cosines = np.asarray(first.orientation)
    affine = np.eye(4)
    affine[:3, 0] = cosines[:3] * first.pixel_spacing[1]
    affine[:3, 1] = cosines[3:] * first.pixel_spacing[0]
    affine[:3, 2] = (np.asarray(kept[-1].position) - np.asarray(first.position)) / (len(kept) - 1)
    affine[:3, 3] = first.position
    return SeriesPlan(headers, kept, notes, None, affine)


def _drop_duplicates(slices: list, notes: list) -> tuple[list, str | None]:
    """One image filed twice (same SOPInstanceUID and frame), e.g. a copied file: keep one copy.

    The copies must hold the same header geometry and the same pixels; otherwise nobody can
    tell which one is right, and the series is refused naming both files.
    """
    first: dict[tuple, SliceHeader] = {}
    dropped: dict[str, str] = {}  # left-out file -> the file kept in its place
    unique = []
    for header in sorted(slices, key=lambda s: (len(s.path), s.path)):  # keep "IM1", drop "IM1 (copy)"
        original = first.setdefault((header.sop_instance_uid, header.frame), header)
        if original is header:
            unique.append(header)
            continue
        problem = _copies_differ(original, header) if header.path not in dropped else None
        if problem:
            return slices, problem
        dropped[header.path] = original.path
    if dropped:
        listed = [f"{path} (copy of {Path(kept).name})" for path, kept in sorted(dropped.items())]
        more = f" and {len(listed) - 3} more" if len(listed) > 3 else ""
        notes.append(f"left out {len(dropped)} duplicate file{'s' * (len(dropped) > 1)} (same SOPInstanceUID and "
                     f"pixel data as another file): {', '.join(listed[:3])}{more}")
    return unique, None


def _copies_differ(original: SliceHeader, copy: SliceHeader) -> str | None:
    """Why two files with one SOPInstanceUID are not the same image, or None when they are."""
    import filecmp

    where = f"files {original.path} and {copy.path} have the same SOPInstanceUID {original.sop_instance_uid}"
    if dataclasses.replace(copy, path=original.path) != original:
        return f"{where} but different position, orientation, size or rescaling: remove the wrong one"
    if original.dataset is None and copy.dataset is None and filecmp.cmp(original.path, copy.path, shallow=False):
        return None
    try:
        same = np.array_equal(decode_image(original), decode_image(copy))
    except InputError as error:
        return f"{where}, and one cannot be decoded ({error}): remove the broken one"
    return None if same else f"{where} but different pixel data: remove the wrong one"


def _drop_repeats(kept: list, normal: np.ndarray, notes: list) -> tuple[list, str | None]:
    """Several images at one position: keep the first echo when echoes explain it, else refuse."""
    distances = np.array([float(np.dot(normal, s.position)) for s in kept])
    same = np.abs(np.diff(distances)) < 1e-3
    if not same.any():
        return kept, None
    echoes = sorted({s.echo_number for s in kept})
    if len(echoes) > 1:
        first_echo = [s for s in kept if s.echo_number == echoes[0]]
        spread = np.diff([float(np.dot(normal, s.position)) for s in first_echo])
        if not (np.abs(spread) < 1e-3).any():
            notes.append(f"kept echo {echoes[0]} of {len(echoes)} echoes ({len(kept) - len(first_echo)} images left out)")
            return first_echo, None
    positions = len(set(np.round(distances, 3)))
    return kept, (f"{len(kept)} images at only {positions} slice positions (several echoes, time points or "
                  f"repeated acquisitions): not one 3D volume")


# What pydicom raises for a file or pixel data it cannot read or decode (one list for both steps).
DECODE_ERRORS = (OSError, ValueError, RuntimeError, AttributeError, NotImplementedError, EOFError)


def decode_image(header: SliceHeader) -> np.ndarray:
    """The pixel data of the file or in-memory dataset that holds ``header``, as ``(frame, row, column)``."""
    if header.dataset is not None:
        return decode_dataset(header.dataset, header.path)
    return decode_file(header.path)


def decode_file(path) -> np.ndarray:
    """The pixel data of one file as ``(frame, row, column)``, MONOCHROME1 inverted; InputError when undecodable."""
    import pydicom

    try:
        dataset = pydicom.dcmread(path)
    except DECODE_ERRORS as error:
        raise InputError(f"{path}: pixel data cannot be decoded: {first_line(error, type(error).__name__)}") from error
    return decode_dataset(dataset, path)


def decode_dataset(dataset, name) -> np.ndarray:
    """The pixel data of one Dataset as ``(frame, row, column)``; ``name`` says where it came from in errors."""
    try:
        if int(dataset.get("SamplesPerPixel", 1)) != 1:
            raise InputError(f"{name}: colour DICOM images are not MR intensities")
        pixels = dataset.pixel_array
    except InputError:
        raise
    except DECODE_ERRORS as error:
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        raise InputError(f"{name}: pixel data cannot be decoded"
                         + (f" (transfer syntax {getattr(syntax, 'name', syntax)})" if syntax else "")
                         + f": {first_line(error, type(error).__name__)}") from error
    if pixels.ndim == 2:
        pixels = pixels[None]
    if str(dataset.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        pixels = pixels.max() - pixels
    return pixels


def read_pixels(plan: SeriesPlan) -> np.ndarray:
    """Decode the kept slices; return float32 ``[column, row, slice]`` with rescale slope/intercept applied."""
    stack = np.empty((len(plan.slices), plan.slices[0].rows, plan.slices[0].columns), dtype=np.float32)
    cache: dict[str, np.ndarray] = {}
    for k, header in enumerate(plan.slices):
        if header.path not in cache:
            cache = {header.path: decode_image(header)}  # a series rarely revisits a file out of order
        pixels = cache[header.path]
        frame = pixels[(header.frame or 1) - 1]
        if frame.shape != (header.rows, header.columns):
            raise InputError(f"{header.path}: pixel data is {frame.shape}, header says {header.rows}x{header.columns}")
        stack[k] = frame.astype(np.float32) * np.float32(header.slope) + np.float32(header.intercept)
    return np.ascontiguousarray(stack.transpose(2, 1, 0))


def read_volume(plan: SeriesPlan, folder, series_meta: dict | None = None) -> Volume:
    """The Volume of a planned series; meta records the source image of each slice ``k``."""
    if plan.problem:
        raise InputError(f"{folder}: series {plan.headers.uid} cannot be read: {plan.problem}")
    source = f"{folder} (series {plan.headers.uid})"
    check_dimensions(plan.shape, source)
    array = read_pixels(plan)
    affine = plan.affine_ras
    check_spacing(affine, source)
    check_values(array, source)
    dataset = plan.headers.dataset
    meta = {
        "path": str(folder),
        "format": "dicom",
        "series_uid": plan.headers.uid,
        "series_description": str(dataset.get("SeriesDescription", "") or ""),
        "series_number": as_int(dataset.get("SeriesNumber")),
        "study_uid": str(dataset.get("StudyInstanceUID", "") or ""),
        "frame_of_reference_uid": str(dataset.get("FrameOfReferenceUID", "") or ""),
        "modality": str(dataset.get("Modality", "") or ""),
        "source_files": [s.path for s in plan.slices],
        "source_frames": [s.frame for s in plan.slices],
        "source_sop_instance_uids": [s.sop_instance_uid for s in plan.slices],
        "source_instance_numbers": [s.instance_number for s in plan.slices],
        "source_affine": affine.tolist(),  # RAS+, voxel [column, row, sorted slice]
        "source_shape": list(array.shape),
        "files": [s.path for s in plan.slices],
        **_in_memory_sources(plan),
        "notes": list(plan.notes),
        "warnings": [],
        **(series_meta or {}),
    }
    return Volume(array, affine, meta)


def _in_memory_sources(plan: SeriesPlan) -> dict:
    """For datasets held in memory, the datasets of the kept slices: the SEG references them, no file does."""
    if all(s.dataset is None for s in plan.slices):
        return {}
    return {"source_datasets": [s.dataset for s in plan.slices]}


__all__ = ["collect_series", "collect_datasets", "plan_series", "read_volume", "SeriesPlan", "SliceHeader",
           "LPS_TO_RAS"]
