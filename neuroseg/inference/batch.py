"""Batch segmentation now lives in :mod:`neuroseg.batch`; these names stay importable from here."""

from neuroseg.batch import (DONE, FAILED, NOT_RUN, REUSED, SKIPPED, SUMMARY_CSV, SUMMARY_JSON, BatchResult,  # noqa: F401
                            Case, assign_names, find_cases, is_complete, merge_shards, run_batch, safe_name,
                            write_summary)

__all__ = ["run_batch", "merge_shards", "find_cases", "assign_names", "is_complete", "safe_name", "write_summary",
           "BatchResult", "Case", "SUMMARY_CSV", "SUMMARY_JSON"]
