"""Training: TRFE-Net's paired nodule/gland recipe, a run folder, resume, callbacks and DDP.

One call, :func:`train`, runs a whole training from a :class:`TrainConfig`:

- frames are read once through ``datasets.open_dataset``, cropped to the
  ultrasound region and resized by ``preprocessing.crop_and_resize`` (as at
  inference) and kept in memory as uint8; each step augments the cached arrays
  and normalises them with ``preprocessing.to_input``;
- each nodule frame is paired with a gland frame re-drawn at random every
  epoch; a batch of B pairs is one forward pass of 2B frames; the nodule head
  is scored on nodule frames, the gland head on gland frames (weighted);
  ``unet`` trains on nodule frames only;
- validation runs the model through ``inference.Segmenter`` and scores masks at
  the frames' original resolution, as users get them; the best validation
  nodule Dice selects ``checkpoint_best.pt``;
- the run folder (nnU-Net style) holds config.json, env.json, data.json,
  metrics.jsonl, progress.png, train.log, checkpoints, state_last.pt and
  validation/summary.json; ``resume=True`` continues from state_last.pt;
- under ``torchrun`` the pairs are sharded over the processes and the model is
  wrapped in DistributedDataParallel; only rank 0 writes.
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from .augment import Compose, build_augmentation
from .checkpoint import ModelMeta, load_checkpoint, save_checkpoint
from .datasets import DatasetError, Sample, open_dataset, read_mask
from .frames import read_frame
from .files import atomic_path, write_text_atomic
from .inference import Segmenter, resolve_device
from .losses import multitask_loss
from .metrics import MetricAccumulator
from .model_card import write_model_card
from .preprocessing import crop_and_resize, prepare_mask, to_input
from .architectures import build_model
from .splits import fold_split

log = logging.getLogger("thyroid_studio.training")

Progress = Callable[[dict[str, Any]], None]
ShouldStop = Callable[[], bool]

DEFAULT_LR = {"sgd": 1e-2, "adamw": 1e-3}
EVAL_BATCH = 16


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as the run folder's config.json.

    The defaults are TRFE-Net's recipe (as its code runs it, with the paper's gland weight 0.5).
    """

    arch: str = "trfe-a"
    nodules: str = ""  # dataset root (any layout open_dataset reads)
    glands: str | None = None  # gland dataset with train/val splits; needed by every arch but unet
    out: str = "runs/train"
    fold: int = 0
    folds: int = 5
    epochs: int = 40
    width: int = 64
    size: int = 224
    batch_pairs: int = 8
    lr: float | None = None  # None: 1e-2 for SGD, 1e-3 for AdamW
    optimizer: str = "sgd"  # "sgd" (momentum 0.9) | "adamw"
    weight_decay: float = 5e-4
    schedule: str = "poly"  # "poly" (power 0.9) | "cosine", per step
    loss: str = "dice"  # "dice" | "dice+bce"
    gland_weight: float = 0.5
    augment: str = "flip"  # "none" | "flip" | "ultrasound"
    keep_aspect: bool = False
    contrast: str = "none"
    device: str = "auto"
    resume: bool = False
    seed: int = 0
    gland_val_frames: int = 120  # evenly spaced frames of the gland val split scored each epoch; 0 = all
    name: str = ""  # model name; default "<arch>-w<width>"
    version: str = "1"
    command: str = ""  # the exact command line, recorded in the checkpoints

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def model_name(self) -> str:
        return self.name or f"{self.arch}-w{self.width}"

    def meta(self) -> ModelMeta:
        """The checkpoint metadata this run's frames are prepared with (training/metrics filled later)."""
        return ModelMeta(
            arch=self.arch, width=self.width, input_size=(self.size, self.size), keep_aspect=self.keep_aspect,
            contrast=self.contrast, name=self.model_name, version=self.version,
        )


@dataclass
class FrameSet:
    """Frames cropped and resized once to the input size (uint8), with their masks at that size.

    ``originals`` keeps the full frames and masks of validation sets, which are
    scored at the original resolution.
    """

    keys: list[str]
    images: np.ndarray  # (N, H, W) uint8
    masks: np.ndarray  # (N, H, W) uint8 0/1
    originals: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (frame, bool mask)

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class TrainResult:
    """What :func:`train` ends with: ``status`` is "finished", "stopped" or "interrupted"."""

    status: str
    epochs_done: int
    best_dice: float
    best_epoch: int
    run_dir: Path
    best_checkpoint: Path | None


def read_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(gray uint8 frame, bool mask) of a labelled sample; DatasetError when it has no mask."""
    if sample.mask is None:
        raise DatasetError(f"{sample.image}: no mask; training needs a mask for every frame")
    return read_frame(sample.image).gray(), read_mask(sample.mask)


def load_frames(samples: Sequence[Sample], meta: ModelMeta, keep_originals: bool = False) -> FrameSet:
    """Read, crop and resize every sample once (the cache that augmentation works on)."""
    keys, images, masks, originals = [], [], [], []
    for sample in samples:
        frame, mask = read_sample(sample)
        placed, geometry = crop_and_resize(frame, meta, crop=True)
        keys.append(sample.key)
        images.append(placed)
        masks.append(prepare_mask(mask, geometry, meta).astype(np.uint8))
        if keep_originals:
            originals.append((frame, mask.astype(bool)))
    height, width = meta.input_size
    return FrameSet(
        keys,
        np.stack(images) if images else np.zeros((0, height, width), np.uint8),
        np.stack(masks) if masks else np.zeros((0, height, width), np.uint8),
        originals,
    )


def evenly_spaced(samples: Sequence[Sample], count: int) -> list[Sample]:
    """``count`` samples spread over the whole list (all of them when ``count`` is 0 or larger)."""
    if count <= 0 or count >= len(samples):
        return list(samples)
    return [samples[i] for i in np.linspace(0, len(samples) - 1, count).round().astype(int)]


# ----------------------------------------------------------------------------- batches


def epoch_pairs(n_nodule: int, n_gland: int, epoch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(nodule order, gland partner of each) for one epoch: a fresh permutation and fresh random partners.

    Deterministic in (seed, epoch) so every DDP process and a resumed run draw the same pairs.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n_nodule)
    partners = rng.integers(0, n_gland, n_nodule) if n_gland else np.zeros(0, dtype=np.int64)
    return order, partners


def shard(indices: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This process's share, as DistributedSampler does: pad by wrapping to a multiple of ``world``, then stride."""
    if world == 1:
        return indices
    total = math.ceil(len(indices) / world) * world
    padded = np.resize(indices, total)
    return padded[rank::world]


def make_batch(
    items: Sequence[tuple[FrameSet, int]], meta: ModelMeta, augmentation: Compose, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented, normalised (N, C, H, W) inputs and (N, 1, H, W) float targets from cached frames."""
    inputs, targets = [], []
    for frames, index in items:
        image, (mask,) = augmentation(frames.images[index], [frames.masks[index]], rng)
        inputs.append(to_input(image, meta))
        targets.append(mask[None].astype(np.float32))
    return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(targets))


# ----------------------------------------------------------------------------- optimisation


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum 0.9 (the paper's) or AdamW, with the configured weight decay."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=0.9, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; choose sgd or adamw")


def build_schedule(optimizer: torch.optim.Optimizer, kind: str, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning-rate factor: poly ``(1 - t/T)^0.9`` or cosine ``(1 + cos(pi t/T)) / 2``."""
    total = max(1, total_steps)
    if kind == "poly":
        factor = lambda step: (1 - min(step, total) / total) ** 0.9  # noqa: E731
    elif kind == "cosine":
        factor = lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))  # noqa: E731
    else:
        raise ValueError(f"unknown schedule {kind!r}; choose poly or cosine")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ----------------------------------------------------------------------------- validation


def evaluate(
    model: nn.Module, meta: ModelMeta, frames: FrameSet, head: str = "nodule", device: torch.device | None = None
) -> MetricAccumulator:
    """Score one head on full-size frames through the Segmenter, at the frames' original resolution."""
    segmenter = Segmenter(model, meta, device=device or next(model.parameters()).device)
    scores = MetricAccumulator()
    for start in range(0, len(frames.originals), EVAL_BATCH):
        chunk = frames.originals[start : start + EVAL_BATCH]
        for (frame, gt), key, seg in zip(chunk, frames.keys[start:], segmenter.segment([f for f, _ in chunk])):
            scores.add(seg.nodule_mask if head == "nodule" else seg.gland_mask, gt, name=key)
    return scores


# ----------------------------------------------------------------------------- the run folder


def environment(device: torch.device, world: int) -> dict[str, Any]:
    """Where the run happened: host, versions, device, CPU count, processes."""
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "world_size": world,
    }


def write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The per-epoch lines of a run's metrics.jsonl."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_progress(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Redraw progress.png: losses and validation Dice per epoch (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_dice) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "nodule_loss", "gland_loss"):
        if any(key in r for r in rows):
            ax_loss.plot(epochs, [r.get(key, math.nan) for r in rows], label=key)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_title("training loss")
    ax_loss.legend()
    for key in ("val_nodule_dice", "val_nodule_iou", "val_gland_dice"):
        if any(key in r for r in rows):
            ax_dice.plot(epochs, [r.get(key, math.nan) for r in rows], label=key)
    ax_dice.set_xlabel("epoch")
    ax_dice.set_title("validation (original resolution, per-image mean)")
    ax_dice.set_ylim(0, 1)
    ax_dice.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def save_state(path: Path, model: nn.Module, optimizer, scheduler, scaler, epoch: int, best: dict[str, Any]) -> None:
    """state_last.pt: everything needed to continue; plain tensors and containers (weights_only loadable)."""
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "best": best,
        "torch_rng": torch.get_rng_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _setup_logging(run_dir: Path | None) -> logging.Handler | None:
    log.setLevel(logging.INFO)
    if run_dir is None:
        return None
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    return handler


def _distributed(device_name: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the torchrun process group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, resolve_device(device_name)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world, device


def training_record(config: TrainConfig, data: dict[str, Any]) -> dict[str, Any]:
    """The ``training`` block of ModelMeta: data, split (with validation keys), recipe, exact command."""
    recipe = {k: v for k, v in asdict(config).items() if k not in ("nodules", "glands", "out", "resume", "command", "name", "version")}
    recipe["lr"] = config.learning_rate
    return {
        "data": {"nodules": data["nodules"]["root"], "glands": data.get("glands", {}).get("root")},
        "split": {
            "scheme": f"exam-grouped contiguous blocks, fold {config.fold} of {config.folds}",
            "fold": config.fold,
            "folds": config.folds,
            "train_count": data["nodules"]["train_count"],
            "validation_keys": data["nodules"]["val_keys"],
            "gland_train_split": "train" if config.glands else None,
            "gland_validation_split": "val" if config.glands else None,
        },
        "recipe": recipe,
        "command": config.command,
    }


def validation_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The compact metrics stored in a checkpoint: per-image mean/std of the main metrics, and pooled Dice."""
    per = summary["per_image"]
    out = {"n": summary["n"], "resolution": "original"}
    for key in ("dice", "iou", "precision", "recall", "hd95_px"):
        out[key] = per[key]["mean"]
        out[f"{key}_std"] = per[key]["std"]
    out["pooled_dice"] = summary["pooled"]["dice"]
    return out


# ----------------------------------------------------------------------------- the loop


def _prepare_data(config: TrainConfig, meta: ModelMeta) -> tuple[dict[str, FrameSet], dict[str, Any]]:
    nodules = open_dataset(config.nodules)
    by_key = {s.key: s for s in nodules.samples}
    train_keys, val_keys = fold_split(list(by_key), config.fold, config.folds)
    sets = {
        "train": load_frames([by_key[k] for k in train_keys], meta),
        "val": load_frames([by_key[k] for k in val_keys], meta, keep_originals=True),
    }
    data: dict[str, Any] = {
        "nodules": {
            "root": str(Path(config.nodules).resolve()),
            "count": len(by_key),
            "train_count": len(train_keys),
            "val_count": len(val_keys),
            "train_keys": train_keys,
            "val_keys": val_keys,
        }
    }
    if meta.has_gland:
        if not config.glands:
            raise ValueError(f"{config.arch} has a gland head and needs a gland dataset (--glands)")
        glands = open_dataset(config.glands)
        gland_train, gland_val = glands.split("train"), glands.split("val")
        gland_val_scored = evenly_spaced(gland_val, config.gland_val_frames)
        sets["gland_train"] = load_frames(gland_train, meta)
        sets["gland_val"] = load_frames(gland_val_scored, meta, keep_originals=True)
        data["glands"] = {
            "root": str(Path(config.glands).resolve()),
            "train_count": len(gland_train),
            "val_count": len(gland_val),
            "val_scored": [s.key for s in gland_val_scored],
        }
    return sets, data


def train(config: TrainConfig, progress: Progress | None = None, should_stop: ShouldStop | None = None,
          show_bar: bool = True) -> TrainResult:
    """Run (or resume) a training; returns when finished, stopped by ``should_stop`` or on Ctrl-C.

    ``progress`` receives dicts: {"stage": "train", "epoch", "epochs", "step", "steps", "loss"}
    during training and {"stage": "epoch", ... metrics row} after each validation.
    Stopping (either way) saves state_last.pt so ``resume=True`` continues from the last whole epoch.
    """
    rank, world, device = _distributed(config.device)
    main = rank == 0
    run_dir = Path(config.out)
    state_path = run_dir / "state_last.pt"
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not config.resume and state_path.exists():
            raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    handler = _setup_logging(run_dir if main else None)
    try:
        return _train(config, progress, should_stop, show_bar and main, rank, world, device, run_dir)
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(config: TrainConfig, progress: Progress | None, should_stop: ShouldStop | None, show_bar: bool,
           rank: int, world: int, device: torch.device, run_dir: Path) -> TrainResult:
    main = rank == 0
    state_path = run_dir / "state_last.pt"
    torch.manual_seed(config.seed)
    meta = config.meta()
    t0 = time.perf_counter()
    sets, data = _prepare_data(config, meta)
    log.info("data: %d train / %d val nodule frames%s (%.1f s)", len(sets["train"]), len(sets["val"]),
             f", {len(sets['gland_train'])} train gland frames" if "gland_train" in sets else "", time.perf_counter() - t0)
    if main:
        write_json(run_dir / "config.json", asdict(config))
        write_json(run_dir / "env.json", environment(device, world))
        write_json(run_dir / "data.json", data)
    meta.training = training_record(config, data)

    model = build_model(config.arch, config.width).to(device, memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config)
    steps_per_epoch = math.ceil(len(shard(np.arange(len(sets["train"])), rank, world)) / config.batch_pairs)
    scheduler = build_schedule(optimizer, config.schedule, steps_per_epoch * config.epochs)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    start_epoch, best = 0, {"dice": -1.0, "epoch": 0}
    if config.resume and state_path.exists():
        state = load_state(state_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, best = int(state["epoch"]), dict(state["best"])
        log.info("resumed from %s at epoch %d", state_path, start_epoch)
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if r["epoch"] <= start_epoch] if main else []
    if main:
        write_text_atomic(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    augmentation = build_augmentation(config.augment)
    multitask = meta.has_gland

    def stop_requested() -> bool:
        flag = torch.tensor([1.0 if (main and should_stop is not None and should_stop()) else 0.0])
        if world > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    epoch = start_epoch
    status = "finished"
    try:
        for epoch in range(start_epoch, config.epochs):
            epoch_start = time.perf_counter()
            net.train()
            n_gland = len(sets["gland_train"]) if multitask else 0
            order, partners = epoch_pairs(len(sets["train"]), n_gland, epoch, config.seed)
            mine = shard(np.arange(len(order)), rank, world)
            rng = np.random.default_rng([config.seed, epoch, rank, 1])
            sums: dict[str, float] = {}
            bar = tqdm(total=len(mine), desc=f"epoch {epoch + 1}/{config.epochs}", unit="pair" if multitask else "frame",
                       disable=not show_bar, leave=False, dynamic_ncols=True)
            for step, start in enumerate(range(0, len(mine), config.batch_pairs)):
                if stop_requested():
                    raise _Stop
                chosen = mine[start : start + config.batch_pairs]
                items = [(sets["train"], int(order[i])) for i in chosen]
                if multitask:
                    items += [(sets["gland_train"], int(partners[i])) for i in chosen]
                x, y = make_batch(items, meta, augmentation, rng)
                x = x.to(device).contiguous(memory_format=torch.channels_last)
                y = y.to(device)
                is_nodule = torch.zeros(len(items), dtype=torch.bool, device=device)
                is_nodule[: len(chosen)] = True
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    outputs = net(x)
                loss, parts = multitask_loss(outputs, y, is_nodule, config.loss, config.gland_weight)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                parts["loss"] = float(loss.detach())
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + value
                bar.update(len(chosen))
                bar.set_postfix(loss=f"{parts['loss']:.3f}")
                if progress is not None and main:
                    progress({"stage": "train", "epoch": epoch + 1, "epochs": config.epochs, "step": step + 1,
                              "steps": steps_per_epoch, "loss": parts["loss"]})
            bar.close()
            row = {"epoch": epoch + 1, **{k: v / steps_per_epoch for k, v in sums.items()},
                   "lr": optimizer.param_groups[0]["lr"], "train_seconds": time.perf_counter() - epoch_start}
            if main:
                row.update(_validate(model, meta, sets, device))
                row["seconds"] = time.perf_counter() - epoch_start
                rows.append(row)
                with open(run_dir / "metrics.jsonl", "a") as handle:
                    handle.write(json.dumps(row) + "\n")
                plot_progress(rows, run_dir / "progress.png")
                if row["val_nodule_dice"] > best["dice"]:
                    best = {"dice": row["val_nodule_dice"], "epoch": epoch + 1}
                    meta.metrics = {"epoch": epoch + 1, "nodule": row["val_nodule"], "gland": row.get("val_gland")}
                    save_checkpoint(run_dir / "checkpoint_best.pt", model, meta)
                save_state(state_path, model, optimizer, scheduler, scaler, epoch + 1, best)
                log.info("epoch %d/%d loss %.4f val nodule Dice %.4f IoU %.4f%s lr %.2e %.0f s", epoch + 1, config.epochs,
                         row["loss"], row["val_nodule_dice"], row["val_nodule_iou"],
                         f" gland Dice {row['val_gland_dice']:.4f}" if "val_gland_dice" in row else "", row["lr"], row["seconds"])
                if progress is not None:
                    progress({"stage": "epoch", "epochs": config.epochs, **row})
            if world > 1:
                dist.barrier()
        epoch = config.epochs
    except (_Stop, KeyboardInterrupt) as exc:
        status = "stopped" if isinstance(exc, _Stop) else "interrupted"
        if main:
            log.info("%s during epoch %d; state_last.pt holds %d finished epochs", status, epoch + 1, epoch)
            save_state(state_path, model, optimizer, scheduler, scaler, epoch, best)
        return TrainResult(status, epoch, best["dice"], best["epoch"], run_dir, None)

    best_path = run_dir / "checkpoint_best.pt"
    if main:
        _finish(model, meta, sets, device, run_dir, rows, best)
    return TrainResult(status, config.epochs, best["dice"], best["epoch"], run_dir, best_path if best_path.exists() else None)


class _Stop(Exception):
    """should_stop() said so."""


def _validate(model: nn.Module, meta: ModelMeta, sets: dict[str, FrameSet], device: torch.device) -> dict[str, Any]:
    """One validation row: nodule (and gland) Dice/IoU at original resolution, plus the compact summaries."""
    model.eval()
    row: dict[str, Any] = {}
    for head, key in (("nodule", "val"), ("gland", "gland_val")):
        if key not in sets:
            continue
        summary = evaluate(model, meta, sets[key], head, device).summary()
        compact = validation_metrics(summary)
        row[f"val_{head}_dice"], row[f"val_{head}_iou"] = compact["dice"], compact["iou"]
        row[f"val_{head}"] = compact
    model.train()
    return row


def _finish(model: nn.Module, meta: ModelMeta, sets: dict[str, FrameSet], device: torch.device, run_dir: Path,
            rows: list[dict[str, Any]], best: dict[str, Any]) -> None:
    """checkpoint_final.pt, cards for both checkpoints, validation/summary.json of the best checkpoint."""
    last = rows[-1] if rows else {}
    meta.metrics = {"epoch": last.get("epoch"), "nodule": last.get("val_nodule"), "gland": last.get("val_gland")}
    save_checkpoint(run_dir / "checkpoint_final.pt", model, meta)
    write_model_card(run_dir / "checkpoint_final.pt", meta)
    best_path = run_dir / "checkpoint_best.pt"
    best_model, best_meta = load_checkpoint(best_path, device)
    write_model_card(best_path, best_meta)
    summary: dict[str, Any] = {"checkpoint": best_path.name, "epoch": best["epoch"], "resolution": "original"}
    for head, key in (("nodule", "val"), ("gland", "gland_val")):
        if key in sets:
            scores = evaluate(best_model, best_meta, sets[key], head, device)
            summary[head] = {**scores.summary(), "cases": scores.per_image}
    (run_dir / "validation").mkdir(exist_ok=True)
    write_json(run_dir / "validation" / "summary.json", summary)
    log.info("finished: best validation nodule Dice %.4f at epoch %d", best["dice"], best["epoch"])


def command_line() -> str:
    """The exact command that is running, for the record."""
    prog = Path(sys.argv[0]).name
    return " ".join(shlex.quote(a) for a in [prog, *sys.argv[1:]])
