"""Fine-tuning a checkpoint on corrected frames without forgetting what it knew.

Corrected frames are mixed with frames replayed from the original training
data (``replay_ratio`` of them per corrected frame, re-drawn every epoch); the
BatchNorm statistics stay frozen (a handful of frames cannot estimate them).
A contiguous block of the corrected exams is held out, and Dice is measured
before and after on it and on the original validation split recorded in the
source checkpoint. The result is always a NEW versioned checkpoint with its
card; the source file is only ever read.
"""
from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .augment import build_augmentation
from .checkpoint import ModelMeta, load_checkpoint, save_checkpoint
from .datasets import open_dataset
from .inference import resolve_device
from .losses import segmentation_loss
from .model_card import write_model_card
from .model_library import user_dir
from .splits import holdout_split
from .training import FrameSet, Progress, ShouldStop, evaluate, load_frames, make_batch, validation_metrics

MIN_CORRECTED_FRAMES = 8  # fewer leave one or two held-out frames: their Dice cannot say whether tuning helped


@dataclass
class FinetuneConfig:
    """One fine-tuning: source checkpoint, corrected frames, replay and schedule."""

    source: str  # checkpoint to start from (never modified)
    nodules: str  # dataset of corrected frames
    out: str | None = None  # new checkpoint; default: the next free version in the user model folder
    replay: str | None = None  # default: the source's training nodule dataset, when it exists here
    replay_ratio: float = 2.0  # replayed frames per corrected frame
    epochs: int = 8
    held_fraction: float = 0.25  # corrected exams held out (last contiguous block) to measure the change
    lr: float = 1e-3  # SGD, momentum 0.9, nodule decoder only
    batch: int = 8
    seed: int = 0
    device: str = "auto"
    command: str = ""


@dataclass
class FinetuneResult:
    """``status``: "finished" (``checkpoint`` written) or "stopped" (nothing written)."""

    status: str
    checkpoint: Path | None
    table: dict[str, dict[str, Any]]  # {"held_out"|"original_validation": {"n", "before", "after"}}
    seconds: float


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def next_version(meta: ModelMeta) -> str:
    """"1" -> "2"; a non-numeric version gets a ".1" appended."""
    return str(int(meta.version) + 1) if meta.version.isdigit() else f"{meta.version}.1"


def default_output(meta: ModelMeta, folder: Path) -> Path:
    """``<folder>/<base name>-v<N>.pt`` with the first N above the source's version that is free."""
    base = meta.name.rsplit("-v", 1)[0] if meta.name else meta.arch
    version = next_version(meta)
    while (folder / f"{base}-v{version}.pt").exists():
        version = next_version(ModelMeta(arch=meta.arch, width=meta.width, version=version))
    return folder / f"{base}-v{version}.pt"


def check_output(source: Path, out: Path) -> None:
    """Refuse to write onto the source checkpoint or onto any existing file."""
    if out.resolve() == source.resolve() or (out.exists() and out.samefile(source)):
        raise ValueError(f"{out} is the source checkpoint; fine-tuning never overwrites its source -- choose another --out")
    if out.exists():
        raise FileExistsError(f"{out} exists; fine-tuning writes a new checkpoint -- choose another --out")


def format_table(table: dict[str, dict[str, Any]]) -> str:
    """The before/after Dice table printed by the finetune command."""
    lines = [f"{'':22} {'frames':>6} {'Dice before':>12} {'Dice after':>11} {'change':>8}"]
    for label, row in (("held-out corrected", table.get("held_out")), ("original validation", table.get("original_validation"))):
        if row is None:
            lines.append(f"{label:22} {'-':>6} {'(not available)':>12}")
            continue
        before, after = row["before"]["dice"], row["after"]["dice"]
        lines.append(f"{label:22} {row['n']:>6} {before:>12.4f} {after:>11.4f} {100 * (after - before):>+7.2f}pt")
    return "\n".join(lines)


def _original_validation(meta: ModelMeta) -> tuple[str | None, list[str]]:
    training = meta.training or {}
    return training.get("data", {}).get("nodules"), list(training.get("split", {}).get("validation_keys", []))


def _load(root: str, keys: Sequence[str] | None, meta: ModelMeta, exclude: Sequence[str] = (), originals: bool = False) -> FrameSet:
    """Frames of ``root`` (only ``keys`` when given, minus ``exclude``), cropped and resized once."""
    samples = open_dataset(root).samples
    wanted = set(keys) if keys is not None else None
    skip = set(exclude)
    chosen = [s for s in samples if (wanted is None or s.key in wanted) and s.key not in skip and s.mask is not None]
    return load_frames(chosen, meta, keep_originals=originals)


def _score(model: nn.Module, meta: ModelMeta, frames: FrameSet | None, device: torch.device) -> dict[str, Any] | None:
    if frames is None or not len(frames):
        return None
    return validation_metrics(evaluate(model, meta, frames, "nodule", device).summary())


def _report_held_out(report: Progress, scores: dict[str, Any] | None, epoch: int, epochs: int) -> None:
    """Tell the caller the held-out Dice after ``epoch`` epochs (0 = before fine-tuning), for a live curve."""
    if scores is not None:
        report({"stage": "validate", "epoch": epoch, "epochs": epochs, "dice": scores["dice"]})


def _nodule_branch(model: nn.Module) -> list[nn.Parameter]:
    """Freeze everything but the nodule decoder (and TRFE-Net's prior convolutions) and return its parameters.

    Corrections are nodule labels only: updating the shared encoder or the gland decoder without
    gland supervision shifts the gland prior and the features every frame depends on, which is
    where forgetting came from (measured in docs/training.md).
    """
    trainable = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith(("nodule_decoder.", "prior_convs.")))
        if parameter.requires_grad:
            trainable.append(parameter)
    return trainable


def _freeze_batchnorm(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def finetune(config: FinetuneConfig, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> FinetuneResult:
    """Fine-tune ``config.source`` on corrected frames; write a new checkpoint and card; report before/after.

    ``progress`` receives {"stage": "evaluate"|"train"|"validate"|"done", "epoch", "epochs", "step", "steps",
    "loss"}, and after each epoch (and before the first) "dice" on the held-out corrected frames;
    when ``should_stop()`` turns true nothing is written and the result's status is "stopped".
    """
    started = time.perf_counter()
    corrected = open_dataset(config.nodules)
    keys = [s.key for s in corrected.samples if s.mask is not None]
    if len(keys) < MIN_CORRECTED_FRAMES:
        raise ValueError(f"{config.nodules}: {len(keys)} corrected frame(s) with masks; fine-tuning needs at least "
                         f"{MIN_CORRECTED_FRAMES} (some train, the rest are held out to measure the change)")
    source = Path(config.source)
    device = resolve_device(config.device)
    model, meta = load_checkpoint(source, device)
    out = Path(config.out) if config.out else default_output(meta, user_dir())
    check_output(source, out)
    source_digest = sha256(source)
    report = progress or (lambda _: None)
    stop = should_stop or (lambda: False)

    kept_keys, held_keys = holdout_split(keys, config.held_fraction)
    kept = _load(config.nodules, kept_keys, meta)
    held = _load(config.nodules, held_keys, meta, originals=True)
    original_root, original_val_keys = _original_validation(meta)
    original_val = (_load(original_root, original_val_keys, meta, originals=True)
                    if original_root and original_val_keys and Path(original_root).is_dir() else None)
    replay_root = config.replay or (original_root if original_root and Path(original_root).is_dir() else None)
    replay = _load(replay_root, None, meta, exclude=original_val_keys if replay_root == original_root else ()) if replay_root else None

    report({"stage": "evaluate", "when": "before"})
    before = {"held_out": _score(model, meta, held, device), "original_validation": _score(model, meta, original_val, device)}
    _report_held_out(report, before["held_out"], 0, config.epochs)

    recipe = (meta.training or {}).get("recipe", {})
    loss_kind = recipe.get("loss", "dice")
    augmentation = build_augmentation(recipe.get("augment", "flip"))
    optimizer = torch.optim.SGD(_nodule_branch(model), lr=config.lr, momentum=0.9, weight_decay=recipe.get("weight_decay", 5e-4))
    n_replay = round(config.replay_ratio * len(kept)) if replay is not None and len(replay) else 0
    steps = -(-(len(kept) + n_replay) // config.batch)
    model.train()
    _freeze_batchnorm(model)
    for epoch in range(config.epochs):
        rng = np.random.default_rng([config.seed, epoch])
        items = [(kept, int(i)) for i in range(len(kept))]
        items += [(replay, int(i)) for i in rng.integers(0, len(replay), n_replay)] if n_replay else []
        items = [items[i] for i in rng.permutation(len(items))]
        for step, start in enumerate(range(0, len(items), config.batch)):
            if stop():
                return FinetuneResult("stopped", None, {}, time.perf_counter() - started)
            x, y = make_batch(items[start : start + config.batch], meta, augmentation, rng)
            logits = model(x.to(device).contiguous(memory_format=torch.channels_last))["nodule"]
            loss = segmentation_loss(logits, y.to(device), loss_kind).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            report({"stage": "train", "epoch": epoch + 1, "epochs": config.epochs, "step": step + 1, "steps": steps,
                    "loss": float(loss.detach())})
        if len(held) and epoch + 1 < config.epochs:  # the last epoch is scored below with everything else
            _report_held_out(report, _score(model.eval(), meta, held, device), epoch + 1, config.epochs)
            model.train()
            _freeze_batchnorm(model)
    model.eval()

    report({"stage": "evaluate", "when": "after"})
    after = {"held_out": _score(model, meta, held, device), "original_validation": _score(model, meta, original_val, device)}
    _report_held_out(report, after["held_out"], config.epochs, config.epochs)
    table = {name: {"n": before[name]["n"], "before": before[name], "after": after[name]}
             for name in before if before[name] is not None}

    new_meta = copy.deepcopy(meta)
    new_meta.version = next_version(meta)
    new_meta.name = out.stem
    new_meta.created = time.strftime("%Y-%m-%d")
    training = dict(meta.training or {})
    training["data"] = {**training.get("data", {}), "corrected": str(Path(config.nodules).resolve()), "replay": replay_root}
    training["finetuned_from"] = {"path": str(source.resolve()), "name": meta.name, "version": meta.version, "sha256": source_digest}
    training["held_out_keys"] = held_keys
    training["replay"] = {"ratio": config.replay_ratio, "frames_per_epoch": n_replay}
    training["recipe"] = {**recipe, "finetune": {"epochs": config.epochs, "lr": config.lr, "optimizer": "sgd", "trained": "nodule decoder",
                                                 "batch": config.batch, "batchnorm": "frozen", "seed": config.seed,
                                                 "corrected_frames": len(kept), "held_out_frames": len(held)}}
    training["source_command"] = training.get("command", "")
    training["command"] = config.command
    new_meta.training = training
    new_meta.metrics = {"nodule": after["original_validation"] or after["held_out"], "finetune": table}
    save_checkpoint(out, model, new_meta)
    write_model_card(out, new_meta)
    seconds = time.perf_counter() - started
    report({"stage": "done", "checkpoint": str(out), "seconds": seconds})
    return FinetuneResult("finished", out, table, seconds)
