"""`thyroid-studio train`: train a network on nodule (and gland) datasets into a run folder.

Runs under ``torchrun --nproc_per_node=N`` as well (DistributedDataParallel).
Ctrl-C saves the run's state; ``--resume`` continues it. The datasets and the run
folder are checked before the run starts; a run that fails on the way leaves no
run folder behind (unless it continued an existing one).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
from pathlib import Path

from ..engine.datasets.splits import MAX_FOLDS
from ..engine.models.architectures import ARCHITECTURES, arch_spec
from ..engine.nets.blocks import NORMS
from ..engine.nets.encoders import ENCODERS, encoder_spec
from ..engine.preprocessing import CONTRAST_MODES
from ..engine.training.augment import AUGMENTATIONS
from ..engine.training.losses import LOSSES
from . import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, print_error
from .arguments import input_size, network_width, non_negative, positive, whole

SEED = whole(0, 2**32 - 1)  # numpy's generators take no negative seeds


def fold_number(text: str) -> int | None:
    """``--fold``: a 0-based fold number, or ``all`` to train on every frame (no validation frames)."""
    return None if text == "all" else whole(0)(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", choices=list(ARCHITECTURES), default="trfe-a", help="network (default trfe-a)")
    parser.add_argument("--nodules", required=True, metavar="DATASET", help="nodule dataset folder (any layout)")
    parser.add_argument("--glands", metavar="DATASET", help="gland dataset with train/val splits, e.g. TG3K (all but unet)")
    parser.add_argument("--nodule-glands", metavar="DIR",
                        help="gland masks of the nodule frames, <key>.png (e.g. resources/ddti-gland); frames without "
                             "one get no gland loss")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to create (or resume)")
    parser.add_argument("--labels", metavar="CSV", help="findings labels.csv (default: <nodules>/labels.csv when present)")
    parser.add_argument("--fold", type=fold_number, default=0,
                        help="validation fold, 0-based, or 'all' to train on every frame (default 0)")
    parser.add_argument("--folds", type=whole(2, MAX_FOLDS), default=5, help="exam-grouped contiguous folds (default 5)")
    parser.add_argument("--epochs", type=whole(1, 100_000), default=40)
    parser.add_argument("--encoder", choices=list(ENCODERS), default="plain",
                        help="plain (the paper's, from scratch) or efficientnet-lite0 (ImageNet-pretrained)")
    parser.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                        help="do not load the encoder's pretrained weights")
    parser.add_argument("--width", type=network_width,
                        help="decoder channels at its finest stage (default: 64 plain, 16 efficientnet-lite0)")
    parser.add_argument("--size", type=input_size, default=224,
                        help="square input size, divisible by 16 (32 for efficientnet-lite0), at least 32")
    parser.add_argument("--batch-pairs", type=whole(1, 4096), default=8, help="nodule/gland pairs per step (unet: frames)")
    parser.add_argument("--gland-batch", type=whole(0, 4096),
                        help="gland-dataset frames per step (default: one per nodule frame, --batch-pairs)")
    parser.add_argument("--prior-grad", choices=("full", "detach"), default="full",
                        help="full: the nodule loss trains the gland decoder through the prior (the paper's code); "
                             "detach: the gland head learns from gland masks only")
    parser.add_argument("--norm", choices=list(NORMS), default="batch",
                        help="decoder normalisation; group: GroupNorm, the encoder's BatchNorm statistics frozen")
    parser.add_argument("--lr", type=positive, help="learning rate (default 1e-2 for sgd, 1e-3 for adamw)")
    parser.add_argument("--weight-decay", type=non_negative, default=5e-4)
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    parser.add_argument("--schedule", choices=("poly", "cosine"), default="poly")
    parser.add_argument("--loss", choices=LOSSES, default="dice")
    parser.add_argument("--gland-weight", type=non_negative, default=0.5, help="gland loss on gland frames (default 0.5)")
    parser.add_argument("--weak-gland", type=non_negative, default=0.0,
                        help="weight of 'every nodule pixel is gland' on nodule frames (default 0)")
    parser.add_argument("--gland-zoom", type=non_negative, default=0.0,
                        help="probability of zooming a gland frame onto its gland (default 0)")
    parser.add_argument("--findings-weight", type=non_negative, default=0.2,
                        help="alpha x cross-entropy per findings head; 0: no findings heads (default 0.2)")
    parser.add_argument("--val-every", type=whole(1), default=1, help="validate every N epochs (and after the last)")
    parser.add_argument("--augment", choices=AUGMENTATIONS, default="flip")
    parser.add_argument("--keep-aspect", action="store_true", help="letterbox instead of stretching")
    parser.add_argument("--contrast", choices=CONTRAST_MODES, default="none")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from state_last.pt")
    parser.add_argument("--seed", type=SEED, default=0)
    parser.add_argument("--gland-val-frames", type=whole(0), default=120, help="gland val frames scored per epoch (0 = all)")
    parser.add_argument("--name", default="", help="model name (default <arch>[-<encoder>]-w<width>)")
    parser.add_argument("--version", default="1")


def labelled_keys(root: str, what: str, split: str | None = None) -> list[str]:
    """The keys of a dataset (or one split of it), ValueError when it cannot be opened or a frame has no mask."""
    from ..engine.datasets.layouts import open_dataset

    dataset = open_dataset(root)
    samples = dataset.split(split) if split else dataset.samples
    unlabelled = [s.key for s in samples if s.mask is None]
    if not samples:
        raise ValueError(f"{what} {root}{f' split {split!r}' if split else ''} holds no frames")
    if unlabelled:
        raise ValueError(f"{what} {root}: {len(unlabelled)} of {len(samples)} frames have no mask "
                         f"(e.g. {', '.join(unlabelled[:3])}); training needs a mask for every frame")
    return [s.key for s in samples]


def check_inputs(args: argparse.Namespace) -> list[str]:
    """ValueError with the first thing that would stop this run, found before anything is created; else the notes
    to print first (labels.csv rows that name no frame)."""
    from ..engine.datasets.splits import fold_split
    from ..engine.findings.fields import LABELS_FILE, read_labels, unattached, unattached_message
    from ..engine.inference.segmenter import resolve_device
    from ..engine.io.files import output_folder_problem
    from ..engine.io.outputs import OutputPlan

    if args.fold is not None and args.fold >= args.folds:
        raise ValueError(f"--fold {args.fold} is out of range for --folds {args.folds} (0 to {args.folds - 1})")
    stride = encoder_spec(args.encoder).deepest_stride
    if args.size % stride:
        raise ValueError(f"--size {args.size} must divide by {stride} for the {args.encoder} encoder")
    if args.gland_zoom > 1:
        raise ValueError(f"--gland-zoom is a probability (0 to 1), got {args.gland_zoom}")
    keys = labelled_keys(args.nodules, "--nodules")
    if args.fold is not None:
        fold_split(keys, args.fold, args.folds)  # enough exams for the folds?
    labels = Path(args.labels) if args.labels else Path(args.nodules) / LABELS_FILE
    if args.labels and not labels.is_file():
        raise ValueError(f"--labels {args.labels}: no such file")
    if labels.is_file():
        ids = read_labels(labels)  # a LabelsError (a ValueError) names the file and line
        if ids and args.findings_weight > 0 and not set(ids) & set(keys):
            raise ValueError(f"{labels}: none of its {len(ids)} ids names a frame of --nodules (ids like "
                             f"{next(iter(ids))!r}, frames like {keys[0]!r}); the findings heads would learn nothing")
        notes = [message] if (message := unattached_message(labels, unattached(ids, keys), keys)) else []
    else:
        notes = []
    if arch_spec(args.arch).has_gland:
        if not (args.glands or args.nodule_glands):
            raise ValueError(f"--arch {args.arch} has a gland head and needs a gland dataset (--glands DATASET) "
                             "and/or gland masks of its nodule frames (--nodule-glands DIR)")
        if args.glands:
            for split in ("train", "val"):
                labelled_keys(args.glands, "--glands", split)
        if args.nodule_glands and not Path(args.nodule_glands).is_dir():
            raise ValueError(f"--nodule-glands {args.nodule_glands}: no such folder")
    if problem := output_folder_problem(args.out):
        raise ValueError(f"--out {args.out} {problem}")
    OutputPlan(path for path in (args.nodules, args.glands, labels) if path).check_folder(args.out, "--out")
    has_run = (Path(args.out) / "state_last.pt").exists()
    if not args.resume and has_run:
        raise ValueError(f"{args.out} already holds a run; pass --resume to continue it or choose another --out")
    if not args.resume and Path(args.out).is_dir() and any(Path(args.out).iterdir()):
        raise ValueError(f"--out {args.out} holds other files; a run gets a new or an empty folder")
    if args.resume and not has_run:
        raise ValueError(f"--resume: {args.out} holds no run to continue (no state_last.pt)")
    resolve_device(args.device)
    return notes


def run(args: argparse.Namespace) -> int:
    from ..engine.io.outputs import folder_lock
    from ..engine.training.run_folder import command_line
    from ..engine.training.trainer import TrainConfig, train

    try:
        notes = check_inputs(args)
    except ValueError as exc:
        print_error("train", str(exc))
        return EXIT_USAGE
    for note in notes:
        print_error("train", note)
    out = Path(args.out)
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 writes the run folder
    creates_run_folder = not out.exists() and main_process
    fields = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__ and k != "command"}
    held = contextlib.ExitStack()
    try:
        if main_process:
            out.mkdir(parents=True, exist_ok=True)
            held.enter_context(folder_lock(out))  # two runs never train into one folder
    except ValueError as exc:
        print_error("train", str(exc))
        return EXIT_USAGE
    try:
        with held:
            result = train(TrainConfig(**fields, command=command_line()))
    except (ValueError, OSError, MemoryError) as exc:  # a frame that cannot be read, a full disk, ...
        if creates_run_folder:
            shutil.rmtree(out, ignore_errors=True)
        print_error("train", f"the run failed, nothing kept: {exc}" if creates_run_folder else f"the run failed: {exc}")
        return EXIT_SOME_FAILED
    except BaseException:
        if creates_run_folder:
            shutil.rmtree(out, ignore_errors=True)
        raise
    print(f"{result.status}: {result.epochs_done} epochs in {result.run_dir}; best validation nodule Dice "
          f"{result.best_dice:.4f} (epoch {result.best_epoch})")
    if result.best_checkpoint:
        print(f"best checkpoint: {result.best_checkpoint}")
    return EXIT_OK if result.status == "finished" else EXIT_INTERRUPTED
