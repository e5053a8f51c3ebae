"""How close a GPU batch gets to the goal of 50 clinical volumes/s: the levers side by side, in one run.

    python benchmarks/gpu_batch.py                      # CUDA, 64 lgg-flair volumes, all stages (< 3 min on an H100)
    python benchmarks/gpu_batch.py --volumes 32 --decoders 12 --json gpu.json
    python benchmarks/gpu_batch.py --device cpu --volumes 4 --decoders 2   # a dry run of the code paths

Stages (each on the same volumes, model loaded once, CUDA synchronised before every clock read):

A. ``run_batch`` as users run it (threads:2, full outputs: mask, report, QC PNG) -- the baseline.
B. decode in a pool of processes (``--decoders``), segment with the public ``Segmenter.segment`` in
   this process, write behind in threads, full outputs.
C. as B with cheap outputs: the mask (gzip level 1) and the report only, no QC PNG.
D. the networks' ceiling with several volumes per forward pass: the pool decodes *and preprocesses*
   (reorient, head crop, resize, normalise, context channels: neuroseg.transforms), this process
   copies each volume's slices from pinned memory (non-blocking) and runs the classifier and the
   segmenter on batches of ``--slices-per-pass`` slices drawn from several volumes, bf16 autocast.
   D produces no masks: it measures the GPU work when nothing else is on its path (every slice is
   segmented, as if the gate passed them all, so it is an upper bound on the network time).

Pinned memory, several volumes per pass and GPU preprocessing inside ``Segmenter.segment`` need changes
to the network-running part of inference/engine.py; D measures what they would be worth first.
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
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
LGG = REPO.parent / "shared" / "data" / "lgg-flair" / "imagesTr"
SAMPLE = REPO / "sample_data" / "TCGA-FG-6692_flair.nii.gz"
GOAL = 50.0


def volumes(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    sources = sorted(LGG.glob("*.nii.gz")) if LGG.is_dir() else [SAMPLE]
    paths = []
    for k in range(count):
        link = folder / f"v{k:03d}.nii.gz"
        os.symlink(sources[k % len(sources)].resolve(), link)
        paths.append(link)
    return paths


# ----------------------------------------------------------------- pool workers (module level: picklable)

def decode(path: str):
    from neuroseg.io import load_volume

    return load_volume(path)


def decode_and_prepare(path: str, size: int, context: int):
    """Decode and preprocess one volume on a CPU worker: (N, 2c+1, size, size) float16, ready to copy."""
    import numpy as np
    import torch

    from neuroseg.io import load_volume
    from neuroseg.transforms import Reorientation, fit_head_crop, normalise_intensity
    from neuroseg.transforms.context import with_context

    torch.set_num_threads(1)
    volume = load_volume(path)
    reorientation = Reorientation.to_working(volume)
    working = reorientation.apply_volume(volume)
    crop = fit_head_crop(working, size)
    slices = torch.from_numpy(normalise_intensity(crop.apply(working.array).numpy()))
    stacked = with_context(slices, np.arange(slices.shape[0]), context)
    return stacked.to(torch.float16).numpy()


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _warm_pool(pool, n: int) -> None:
    list(pool.map(_pause, [0.5] * n))  # start every worker before the clock


# ----------------------------------------------------------------- stages

def stage_run_batch(paths, out: Path, device: str, segmenter) -> float:
    from neuroseg.batch import run_batch

    begin = time.perf_counter()
    result = run_batch(paths[0].parent, out, segmenter=segmenter, device=device, scheduler="threads:2")
    assert result.failed == 0, result.total_line()
    return time.perf_counter() - begin


def stage_pool(paths, out: Path, segmenter, pool, writers: int, cheap: bool, sync) -> float:
    from neuroseg.export.writer import write_outputs

    def write(result, folder: Path):
        if not cheap:
            return write_outputs(result, folder, force=True)
        return write_cheap(result, folder)

    begin = time.perf_counter()
    with ThreadPoolExecutor(writers) as writer:
        pending = []
        for k, volume in enumerate(pool.map(decode, map(str, paths), chunksize=1)):
            result = segmenter.segment(volume)
            sync()
            pending.append(writer.submit(write, result, out / f"c{k:03d}"))
        for future in pending:
            future.result()
    return time.perf_counter() - begin


def write_cheap(result, folder: Path):
    """The mask at gzip level 1 and the report: what a batch needs when nobody looks at each QC picture."""
    import nibabel as nib
    import numpy as np

    from neuroseg.io.atomic import atomic_write_text
    from neuroseg.export.nifti import to_nifti

    folder.mkdir(parents=True, exist_ok=True)
    image = to_nifti(result.mask, np.uint8)
    with open(folder / "mask.nii.gz", "wb") as handle:
        import gzip

        with gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=1, mtime=0) as stream:
            stream.write(image.to_bytes())
    nib.load(folder / "mask.nii.gz")  # still a valid NIfTI
    return atomic_write_text(folder / "report.json", json.dumps(result.report) + "\n")


def stage_networks(paths, segmenter, pool, slices_per_pass: int, device: str, sync) -> tuple[float, int]:
    import torch

    model = segmenter.model
    size, context = model.input_size, model.context
    torch_device = torch.device(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if torch_device.type == "cuda" else None
    buffer, total = [], 0

    def run(batch):
        batch = batch.float().contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if autocast is not None:
                with autocast:
                    model.classifier(batch), model.segmenter(batch)
            else:
                model.classifier(batch), model.segmenter(batch)

    begin = time.perf_counter()
    jobs = pool.map(decode_and_prepare, map(str, paths), [size] * len(paths), [context] * len(paths))
    for array in jobs:
        host = torch.from_numpy(array)
        if torch_device.type == "cuda":
            host = host.pin_memory()
        buffer.append(host.to(torch_device, non_blocking=True))
        total += array.shape[0]
        while sum(t.shape[0] for t in buffer) >= slices_per_pass:  # several volumes per pass
            joined = torch.cat(buffer)
            run(joined[:slices_per_pass])
            buffer = [joined[slices_per_pass:]] if joined.shape[0] > slices_per_pass else []
    if buffer:
        run(torch.cat(buffer))
    sync()
    return time.perf_counter() - begin, total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--volumes", type=int, default=64)
    parser.add_argument("--decoders", type=int, default=max(1, (os.cpu_count() or 2) - 2),
                        help="CPU processes decoding (and, in D, preprocessing).")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--slices-per-pass", type=int, default=512)
    parser.add_argument("--stages", default="A,B,C,D")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import multiprocessing

    import torch

    from neuroseg.inference import Segmenter

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU here; use --device cpu for a dry run", file=sys.stderr)
        return 2
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "-"
    work = Path(tempfile.mkdtemp(prefix="neuroseg-gpu-"))
    results = {"device": args.device, "gpu": gpu, "cpus": os.cpu_count(), "torch": torch.__version__,
               "python": platform.python_version(), "volumes": args.volumes, "decoders": args.decoders,
               "slices_per_pass": args.slices_per_pass, "stages": {}}
    try:
        paths = volumes(work / "in", args.volumes)
        print(f"device {args.device} ({gpu}); {os.cpu_count()} CPUs; torch {torch.__version__}; {args.volumes} "
              f"volumes ({'lgg-flair' if LGG.is_dir() else 'the sample scan'}); {args.decoders} decoders", flush=True)
        segmenter = Segmenter(None, device=args.device)
        segmenter.segment(paths[0])  # warm up: CUDA context, cuDNN autotuning
        sync()
        stages = set(args.stages.split(","))
        with ProcessPoolExecutor(args.decoders, mp_context=multiprocessing.get_context("spawn")) as pool:
            _warm_pool(pool, args.decoders)
            timed = {}
            if "A" in stages:
                timed["A run_batch threads:2, full outputs"] = stage_run_batch(paths, work / "a", args.device,
                                                                               segmenter)
            if "B" in stages:
                timed["B process-pool decode, full outputs"] = stage_pool(paths, work / "b", segmenter, pool,
                                                                          args.writers, False, sync)
            if "C" in stages:
                timed["C process-pool decode, cheap outputs"] = stage_pool(paths, work / "c", segmenter, pool,
                                                                           args.writers, True, sync)
            for name, seconds in timed.items():
                rate = args.volumes / seconds
                results["stages"][name] = {"seconds": round(seconds, 3), "volumes_per_s": round(rate, 2)}
                print(f"{name:44s} {seconds:7.2f} s  {rate:7.2f} volumes/s  ({rate / GOAL:.0%} of the goal)",
                      flush=True)
            if "D" in stages:
                seconds, slices = stage_networks(paths, segmenter, pool, args.slices_per_pass, args.device, sync)
                rate = args.volumes / seconds
                name = f"D pool-prepared, pinned, {args.slices_per_pass} slices a pass"
                results["stages"][name] = {"seconds": round(seconds, 3), "volumes_per_s": round(rate, 2),
                                           "slices": slices}
                print(f"{name:44s} {seconds:7.2f} s  {rate:7.2f} volumes/s  ({slices} slices; networks only)")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
