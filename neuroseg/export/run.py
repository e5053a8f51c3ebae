"""One scan from input to output folder: read, check, segment, write. What ``neuroseg run`` and
``pull --run`` do; the commands add only the spinner and the printing."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from neuroseg.errors import InputError


def segment_into(input: Path, output: Path, *, model=None, device: str = "auto", probabilities: bool = False,
                 series: str | None = None, output_format: str = "nifti", force: bool = False,
                 force_input: bool = False, viewer: bool = True, secondary_capture: bool = False,
                 mesh: bool = False, status=lambda message: nullcontext()):
    """Segment ``input`` and write its outputs into ``output``; returns (result, written paths).

    ``status(message)`` is a context manager around each slow step (a spinner, for the console)."""
    from neuroseg.export.files import prepare_output_dir
    from neuroseg.export.writer import output_names, write_outputs

    if not input.exists():
        raise InputError(f"Input not found: {input}")
    check_options_fit_input(input, series, output_format, secondary_capture)
    if mesh:
        from neuroseg.export.mesh import require_mesh_extra

        require_mesh_extra()
    if output.exists() and not force:  # refuse before spending time on the model
        prepare_output_dir(output, output_names(output_format, probabilities, viewer, secondary_capture, mesh), force)
    from neuroseg.inference import Segmenter  # torch: seconds to import, so after the checks above

    with status("Loading model…"):
        segmenter = Segmenter(model, device=device, keep_probabilities=probabilities)
    with status(f"Segmenting {input}…"):
        result = segmenter.segment(input, series_uid=series, exclude=[output],  # -o may lie inside INPUT
                                   force_input=force_input)
    written = write_outputs(result, output, force=force, probabilities=probabilities, output_format=output_format,
                            viewer=viewer, secondary_capture=secondary_capture, mesh=mesh)
    return result, written


def check_options_fit_input(input: Path, series, output_format: str, secondary_capture: bool = False) -> None:
    """Refuse DICOM-only options for a file before the model spends seconds on it."""
    from neuroseg.export.writer import output_names

    output_names(output_format)  # an unknown --format is refused here too
    if input.is_dir():
        return
    if series is not None:
        raise InputError(f"--series picks a series from a DICOM folder; {input} is a file")
    if output_format != "nifti":
        raise InputError(f"--format {output_format} needs a DICOM input series to reference; "
                         f"{input} is a file: use --format nifti")
    if secondary_capture:
        raise InputError(f"--secondary-capture needs a DICOM input series; {input} is a file")
