"""neuroseg against a stock MONAI pipeline doing the same job, on the same machine, in one run.

    python benchmarks/bench.py                  # all cases, batch of 50, CPU
    python benchmarks/bench.py --quick          # batch of 5, one repeat, no 512x512x300
    python benchmarks/bench.py --device cuda    # on a GPU (the device is printed with every number)

Each pipeline runs in its own child process, so its peak RSS (ru_maxrss) is its own.
Stages: load, preprocess, classifier, segmenter, postprocess, write. The stock pipeline is
LoadImage -> Orientation -> ScaleIntensityRangePercentiles -> Resize -> SliceInferer over a
MONAI UNet of similar size -> inverse (Resize, Orientation) -> SaveImage; it has no classifier.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
SAMPLE = Path("clinical") / "tcga-fg-6692" / "flair.nii.gz"  # these three: inside --data
BRATS = Path("clinical") / "brats-gli-00001-000" / "flair.nii.gz"
BATCH_SOURCE = Path("lgg-flair") / "imagesTr"
STAGES = ("load", "preprocess", "classifier", "segmenter", "postprocess", "write")


# --------------------------------------------------------------------------- children

def child_neuroseg(args) -> dict:
    import torch

    from neuroseg.export.writer import write_outputs
    from neuroseg.inference import Segmenter

    start = time.perf_counter()
    segmenter = Segmenter(args.model, device=args.device)
    setup = time.perf_counter() - start
    runs = []
    for k, path in enumerate(args.inputs * args.repeats):
        start = time.perf_counter()
        result = segmenter.segment(path)
        if args.device == "cuda":
            torch.cuda.synchronize()
        t_write = time.perf_counter()
        write_outputs(result, Path(args.out) / f"{k:04d}", force=True)
        timings = dict(result.timings, write=time.perf_counter() - t_write)
        timings["total"] = time.perf_counter() - start
        runs.append(timings)
    return {"setup": setup, "runs": runs}


def child_neuroseg_batch(args) -> dict:
    from neuroseg.batch import run_batch

    start = time.perf_counter()
    result = run_batch(args.inputs[0], args.out, model=args.model, device=args.device, force=True, workers=2)
    seconds = time.perf_counter() - start
    failed = [row for row in result.rows if row.get("status") not in ("done", "ok", "written", "reused")]
    runs = []
    for report in sorted(Path(args.out).rglob("report.json")):
        runs.append(json.loads(report.read_text()).get("timings_s", {}))
    return {"setup": 0.0, "batch_seconds": seconds, "runs": runs,
            "statuses": sorted({str(row.get("status")) for row in result.rows}), "n_failed_rows": len(failed)}


def child_monai(args) -> dict:
    import numpy as np
    import torch
    from monai.inferers import SliceInferer
    from monai.networks.nets import UNet
    from monai.transforms import (Compose, LoadImage, Orientation, RepeatChannel, Resize,
                                  SaveImage, ScaleIntensityRangePercentiles)

    device = torch.device(args.device)
    start = time.perf_counter()
    torch.manual_seed(0)
    net = UNet(spatial_dims=2, in_channels=3, out_channels=1, channels=(16, 32, 64, 128, 256),
               strides=(2, 2, 2, 2), num_res_units=2).to(device).eval()
    load = LoadImage(image_only=True, ensure_channel_first=True)
    spatial = Compose([Orientation(axcodes="RAS"), Resize(spatial_size=(args.size, args.size, -1))])
    scale = ScaleIntensityRangePercentiles(lower=1, upper=99, b_min=0.0, b_max=1.0, clip=True)
    repeat = RepeatChannel(repeats=3)
    inferer = SliceInferer(roi_size=(args.size, args.size), sw_batch_size=16, spatial_dim=2, progress=False)
    setup = time.perf_counter() - start
    runs = []
    for k, path in enumerate(args.inputs * args.repeats):
        timings = {}
        start = t = time.perf_counter()
        image = load(path)
        timings["load"] = time.perf_counter() - t
        t = time.perf_counter()
        image = spatial(image)
        network_input = repeat(scale(image))[None].to(device)
        timings["preprocess"] = time.perf_counter() - t
        t = time.perf_counter()
        with torch.inference_mode():
            logits = inferer(network_input, net)
        if args.device == "cuda":
            torch.cuda.synchronize()
        timings["segmenter"] = time.perf_counter() - t
        t = time.perf_counter()
        from monai.data import MetaTensor

        probabilities = MetaTensor(torch.sigmoid(logits[0]).cpu(), meta=image.meta,
                                   applied_operations=image.applied_operations)
        back = spatial.inverse(probabilities)
        mask = (back > 0.5).to(torch.uint8)
        timings["postprocess"] = time.perf_counter() - t
        t = time.perf_counter()
        SaveImage(output_dir=str(Path(args.out) / f"{k:04d}"), output_postfix="mask", output_ext=".nii.gz",
                  output_dtype=np.uint8, resample=False, separate_folder=False, print_log=False)(mask)
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - start
        runs.append(timings)
    return {"setup": setup, "runs": runs, "params": sum(p.numel() for p in net.parameters())}


def run_child(args) -> None:
    import torch

    torch.set_grad_enabled(False)
    worker = {"neuroseg": child_neuroseg, "neuroseg-batch": child_neuroseg_batch, "monai": child_monai}[args.child]
    out = worker(args)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["threads"] = torch.get_num_threads()
    print("BENCH-JSON " + json.dumps(out))


# --------------------------------------------------------------------------- parent

def spawn(kind, inputs, out, model, device, repeats, size) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--out", str(out), "--model", str(model),
               "--device", device, "--repeats", str(repeats), "--size", str(size), "--inputs", *map(str, inputs)]
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    lines = [line for line in process.stdout.splitlines() if line.startswith("BENCH-JSON ")]
    if process.returncode != 0 or not lines:
        return {"error": (process.stderr.strip().splitlines() or ["?"])[-1], "wall": wall}
    return dict(json.loads(lines[-1][len("BENCH-JSON "):]), wall=wall)


def cli_help_seconds(repeats=5) -> dict:
    def best(cmd):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    exe = Path(sys.executable).with_name("neuroseg")
    result = {"python -c pass": best([sys.executable, "-c", "pass"]),
              "python -m neuroseg --help": best([sys.executable, "-m", "neuroseg", "--help"])}
    if exe.exists():
        result["neuroseg --help"] = best([str(exe), "--help"])
    return result


def prepare_model(tmp: Path) -> tuple[Path, str]:
    from neuroseg.models.store import default_model_dir

    shipped = default_model_dir()
    if (shipped / "metadata.json").is_file():
        return shipped, f"shipped model ({shipped})"
    import torch

    from neuroseg.models.store import build_networks, save_model
    from neuroseg.training.train import TrainConfig

    torch.manual_seed(0)
    config = TrainConfig()
    segmenter, classifier = build_networks(config.architecture())
    metadata = {"name": "bench-random", "neuroseg_version": "bench", "created": "bench",
                "architecture": config.architecture(),
                "input": {"size": config.size, "context_slices": config.context, "channels": 2 * config.context + 1},
                "inference": {"gate": True, "gate_threshold": 0.5, "threshold": 0.5, "min_component_ml": 0.0,
                              "flip_tta": False}}
    path = save_model(tmp / "random_model", segmenter.eval(), classifier.eval(), metadata)
    params = sum(p.numel() for p in segmenter.parameters())
    return path, f"random weights, real architecture (TrainConfig() defaults, segmenter {params / 1e6:.2f} M params)"


def synthetic_volume(path: Path, shape=(512, 512, 300)) -> Path:
    """A head-like ellipsoid with a bright blob and noise, int16, 0.47 x 0.47 x 0.6 mm, uncompressed."""
    import nibabel as nib
    import numpy as np

    rng = np.random.default_rng(0)
    data = np.zeros(shape, np.int16)
    i, j = np.ogrid[: shape[0], : shape[1]]
    for k in range(shape[2]):
        z = (k - shape[2] / 2) / (shape[2] * 0.45)
        r2 = ((i - shape[0] / 2) / (shape[0] * 0.4)) ** 2 + ((j - shape[1] / 2) / (shape[1] * 0.45)) ** 2 + z**2
        slab = np.where(r2 < 1, 400, 0) + rng.normal(0, 10, (shape[0], shape[1]))
        blob = ((i - 200) ** 2 + (j - 300) ** 2 + ((k - 150) * 1.3) ** 2) < 40**2
        data[:, :, k] = np.clip(slab + 300 * blob, 0, None).astype(np.int16)
    nib.Nifti1Image(data, np.diag([-0.47, -0.47, 0.6, 1.0])).to_filename(str(path))
    return path


def summarise(result: dict, skip_first: bool) -> dict:
    runs = result.get("runs", [])
    if skip_first and len(runs) > 1:
        runs = runs[1:]
    keys = sorted({k for run in runs for k in run})
    return {k: statistics.median(run.get(k, 0.0) for run in runs) for k in keys} if runs else {}


def fmt(x):
    return "-" if x is None else f"{x:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each single case (first is reported apart)")
    parser.add_argument("--quick", action="store_true", help="batch of 5, one repeat, no 512x512x300 case")
    parser.add_argument("--json", type=Path, help="also write all numbers here")
    parser.add_argument("--model-dir", type=Path, help="a model folder to time (default: the shipped model)")
    parser.add_argument("--data", type=Path, default=DATA,
                        help="a folder laid out like ../shared/data (a GPU machine may only have a copy of part of it)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=192, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(args)
    if args.quick:
        args.batch_size, args.repeats = min(args.batch_size, 5), 1

    import torch

    device_name = torch.cuda.get_device_name(0) if args.device == "cuda" else (platform.processor() or "cpu")
    print(f"device: {args.device} ({device_name}); {os.cpu_count()} CPUs; torch threads {torch.get_num_threads()}; "
          f"python {platform.python_version()}, torch {torch.__version__}")
    help_times = cli_help_seconds()
    for name, seconds in help_times.items():
        print(f"{name:34s} {seconds:.3f} s (best of 5)")

    with tempfile.TemporaryDirectory(prefix="neuroseg-bench-") as tmp:
        tmp = Path(tmp)
        model, model_note = (args.model_dir, f"model {args.model_dir}") if args.model_dir else prepare_model(tmp)
        print(f"model: {model_note}")
        size = 192
        cases = [("sample 208x256x26", [args.data / SAMPLE]), ("brats 240x240x155", [args.data / BRATS])]
        if not args.quick:
            print("writing the synthetic 512x512x300 volume ...", flush=True)
            cases.append(("synthetic 512x512x300", [synthetic_volume(tmp / "large.nii")]))
        batch_dir = tmp / "batch"
        batch_dir.mkdir()
        # absolute: the links live in a temporary folder; fewer sources than the batch are repeated
        sources = sorted((args.data.resolve() / BATCH_SOURCE).glob("*.nii.gz"))
        for k in range(args.batch_size):
            os.symlink(sources[k % len(sources)], batch_dir / f"case{k:03d}.nii.gz")
        batch_inputs = sorted(batch_dir.glob("*.nii.gz"))

        results = {"device": args.device, "device_name": device_name, "model": model_note, "help": help_times,
                   "cases": {}}
        header = f"{'case':24s} {'pipeline':9s} " + " ".join(f"{s[:8]:>8s}" for s in STAGES) + \
            f" {'compute':>8s} {'e2e':>8s} {'first':>8s} {'process':>8s} {'RSS MB':>8s}"
        print("\nmedian seconds per volume (first: the first volume of the process, cold; "
              "process: child wall time incl. interpreter, imports and model)")
        print(header)
        for name, inputs in cases + [(f"batch of {args.batch_size} (lgg-flair)", batch_inputs)]:
            batch = name.startswith("batch")
            row = {}
            for kind in ("neuroseg", "monai"):
                out = tmp / f"out-{kind}-{len(results['cases'])}"
                repeats = 1 if batch else args.repeats
                result = spawn(kind, inputs, out, model, args.device, repeats, size)
                row[kind] = result
                if "error" in result:
                    print(f"{name:24s} {kind:9s} FAILED: {result['error']}")
                    continue
                median = summarise(result, skip_first=not batch)
                compute = sum(median.get(s, 0.0) for s in STAGES if s not in ("load", "write"))
                result["median"], result["compute"] = median, compute
                n = len(result["runs"])
                result["throughput"] = n / sum(run["total"] for run in result["runs"])
                print(f"{name:24s} {kind:9s} " + " ".join(f"{fmt(median.get(s)):>8s}" for s in STAGES)
                      + f" {compute:8.3f} {median['total']:8.3f} {result['runs'][0]['total']:8.3f}"
                      f" {result['wall']:8.2f} {result['peak_rss_mb']:8.0f}")
                shutil_rm(out)
            if batch:
                result = spawn("neuroseg-batch", [batch_dir], tmp / "out-batch", model, args.device, 1, size)
                row["neuroseg batch"] = result
                if "error" in result:
                    print(f"{name:24s} run_batch FAILED: {result['error']}")
                else:
                    result["throughput"] = args.batch_size / result["batch_seconds"]
                    print(f"{name:24s} run_batch (neuroseg.batch, 2 reading threads): "
                          f"{result['batch_seconds']:.2f} s, {result['throughput']:.2f} volumes/s, "
                          f"process {result['wall']:.2f} s, RSS {result['peak_rss_mb']:.0f} MB, "
                          f"statuses {result['statuses']}")
            results["cases"][name] = row
            if "throughput" in row.get("neuroseg", {}) and "throughput" in row.get("monai", {}):
                ratio = row["neuroseg"]["throughput"] / row["monai"]["throughput"]
                # the whole child process, interpreter start, imports and model loading included: what a
                # user waits for, running one command
                row["ratio"], row["process_ratio"] = ratio, row["monai"]["wall"] / row["neuroseg"]["wall"]
                print(f"{'':24s} neuroseg/monai throughput ratio {ratio:.2f}x; process wall ratio "
                      f"{row['process_ratio']:.2f}x; RSS ratio "
                      f"{row['neuroseg']['peak_rss_mb'] / row['monai']['peak_rss_mb']:.2f}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


def shutil_rm(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
