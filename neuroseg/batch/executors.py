"""Executors: where :func:`~neuroseg.batch.work.process_case` runs. They share that function and differ in
nothing else.

- ``serial``: in this process, one case after another.
- ``threads:N``: N threads in this process sharing one model; reading and writing overlap, the model
  computes one case at a time (as torch already spreads one case over the cores).
- ``processes:N``: a pool of N processes on this machine, each loading the model once.
- ``local:N``: a Dask ``LocalCluster`` of N worker processes (needs ``neuroseg[dask]``).
- ``tcp://HOST:PORT``: an existing Dask cluster; OUTDIR (and DIR) must be on a file system every worker sees.

Every executor offers ``submit(task) -> concurrent.futures.Future`` of the row, a ``window`` (how many
cases to keep in flight) and ``close()``; Dask's ``Client.get_executor()`` gives such futures.
"""

from __future__ import annotations

import os
import secrets
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from neuroseg.batch.work import Task, message, process_case
from neuroseg.errors import InputError, NeurosegError, OutputError

DASK_SCHEMES = ("tcp://", "tls://", "ucx://", "ws://", "wss://")  # the addresses a Dask scheduler listens on
DASK_HINT = "pip install 'neuroseg[dask]'"
_SEGMENTERS: dict = {}
_LOCK = threading.Lock()


def parse_scheduler(text: str | None, workers: int = 2) -> tuple[str, int | str]:
    """``--scheduler`` -> (kind, workers or address); None: ``threads`` with ``workers`` (0: serial)."""
    if text is None:
        return ("threads", workers) if workers else ("serial", 1)
    if text == "serial":
        return "serial", 1
    if text.startswith(DASK_SCHEMES):
        return "dask", text
    kind, _, count = text.partition(":")
    if kind in ("threads", "processes", "local") and count.isdigit() and int(count) > 0:
        return kind, int(count)
    raise InputError(f"Unknown --scheduler {text!r}: expected serial, threads:N, processes:N, local:N "
                     f"or a Dask scheduler address such as tcp://HOST:8786")


def open_executor(scheduler: str | None, workers: int, *, segmenter=None, model=None, device: str = "auto",
                  output=None):
    """The executor ``--scheduler`` names. ``segmenter``: an already loaded one (serial and threads only)."""
    kind, value = parse_scheduler(scheduler, workers)
    if kind in ("serial", "threads"):
        if segmenter is None:
            segmenter = worker_segmenter(model, device)
        return LocalExecutor(segmenter, value if kind == "threads" else 0)
    if kind == "processes":
        return ProcessExecutor(value, model, device)
    return DaskExecutor(value, model, device, output)


def worker_segmenter(model, device: str, threads: int | None = None):
    """This process's segmenter for (model, device), loaded on first use and kept."""
    key = (str(model) if model is not None else None, device)
    with _LOCK:
        if key not in _SEGMENTERS:
            if threads:  # N workers on one machine: each gets its share of the cores, not all of them
                import torch

                torch.set_num_threads(threads)
            from neuroseg.inference import Segmenter

            _SEGMENTERS[key] = Segmenter(model, device=device)
        return _SEGMENTERS[key]


def run_on_worker(task: Task, model, device: str, threads: int | None = None) -> dict:
    """The function a process pool or a Dask worker runs for each case."""
    try:
        segmenter = worker_segmenter(model, device, threads)
    except Exception as error:  # a model that cannot load fails the case with its reason
        return {"status": "failed", "error": message(error), "seconds": 0.0}
    return process_case(task, segmenter)


def _share_of_cores(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


class _OneAtATime:
    """A segmenter that computes one case at a time for threads that read and write side by side."""

    def __init__(self, segmenter):
        self.segmenter = segmenter
        self.lock = threading.Lock()

    def segment(self, volume, **options):
        with self.lock:
            return self.segmenter.segment(volume, **options)


class LocalExecutor:
    """serial (``threads=0``: each case runs when submitted) or a pool of threads sharing one segmenter."""

    retryable: tuple = ()

    def __init__(self, segmenter, threads: int):
        self.segmenter = _OneAtATime(segmenter) if threads else segmenter
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="neuroseg") if threads else None
        self.window = threads + 1 if threads else 1  # read a case ahead while the others compute and write
        self.describe = f"{threads} threads" if threads else "serial"

    def submit(self, task: Task) -> Future:
        if self.pool is not None:
            return self.pool.submit(process_case, task, self.segmenter)
        future = Future()
        future.set_result(process_case(task, self.segmenter))
        return future

    def close(self, cancel: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=cancel)


class ProcessExecutor:
    """A pool of worker processes on this machine (spawned, so torch's threads start clean)."""

    def __init__(self, workers: int, model, device: str):
        from concurrent.futures.process import BrokenProcessPool

        self.workers, self.model, self.device = workers, model, device
        self.retryable = (BrokenProcessPool,)  # a worker died: the pool is rebuilt and its cases resubmitted
        self.window = 2 * workers
        self.describe = f"{workers} processes"
        self.pool = self._new_pool()

    def _new_pool(self):
        """A pool whose every process has started and loaded the model (as a Dask cluster's workers have)."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_warm, initargs=(self.model, self.device,
                                                                _share_of_cores(self.workers)))
        try:
            list(pool.map(_pause, [0.5] * self.workers))  # a pause each, so that every process starts
        except BrokenProcessPool as error:
            pool.shutdown(wait=False, cancel_futures=True)
            raise NeurosegError(f"A worker process died as it started ({message(error)})") from error
        return pool

    def submit(self, task: Task) -> Future:
        """The case's future, from a pool that was whole once it held the case (a broken one is replaced)."""
        from concurrent.futures.process import BrokenProcessPool

        for _ in range(3):
            if self._broken():
                self._restart()
            try:
                future = self.pool.submit(run_on_worker, task, self.model, self.device,
                                          _share_of_cores(self.workers))
            except (BrokenProcessPool, RuntimeError):
                if not self._broken():
                    raise
                continue  # it broke between the check and the submit
            if not self._broken():  # broken as the case went in, it may be on no list: no one would fail it
                return future
        raise NeurosegError(f"The pool of {self.workers} worker processes breaks as soon as it starts")

    def _broken(self) -> bool:
        return bool(getattr(self.pool, "_broken", False))

    def _restart(self) -> None:
        """A worker died, and with it the pool (it fails every case it held): a new pool takes cases again."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()

    def close(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=True, cancel_futures=cancel)


class DaskExecutor:
    """A Dask cluster: ``address`` is ``tcp://HOST:PORT`` or, for a LocalCluster, a number of workers.

    Each worker loads the model once (up front, so a worker that cannot is reported at once) and keeps
    it; a worker that dies mid-case has its cases rescheduled on the others by Dask.
    """

    retryable: tuple = ()

    def __init__(self, address, model, device: str, output=None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise NeurosegError(f"--scheduler needs Dask: {DASK_HINT}") from None
        self.cluster = None
        self.threads = None
        if isinstance(address, int):
            self.threads = _share_of_cores(address)
            # ":0": any free port (None still takes 8787, and warns where another cluster holds it)
            self.cluster = LocalCluster(n_workers=address, threads_per_worker=1, processes=True,
                                        dashboard_address=":0", silence_logs=40)
            address = self.cluster.scheduler_address
        try:
            self.client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as error:
            self.close()
            raise NeurosegError(f"Cannot reach the Dask scheduler at {address}: {error}") from error
        self.address = address
        self.model, self.device = model, device
        try:
            self._prepare_workers(output)
        except BaseException:
            self.close()
            raise
        self.executor = self.client.get_executor(pure=False)
        workers = len(self.client.scheduler_info()["workers"])
        threads = sum(w["nthreads"] for w in self.client.scheduler_info()["workers"].values())
        self.window = 2 * threads
        self.describe = f"Dask at {address}, {workers} workers"

    def _prepare_workers(self, output) -> None:
        try:
            self.client.wait_for_workers(1, timeout=30)
        except TimeoutError:
            raise NeurosegError(f"No Dask worker joined the scheduler at {self.address} within 30 s") from None
        if output is not None:
            check_shared_output(self.client, Path(output))
        problems = self.client.run(_warm, self.model, self.device, self.threads)
        bad = {worker: why for worker, why in problems.items() if why}
        if bad:
            worker, why = next(iter(bad.items()))
            raise NeurosegError(f"{len(bad)} of {len(problems)} Dask workers cannot load the model "
                                f"(first, {worker}: {why})")

    def submit(self, task: Task) -> Future:
        return self.executor.submit(run_on_worker, task, self.model, self.device, self.threads)

    def close(self, cancel: bool = False) -> None:
        if getattr(self, "executor", None) is not None:
            self.executor.shutdown(wait=not cancel)
        if getattr(self, "client", None) is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _warm(model, device, threads):
    """Load the model on a worker (run there by ``Client.run``); the reason when it cannot."""
    try:
        worker_segmenter(model, device, threads)
    except Exception as error:
        return message(error)
    return None


def _pause(seconds: float) -> None:
    import time

    time.sleep(seconds)


def check_shared_output(client, output: Path) -> None:
    """Fail at once, with one line, when a Dask worker cannot see or write OUTDIR (it must be shared)."""
    token = secrets.token_hex(8)
    probe = output / f".neuroseg-probe-{token}"
    try:
        probe.write_text(token)
    except OSError as error:
        raise OutputError(f"Cannot write into {output}: {error.strerror or error}") from error
    try:
        answers = client.run(probe_output, str(output), probe.name, token)
    finally:
        probe.unlink(missing_ok=True)
    bad = {worker: why for worker, why in answers.items() if why}
    if bad:
        worker, why = next(iter(bad.items()))
        raise OutputError(f"{len(bad)} of {len(answers)} Dask workers cannot use {output} (first, {worker}: {why});"
                          f" OUTDIR must be a folder every worker sees (a shared file system)")


def probe_output(folder: str, name: str, token: str) -> str | None:
    """On a worker: None when ``folder`` is the coordinator's (the probe file reads back) and writable."""
    try:
        if (Path(folder) / name).read_text() != token:
            return "it sees another folder under that path"
    except OSError:
        return "it does not see the folder"
    check = Path(folder) / f"{name}.{os.getpid()}"
    try:
        check.write_text(token)
        check.unlink()
    except OSError as error:
        return f"it cannot write there ({error.strerror or error})"
    return None


__all__ = ["open_executor", "parse_scheduler", "process_case", "run_on_worker", "worker_segmenter",
           "check_shared_output", "probe_output", "LocalExecutor", "ProcessExecutor", "DaskExecutor"]
