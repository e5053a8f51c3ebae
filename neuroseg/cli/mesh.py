"""``neuroseg mesh``: the tumour surface and measurements of an existing mask. Heavy imports live in the command."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app, friendly_errors) -> None:
    """Add the ``mesh`` command to ``app``."""

    @app.command()
    @friendly_errors
    def mesh(
        mask: Path = typer.Argument(..., metavar="MASK", help="A tumour mask (NIfTI; non-zero is tumour)."),
        output: Path = typer.Option(..., "-o", "--output", help="Folder for tumour.stl/.obj/.gii and lesions.json."),
        force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
    ):
        """Write the tumour surface of MASK: tumour.stl and tumour.obj (LPS mm, tagged SPACE=LPS for 3D Slicer),
        tumour.gii (RAS mm), and lesions.json (per-lesion measurements and the mesh checks)."""
        from rich.console import Console

        from neuroseg.errors import InputError
        from neuroseg.export.mesh import mesh_mask_file

        if not mask.exists():
            raise InputError(f"Input not found: {mask}")
        console = Console()
        written, measurements, warnings = mesh_mask_file(mask, output, force=force)
        console.print(f"lesions: {measurements.summary()}", soft_wrap=True, highlight=False)
        for warning in warnings:
            console.print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True)
        for path in written:
            console.print(f"  wrote {path}", soft_wrap=True)
