"""Fine-tuning a checkpoint on corrected frames: the training loop's variant that learns without forgetting.

:class:`FinetuneTrainer` overrides the steps of ``trainer.Trainer`` that differ:

- data: the corrected frames (a contiguous block of their groups held out to measure the
  change: the frames of one clip or file, and copies of one image, stay on one side,
  ``datasets.index.dataset_groups``), frames replayed from the original training data
  (``replay_ratio`` per corrected frame, re-drawn every epoch), and the frames that measure
  forgetting: the original validation split recorded in the source, or, for a source trained on
  all its frames (the shipped models), a fixed sample of its training frames (recorded in the new
  checkpoint, left out of the replay);
- network: the source checkpoint; ``trainable`` says which parts learn (the rest is
  frozen), and BatchNorm statistics stay frozen (a handful of frames cannot estimate them);
- validation: Dice on the held-out corrected frames after every epoch (a live curve), and
  before/after on the held-out frames and the original frames (:data:`ROWS`); :func:`advice`
  says what was measured and never a figure that was not;
- the end: a NEW versioned checkpoint and card; the source file is only ever read.

The findings heads learn too where the corrected dataset has a labels.csv. The defaults
come from ``bench/finetune_gain.py`` (docs/training.md).
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

from ..datasets.index import dataset_groups
from ..datasets.layouts import DatasetError, open_dataset
from ..datasets.splits import holdout_split
from ..findings.fields import LABELS_FILE, Findings, read_labels
from ..io.outputs import OutputPlan
from ..io.paths import from_project, project_relative
from ..models.card import write_model_card
from ..models.checkpoint import ModelMeta, load_checkpoint, save_checkpoint
from ..models.library import user_dir
from ..progress import EpochProgress, StageProgress
from .evaluation import Case, evaluate
from .frameset import FrameSet, Item, evenly_spaced, load_frames
from .trainer import Progress, ShouldStop, TrainConfig, Trainer, build_optimizer, build_schedule, compact_metrics

FORGETTING_TOLERANCE = 0.01  # Dice the original frames may lose before a new model is not advised
FORGETTING_FRAMES = 64  # training frames of a source without a validation split that measure forgetting
MIN_CORRECTED_FRAMES = 8  # fewer cannot both teach the model and measure what it learnt
HELD_OUT, ORIGINAL_VALIDATION, ORIGINAL_SAMPLE = "held_out", "original_validation", "original_training_sample"
ROWS = {
    # the rows of the before/after table (the finetune command, the app's dialog, the card): key -> what it measures
    HELD_OUT: "held-out corrected frames",
    ORIGINAL_VALIDATION: "original validation",
    ORIGINAL_SAMPLE: "original training frames (fixed sample)",
}
TRAINABLE = {
    # which parameters learn, by the name prefixes of the network's modules
    "nodule-decoder": ("nodule_decoder.", "prior_convs.", "findings_head."),
    "all-but-gland": ("encoder.", "nodule_decoder.", "prior_convs.", "findings_head."),
    "all": ("",),
}


@dataclass
class FinetuneConfig:
    """One fine-tuning: source checkpoint, corrected frames, replay, what learns and how fast."""

    source: str  # checkpoint to start from (never modified)
    nodules: str  # dataset of corrected frames
    out: str | None = None  # new checkpoint; default: the next free version in the user model folder
    replay: str | None = None  # default: the source's training nodule dataset, when it exists here
    replay_ratio: float = 2.0  # replayed frames per corrected frame
    epochs: int = 12
    held_fraction: float = 0.25  # corrected exams held out (last contiguous block) to measure the change
    # defaults: the best site gain in bench/finetune_gain.py without forgetting (bench/README.md)
    trainable: str = "all-but-gland"  # a key of TRAINABLE
    optimizer: str = "adamw"
    lr: float = 3e-4
    batch: int = 8
    seed: int = 0
    device: str = "auto"
    command: str = ""


@dataclass
class FinetuneResult:
    """``status``: "finished" (``checkpoint`` written) or "stopped" (nothing written)."""

    status: str
    checkpoint: Path | None
    table: dict[str, dict[str, Any]]  # {a key of ROWS: {"n", "before", "after"}}, the rows measured
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


def check_output(source: Path, out: Path, data: Sequence[str | Path | None] = ()) -> None:
    """Refuse to write onto the source checkpoint or onto any existing file, and (``io.outputs``) the checkpoint or
    its card onto an input, into one of the ``data`` folders or any dataset, or onto a folder or device."""
    if out.resolve() == source.resolve() or (out.exists() and out.samefile(source)):
        raise ValueError(f"{out} is the source checkpoint; fine-tuning never overwrites its source -- choose another --out")
    if out.exists():
        raise FileExistsError(f"{out} exists; fine-tuning writes a new checkpoint -- choose another --out")
    plan = OutputPlan([source, *(folder for folder in data if folder)])
    for path, what in ((out, "--out"), (out.with_suffix(".md"), "the card")):
        plan.check(path, what)


def format_table(table: dict[str, dict[str, Any]]) -> str:
    """The before/after Dice table printed by the finetune command (the rows measured), and what it says
    (:func:`advice`)."""
    lines = [f"{'':40} {'frames':>6} {'Dice before':>12} {'Dice after':>11} {'change':>8}"]
    for key, title in ROWS.items():
        if table.get(key):
            row = table[key]
            lines.append(f"{title:40} {row['n']:>6} {row['before']['dice']:>12.4f} {row['after']['dice']:>11.4f} "
                         f"{100 * _change(row):>+7.2f}pt")
    return "\n".join(lines) + "\n" + advice(table)


def _original(table: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """The row that measured forgetting (the original validation, else the training sample), with its key."""
    return next(((key, table[key]) for key in (ORIGINAL_VALIDATION, ORIGINAL_SAMPLE) if table.get(key)), None)


def _change(row: dict[str, Any]) -> float:
    return row["after"]["dice"] - row["before"]["dice"]


def improved(table: dict[str, dict[str, Any]]) -> bool:
    """Did the held-out corrected frames gain Dice, without the original frames that measured forgetting losing more
    than ``FORGETTING_TOLERANCE``? (The app proposes the new model only then.)"""
    held, original = table.get(HELD_OUT), _original(table)
    forgot = original is not None and -_change(original[1]) > FORGETTING_TOLERANCE
    return bool(held) and _change(held) > 0 and not forgot


def advice(table: dict[str, dict[str, Any]]) -> str:
    """What the before/after table says, in words: only the figures it holds, and that forgetting was not measured
    when no original frames could be scored."""
    held, original = table.get(HELD_OUT), _original(table)
    parts = []
    if held:
        verb = "gained" if _change(held) > 0 else "did not improve:"
        parts.append(f"The {held['n']} held-out corrected frames {verb} {100 * _change(held):+.2f} Dice points")
    if original is None:
        parts.append("forgetting was not measured (none of the source's original frames is available here)")
    else:
        key, row = original
        what = ("the original validation" if key == ORIGINAL_VALIDATION else
                f"a fixed sample of {row['n']} of its training frames (the source has no validation split)")
        lost_too_much = -_change(row) > FORGETTING_TOLERANCE
        parts.append(f"{what} changed by {100 * _change(row):+.2f} points"
                     + (f", more than the {100 * FORGETTING_TOLERANCE:g} allowed" if lost_too_much else ""))
    verdict = "activating the new model is advised" if improved(table) else "keeping the current model is advised"
    return "; ".join(parts) + f": {verdict}."


def _load(root: str | Path, keys: Sequence[str] | None, meta: ModelMeta, exclude: Sequence[str] = (),
          originals: bool = False, labels: dict[str, Findings] | None = None) -> FrameSet:
    """Frames of ``root`` (only ``keys`` when given, minus ``exclude``), cropped and resized once."""
    wanted = set(keys) if keys is not None else None
    skip = set(exclude)
    chosen = [s for s in open_dataset(root).samples
              if (wanted is None or s.key in wanted) and s.key not in skip and s.mask is not None]
    return load_frames(chosen, meta, keep_originals=originals, labels=labels)


def _freeze_batchnorm(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


class FinetuneTrainer(Trainer):
    """The training loop with fine-tuning's data, network, validation and ending (no run folder)."""

    def __init__(self, config: FinetuneConfig, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> None:
        if config.trainable not in TRAINABLE:
            raise ValueError(f"unknown trainable part {config.trainable!r}; choose one of {', '.join(TRAINABLE)}")
        self.finetune = config
        self.corrected_keys = [s.key for s in open_dataset(config.nodules).samples if s.mask is not None]
        if len(self.corrected_keys) < MIN_CORRECTED_FRAMES:
            raise DatasetError(f"{config.nodules}: {len(self.corrected_keys)} corrected frames; fine-tuning needs at least "
                               f"{MIN_CORRECTED_FRAMES} (some to learn from, some held out to measure the change)")
        self.source = Path(config.source)
        self.source_model, self.source_meta = load_checkpoint(self.source)
        self.out = Path(config.out) if config.out else default_output(self.source_meta, user_dir())
        check_output(self.source, self.out, [config.nodules, config.replay])
        recipe = (self.source_meta.training or {}).get("recipe", {})
        train_config = TrainConfig(
            arch=self.source_meta.arch, nodules=config.nodules, out="", fold=None, epochs=config.epochs,
            encoder=self.source_meta.encoder, width=self.source_meta.width, batch_pairs=config.batch, lr=config.lr,
            optimizer=config.optimizer, weight_decay=recipe.get("weight_decay", 5e-4), schedule="cosine",
            loss=recipe.get("loss", "dice"), weak_gland=recipe.get("weak_gland", 0.0),
            findings_weight=recipe.get("findings_weight", 0.2) if self.source_meta.findings else 0.0,
            augment=recipe.get("augment", "flip"), seed=config.seed, device=config.device, val_every=1, command=config.command,
        )
        super().__init__(train_config, progress, should_stop, show_bar=False)
        self.started = time.perf_counter()
        self.table: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ data and network

    def prepare_data(self) -> None:
        meta = self.meta = copy.deepcopy(self.source_meta)
        corrected_root = Path(self.finetune.nodules)
        labels_path = corrected_root / LABELS_FILE
        self.labels = read_labels(labels_path) if labels_path.is_file() else {}
        kept_keys, self.held_keys = holdout_split(self.corrected_keys, self.finetune.held_fraction,
                                                  dataset_groups(corrected_root))
        self.sets = {"train": _load(corrected_root, kept_keys, meta, labels=self.labels),
                     "held": _load(corrected_root, self.held_keys, meta, originals=True, labels=self.labels)}
        training = meta.training or {}
        recorded_root = training.get("data", {}).get("nodules")
        original_root = from_project(recorded_root) if recorded_root else None
        here = original_root is not None and original_root.is_dir()
        self.original_row, original_keys = self.forgetting_frames(original_root if here else None, training)
        if original_keys:
            original_labels = read_labels(original_root / LABELS_FILE) if (original_root / LABELS_FILE).is_file() else {}
            self.labels = {**original_labels, **self.labels}
            self.sets["val"] = _load(original_root, original_keys, meta, originals=True, labels=self.labels)
        replay_root = Path(self.finetune.replay) if self.finetune.replay else (original_root if here else None)
        if replay_root is not None:
            exclude = original_keys if replay_root == original_root else ()
            self.sets["replay"] = _load(replay_root, None, meta, exclude=exclude, labels=self.labels)
        self.replay_root = replay_root
        self.sample_keys = original_keys if self.original_row == ORIGINAL_SAMPLE else []
        self.data_record = {}

    @staticmethod
    def forgetting_frames(original_root: Path | None, training: dict[str, Any]) -> tuple[str | None, list[str]]:
        """(table row, keys) of the original frames that measure forgetting: the source's validation split, else
        the fixed sample of its training frames it records (a fine-tuned source), else a new one: FORGETTING_FRAMES
        of the original dataset's labelled frames spread evenly over their keys; (None, []) when the original
        dataset is not here."""
        if original_root is None:
            return None, []
        validation = list(training.get("split", {}).get("validation_keys", []))
        if validation:
            return ORIGINAL_VALIDATION, validation
        recorded = list(training.get("forgetting_sample_keys", []))
        if recorded:
            return ORIGINAL_SAMPLE, recorded
        labelled = [s for s in open_dataset(original_root).samples if s.mask is not None]
        return ORIGINAL_SAMPLE, [s.key for s in evenly_spaced(labelled, FORGETTING_FRAMES)]

    def training_sets(self) -> list[FrameSet]:
        return [self.sets[name] for name in ("train", "replay") if name in self.sets]

    def build_network(self) -> nn.Module:
        model = self.source_model.to(self.device, memory_format=torch.channels_last)
        prefixes = TRAINABLE[self.finetune.trainable]
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith(prefixes))
        return model

    def configure_optimizers(self):
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = build_optimizer(trainable, self.config)
        n_replay = round(self.finetune.replay_ratio * len(self.sets["train"])) if "replay" in self.sets else 0
        self.n_replay = n_replay
        self.steps_per_epoch = -(-(len(self.sets["train"]) + n_replay) // self.config.batch_pairs)
        return optimizer, build_schedule(optimizer, "cosine", self.steps_per_epoch * self.config.epochs)

    # ------------------------------------------------------------------ the loop's steps

    def on_train_start(self) -> None:
        super().on_train_start()
        self.progress(StageProgress("scoring the source model"))
        self.before = self.score_all()
        self.report_held_out(0, self.before[HELD_OUT])

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        _freeze_batchnorm(self.model)
        self.rng = np.random.default_rng([self.config.seed, epoch])

    def epoch_steps(self, epoch: int) -> list[list[Item]]:
        """The corrected frames and ``n_replay`` frames replayed at random, shuffled together."""
        rng = np.random.default_rng([self.config.seed, epoch, 7])
        items: list[Item] = [(self.sets["train"], i, True) for i in range(len(self.sets["train"]))]
        if self.n_replay:
            items += [(self.sets["replay"], int(i), True) for i in rng.integers(0, len(self.sets["replay"]), self.n_replay)]
        items = [items[i] for i in rng.permutation(len(items))]
        return [items[s : s + self.config.batch_pairs] for s in range(0, len(items), self.config.batch_pairs)]

    def on_epoch_end(self, epoch: int) -> None:
        if epoch + 1 < self.config.epochs:  # the last epoch is scored with everything else at the end
            self.model.eval()
            self.report_held_out(epoch + 1, self.score("held"))
            self.model.train()

    def on_train_end(self) -> None:
        self.model.eval()
        self.progress(StageProgress("scoring the fine-tuned model"))
        after = self.score_all()
        self.report_held_out(self.config.epochs, after[HELD_OUT])
        self.table = {name: {"title": ROWS[name], "n": self.before[name]["n"], "before": self.before[name],
                             "after": after[name]}
                      for name in self.before if self.before[name] is not None}
        self.write(after)

    def on_stopped(self, status: str, epoch: int) -> None:
        """Nothing is written when fine-tuning is stopped."""

    # ------------------------------------------------------------------ scores and the new checkpoint

    def score(self, name: str) -> dict[str, Any] | None:
        if name not in self.sets or not len(self.sets[name]):
            return None
        frames = self.sets[name]
        cases = [Case(k, f, m, None, self.labels.get(k)) for k, (f, m) in zip(frames.keys, frames.originals)]
        return compact_metrics(evaluate(self.segmenter(), cases).summary())

    def score_all(self) -> dict[str, dict[str, Any] | None]:
        self.model.eval()
        scores = {HELD_OUT: self.score("held")}
        if self.original_row is not None:
            scores[self.original_row] = self.score("val")
        self.model.train()
        return scores

    def report_held_out(self, epoch: int, scores: dict[str, Any] | None) -> None:
        """The held-out Dice after ``epoch`` epochs (0 = before fine-tuning), for a live curve."""
        if scores is not None:
            self.progress(EpochProgress(epoch, self.config.epochs, {"held_out_dice": scores["dice"]}))

    def write(self, after: dict[str, dict[str, Any] | None]) -> None:
        source_meta, config = self.source_meta, self.finetune
        meta = copy.deepcopy(source_meta)
        meta.version = next_version(source_meta)
        meta.name = self.out.stem
        meta.created = time.strftime("%Y-%m-%d")
        training = dict(source_meta.training or {})
        training["data"] = {**training.get("data", {}), "corrected": project_relative(config.nodules),
                            "replay": project_relative(self.replay_root) if self.replay_root else None}
        training["finetuned_from"] = {"file": self.source.name, "name": source_meta.name, "version": source_meta.version,
                                      "sha256": sha256(self.source)}
        training["held_out_keys"] = self.held_keys
        if self.sample_keys:
            training["forgetting_sample_keys"] = self.sample_keys
        training["replay"] = {"ratio": config.replay_ratio, "frames_per_epoch": self.n_replay}
        training["recipe"] = {**training.get("recipe", {}), "finetune": {
            "epochs": config.epochs, "lr": config.lr, "optimizer": config.optimizer, "trainable": config.trainable,
            "batch": config.batch, "batchnorm": "frozen", "seed": config.seed,
            "corrected_frames": len(self.sets["train"]), "held_out_frames": len(self.sets["held"])}}
        training["source_command"] = training.get("command", "")
        training["command"] = config.command
        meta.training = training
        meta.metrics = {"nodule": after.get(ORIGINAL_VALIDATION) or after[HELD_OUT], "finetune": self.table,
                        "finetune_advice": advice(self.table)}
        save_checkpoint(self.out, self.model, meta)
        write_model_card(self.out, meta)


def finetune(config: FinetuneConfig, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> FinetuneResult:
    """Fine-tune ``config.source`` on corrected frames; write a new checkpoint and card; report before/after.

    ``progress`` receives StageProgress, StepProgress and EpochProgress (held-out Dice, epoch 0 = before);
    when ``should_stop()`` turns true nothing is written and the result's status is "stopped".
    """
    trainer = FinetuneTrainer(config, progress, should_stop)
    result = trainer.run_training()
    seconds = time.perf_counter() - trainer.started
    if result.status != "finished":
        return FinetuneResult("stopped", None, {}, seconds)
    return FinetuneResult("finished", trainer.out, trainer.table, seconds)

