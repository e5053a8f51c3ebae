"""Write every output of one segmentation into a folder, atomically, refusing to overwrite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from neuroseg.errors import InputError
from neuroseg.export.files import prepare_output_dir
from neuroseg.io.atomic import all_or_nothing, atomic_write_text
from neuroseg.export.viewer import VIEWER_FILE
from neuroseg.io.outputs import REPORT_FILE, is_output_folder  # noqa: F401  (the readers own the test)
from neuroseg.threads import beside

MASK_FILE = "mask.nii.gz"
PROBABILITIES_FILE = "probabilities.nii.gz"
QC_FILE = "qc.png"
SEG_FILE = "seg.dcm"
SC_FILE = "sc.dcm"
FORMATS = ("nifti", "dicom-seg", "both")


def output_names(output_format: str = "nifti", probabilities: bool = False, viewer: bool = True,
                 secondary_capture: bool = False, mesh: bool = False) -> list[str]:
    if output_format not in FORMATS:
        raise InputError(f"Unknown --format {output_format!r}: expected one of {', '.join(FORMATS)}")
    names = [REPORT_FILE, QC_FILE]
    if output_format in ("nifti", "both"):
        names.insert(0, MASK_FILE)
    if output_format in ("dicom-seg", "both"):
        names.insert(0, SEG_FILE)
    if probabilities:
        names.append(PROBABILITIES_FILE)
    if viewer:
        names.append(VIEWER_FILE)
    if secondary_capture:
        names.append(SC_FILE)
    if mesh:
        from neuroseg.export.mesh import MESH_FILES

        names += list(MESH_FILES)
        if SEG_FILE in names:  # the mesh goes to the PACS with the SEG
            from neuroseg.export.dicom_stl import STL_DICOM_FILE

            names.append(STL_DICOM_FILE)
    return names


def _once(function, *args):
    """A callable giving ``function(*args)``, computed at the first call only; a call from another thread
    meanwhile waits for it."""
    import threading

    lock, value = threading.Lock(), []

    def once():
        with lock:
            if not value:
                value.append(function(*args))
        return value[0]

    return once


def write_outputs(result, folder, force: bool = False, probabilities: bool = False,
                  output_format: str = "nifti", viewer: bool = True, secondary_capture: bool = False,
                  listed_as: dict | None = None, also_listed=(), mesh: bool = False) -> list[Path]:
    """Write mask / SEG / probabilities / QC picture / viewer page, then the report naming them all.

    ``listed_as``: the name each file will have where the caller moves it (batch's BIDS names), as the
    report lists it; ``also_listed``: files the caller writes beside them, listed too.
    """
    from concurrent.futures import wait

    from neuroseg.export.nifti import write_nifti
    from neuroseg.export.qc import display_window, render_qc, window_is_orderless
    from neuroseg.inference.report import build_report

    names = output_names(output_format, probabilities, viewer, secondary_capture, mesh)
    if mesh:
        from neuroseg.export.mesh import require_mesh_extra

        require_mesh_extra()  # before anything is written
    if SEG_FILE in names and result.image.meta.get("format") != "dicom":
        raise InputError("DICOM-SEG output needs a DICOM input series to reference; use --format nifti")
    if secondary_capture and result.image.meta.get("format") != "dicom":
        raise InputError("--secondary-capture needs a DICOM input series (its study holds the picture)")
    folder = prepare_output_dir(folder, names, force)
    with all_or_nothing():  # a failure takes back what this call wrote; --force's old files return
        written = []
        if SEG_FILE in names:
            from neuroseg.export.dicom_seg import write_dicom_seg

            written.append(write_dicom_seg(result, folder / SEG_FILE))
        if MASK_FILE in names:
            written.append(write_nifti(result.mask, folder / MASK_FILE, np.uint8))
        if probabilities:
            if result.probabilities is None:
                raise InputError("Probabilities were not kept; segment with keep_probabilities=True")
            written.append(write_nifti(result.probabilities, folder / PROBABILITIES_FILE, np.float32))
        # The QC picture is drawn in a second thread while this one writes the mesh and the page: both
        # spend their time in numpy, gzip (isal or zlib) and PIL, which let go of the GIL (one core each).
        # Their display window is computed once (by the picture, which needs it first) where the picture's
        # reoriented scan and the page's cannot differ in it: volumes under 2 M voxels, all of them taken.
        image = result.image.array
        window = _once(display_window, image) if window_is_orderless(image) else None
        picture, place = beside(render_qc, result, folder / QC_FILE, window), len(written)
        try:
            # built once, for the page and report.json (each build passes over the whole mask); its files
            # are listed at the end, when they are written
            report = build_report(result)
            mesh_section = None
            if mesh:  # before the viewer, which shows tumour.gii in its 3D pane
                from neuroseg.export.mesh import GIFTI_FILE, write_tumour_mesh

                paths, mesh_section = write_tumour_mesh(result.mask, folder)
                written += paths
                if SEG_FILE in names:
                    from neuroseg.export.dicom_stl import STL_DICOM_FILE, write_encapsulated_stl
                    from neuroseg.export.mesh import STL_FILE

                    written.append(write_encapsulated_stl(result, folder / STL_FILE, folder / STL_DICOM_FILE))
            if viewer:
                from neuroseg.export.viewer import write_viewer

                written.append(write_viewer(result, folder / VIEWER_FILE,
                                            mesh_file=folder / GIFTI_FILE if mesh else None, report=report,
                                            window=window))
        except BaseException:
            wait([picture])  # its file must land before all_or_nothing takes the others back
            raise
        written.insert(place, picture.result())  # listed where it always was, after the mask
        if secondary_capture:
            from neuroseg.export.secondary_capture import write_secondary_capture

            written.append(write_secondary_capture(result, folder / QC_FILE, folder / SC_FILE))
        listed_as = listed_as or {}
        listed = [listed_as.get(p.name, p.name) for p in written] + [listed_as.get(REPORT_FILE, REPORT_FILE)]
        listed += list(also_listed)
        report["files"] = listed
        if mesh_section is not None:
            report["mesh"] = mesh_section
            report["warnings"] += mesh_section["warnings"]
        written.append(atomic_write_text(folder / REPORT_FILE, json.dumps(report, indent=2) + "\n"))
    return written
