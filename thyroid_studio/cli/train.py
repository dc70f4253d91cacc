"""`thyroid-studio train`: train a network on nodule (and gland) datasets into a run folder.

Runs under ``torchrun --nproc_per_node=N`` as well (DistributedDataParallel).
Ctrl-C saves the run's state; ``--resume`` continues it.
"""
from __future__ import annotations

import argparse

from ..engine.augment import AUGMENTATIONS
from ..engine.losses import LOSSES
from ..engine.preprocessing import CONTRAST_MODES
from ..engine.architectures import ARCHITECTURES
from ..engine.nets.encoders import ENCODERS


def fold_number(text: str) -> int | None:
    """``--fold``: a 0-based fold number, or ``all`` to train on every frame (no validation frames)."""
    return None if text == "all" else int(text)



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", choices=list(ARCHITECTURES), default="trfe-a", help="network (default trfe-a)")
    parser.add_argument("--nodules", required=True, metavar="DATASET", help="nodule dataset folder (any layout)")
    parser.add_argument("--glands", metavar="DATASET", help="gland dataset with train/val splits (all but unet)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to create (or resume)")
    parser.add_argument("--labels", metavar="CSV", help="findings labels.csv (default: <nodules>/labels.csv when present)")
    parser.add_argument("--fold", type=fold_number, default=0, help="validation fold, 0-based, or 'all' to train on every frame (default 0)")
    parser.add_argument("--folds", type=int, default=5, help="exam-grouped contiguous folds (default 5)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--encoder", choices=list(ENCODERS), default="plain",
                        help="plain (the paper's, from scratch) or efficientnet-lite0 (ImageNet-pretrained)")
    parser.add_argument("--no-pretrained", dest="pretrained", action="store_false", help="do not load the encoder's pretrained weights")
    parser.add_argument("--width", type=int, help="decoder channels at its finest stage (default: 64 plain, 16 efficientnet-lite0)")
    parser.add_argument("--size", type=int, default=224, help="square input size, divisible by 16")
    parser.add_argument("--batch-pairs", type=int, default=8, help="nodule/gland pairs per step (unet: frames)")
    parser.add_argument("--lr", type=float, help="learning rate (default 1e-2 for sgd, 1e-3 for adamw)")
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    parser.add_argument("--schedule", choices=("poly", "cosine"), default="poly")
    parser.add_argument("--loss", choices=LOSSES, default="dice")
    parser.add_argument("--gland-weight", type=float, default=0.5, help="gland loss on gland frames (default 0.5)")
    parser.add_argument("--weak-gland", type=float, default=0.0, help="weight of 'every nodule pixel is gland' on nodule frames")
    parser.add_argument("--gland-zoom", type=float, default=0.0, help="probability of zooming a gland frame onto its gland")
    parser.add_argument("--findings-weight", type=float, default=0.2, help="alpha x cross-entropy per findings head; 0: none")
    parser.add_argument("--val-every", type=int, default=1, help="validate every N epochs (and after the last)")
    parser.add_argument("--augment", choices=AUGMENTATIONS, default="flip")
    parser.add_argument("--keep-aspect", action="store_true", help="letterbox instead of stretching")
    parser.add_argument("--contrast", choices=CONTRAST_MODES, default="none")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from state_last.pt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gland-val-frames", type=int, default=120, help="gland val frames scored per epoch (0 = all)")
    parser.add_argument("--name", default="", help="model name (default <arch>[-<encoder>]-w<width>)")
    parser.add_argument("--version", default="1")


def run(args: argparse.Namespace) -> int:
    from ..engine.run_folder import command_line
    from ..engine.trainer import TrainConfig, train

    fields = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__ and k != "command"}
    result = train(TrainConfig(**fields, command=command_line()))
    print(f"{result.status}: {result.epochs_done} epochs in {result.run_dir}; best validation nodule Dice "
          f"{result.best_dice:.4f} (epoch {result.best_epoch})")
    if result.best_checkpoint:
        print(f"best checkpoint: {result.best_checkpoint}")
    return 0 if result.status == "finished" else 130
