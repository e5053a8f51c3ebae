"""Cost of writing one viewer.html: ``write_viewer`` timed over N runs on one real volume.

    python benchmarks/viewer_write.py                      # the sample FLAIR, segmented by the shipped model
    python benchmarks/viewer_write.py --volume /path/scan.nii.gz --runs 20 --json out.json

The volume is segmented once (not timed); then the page is written N times into a temporary
folder, in this one process, as ``run`` and ``batch`` write it. The first write is reported on its
own (it pays for whatever the process reads or builds once); the median is over all N writes.
Process CPU seconds are reported beside wall seconds: on a shared machine the wall time also
counts the waits for a core, the CPU time much less so.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data" / "TCGA-FG-6692_flair.nii.gz"


def time_writes(result, runs: int) -> tuple[list[float], list[float], int]:
    """Wall and CPU seconds of each of ``runs`` writes of the page, and the page's size in bytes."""
    from neuroseg.export.viewer import write_viewer

    wall, cpu = [], []
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "viewer.html"
        for _ in range(runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            write_viewer(result, page)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        return wall, cpu, page.stat().st_size


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volume", default=str(SAMPLE), help="a NIfTI file or DICOM folder")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the (untimed) segmentation")
    parser.add_argument("--json")
    args = parser.parse_args()

    import torch

    from neuroseg.inference import Segmenter

    torch.set_num_threads(args.threads)
    result = Segmenter(device="cpu").segment(args.volume, force_input=True)
    seconds, cpu, size = time_writes(result, args.runs)
    shape = "x".join(str(n) for n in result.image.array.shape)
    row = {"volume": Path(args.volume).name, "shape": shape, "runs": args.runs,
           "median_s": round(statistics.median(seconds), 4), "first_s": round(seconds[0], 4),
           "min_s": round(min(seconds), 4), "median_cpu_s": round(statistics.median(cpu), 4),
           "first_cpu_s": round(cpu[0], 4), "page_bytes": size,
           "input_checks": result.report.get("input_checks", {}).get("level"),
           "python": platform.python_version(), "machine": platform.machine(),
           "command": " ".join(["python", *sys.argv])}
    print(f"{row['volume']} {shape}: median {row['median_s']:.3f} s per page over {args.runs} writes "
          f"(first {row['first_s']:.3f} s, min {row['min_s']:.3f} s; CPU median {row['median_cpu_s']:.3f} s, "
          f"first {row['first_cpu_s']:.3f} s), page {size / 1e6:.2f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=1) + "\n")


if __name__ == "__main__":
    main()
