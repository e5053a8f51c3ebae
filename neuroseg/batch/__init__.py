"""Batch segmentation of whole folders, archives and BIDS datasets, in one process or on a Dask cluster.

- :mod:`~neuroseg.batch.cases`: finding cases and naming their folders;
- :mod:`~neuroseg.batch.bids`: BIDS datasets in, BIDS derivatives out;
- :mod:`~neuroseg.batch.resume`: what an earlier run completed;
- :mod:`~neuroseg.batch.plan`: the plan (cases, names, what is complete, this shard);
- :mod:`~neuroseg.batch.work`: ``process_case(task, segmenter) -> row``, the one unit of work;
- :mod:`~neuroseg.batch.executors`: serial, threads, processes, Dask;
- :mod:`~neuroseg.batch.summary`: the rows and ``summary.csv`` / ``summary.json``;
- :mod:`~neuroseg.batch.run`: ``run_batch``, which ties them together.
"""

from neuroseg.batch.cases import Case, assign_names, find_cases, safe_name
from neuroseg.batch.resume import is_complete
from neuroseg.batch.run import run_batch
from neuroseg.batch.summary import (DONE, FAILED, NOT_RUN, REUSED, SKIPPED, SUMMARY_CSV, SUMMARY_JSON, BatchResult,
                                    merge_shards, write_summary)

__all__ = ["run_batch", "merge_shards", "find_cases", "assign_names", "is_complete", "safe_name", "write_summary",
           "BatchResult", "Case", "SUMMARY_CSV", "SUMMARY_JSON", "DONE", "REUSED", "FAILED", "SKIPPED", "NOT_RUN"]
