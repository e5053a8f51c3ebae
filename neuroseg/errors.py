"""Error classes; each carries the exit code the CLI returns for it."""


def first_line(error, otherwise: str = "") -> str:
    """The first line of an error's message (or of any text), stripped; ``otherwise`` when it says nothing. An
    error becomes one line wherever it is shown: the console, a log, a summary row, another error's message."""
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else otherwise


class NeurosegError(Exception):
    """Base class: a problem the user can act on, reported as one line."""

    exit_code = 1


class InputError(NeurosegError):
    """The input is missing, unreadable or not a usable 3D image."""

    exit_code = 2


class OutputError(NeurosegError):
    """An output exists (without --force), or cannot be written."""

    exit_code = 3


class ModelError(NeurosegError):
    """The model folder is missing, incomplete, or its weights fail their hash."""

    exit_code = 4


class GeometryError(NeurosegError):
    """An internal geometry check failed: the output grid differs from the input's."""

    exit_code = 5


class BatchIncompleteError(NeurosegError):
    """A batch finished, but some cases failed."""

    exit_code = 6


class Interrupted(NeurosegError):
    """The user stopped the command (Ctrl-C)."""

    exit_code = 130
