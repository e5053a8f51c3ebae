"""The tumour mesh as a DICOM Encapsulated STL instance (the IOD for 3D printing models), in the source study.

tumour.stl (binary STL, LPS mm) goes as it is into an Encapsulated STL instance of its own series in the
source study, on the source series' Frame of Reference: DICOM's patient coordinates are LPS mm, the STL's
own, so a PACS or a printing workflow places it with the SEG and the scan. Each source image is listed in
the Source Instance Sequence. Written beside seg.dcm (``--mesh`` with ``--format dicom-seg`` or ``both``);
``neuroseg send`` sends it with the SEG.
"""

from __future__ import annotations

from pathlib import Path

from neuroseg.errors import InputError
from neuroseg.export.dicom_seg import source_datasets
from neuroseg.export.files import save_dataset

STL_DICOM_FILE = "stl.dcm"
SERIES_NUMBER_OFFSET = 1002  # beside the SEG's (source + 1000) and the secondary capture's (+ 1001)
DESCRIPTION = "neuroseg tumour surface (STL, LPS mm)"
_PATIENT = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
            "PatientWeight", "PatientSize")
_STUDY = ("StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
          "StudyDescription")


def build_encapsulated_stl(result, stl_path):
    """A pydicom Dataset holding ``stl_path`` (binary STL in LPS mm) in the study of ``result.image``."""
    import datetime

    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import EncapsulatedSTLStorage, ExplicitVRLittleEndian, generate_uid

    from neuroseg._version import __version__

    meta = result.image.meta
    if meta.get("format") != "dicom":
        raise InputError("The DICOM STL needs a DICOM input series (its study and frame of reference)")
    sources = source_datasets(meta)
    reference = sources[0]
    document = Path(stl_path).read_bytes()  # 84 + 50 n bytes: always even, as OB needs

    ds = Dataset()
    for keyword in _PATIENT + _STUDY:
        if keyword in reference:
            setattr(ds, keyword, reference.data_element(keyword).value)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                    "ReferringPhysicianName", "StudyID", "AccessionNumber"):  # type 2: present, maybe empty
        if keyword not in ds:
            setattr(ds, keyword, "")
    now = datetime.datetime.now()
    sop_uid = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = EncapsulatedSTLStorage, sop_uid
    ds.Modality = "M3D"  # the Encapsulated Document Series module's value for a 3D model
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = min(int(meta.get("series_number") or 0) + SERIES_NUMBER_OFFSET, 2**31 - 1)
    ds.SeriesDescription = DESCRIPTION
    ds.FrameOfReferenceUID = reference.FrameOfReferenceUID  # the scan's: the STL lies in its LPS mm
    ds.PositionReferenceIndicator = reference.get("PositionReferenceIndicator", "")
    ds.Manufacturer = "neuroseg"
    ds.ManufacturerModelName = "neuroseg"
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = f"neuroseg {__version__}"
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = ds.ContentDate, ds.ContentTime
    ds.AcquisitionDateTime = ""
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "NO"
    ds.DocumentTitle = "Tumour surface (automatic, research use only)"
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "model/stl"
    ds.EncapsulatedDocument = document
    ds.EncapsulatedDocumentLength = len(document)
    ds.MeasurementUnitsCodeSequence = [_code("mm", "UCUM", "millimeter")]
    ds.SourceInstanceSequence = [_reference(source) for source in sources]
    ds.ReferencedSeriesSequence = _series_references(sources)  # Common Instance Reference: where they live

    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = EncapsulatedSTLStorage, sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = reference.get("SpecificCharacterSet", "ISO_IR 100")
    return ds


def _code(value: str, scheme: str, meaning: str):
    from pydicom.dataset import Dataset

    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return code


def _reference(source):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = source.SOPClassUID, source.SOPInstanceUID
    return item


def _series_references(sources) -> list:
    """One Referenced Series item per source series, listing its images (all in the source study)."""
    from pydicom.dataset import Dataset

    series = {}
    for source in sources:
        series.setdefault(str(source.SeriesInstanceUID), []).append(_reference(source))
    items = []
    for uid, references in series.items():
        item = Dataset()
        item.SeriesInstanceUID, item.ReferencedInstanceSequence = uid, references
        items.append(item)
    return items


def write_encapsulated_stl(result, stl_path, path) -> Path:
    """Write the Encapsulated STL of ``stl_path`` for ``result`` to ``path`` atomically; returns ``path``."""
    return save_dataset(build_encapsulated_stl(result, stl_path), path)
