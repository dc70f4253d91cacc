"""Inference benchmark (run by hand, not a test): latency, throughput and `segment` speed on real DDTI frames.

    .venv/bin/python bench/bench_inference.py [--frames 20] [--widths 8 16 64] [--devices cpu cuda]

- latency: one frame end to end (read + preprocess + forward + post-process), batch 1:
  median and p90 over the frames, after warm-up;
- throughput: frames/s of Segmenter.segment at batch 1, 4 and 8 (frames already in memory);
- segment: the whole `thyroid-studio segment` loop (engine.inference.batch.segment_paths, read and write
  included) on a folder of DDTI frames with the default model.

Networks are untrained (build_model): speed does not depend on the weights. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from thyroid_studio.engine.inference.batch import BatchOptions, segment_paths
from thyroid_studio.engine.inference.segmenter import PostProcess, Segmenter, resolve_device
from thyroid_studio.engine.io.frames import read_frame
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import CheckpointError, ModelMeta, network_for, read_meta
from thyroid_studio.engine.models.library import default_model
from thyroid_studio.engine.nets.encoders import ENCODERS, encoder_spec

DDTI = Path(__file__).resolve().parents[2] / "shared" / "data" / "ddti" / "image"
POST = PostProcess(largest_only=True, fill_holes=True)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def default_meta() -> ModelMeta:
    """The shipped default TRFE-Net's metadata, or width-8 TRFE-Net-A when no models are shipped yet."""
    try:
        return read_meta(default_model("trfe"))
    except (CheckpointError, KeyError, OSError):
        return ModelMeta("trfe-a", 8, name="trfe-a-w8 (untrained)")


def segmenter_for(arch: str, width: int, encoder: str, size: int, device: str) -> Segmenter:
    spec = encoder_spec(encoder)
    meta = ModelMeta(arch, width, encoder=encoder, input_size=(size, size), in_channels=spec.in_channels, mean=spec.mean,
                     std=spec.std, name=f"{arch}-{encoder}-w{width}-{size}")
    return Segmenter(build_model(arch, width, spec.in_channels, encoder), meta, device=device, postprocess=POST)


def latency_ms(segmenter: Segmenter, paths: list[Path]) -> tuple[float, float]:
    """Median and p90 of read + segment per frame, batch 1, after two warm-up frames."""
    for path in paths[:2]:
        segmenter(read_frame(path).pixels)
    times = []
    for path in paths:
        tic = time.perf_counter()
        segmenter(read_frame(path).pixels)
        times.append((time.perf_counter() - tic) * 1000)
    return statistics.median(times), float(np.percentile(times, 90))


def throughput(segmenter: Segmenter, images: list[np.ndarray], batch: int) -> float | None:
    """Frames/s of Segmenter.segment over ``images`` in batches of ``batch`` (already warmed up by the
    latency run); None when there are fewer images than one batch."""
    if batch > len(images):
        return None
    tic = time.perf_counter()
    for start in range(0, len(images), batch):
        segmenter.segment(images[start : start + batch])
    return len(images) / (time.perf_counter() - tic)


def segment_fps(meta: ModelMeta, device: str, paths: list[Path], batch: int) -> float:
    """Frames/s of the full segment loop (read, segment, write masks and CSV) on a folder of frames."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for path in paths:
            shutil.copy(path, folder / path.name)
        try:
            segmenter = Segmenter.from_checkpoint(default_model("trfe"), device=device)
        except (CheckpointError, KeyError, OSError):
            segmenter = Segmenter(network_for(meta), meta, device=device)
        report = segment_paths([folder], Path(tmp) / "out", segmenter, BatchOptions(batch_size=batch))
        return report.frames_per_second


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="frames per measurement (a quarter for width >= 64)")
    parser.add_argument("--segment-frames", type=int, default=100, help="frames in the segment-loop folder")
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16, 64])
    parser.add_argument("--archs", nargs="*", default=["unet", "trfe-a"], help="untrained networks to measure (none: checkpoints only)")
    parser.add_argument("--encoder", choices=list(ENCODERS), default="plain", help="encoder of the untrained networks")
    parser.add_argument("--size", type=int, default=224, help="input size of the untrained networks")
    parser.add_argument("--checkpoints", type=Path, nargs="*", default=[],
                        help="checkpoint files measured side by side (e.g. the previous and the new default)")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="those not available are skipped")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: PyTorch's, one per core)")
    parser.add_argument("--date", default=dt.date.today().isoformat())
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    paths = sorted(DDTI.glob("*.png"))
    if not paths:
        sys.exit(f"no DDTI frames in {DDTI}")
    devices = []
    for name in args.devices:
        try:
            devices.append(str(resolve_device(name)))
        except ValueError:
            continue
    base = default_meta()
    print(f"Machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), {platform.python_implementation()} {platform.python_version()}"
          + (f", GPU {torch.cuda.get_device_name()}" if "cuda" in devices else "") + f"; {args.date}")
    print(f"Default model: {base.name or base.arch} ({base.arch}, width {base.width}, input "
          f"{'x'.join(map(str, base.input_size))}); DDTI frames 560x360 / 280-315x360; post-process: largest + fill holes\n")
    print("| device | model | latency median ms | latency p90 ms | fps batch 1 | fps batch 4 | fps batch 8 |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for device in devices:
        rows = [(f"{path.stem} ({path.name})", Segmenter.from_checkpoint(path, device=device, postprocess=POST), args.frames)
                for path in args.checkpoints]
        rows += [(f"{arch} {args.encoder} w{width} {args.size}", segmenter_for(arch, width, args.encoder, args.size, device),
                  args.frames if width < 64 or device != "cpu" else max(4, args.frames // 4))
                 for arch in args.archs for width in args.widths]
        for name, segmenter, n in rows:
            median, p90 = latency_ms(segmenter, paths[:n])
            images = [read_frame(p).pixels for p in paths[:n]]
            fps = [throughput(segmenter, images, b) for b in (1, 4, 8)]
            print(f"| {device} | {name} | {median:.1f} | {p90:.1f} | "
                  + " | ".join("-" if f is None else f"{f:.1f}" for f in fps) + " |", flush=True)
    print()
    for device in devices:
        fps = segment_fps(base, device, paths[: args.segment_frames], batch=4)
        print(f"`segment` loop, {device}, default model, batch 4, {args.segment_frames} DDTI frames "
              f"(read + write included): **{fps:.1f} frames/s**")
    return 0


if __name__ == "__main__":
    sys.exit(main())
