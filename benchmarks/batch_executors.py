"""The batch executors side by side, one worker against two, in one run, on the same volumes.

    python benchmarks/batch_executors.py                    # 12 lgg-flair volumes, CPU, every executor
    python benchmarks/batch_executors.py --volumes 24 --json out.json
    python benchmarks/batch_executors.py --schedulers serial,local:1,local:2

For each executor: ``start`` is opening it (spawning worker processes, importing torch there, loading
the model on each); ``batch`` is the cases themselves, timed from the first case handed out to the
last row back; throughput = volumes / batch seconds. Full outputs (mask, report, QC) are written.
Volumes: the first N of ../shared/data/lgg-flair/imagesTr, or copies of the sample scan without it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
LGG = REPO.parent / "shared" / "data" / "lgg-flair" / "imagesTr"
SAMPLE = REPO / "sample_data" / "TCGA-FG-6692_flair.nii.gz"
SCHEDULERS = "serial,threads:2,processes:1,processes:2,local:1,local:2"


def inputs(folder: Path, count: int) -> str:
    """N volumes in ``folder`` (links to lgg-flair, or copies of the sample scan)."""
    folder.mkdir(parents=True)
    sources = sorted(LGG.glob("*.nii.gz"))[:count] if LGG.is_dir() else []
    for k in range(count):
        source = sources[k] if k < len(sources) else SAMPLE
        os.symlink(source.resolve(), folder / f"v{k:03d}.nii.gz")
    return "lgg-flair" if len(sources) == count else "copies of the sample scan"


def time_executor(scheduler: str, folder: Path, out: Path, device: str) -> dict:
    from neuroseg.batch.executors import open_executor
    from neuroseg.batch.plan import plan_batch
    from neuroseg.batch.run import _collect

    plan = plan_batch(folder, out)
    out.mkdir(parents=True)
    begin = time.perf_counter()
    executor = open_executor(scheduler, 2, device=device, output=out)
    started = time.perf_counter()
    _collect(plan, executor, None, None)  # closes the executor
    finished = time.perf_counter()
    statuses = sorted({row["status"] for row in plan.rows.values()})
    n = len(plan.tasks)
    return {"scheduler": scheduler, "volumes": n, "start_s": round(started - begin, 2),
            "batch_s": round(finished - started, 2), "volumes_per_s": round(n / (finished - started), 3),
            "statuses": statuses}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=12)
    parser.add_argument("--schedulers", default=SCHEDULERS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=2, help="Rounds over the executors, every other one in "
                        "reverse order, so that a busy spell of a shared machine does not fall on one executor.")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import torch

    work = Path(tempfile.mkdtemp(prefix="neuroseg-bench-"))
    try:
        source = inputs(work / "in", args.volumes)
        print(f"device {args.device}; {os.cpu_count()} CPUs; torch {torch.__version__}; python "
              f"{platform.python_version()}; {args.volumes} volumes ({source}); shipped model; full outputs")
        rows, order = [], args.schedulers.split(",")
        for round_ in range(args.rounds):
            for scheduler in order if round_ % 2 == 0 else order[::-1]:
                row = time_executor(scheduler, work / "in", work / f"out-{len(rows)}", args.device)
                rows.append({**row, "round": round_ + 1})
                print(f"round {round_ + 1}  {scheduler:14s} start {row['start_s']:6.2f} s   batch {row['batch_s']:6.2f} s"
                      f"   {row['volumes_per_s']:6.3f} volumes/s   {row['statuses']}", flush=True)
        by_name = {name: sum(r["batch_s"] for r in rows if r["scheduler"] == name) for name in order}
        print(f"all rounds together ({args.rounds} x {args.volumes} volumes each):")
        for name in order:
            print(f"  {name:14s} {args.rounds * args.volumes / by_name[name]:6.3f} volumes/s")
        for one, two in (("serial", "threads:2"), ("processes:1", "processes:2"), ("local:1", "local:2")):
            if one in by_name and two in by_name:
                print(f"{two} / {one}: {by_name[one] / by_name[two]:.2f}x")
        if args.json:
            args.json.write_text(json.dumps({"device": args.device, "cpus": os.cpu_count(), "source": source,
                                             "rows": rows}, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
