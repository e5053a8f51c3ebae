"""``run_batch``: plan, hand the cases to an executor, collect the rows, write the summaries.

The progress bar, the summaries, the exit status, the isolation of failures and the resume rules are
the same whichever executor runs the cases.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, CancelledError, wait
from dataclasses import replace
from pathlib import Path

from neuroseg.batch.plan import parse_shard, plan_batch
from neuroseg.batch.resume import remove_stale_parts
from neuroseg.batch.summary import DONE, FAILED, BatchResult, merge_shards, write_summary
from neuroseg.batch.work import message
from neuroseg.errors import OutputError

RETRIES = 2  # a case whose worker process died is tried this many more times, alone (Dask counts its own)


def run_batch(folder, output, *, model=None, device: str = "auto", segmenter=None, output_format: str = "nifti",
              series_uids=(), force: bool = False, workers: int = 2, scheduler: str | None = None,
              shard=None, console=None, on_case=None, force_input: bool = False, viewer: bool = True,
              mesh: bool = False) -> BatchResult:
    """Segment every case under ``folder`` into ``output``; write the summaries; return the rows.

    ``scheduler``: where cases run (:mod:`neuroseg.batch.executors`); None: ``workers`` threads in this
    process (0: one case after another). ``shard``: ``"K/N"`` or (K, N), this run's share of the cases.
    ``console``: a rich Console for the progress bar (None: no bar). ``on_case(row)`` after each case.
    ``force_input``: segment cases an input check refuses (otherwise they fail with its line).
    ``viewer``: write each case's viewer page (and link it from index.html). ``mesh``: the tumour surfaces too.
    """
    if mesh:
        from neuroseg.export.mesh import require_mesh_extra

        require_mesh_extra()  # one line now, not a failure in every case
    start = time.perf_counter()
    shard = parse_shard(shard) if isinstance(shard, str) else shard
    plan = plan_batch(folder, output, output_format=output_format, series_uids=series_uids, force=force,
                      shard=shard, viewer=viewer, mesh=mesh)
    if force_input:
        plan.tasks = [replace(task, force_input=True) for task in plan.tasks]
    output = Path(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"Cannot create output folder {output}: {error.strerror}") from error
    if plan.bids:
        from neuroseg.batch.bids import model_identity, write_description

        write_description(output, Path(folder), *model_identity(getattr(getattr(segmenter, "model", None), "path",
                                                                        model)))
    result = BatchResult(ignored=plan.ignored, skipped_files=plan.skipped_files, shard=plan.shard, order=plan.order)
    try:
        if plan.tasks:
            _clean(plan.tasks)
            from neuroseg.batch.executors import open_executor

            executor = open_executor(scheduler, workers, segmenter=segmenter, model=model, device=device,
                                     output=output)
            try:
                _collect(plan, executor, console, on_case)
            finally:
                _clean(plan.tasks)
    finally:
        result.rows = [plan.rows[case.name] for case in plan.cases]
        result.seconds = time.perf_counter() - start
        write_summary(result, output)
    return result


def _clean(tasks) -> None:
    """Remove what interrupted writes left; only here, while no worker writes (see remove_stale_parts)."""
    for folder in {task.paths.folder for task in tasks}:
        remove_stale_parts(folder)


def _collect(plan, executor, console, on_case) -> None:
    """Keep ``executor.window`` cases in flight; fill each case's row as it finishes."""
    progress = _progress(console)
    bar = progress.add_task(f"Segmenting ({executor.describe})", total=len(plan.tasks)) if progress else None
    pending, running, tries = iter(plan.tasks), {}, {}
    # cases whose worker process died; a dead process fails every case its pool held, so these run
    # again one at a time, and a case that kills its worker each time fails alone, not its neighbours
    suspects = deque()
    cancel = True
    try:
        if progress:
            progress.start()
        while True:
            _fill(executor, running, pending, suspects)
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                row = _row_of(future, executor.retryable)
                if row is None and tries.get(task.case.name, 0) < RETRIES:  # its worker died: again
                    tries[task.case.name] = tries.get(task.case.name, 0) + 1
                    suspects.append(task)
                    continue
                plan.rows[task.case.name].update(row or _died(future))
                if progress:
                    progress.advance(bar)
                if on_case is not None:
                    on_case(plan.rows[task.case.name])
        cancel = False
    finally:
        executor.close(cancel=cancel)
        if progress:
            progress.stop()


def _fill(executor, running: dict, pending, suspects: deque) -> None:
    """Submit cases up to the executor's window; a suspect only alone, once the others have finished."""
    if suspects:
        if not running:
            task = suspects.popleft()
            running[executor.submit(task)] = task
        return
    while len(running) < executor.window and (task := next(pending, None)) is not None:
        running[executor.submit(task)] = task


def _row_of(future, retryable: tuple) -> dict | None:
    """The row a finished future holds; None when its worker died (``retryable``: the executor's word for it)."""
    try:
        return future.result()
    except CancelledError:
        return {"status": FAILED, "error": "cancelled"}
    except Exception as error:
        if retryable and isinstance(error, retryable):
            return None
        return {"status": FAILED, "error": message(error)}  # e.g. Dask's KilledWorker after its retries


def _died(future) -> dict:
    return {"status": FAILED, "error": f"its worker process died ({message(future.exception())})"}


def _progress(console):
    if console is None:
        return None
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True)


__all__ = ["run_batch", "merge_shards", "DONE"]
