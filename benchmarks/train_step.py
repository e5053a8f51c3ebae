"""Training cost per slice: one forward+backward+AdamW step, neuroseg's networks beside stock MONAI nets.

    python benchmarks/train_step.py                 # batch 16, 3x192x192, torch's threads, CPU
    python benchmarks/train_step.py --threads 2 --batch-size 16 --steps 8 --json out.json
    python benchmarks/train_step.py --recipes --threads 1 --batch-size 32   # v2: today's training step against the old one

``--recipes`` times the v2 network's step as ``neuroseg train`` takes it (bf16 autocast where the
CPU has it natively, 128 px crops) beside the step before those levers (fp32, whole 192 px slices)
and each lever alone, and reports samples per second and the ratio to the old step.

Rounds alternate between the networks, so a machine that is busier for a while slows all of
them alike; the median step over the rounds is reported, as ms per slice, with each net's
ratio to the stock MONAI UNet 16..256 of the same run. Channels-last memory, as training uses.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F


def networks():
    from monai.networks.nets import UNet

    from neuroseg.models.classifier import build_classifier
    from neuroseg.models.resunet import ResUNet
    from neuroseg.models.strided import StridedResUNet

    class V1Pair(torch.nn.Module):  # the v1 recipe trains both networks on every batch
        def __init__(self):
            super().__init__()
            self.segmenter, self.classifier = ResUNet(3, 1, 16, 4), build_classifier(3, 16, pool="avgmax")

        def forward(self, x):
            return self.segmenter(x), self.classifier(x)

    return {
        "neuroseg v2 StridedResUNet 16 (mask + slice head)": StridedResUNet(3, 16, 4),
        "neuroseg v1 ResUNet 16 + ResNet classifier": V1Pair(),
        "stock MONAI UNet 16..256": UNet(2, 3, 1, (16, 32, 64, 128, 256), (2, 2, 2, 2), num_res_units=2),
        "stock MONAI UNet 32..512": UNet(2, 3, 1, (32, 64, 128, 256, 512), (2, 2, 2, 2), num_res_units=2),
    }


def step(net, optimizer, x, y, autocast=None) -> float:
    start = time.perf_counter()
    with autocast if autocast is not None else torch.autocast("cpu", enabled=False):
        out = net(x)
    mask, slice_logits = out if isinstance(out, tuple) else (out, None)
    mask = mask.float()
    slice_logits = slice_logits.float() if slice_logits is not None else None
    loss = F.binary_cross_entropy_with_logits(mask, y)
    if slice_logits is not None:
        loss = loss + F.binary_cross_entropy_with_logits(slice_logits[:, 0], y.flatten(1).amax(1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--steps", type=int, default=6, help="rounds (one step of every net per round)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json")
    parser.add_argument("--recipes", action="store_true", help="the v2 step with and without bf16 and crops")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.recipes:
        return compare_recipes(args)
    torch.manual_seed(0)
    x = torch.rand(args.batch_size, 3, args.size, args.size).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(args.batch_size, 1, args.size, args.size) > 0.95).float()
    nets = {name: net.to(memory_format=torch.channels_last).train() for name, net in networks().items()}
    optimizers = {name: torch.optim.AdamW(net.parameters()) for name, net in nets.items()}
    times = {name: [] for name in nets}
    for round_ in range(args.steps + 1):  # round 0 warms up (allocations, kernel choice)
        for name, net in nets.items():
            seconds = step(net, optimizers[name], x, y)
            if round_:
                times[name].append(seconds)
    stock = statistics.median(times["stock MONAI UNet 16..256"])
    rows = {}
    print(f"cpu: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, batch {args.batch_size}, 3x{args.size}x{args.size}")
    for name, values in times.items():
        median = statistics.median(values)
        params = sum(p.numel() for p in nets[name].parameters()) / 1e6
        rows[name] = {"ms_per_slice": round(1000 * median / args.batch_size, 1), "params_m": round(params, 2),
                      "cost_vs_stock_16": round(median / stock, 2)}
        print(f"{name:52s} {rows[name]['ms_per_slice']:7.1f} ms/slice  {params:5.2f} M params  "
              f"{rows[name]['cost_vs_stock_16']:.2f}x the stock UNet 16..256")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "threads": torch.get_num_threads(), "results": rows}, handle, indent=1)


def compare_recipes(args):
    """The v2 step before and after the cheaper-step levers, alternating rounds, one run."""
    from neuroseg.models.strided import StridedResUNet
    from neuroseg.models.precision import autocast as training_autocast, native_bf16

    cpu = torch.device("cpu")
    bf16 = native_bf16(cpu)
    recipes = {"fp32, 192 px slices (the old step)": (192, "fp32"), "fp32, 128 px crops": (128, "fp32"),
               "bf16, 192 px slices": (192, "bf16"), "bf16, 128 px crops (neuroseg train's default)": (128, "bf16")}
    if not bf16:
        print("this CPU has no native bf16 (AVX-512 BF16 or AMX): neuroseg train runs fp32 here")
        recipes = {k: v for k, v in recipes.items() if v[1] == "fp32"}
    torch.manual_seed(0)
    nets, optimizers, inputs, times = {}, {}, {}, {}
    for name, (size, precision) in recipes.items():
        nets[name] = StridedResUNet(3, 16, 4).to(memory_format=torch.channels_last).train()
        optimizers[name] = torch.optim.AdamW(nets[name].parameters())
        x = torch.rand(args.batch_size, 3, size, size).contiguous(memory_format=torch.channels_last)
        inputs[name] = (x, (torch.rand(args.batch_size, 1, size, size) > 0.95).float(), training_autocast(cpu, precision))
        times[name] = []
    for round_ in range(args.steps + 1):
        for name in recipes:
            seconds = step(nets[name], optimizers[name], *inputs[name])
            if round_:
                times[name].append(seconds)
    old = statistics.median(times[next(iter(recipes))])
    print(f"cpu: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, batch {args.batch_size}, native bf16 {bf16}")
    rows = {}
    for name, values in times.items():
        median = statistics.median(values)
        rows[name] = {"ms_per_sample": round(1000 * median / args.batch_size, 1),
                      "samples_per_s": round(args.batch_size / median, 1), "speed_vs_old_step": round(old / median, 2)}
        print(f"{name:48s} {rows[name]['ms_per_sample']:6.1f} ms/sample {rows[name]['samples_per_s']:7.1f} "
              f"samples/s  {rows[name]['speed_vs_old_step']:.2f}x the old step")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "threads": torch.get_num_threads(), "results": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
