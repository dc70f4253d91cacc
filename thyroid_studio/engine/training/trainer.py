"""Training: a Trainer whose loop calls named steps, so a variant overrides one step (nnU-Net's run_training).

``Trainer(config).run_training()`` runs::

    on_train_start()                 # prepare_data, build_network, configure_optimizers, resume, run folder
    for each epoch:
        on_epoch_start(epoch)
        for items in epoch_steps(epoch):
            train_step(items)        # one forward/backward/optimizer step
        on_epoch_end(epoch)          # validation_step(), metrics.jsonl, progress.png, checkpoints, state
    on_train_end()                   # final checkpoint, cards, validation/summary.json

The default recipe is TRFE-Net's: each nodule frame paired with a gland frame re-drawn at
random every epoch, one forward pass of B nodule + B gland frames, the nodule head scored on
nodule frames and the gland head on gland frames (weighted); ``unet`` trains on nodule frames
only. Options add a pretrained encoder, weak gland supervision on nodule frames, zoomed gland
frames, and the findings heads (TI-RADS and descriptors) trained jointly. Validation runs
the model through ``inference.Segmenter`` and scores at the frames' original resolution
(``evaluation.evaluate``). Under ``torchrun`` the pairs are sharded over the processes and
the model is wrapped in DistributedDataParallel; only rank 0 writes.
``finetuning.FinetuneTrainer`` is the fine-tuning variant.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from ..datasets.index import dataset_groups
from ..datasets.layouts import DatasetError, open_dataset
from ..datasets.splits import fold_split
from ..findings.fields import FIELDS, LABELS_FILE, Findings, read_labels
from ..inference.segmenter import Segmenter, resolve_device
from ..io.files import write_text_atomic
from ..io.paths import project_relative
from ..models.architectures import load_pretrained_encoder
from ..models.card import write_model_card
from ..models.checkpoint import ModelMeta, network_for, read_meta, save_checkpoint
from ..nets.encoders import encoder_spec
from ..progress import EpochProgress, StageProgress, StepProgress
from .augment import build_augmentation
from .evaluation import Case, Evaluation, evaluate
from .frameset import FrameSet, Item, class_weights, epoch_pairs, evenly_spaced, load_frames, make_batch, shard
from .losses import LossWeights, multitask_loss
from .run_folder import attach_log, environment, load_state, plot_progress, read_metrics, save_state, write_json

log = logging.getLogger("thyroid_studio.training")

Progress = Callable[[Any], None]
ShouldStop = Callable[[], bool]

DEFAULT_LR = {"sgd": 1e-2, "adamw": 1e-3}


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as the run folder's config.json.

    The defaults are TRFE-Net's recipe (as its code runs it, with the paper's gland weight 0.5)
    on the paper's encoder; ``fold=None`` trains on every frame (no validation frames).
    """

    arch: str = "trfe-a"
    nodules: str = ""  # dataset root (any layout open_dataset reads)
    glands: str | None = None  # gland dataset with train/val splits (TG3K)
    nodule_glands: str | None = None  # folder of <key>.png gland masks of the nodule frames (tools/gland_labels.py)
    labels: str | None = None  # findings labels.csv; None: <nodules>/labels.csv when it exists
    out: str = "runs/train"
    fold: int | None = 0
    folds: int = 5
    epochs: int = 40
    encoder: str = "plain"
    width: int | None = None  # None: the encoder's default (64 plain, 16 EfficientNet-Lite decoder)
    pretrained: bool = True  # load the encoder's pretrained weights, where it has some
    size: int = 224
    batch_pairs: int = 8
    gland_batch: int | None = None  # gland-dataset frames per step (None: one per nodule frame, as TRFE-Net pairs them)
    lr: float | None = None  # None: 1e-2 for SGD, 1e-3 for AdamW
    optimizer: str = "sgd"  # "sgd" (momentum 0.9) | "adamw"
    weight_decay: float = 5e-4
    schedule: str = "poly"  # "poly" (power 0.9) | "cosine", per step
    loss: str = "dice"  # "dice" | "dice+bce"
    gland_weight: float = 0.5
    weak_gland: float = 0.0  # weight of "every nodule pixel is gland" on nodule frames
    gland_zoom: float = 0.0  # probability of zooming a gland frame so the gland fills it
    findings_weight: float = 0.2  # alpha x cross-entropy per findings head; 0: no findings heads
    prior_grad: str = "full"  # "full": the nodule loss reaches the gland decoder through the prior; "detach": it does not
    norm: str = "batch"  # the decoders' normalisation: "batch" | "group" (encoder BatchNorm then frozen)
    augment: str = "flip"  # "none" | "flip" | "ultrasound"
    keep_aspect: bool = False
    contrast: str = "none"
    device: str = "auto"
    resume: bool = False
    seed: int = 0
    gland_val_frames: int = 120  # evenly spaced frames of the gland val split scored each epoch; 0 = all
    val_every: int = 1  # validate every N epochs (and always after the last)
    name: str = ""  # model name; default "<arch>-<encoder>-w<width>"
    version: str = "1"
    command: str = ""  # the exact command line, recorded in the checkpoints

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def model_width(self) -> int:
        return self.width if self.width is not None else encoder_spec(self.encoder).default_width

    @property
    def model_name(self) -> str:
        encoder = "" if self.encoder == "plain" else f"-{self.encoder.replace('efficientnet-', '')}"
        return self.name or f"{self.arch}{encoder}-w{self.model_width}"

    def meta(self, findings: bool) -> ModelMeta:
        """The checkpoint metadata this run's frames are prepared with (training/metrics filled later)."""
        spec = encoder_spec(self.encoder)
        return ModelMeta(
            arch=self.arch, width=self.model_width, encoder=self.encoder, input_size=(self.size, self.size),
            in_channels=spec.in_channels, mean=spec.mean, std=spec.std, keep_aspect=self.keep_aspect,
            norm=self.norm, contrast=self.contrast, name=self.model_name, version=self.version,
            findings={name: list(classes) for name, classes in FIELDS.items()} if findings else {},
        )


@dataclass
class TrainResult:
    """What a run ends with: ``status`` is "finished", "stopped" or "interrupted"."""

    status: str
    epochs_done: int
    best_dice: float
    best_epoch: int
    run_dir: Path | None
    best_checkpoint: Path | None


class Stop(Exception):
    """should_stop() said so."""


def build_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum 0.9 (the paper's) or AdamW, with the configured weight decay."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.learning_rate, momentum=0.9, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
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


def compact_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The compact metrics stored in a checkpoint: per-image mean/std of the main metrics, pooled Dice,
    and the region prior's and findings' summaries where measured."""
    per = summary["per_image"]
    out: dict[str, Any] = {"n": summary["n"], "resolution": "original"}
    for key in ("dice", "iou", "precision", "recall", "hd95_px"):
        out[key] = per[key]["mean"]
        out[f"{key}_std"] = per[key]["std"]
    out["pooled_dice"] = summary["pooled"]["dice"]
    for key in ("gland_prior", "findings"):
        if key in summary:
            out[key] = summary[key]
    return out


def distributed(device_name: str) -> tuple[int, int, torch.device]:
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


class Trainer:
    """One training run; override a hook to make a variant (see ``finetuning.FinetuneTrainer``)."""

    def __init__(self, config: TrainConfig, progress: Progress | None = None, should_stop: ShouldStop | None = None,
                 show_bar: bool = True) -> None:
        self.config = config
        self.rank, self.world, self.device = distributed(config.device)
        self.main = self.rank == 0
        self.progress = progress if (progress is not None and self.main) else (lambda _event: None)
        self.should_stop = should_stop or (lambda: False)
        self.show_bar = show_bar and self.main
        self.run_dir: Path | None = Path(config.out) if config.out else None
        self.rows: list[dict[str, Any]] = []
        self.best = {"dice": -1.0, "epoch": 0}
        self.start_epoch = 0
        self.sets: dict[str, FrameSet] = {}
        self.labels: dict[str, Findings] = {}

    # ------------------------------------------------------------------ the loop

    def run_training(self) -> TrainResult:
        """Run (or resume) the training; returns when finished, stopped by ``should_stop`` or on Ctrl-C.

        Stopping (either way) saves state_last.pt so ``resume=True`` continues from the last whole epoch.
        """
        handler = None
        epoch = self.start_epoch
        try:
            self.on_train_start()
            handler = attach_log(log, self.run_dir if self.main else None)
            for epoch in range(self.start_epoch, self.config.epochs):
                self.on_epoch_start(epoch)
                steps = self.epoch_steps(epoch)
                bar = tqdm(total=len(steps), desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="step",
                           disable=not self.show_bar, leave=False, dynamic_ncols=True)
                for step, items in enumerate(steps):
                    if self.stop_requested():
                        raise Stop
                    parts = self.train_step(items)
                    self.add_parts(parts)
                    bar.update(1)
                    bar.set_postfix(loss=f"{parts['loss']:.3f}")
                    self.progress(StepProgress(epoch + 1, self.config.epochs, step + 1, len(steps), parts["loss"]))
                bar.close()
                self.on_epoch_end(epoch)
                if self.world > 1:
                    dist.barrier()
            epoch = self.config.epochs
            self.on_train_end()
            return self.result("finished", self.config.epochs)
        except (Stop, KeyboardInterrupt) as exc:
            status = "stopped" if isinstance(exc, Stop) else "interrupted"
            self.on_stopped(status, epoch)
            return self.result(status, epoch)
        finally:
            if handler is not None:
                log.removeHandler(handler)
                handler.close()
            if self.world > 1 and dist.is_initialized():
                dist.destroy_process_group()

    def stop_requested(self) -> bool:
        flag = torch.tensor([1.0 if (self.main and self.should_stop()) else 0.0])
        if self.world > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def add_parts(self, parts: dict[str, float]) -> None:
        for key, value in parts.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.sums_count += 1

    def result(self, status: str, epochs_done: int) -> TrainResult:
        best_path = self.run_dir / "checkpoint_best.pt" if self.run_dir else None
        return TrainResult(status, epochs_done, self.best["dice"], self.best["epoch"], self.run_dir,
                           best_path if status == "finished" and best_path and best_path.exists() else None)

    # ------------------------------------------------------------------ hooks

    def on_train_start(self) -> None:
        """Data, network, optimizer, resume, and the run folder's description."""
        config = self.config
        if self.main and self.run_dir and not config.resume and (self.run_dir / "state_last.pt").exists():
            raise FileExistsError(f"{self.run_dir} already holds a run; pass --resume to continue it or choose another --out")
        torch.manual_seed(config.seed)
        t0 = time.perf_counter()
        self.progress(StageProgress("reading frames"))
        self.prepare_data()
        log.info("data: %s (%.1f s)", ", ".join(f"{len(v)} {k}" for k, v in self.sets.items()), time.perf_counter() - t0)
        self.model = self.build_network()
        self.net = nn.parallel.DistributedDataParallel(self.model) if self.world > 1 else self.model
        self.optimizer, self.scheduler = self.configure_optimizers()
        self.augmentations = {True: build_augmentation(config.augment),
                              False: build_augmentation(config.augment, zoom_to_mask=config.gland_zoom)}
        self.loss_weights = LossWeights(config.loss, config.gland_weight, config.weak_gland, config.findings_weight,
                                        class_weights(self.training_sets(), self.meta.findings))
        state_path = self.run_dir / "state_last.pt" if self.run_dir else None
        if config.resume and state_path is not None and state_path.exists():
            self.restore_state(load_state(state_path))
            log.info("resumed from %s at epoch %d", state_path, self.start_epoch)
        if self.main and self.run_dir:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.rows = [r for r in read_metrics(self.run_dir / "metrics.jsonl") if r["epoch"] <= self.start_epoch]
            write_text_atomic(self.run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in self.rows))
            write_json(self.run_dir / "config.json", asdict(config))
            write_json(self.run_dir / "env.json", environment(self.device, self.world))
            write_json(self.run_dir / "data.json", self.data_record)

    def prepare_data(self) -> None:
        """Nodule frames split by exam (a dataset the app writes: by its groups, ``index.dataset_groups``) into
        train/val (all train with ``fold=None``), gland frames, findings labels."""
        config = self.config
        nodules = open_dataset(config.nodules)
        by_key = {s.key: s for s in nodules.samples}
        if config.fold is None:
            train_keys, val_keys = sorted(by_key), []
        else:
            train_keys, val_keys = fold_split(list(by_key), config.fold, config.folds, dataset_groups(config.nodules))
        labels_path = Path(config.labels) if config.labels else Path(config.nodules) / LABELS_FILE
        self.labels = read_labels(labels_path) if labels_path.is_file() else {}
        self.meta = config.meta(findings=bool(self.labels) and config.findings_weight > 0)
        own_glands = nodule_gland_files(config.nodule_glands, train_keys) if self.meta.has_gland else None
        self.sets = {"train": load_frames([by_key[k] for k in train_keys], self.meta, labels=self.labels, glands=own_glands)}
        if val_keys:
            self.sets["val"] = load_frames([by_key[k] for k in val_keys], self.meta, keep_originals=True, labels=self.labels)
        self.data_record: dict[str, Any] = {"nodules": {
            "root": project_relative(config.nodules), "count": len(by_key), "train_count": len(train_keys),
            "val_count": len(val_keys), "train_keys": train_keys, "val_keys": val_keys,
            "labels": project_relative(labels_path) if self.labels else None,
        }}
        if own_glands is not None:
            self.data_record["nodule_glands"] = {"root": project_relative(config.nodule_glands),
                                                 "train_labelled": len(own_glands)}
        if self.meta.has_gland and not (config.glands or config.nodule_glands):
            raise DatasetError(f"{config.arch} has a gland head and needs gland masks (--glands and/or --nodule-glands)")
        if self.meta.has_gland and config.glands:
            glands = open_dataset(config.glands)
            gland_train, gland_val = glands.split("train"), glands.split("val")
            scored = evenly_spaced(gland_val, config.gland_val_frames)
            self.sets["gland_train"] = load_frames(gland_train, self.meta)
            self.sets["gland_val"] = load_frames(scored, self.meta, keep_originals=True)
            self.data_record["glands"] = {"root": project_relative(config.glands), "train_count": len(gland_train),
                                          "val_count": len(gland_val), "val_scored": [s.key for s in scored]}
        self.meta.training = self.training_record()

    def training_record(self) -> dict[str, Any]:
        """The ``training`` block of ModelMeta: data, split (with validation keys), recipe, exact command."""
        config, data = self.config, self.data_record
        recipe = {k: v for k, v in asdict(config).items()
                  if k not in ("nodules", "glands", "nodule_glands", "labels", "out", "resume", "command", "name", "version")}
        recipe["lr"] = config.learning_rate
        recipe["width"] = config.model_width
        scheme = "all frames, no validation" if config.fold is None else f"exam-grouped contiguous blocks, fold {config.fold} of {config.folds}"
        return {
            "data": {"nodules": data["nodules"]["root"], "glands": data.get("glands", {}).get("root"),
                     "nodule_glands": data.get("nodule_glands", {}).get("root"), "labels": data["nodules"]["labels"]},
            "split": {"scheme": scheme, "fold": config.fold, "folds": config.folds,
                      "train_count": data["nodules"]["train_count"], "validation_keys": data["nodules"]["val_keys"],
                      "gland_train_split": "train" if "glands" in data else None,
                      "gland_validation_split": "val" if "glands" in data else None},
            "recipe": recipe,
            "command": config.command,
        }

    def training_sets(self) -> list[FrameSet]:
        """The nodule frames the steps draw from (their findings labels set the class weights)."""
        return [self.sets["train"]]

    def build_network(self) -> nn.Module:
        """The network of the config, with the encoder's pretrained weights when asked for."""
        meta = self.meta
        model = network_for(meta)
        if self.config.pretrained and load_pretrained_encoder(model, meta.encoder):
            log.info("encoder %s: pretrained weights loaded", meta.encoder)
        if meta.has_prior:
            model.prior_gradient = self.config.prior_grad == "full"
        return model.to(self.device, memory_format=torch.channels_last)

    def configure_optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        optimizer = build_optimizer(self.model.parameters(), self.config)
        self.steps_per_epoch = math.ceil(len(shard(np.arange(len(self.sets["train"])), self.rank, self.world)) / self.config.batch_pairs)
        return optimizer, build_schedule(optimizer, self.config.schedule, self.steps_per_epoch * self.config.epochs)

    def on_epoch_start(self, epoch: int) -> None:
        self.net.train()
        self.epoch_started = time.perf_counter()
        self.sums: dict[str, float] = {}
        self.sums_count = 0
        self.rng = np.random.default_rng([self.config.seed, epoch, self.rank, 1])

    def epoch_steps(self, epoch: int) -> list[list[Item]]:
        """This process's batches of one epoch: B nodule frames, the first ``gland_batch`` of them (all by
        default) each with a random gland partner."""
        train, glands = self.sets["train"], self.sets.get("gland_train")
        order, partners = epoch_pairs(len(train), len(glands) if glands is not None else 0, epoch, self.config.seed)
        mine = shard(np.arange(len(order)), self.rank, self.world)
        partnered = self.config.gland_batch if self.config.gland_batch is not None else self.config.batch_pairs
        steps = []
        for start in range(0, len(mine), self.config.batch_pairs):
            chosen = mine[start : start + self.config.batch_pairs]
            items: list[Item] = [(train, int(order[i]), True) for i in chosen]
            if glands is not None:
                items += [(glands, int(partners[i]), False) for i in chosen[:partnered]]
            steps.append(items)
        return steps

    def train_step(self, items: list[Item]) -> dict[str, float]:
        batch = make_batch(items, self.meta, self.augmentations, self.rng).to(self.device)
        amp = self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
            outputs = self.net(batch.inputs)
        loss, parts = multitask_loss(outputs, batch.masks, batch.is_nodule, self.loss_weights, batch.labels,
                                     batch.glands, batch.gland_known)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss is {float(loss)}: lower the learning rate ({self.config.learning_rate})")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        parts["loss"] = float(loss.detach())
        return parts

    def segmenter(self) -> Segmenter:
        return Segmenter(self.model, self.meta, device=self.device)

    def cases(self, name: str) -> list[Case]:
        """The full-size frames of a validation set as Cases (nodule frames with their findings)."""
        frames = self.sets[name]
        return [Case(key, frame, mask, None, self.labels.get(key)) for key, (frame, mask) in zip(frames.keys, frames.originals)]

    def evaluate_sets(self) -> dict[str, Evaluation]:
        """The model on each validation set: nodule frames ("val") and gland frames ("gland_val")."""
        self.model.eval()
        segmenter = self.segmenter()
        scored = {head: evaluate(segmenter, self.cases(name), head)
                  for head, name in (("nodule", "val"), ("gland", "gland_val")) if name in self.sets}
        self.model.train()
        return scored

    def validation_step(self) -> dict[str, Any]:
        """One validation row: Dice/IoU per head at original resolution, prior coverage, findings scores."""
        row: dict[str, Any] = {}
        for head, evaluation in self.evaluate_sets().items():
            compact = compact_metrics(evaluation.summary())
            row[f"val_{head}_dice"], row[f"val_{head}_iou"] = compact["dice"], compact["iou"]
            row[f"val_{head}"] = compact
            prior, findings = compact.get("gland_prior"), compact.get("findings")
            if prior:
                row["val_gland_coverage"], row["val_gland_share"] = prior["coverage_median"], prior["gland_share_mean"]
            if findings and "suspicious" in findings:
                row["val_suspicious_auc"] = findings["suspicious"]["auc"]
        return row

    def on_epoch_end(self, epoch: int) -> None:
        """Validate, log the row, redraw progress.png, keep the best checkpoint, save the state."""
        if not self.main:
            return
        config = self.config
        row = {"epoch": epoch + 1, **{k: v / max(1, self.sums_count) for k, v in self.sums.items()},
               "lr": self.optimizer.param_groups[0]["lr"], "train_seconds": time.perf_counter() - self.epoch_started}
        if (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs:
            row.update(self.validation_step())
        row["seconds"] = time.perf_counter() - self.epoch_started
        self.rows.append(row)
        if self.run_dir:
            with open(self.run_dir / "metrics.jsonl", "a") as handle:
                handle.write(json.dumps(row) + "\n")
            plot_progress(self.rows, self.run_dir / "progress.png")
            if row.get("val_nodule_dice", -math.inf) > self.best["dice"]:
                self.best = {"dice": row["val_nodule_dice"], "epoch": epoch + 1}
                self.meta.metrics = self.checkpoint_metrics(row)
                save_checkpoint(self.run_dir / "checkpoint_best.pt", self.model, self.meta)
            save_state(self.run_dir / "state_last.pt", self.state(epoch + 1))
        log.info("epoch %d/%d loss %.4f%s lr %.2e %.0f s", epoch + 1, config.epochs, row.get("loss", math.nan),
                 "".join(f" {k} {row[k]:.4f}" for k in ("val_nodule_dice", "val_gland_dice", "val_gland_coverage",
                                                        "val_suspicious_auc") if isinstance(row.get(k), float)),
                 row["lr"], row["seconds"])
        self.progress(EpochProgress(epoch + 1, config.epochs, row))

    @staticmethod
    def checkpoint_metrics(row: dict[str, Any]) -> dict[str, Any]:
        return {"epoch": row["epoch"], "nodule": row.get("val_nodule"), "gland": row.get("val_gland")}

    def on_train_end(self) -> None:
        """checkpoint_final.pt, cards, and validation/summary.json of the final and best checkpoints."""
        if not (self.main and self.run_dir):
            return
        last = self.rows[-1] if self.rows else {}
        self.meta.metrics = self.checkpoint_metrics(last) if last else {}
        final = self.run_dir / "checkpoint_final.pt"
        save_checkpoint(final, self.model, self.meta)
        write_model_card(final, self.meta)
        best = self.run_dir / "checkpoint_best.pt"
        if not best.exists():  # no nodule validation (fold=None): the final model is the one to use
            save_checkpoint(best, self.model, self.meta)
            self.best = {"dice": math.nan, "epoch": self.config.epochs}
        write_model_card(best, read_meta(best))
        summary: dict[str, Any] = {"checkpoint": final.name, "best_epoch": self.best["epoch"], "resolution": "original"}
        for head, evaluation in self.evaluate_sets().items():
            summary[head] = {**evaluation.summary(), "cases": evaluation.rows()}
        (self.run_dir / "validation").mkdir(exist_ok=True)
        write_json(self.run_dir / "validation" / "summary.json", summary)
        log.info("finished: final validation nodule Dice %s; best %.4f at epoch %d",
                 f"{last['val_nodule_dice']:.4f}" if "val_nodule_dice" in last else "-", self.best["dice"], self.best["epoch"])

    def on_stopped(self, status: str, epoch: int) -> None:
        """Ctrl-C or should_stop(): state_last.pt holds the finished epochs."""
        if self.main and self.run_dir and hasattr(self, "optimizer"):
            log.info("%s during epoch %d; state_last.pt holds %d finished epochs", status, epoch + 1, epoch)
            save_state(self.run_dir / "state_last.pt", self.state(epoch))

    # ------------------------------------------------------------------ state

    def state(self, epoch: int) -> dict[str, Any]:
        return {"epoch": epoch, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "best": self.best, "torch_rng": torch.get_rng_state()}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Continue from ``state``; a ValueError when it belongs to another network or settings."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            self.start_epoch, self.best = int(state["epoch"]), dict(state["best"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            detail = " ".join(str(exc).split())[:160]
            raise ValueError(f"state_last.pt does not fit this run's network and settings ({type(exc).__name__}: "
                             f"{detail}); resume with the run's own settings (its config.json) or start a new --out") from exc


def nodule_gland_files(folder: str | None, keys: list[str]) -> dict[str, Path] | None:
    """``<folder>/<key>.png`` of each of ``keys`` that has one (None without a folder): the gland masks of
    the training frames only, so no validation frame lends its training a label."""
    if folder is None:
        return None
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"--nodule-glands {folder}: no such folder")
    found = {key: root / f"{key}.png" for key in keys if (root / f"{key}.png").is_file()}
    if not found:
        raise DatasetError(f"--nodule-glands {folder}: no <key>.png for any training frame (keys like {keys[0]!r})")
    return found


def train(config: TrainConfig, progress: Progress | None = None, should_stop: ShouldStop | None = None,
          show_bar: bool = True) -> TrainResult:
    """Run (or resume) a training with the default :class:`Trainer`."""
    return Trainer(config, progress, should_stop, show_bar).run_training()
