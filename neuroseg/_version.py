"""The one source of neuroseg's version: the installed package's metadata (a module of its own, so the
exporters need not import the root package)."""


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neuroseg")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+unknown"


__version__ = _installed_version()
