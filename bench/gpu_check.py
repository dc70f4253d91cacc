"""The GPU path, run for real (by hand, on a machine with a GPU): one prepared run of at most ~9 minutes.

    python bench/gpu_check.py --data DATA --out OUT [--device cuda] [--budget-s 520]
    python bench/gpu_check.py --tiny --device cpu --out /tmp/gpu-check     # the script itself, on a CPU

1. agreement: the default model's masks on 20 DDTI frames on the CPU and on the device (as the app
   and `segment` run it there: bfloat16 autocast on CUDA): largest probability difference, share
   of pixels whose mask differs, and Dice between the two masks;
2. throughput: frames/s at batch 1, 8 and 32 for the default model and the paper-width TRFE-Net-A
   (plain encoder, width 64), forward only, bf16 autocast, synchronised, after warm-up;
3. training: a short paper-width TRFE-Net-A run on all DDTI frames (``fold=None``) with TG3K gland
   frames, until the time budget is spent: seconds per epoch, frames/s, loss per epoch.

``DATA`` holds ``ddti/`` and ``tg3k/`` as in ../shared/data (default). The device machine takes at
most 64 MiB with the working tree: ``--prepare-carry DIR`` copies DDTI and every 4th TG3K training
frame into DIR (about 60 MB) to carry there. Results go to OUT/gpu_check.json and OUT/gpu_check.md;
record them in bench/README.md with the card and the date.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thyroid_studio.engine.datasets.layouts import open_dataset
from thyroid_studio.engine.inference.segmenter import Segmenter, resolve_device
from thyroid_studio.engine.io.frames import read_frame
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, load_checkpoint
from thyroid_studio.engine.models.library import default_model
from thyroid_studio.engine.progress import EpochProgress
from thyroid_studio.engine.training.trainer import TrainConfig, Trainer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def device_info(device: torch.device) -> dict[str, Any]:
    info = {"torch": torch.__version__, "device": str(device), "python": platform.python_version(), "host": platform.node()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                    bf16=torch.cuda.is_bf16_supported())
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def agreement(model_path: Path, frames: list[np.ndarray], device: torch.device) -> dict[str, Any]:
    """CPU vs device on the same frames: max |p_cpu - p_dev|, share of differing mask pixels, mask Dice."""
    cpu = Segmenter.from_checkpoint(model_path, device="cpu")
    dev = Segmenter.from_checkpoint(model_path, device=device)
    max_diff, differing, dice = 0.0, [], []
    for frame in frames:
        a, b = cpu(frame), dev(frame)
        max_diff = max(max_diff, float(np.abs(a.nodule_prob - b.nodule_prob).max()))
        differing.append(float((a.nodule_mask != b.nodule_mask).mean()))
        both = a.nodule_mask.sum() + b.nodule_mask.sum()
        dice.append(1.0 if both == 0 else float(2 * (a.nodule_mask & b.nodule_mask).sum() / both))
    return {"frames": len(frames), "max_prob_diff": max_diff, "max_pixels_differing": max(differing),
            "min_mask_dice": min(dice), "mean_mask_dice": statistics.mean(dice)}


def throughput(model: torch.nn.Module, meta: ModelMeta, device: torch.device, batches: list[int], seconds: float) -> dict[str, float]:
    """Forward frames/s per batch size (bf16 autocast on CUDA), each measured for about ``seconds``."""
    model = model.to(device, memory_format=torch.channels_last).eval()
    out = {}
    for batch in batches:
        x = torch.randn(batch, meta.in_channels, *meta.input_size, device=device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            for _ in range(3):
                model(x)
            sync(device)
            start, done = time.perf_counter(), 0
            while time.perf_counter() - start < seconds:
                model(x)
                done += batch
            sync(device)
        out[f"batch_{batch}"] = done / (time.perf_counter() - start)
    return out


def short_training(data: Path, device: torch.device, out: Path, width: int, size: int, budget_s: float, tiny: bool) -> dict[str, Any]:
    """Paper-width TRFE-Net-A on all DDTI frames with TG3K glands, epochs until the budget is spent."""
    epochs: list[dict[str, Any]] = []
    started = time.perf_counter()
    stop_at = started + budget_s

    def record(event) -> None:
        if isinstance(event, EpochProgress):
            epochs.append({"epoch": event.epoch, "loss": event.metrics.get("loss"), "seconds": event.metrics.get("seconds")})

    config = TrainConfig(arch="trfe-a", nodules=str(data / "ddti"), glands=str(data / "tg3k"), out=str(out / "train"),
                         fold=None, epochs=1 if tiny else 100, width=width, size=size, batch_pairs=4 if tiny else 16,
                         optimizer="adamw", lr=1e-3, schedule="cosine", loss="dice+bce", augment="ultrasound",
                         findings_weight=0.2, gland_val_frames=8 if tiny else 60, val_every=1000, device=str(device))
    trainer = Trainer(config, progress=record, should_stop=lambda: time.perf_counter() > stop_at, show_bar=False)
    result = trainer.run_training()
    seconds = time.perf_counter() - started
    per_epoch = [e["seconds"] for e in epochs if e["seconds"]]
    n_frames = 2 * len(trainer.sets.get("train", [])) if trainer.sets else 0
    return {"status": result.status, "epochs": len(epochs), "width": width, "size": size, "seconds": seconds,
            "seconds_per_epoch": statistics.median(per_epoch) if per_epoch else None,
            "frames_per_s": n_frames / statistics.median(per_epoch) if per_epoch else None, "per_epoch": epochs}


def prepare_carry(target: Path, every: int = 4, ddti_every: int = 1) -> None:
    """Copy every ``ddti_every``-th DDTI frame and every ``every``-th TG3K train/val frame into ``target``."""
    ddti = open_dataset(SHARED / "ddti")
    for folder in ("image", "mask"):
        (target / "ddti" / folder).mkdir(parents=True, exist_ok=True)
    for sample in ddti.samples[::ddti_every]:
        shutil.copy(sample.image, target / "ddti" / "image" / sample.image.name)
        shutil.copy(sample.mask, target / "ddti" / "mask" / sample.mask.name)
    shutil.copy(SHARED / "ddti" / "labels.csv", target / "ddti" / "labels.csv")
    tg3k = open_dataset(SHARED / "tg3k")
    split = {"train": [s.key for s in tg3k.split("train")][::every], "val": [s.key for s in tg3k.split("val")][::every]}
    (target / "tg3k" / "image").mkdir(parents=True, exist_ok=True)
    (target / "tg3k" / "mask").mkdir(parents=True, exist_ok=True)
    keep = set(split["train"]) | set(split["val"])
    for sample in tg3k.samples:
        if sample.key in keep:
            shutil.copy(sample.image, target / "tg3k" / "image" / sample.image.name)
            shutil.copy(sample.mask, target / "tg3k" / "mask" / sample.mask.name)
    (target / "tg3k" / "split.json").write_text(json.dumps(split))
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) / 2**20
    print(f"{target}: {size:.1f} MiB")


def markdown(results: dict[str, Any]) -> str:
    info, agree = results["device"], results["agreement"]
    lines = [f"## {dt.date.today().isoformat()} -- gpu_check on {info.get('name', info['device'])}", "",
             f"torch {info['torch']}, CUDA {info.get('cuda', '-')}, {info.get('memory_gib', '-')} GiB", "",
             f"- CPU vs {info['device']} on {agree['frames']} frames: largest probability difference {agree['max_prob_diff']:.4f}, "
             f"at most {100 * agree['max_pixels_differing']:.3f} % of pixels differ, mask Dice >= {agree['min_mask_dice']:.4f}", "",
             "| model | batch 1 fps | batch 8 fps | batch 32 fps |", "| --- | ---: | ---: | ---: |"]
    for name, row in results["throughput"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row.get(f'batch_{b}', float('nan')):.1f}" for b in (1, 8, 32)) + " |")
    train = results["training"]
    lines += ["", f"- training TRFE-Net-A width {train['width']} at {train['size']}: {train['epochs']} epochs in "
              f"{train['seconds']:.0f} s, {train['seconds_per_epoch'] or float('nan'):.1f} s/epoch "
              f"({train['frames_per_s'] or float('nan'):.0f} frames/s), losses "
              + ", ".join(f"{e['loss']:.3f}" for e in train["per_epoch"] if e["loss"] is not None)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED, help="folder with ddti/ and tg3k/ (default ../shared/data)")
    parser.add_argument("--out", type=Path, required=False, help="results folder (JSON, Markdown, the training run)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget-s", type=float, default=520, help="whole-script time budget in seconds (default 520)")
    parser.add_argument("--tiny", action="store_true", help="a tiny setting to test the script on a CPU")
    parser.add_argument("--prepare-carry", type=Path, metavar="DIR", help="copy the data to carry to a device machine, then exit")
    args = parser.parse_args()
    if args.prepare_carry:
        prepare_carry(args.prepare_carry)
        return 0
    if args.out is None:
        parser.error("--out is required")
    if args.tiny:  # a handful of frames: the script's own check on a CPU
        prepare_carry(args.out / "tiny-data", every=400, ddti_every=50)
        args.data = args.out / "tiny-data"
    started = time.perf_counter()
    device = resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"date": dt.datetime.now().isoformat(timespec="seconds"), "device": device_info(device)}

    frames = [read_frame(s.image).pixels for s in open_dataset(args.data / "ddti").samples[:: 25 if not args.tiny else 1][: 3 if args.tiny else 20]]
    model_path = default_model("trfe")
    results["agreement"] = agreement(model_path, frames, device)
    print(json.dumps(results["agreement"]), flush=True)

    seconds = 0.5 if args.tiny else 5.0
    model, meta = load_checkpoint(model_path)
    paper = ModelMeta("trfe-a", 64, input_size=(224, 224))
    batches = [1, 2] if args.tiny else [1, 8, 32]
    results["throughput"] = {f"default ({meta.name})": throughput(model, meta, device, batches, seconds)}
    if not args.tiny:
        results["throughput"]["trfe-a plain w64 (paper)"] = throughput(build_model("trfe-a", 64), paper, device, batches, seconds)
    print(json.dumps(results["throughput"]), flush=True)

    left = args.budget_s - (time.perf_counter() - started)
    results["training"] = short_training(args.data, device, args.out, 4 if args.tiny else 64, 64 if args.tiny else 224,
                                         max(10.0, left - 60), args.tiny)
    print(json.dumps({k: v for k, v in results["training"].items() if k != "per_epoch"}), flush=True)
    results["seconds"] = time.perf_counter() - started
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (args.out / "gpu_check.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
