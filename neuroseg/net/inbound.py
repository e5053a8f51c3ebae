"""What an instance received over the wire must be before it is stored: a dataset that decodes whole, whose
UIDs are UIDs (so they are safe file names) and agree with the C-STORE request that carried it.

A truncated dataset, one encoded in another transfer syntax than the negotiated one, or a UID with ``../``
or a letter in it is refused (InputError, with why); nothing of it is written."""

from __future__ import annotations

from neuroseg.errors import InputError
from neuroseg.net.spool import check_uid


def decoded(event):
    """The C-STORE's dataset with its file meta, fully decoded; InputError when it does not decode."""
    try:
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        for element in dataset.iterall():  # pydicom decodes lazily: force every value now
            element.value  # noqa: B018  the access is the decode
        _check_encoding(_raw(event), event.context.transfer_syntax)
    except InputError:
        raise
    except Exception as error:  # pydicom raises many types on malformed input; each one means "refused"
        raise InputError(f"the dataset does not decode in the negotiated transfer syntax "
                         f"({type(error).__name__})") from error
    return dataset


def _raw(event) -> bytes:
    stream = event.request.DataSet
    return stream.getvalue()[:8] if hasattr(stream, "getvalue") else b""


def _check_encoding(raw: bytes, negotiated) -> None:
    """pydicom reads an explicit-VR body sent on an implicit-VR context (it guesses, with a warning), and
    pynetdicom then labels it with the context's encoding: so the first element is looked at here. The
    standard asks a dataset to be encoded in the transfer syntax of its presentation context."""
    from pydicom.uid import UID
    from pydicom.valuerep import VR

    syntax = UID(negotiated)
    if len(raw) < 8:
        return
    explicit = raw[4:6].decode("latin-1") in VR.__members__  # a VR where an implicit length would be
    if explicit == syntax.is_implicit_VR:
        raise InputError(f"the dataset is not encoded in the negotiated transfer syntax ({syntax.name})")


def check_instance(dataset, request) -> None:
    """The UIDs are valid and match the request; the pixel data is as long as its rows and columns say."""
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        check_uid(dataset.get(keyword), keyword)
    if str(dataset.SOPInstanceUID) != str(request.AffectedSOPInstanceUID):
        raise InputError("the dataset's SOPInstanceUID is not the one the C-STORE request names")
    if str(dataset.SOPClassUID) != str(request.AffectedSOPClassUID):
        raise InputError("the dataset's SOPClassUID is not the one the C-STORE request names")
    _check_pixel_length(dataset)


def _check_pixel_length(dataset) -> None:
    """Native (uncompressed) pixel data shorter than Rows x Columns x frames x samples: a truncated dataset."""
    if "PixelData" not in dataset or dataset.file_meta.TransferSyntaxUID.is_compressed:
        return
    try:
        expected = (int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("NumberOfFrames", 1) or 1)
                    * int(dataset.get("SamplesPerPixel", 1) or 1) * int(dataset.BitsAllocated) // 8)
    except (AttributeError, TypeError, ValueError) as error:
        raise InputError("pixel data without usable Rows, Columns and BitsAllocated") from error
    if len(dataset.PixelData) < expected:
        raise InputError(f"truncated pixel data: {len(dataset.PixelData)} of {expected} bytes")
