"""The command line: a thin typer layer over library calls."""
