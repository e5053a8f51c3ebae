"""``python -m neuroseg``: the same command line as ``neuroseg``."""

from neuroseg.cli.main import main

if __name__ == "__main__":  # worker processes (process pool, Dask) import this module again: run nothing then
    main()
