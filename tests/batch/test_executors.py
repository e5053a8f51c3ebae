"""The executors (serial, threads, processes, Dask) give the plain batch's outputs and summary; a worker
killed mid-case is retried; two writers of one case leave one complete set."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import warnings
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

import pytest

from neuroseg.batch import is_complete, run_batch
from neuroseg.batch.executors import parse_scheduler, probe_output
from neuroseg.errors import InputError
from tests.batch.helpers import (comparable_outputs, comparable_summary, leftovers, model_loads, slow_qc,
                                 die_in_qc, warm_slowly)
from tests.inference.test_batch import OUTPUTS, mixed_folder, write_nifti


@pytest.fixture(scope="module")
def plain(tmp_path_factory, tiny_model):
    """A mixed batch (NIfTI, DICOM, a corrupt file, a gappy series, a T1-only study) done by the plain batch."""
    root = tmp_path_factory.mktemp("mixed")
    mixed_folder(root / "in")
    run_batch(root / "in", root / "plain", model=tiny_model, device="cpu", output_format="both")
    return root


def test_scheduler_names():
    assert parse_scheduler(None, 2) == ("threads", 2) and parse_scheduler(None, 0) == ("serial", 1)
    assert parse_scheduler("local:3") == ("local", 3) and parse_scheduler("processes:2") == ("processes", 2)
    assert parse_scheduler("tcp://10.0.0.1:8786") == ("dask", "tcp://10.0.0.1:8786")
    for bad in ("local", "local:0", "ray://x", "threads:two"):
        with pytest.raises(InputError, match="Unknown --scheduler"):
            parse_scheduler(bad)


def test_serial_and_threads_give_the_plain_batch(plain, tiny_model):
    for scheduler in ("serial", "threads:3"):
        out = plain / scheduler.replace(":", "")
        result = run_batch(plain / "in", out, model=tiny_model, device="cpu", output_format="both",
                           scheduler=scheduler)
        assert result.failed == 2
        assert comparable_summary(out) == comparable_summary(plain / "plain")
        assert comparable_outputs(out) == comparable_outputs(plain / "plain")


@pytest.mark.slow  # a process pool
def test_process_pool_gives_the_plain_batch(plain, tiny_model):
    out = plain / "processes"
    run_batch(plain / "in", out, model=tiny_model, device="cpu", output_format="both", scheduler="processes:2")
    assert comparable_summary(out) == comparable_summary(plain / "plain")
    assert comparable_outputs(out) == comparable_outputs(plain / "plain")
    again = run_batch(plain / "in", out, model=tiny_model, device="cpu", output_format="both",
                      scheduler="processes:2")  # resume works across executors
    assert again.count("done earlier") == 4 and again.count("done") == 0


@pytest.mark.slow  # a Dask LocalCluster
def test_local_dask_cluster_gives_the_plain_batch(plain, tiny_model):
    pytest.importorskip("distributed", reason="needs the dask extra: pip install 'neuroseg[dask]'")
    out = plain / "dask"
    with _port_taken(8787), warnings.catch_warnings(record=True) as caught:  # as where a cluster runs already
        warnings.simplefilter("always")
        result = run_batch(plain / "in", out, model=tiny_model, device="cpu", output_format="both",
                           scheduler="local:2")
    assert not [w for w in caught if "already in use" in str(w.message)], [str(w.message) for w in caught]
    assert result.failed == 2 and result.total_line().startswith("7 cases: 4 done, 2 failed, 1 skipped")
    assert comparable_summary(out) == comparable_summary(plain / "plain")
    assert comparable_outputs(out) == comparable_outputs(plain / "plain")
    assert (out / "summary.csv").read_text().splitlines()[0] == (plain / "plain" / "summary.csv").read_text(
    ).splitlines()[0]
    # resume: a rerun on threads reuses what the cluster wrote
    assert run_batch(plain / "in", out, model=tiny_model, device="cpu", output_format="both").count(
        "done earlier") == 4


@contextmanager
def _port_taken(port: int):
    """Hold ``port`` on this machine for the block (when something else holds it already, so much the better)."""
    holder = socket.socket()
    try:
        holder.bind(("", port))
        holder.listen()
    except OSError:
        pass
    try:
        yield
    finally:
        holder.close()


@pytest.mark.slow  # a Dask LocalCluster
def test_a_worker_killed_mid_case_is_retried_elsewhere(tmp_path, tiny_model):
    distributed = pytest.importorskip("distributed", reason="needs the dask extra: pip install 'neuroseg[dask]'")
    for n in range(4):
        write_nifti(tmp_path / "in" / f"case{n}.nii.gz")
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        client.run(slow_qc, str(markers))
        results, errors = [], []

        def batch():
            try:
                results.append(run_batch(tmp_path / "in", out, model=tiny_model, device="cpu",
                                         scheduler=cluster.scheduler_address))
            except BaseException as error:  # reported below
                errors.append(error)

        thread = threading.Thread(target=batch)
        thread.start()
        deadline = time.time() + 90
        while time.time() < deadline and not any(markers.iterdir()):
            time.sleep(0.05)
        first = next(markers.iterdir())
        pid, case = int(first.name.split("-")[0]), first.name.split("-", 1)[1]
        assert (out / case / "mask.nii.gz").exists() and not (out / case / "report.json").exists()
        os.kill(pid, signal.SIGKILL)  # in the middle of the case: mask written, QC and report not
        thread.join(120)
        assert not thread.is_alive() and not errors, errors
        assert pid not in client.run(os.getpid).values()  # that worker is gone (its nanny started another)
        loads = sorted(client.run(model_loads).values())  # each worker loads the model once and keeps it
        assert loads[-1] == 1 and loads[0] in (0, 1), loads
    result = results[0]
    assert {row["case"]: row["status"] for row in result.rows} == {f"case{n}": "done" for n in range(4)}
    assert_four_complete_cases(out)


def assert_four_complete_cases(out: Path) -> None:
    """Nothing lost, nothing twice, every output complete, no temporary file left."""
    assert sorted(p.name for p in out.iterdir()) == [f"case{n}" for n in range(4)] + ["index.html",
                                                                                        "summary.csv", "summary.json"]
    for n in range(4):
        assert {p.name for p in (out / f"case{n}").iterdir()} == OUTPUTS
        assert is_complete(out / f"case{n}", "nifti")
    assert leftovers(out) == []


def _kill_first_marked_worker(out: Path, markers: Path, timeout: float = 90) -> tuple[int, str]:
    """SIGKILL the first worker that marks a case in QC (mask written, report not); its pid and case."""
    deadline = time.time() + timeout
    while time.time() < deadline and not any(markers.iterdir()):
        time.sleep(0.05)
    first = next(markers.iterdir())
    pid, case = int(first.name.split("-")[0]), first.name.split("-", 1)[1]
    assert (out / case / "mask.nii.gz").exists() and not (out / case / "report.json").exists()
    os.kill(pid, signal.SIGKILL)
    return pid, case


@pytest.mark.slow  # process pools whose workers are killed
def test_a_process_pool_worker_killed_mid_case_is_retried(tmp_path, tiny_model, monkeypatch):
    from functools import partial

    import neuroseg.batch.executors as executors

    for n in range(4):
        write_nifti(tmp_path / "in" / f"case{n}.nii.gz")
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    run_batch(tmp_path / "in", tmp_path / "serial", model=tiny_model, device="cpu", scheduler="serial")
    # each spawned worker imports the initializer by name and slows its QC pictures down
    monkeypatch.setattr(executors, "_warm", partial(warm_slowly, str(markers)))
    results, errors = [], []

    def batch():
        try:
            results.append(run_batch(tmp_path / "in", out, model=tiny_model, device="cpu",
                                     scheduler="processes:2"))
        except BaseException as error:  # reported below
            errors.append(error)

    thread = threading.Thread(target=batch)
    thread.start()
    pid, case = _kill_first_marked_worker(out, markers)
    thread.join(180)
    assert not thread.is_alive() and not errors, errors
    redone = {int(p.name.split("-")[0]) for p in markers.iterdir() if p.name.split("-", 1)[1] == case}
    assert pid in redone and len(redone) >= 2, redone  # the killed case ran again, in another process
    assert {row["case"]: row["status"] for row in results[0].rows} == {f"case{n}": "done" for n in range(4)}
    assert_four_complete_cases(out)
    assert comparable_summary(out) == comparable_summary(tmp_path / "serial")
    assert comparable_outputs(out) == comparable_outputs(tmp_path / "serial")


@pytest.mark.slow  # process pools whose workers are killed
def test_a_case_that_kills_its_worker_each_time_fails_alone(tmp_path, tiny_model, monkeypatch):
    from functools import partial

    import neuroseg.batch.executors as executors
    from neuroseg.batch.run import RETRIES

    for name in ("deadly", "safe1", "safe2", "safe3", "safe4"):  # the deadly one first: the others wait behind it
        write_nifti(tmp_path / "in" / f"{name}.nii.gz")
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    run_batch(tmp_path / "in", tmp_path / "serial", model=tiny_model, device="cpu", scheduler="serial")
    monkeypatch.setattr(executors, "_warm", partial(die_in_qc, "deadly", str(markers)))
    result = run_batch(tmp_path / "in", out, model=tiny_model, device="cpu", scheduler="processes:2")
    rows = {row["case"]: row for row in result.rows}
    assert {case: row["status"] for case, row in rows.items()} == {
        "deadly": "failed", "safe1": "done", "safe2": "done", "safe3": "done", "safe4": "done"}
    assert rows["deadly"]["error"].startswith("its worker process died") and "\n" not in rows["deadly"]["error"]
    attempts = [p for p in markers.iterdir() if p.name.endswith("-deadly")]
    assert len(attempts) == 1 + RETRIES, attempts  # tried a bounded number of times (each on a new pool)
    assert not is_complete(out / "deadly", "nifti") and not (out / "deadly" / "report.json").exists()
    assert leftovers(out) == []
    for n in range(1, 5):
        assert {p.name for p in (out / f"safe{n}").iterdir()} == OUTPUTS
    serial = {row["case"]: row for row in comparable_summary(tmp_path / "serial")}
    assert [row for row in comparable_summary(out) if row["case"] != "deadly"] == [
        serial[f"safe{n}"] for n in range(1, 5)]
    monkeypatch.undo()  # a rerun in healthy workers finishes the case the dead ones left half-written
    again = run_batch(tmp_path / "in", out, model=tiny_model, device="cpu", scheduler="processes:2")
    assert again.count("done earlier") == 4 and again.count("done") == 1
    assert comparable_summary(out)[0] == serial["deadly"]


class _Pool:
    """A stand-in process pool that breaks in submit (``breaks``: "raising" or "after") or never."""

    def __init__(self, breaks=None):
        self.breaks, self._broken, self.cases, self.closed = breaks, False, [], False

    def submit(self, fn, task, *args):
        from concurrent.futures.process import BrokenProcessPool

        if self.breaks == "raising":
            self._broken = "a child process terminated abruptly"
            raise BrokenProcessPool(self._broken)
        self.cases.append(task)
        self._broken = self.breaks == "after" and "a child process terminated abruptly"
        return Future()

    def shutdown(self, wait=True, cancel_futures=False):
        self.closed = True


@pytest.mark.parametrize("breaks", ["raising", "after"])
def test_a_pool_that_breaks_as_a_case_goes_in_is_replaced_and_the_case_resubmitted(breaks, monkeypatch):
    from neuroseg.batch.executors import ProcessExecutor

    fresh = []
    monkeypatch.setattr(ProcessExecutor, "_new_pool", lambda self: fresh.append(_Pool()) or fresh[-1])
    executor = ProcessExecutor.__new__(ProcessExecutor)
    executor.workers, executor.model, executor.device = 2, None, "cpu"
    executor.pool = broken = _Pool(breaks)
    executor.submit("case")
    assert broken.closed and len(fresh) == 1 and fresh[0].cases == ["case"] and executor.pool is fresh[0]
    executor.submit("next")  # the new pool is whole: it is kept
    assert len(fresh) == 1 and fresh[0].cases == ["case", "next"]


def test_a_pool_that_always_breaks_is_one_line(monkeypatch):
    from neuroseg.batch.executors import ProcessExecutor
    from neuroseg.errors import NeurosegError

    monkeypatch.setattr(ProcessExecutor, "_new_pool", lambda self: _Pool("after"))
    executor = ProcessExecutor.__new__(ProcessExecutor)
    executor.workers, executor.model, executor.device, executor.pool = 2, None, "cpu", _Pool("after")
    with pytest.raises(NeurosegError, match="The pool of 2 worker processes breaks as soon as it starts"):
        executor.submit("case")


def test_a_worker_that_cannot_see_outdir_is_named(tmp_path):
    (tmp_path / "probe").write_text("token")
    assert probe_output(str(tmp_path), "probe", "token") is None
    assert probe_output(str(tmp_path), "probe", "other") == "it sees another folder under that path"
    assert probe_output(str(tmp_path / "elsewhere"), "probe", "token") == "it does not see the folder"


def test_two_writers_of_one_case_leave_one_complete_set(tmp_path, tiny_model):
    from neuroseg.batch.plan import plan_batch
    from neuroseg.batch.run import _clean
    from neuroseg.batch.work import process_case
    from neuroseg.inference import Segmenter

    write_nifti(tmp_path / "in" / "scan.nii.gz")
    plan = plan_batch(tmp_path / "in", tmp_path / "out")
    (task,) = plan.tasks
    segmenter = Segmenter(tiny_model, device="cpu")
    start, rows = threading.Barrier(3), []

    def write():
        start.wait()
        rows.append(process_case(task, segmenter))

    threads = [threading.Thread(target=write) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    _clean(plan.tasks)
    assert [row["status"] for row in rows] == ["done"] * 3, rows
    case_dir = Path(task.paths.folder)
    assert {p.name for p in case_dir.iterdir()} == OUTPUTS and is_complete(case_dir, "nifti", task.case)
    assert leftovers(tmp_path / "out") == []


def test_without_dask_the_scheduler_says_what_to_install(tmp_path, tiny_model, monkeypatch):
    import sys

    from neuroseg.errors import NeurosegError

    write_nifti(tmp_path / "in" / "scan.nii.gz")
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    with pytest.raises(NeurosegError, match=r"--scheduler needs Dask: pip install 'neuroseg\[dask\]'"):
        run_batch(tmp_path / "in", tmp_path / "out", model=tiny_model, device="cpu", scheduler="local:2")
