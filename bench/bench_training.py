"""Training-step throughput (run by hand, not a test): frames/s of one forward + backward + AdamW step on
one CPU thread, eager against channels_last against torch.compile, in the same run.

    .venv/bin/python bench/bench_training.py [--archs unet trfe-a] [--sizes 224 256] [--steps 8]

Each network is the shipped recipe's (pretrained-encoder layout, decoder width 16, one gray channel),
untrained (speed does not depend on the weights); a U-Net step is 8 frames, a TRFE-Net/MT-Net step
12 (8 nodule frames and 4 gland frames, as ``--gland-batch 4`` draws them). The first step (and, for
torch.compile, its compilation) is timed apart. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time

import torch
import torch.nn.functional as F

from thyroid_studio.engine.models.architectures import build_model

MODES = ("eager", "channels_last", "compile")


def frames_per_second(arch: str, size: int, mode: str, steps: int) -> tuple[float, float]:
    """(frames/s over ``steps`` steps after two warm-up steps, seconds of the first step)."""
    torch.manual_seed(0)
    batch = 8 if arch == "unet" else 12
    model = build_model(arch, 16, 1, "efficientnet-lite0").train()
    x = torch.randn(batch, 1, size, size)
    y = (torch.rand(batch, 1, size, size) > 0.5).float()
    if mode != "eager":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    net = torch.compile(model) if mode == "compile" else model

    def step() -> None:
        out = net(x)
        loss = sum(F.binary_cross_entropy_with_logits(out[head], y) for head in ("nodule", "gland") if head in out)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    step()
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start), first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["unet", "trfe-a"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 256])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{dt.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, 1 thread, load average {os.getloadavg()[0]:.1f} at the start\n")
    print("| network | input | " + " | ".join(f"{m} frames/s" for m in args.modes) + " | first step (compile) s |")
    print("| --- | ---: | " + " | ".join("---:" for _ in args.modes) + " | ---: |")
    for arch in args.archs:
        for size in args.sizes:
            results = {mode: frames_per_second(arch, size, mode, args.steps) for mode in args.modes}
            cells = " | ".join(f"{results[m][0]:.1f}" for m in args.modes)
            first = results["compile"][1] if "compile" in results else max(r[1] for r in results.values())
            print(f"| {arch} | {size} | {cells} | {first:.1f} |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
