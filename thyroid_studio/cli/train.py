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



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", choices=list(ARCHITECTURES), default="trfe-a", help="network (default trfe-a)")
    parser.add_argument("--nodules", required=True, metavar="DATASET", help="nodule dataset folder (any layout)")
    parser.add_argument("--glands", metavar="DATASET", help="gland dataset with train/val splits (all but unet)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to create (or resume)")
    parser.add_argument("--fold", type=int, default=0, help="validation fold, 0-based (default 0)")
    parser.add_argument("--folds", type=int, default=5, help="exam-grouped contiguous folds (default 5)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--width", type=int, default=64, help="channels at full resolution (paper: 64)")
    parser.add_argument("--size", type=int, default=224, help="square input size, divisible by 16")
    parser.add_argument("--batch-pairs", type=int, default=8, help="nodule/gland pairs per step (unet: frames)")
    parser.add_argument("--lr", type=float, help="learning rate (default 1e-2 for sgd, 1e-3 for adamw)")
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    parser.add_argument("--schedule", choices=("poly", "cosine"), default="poly")
    parser.add_argument("--loss", choices=LOSSES, default="dice")
    parser.add_argument("--gland-weight", type=float, default=0.5)
    parser.add_argument("--augment", choices=AUGMENTATIONS, default="flip")
    parser.add_argument("--keep-aspect", action="store_true", help="letterbox instead of stretching")
    parser.add_argument("--contrast", choices=CONTRAST_MODES, default="none")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from state_last.pt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gland-val-frames", type=int, default=120, help="gland val frames scored per epoch (0 = all)")
    parser.add_argument("--name", default="", help="model name (default <arch>-w<width>)")
    parser.add_argument("--version", default="1")


def run(args: argparse.Namespace) -> int:
    from ..engine.training import TrainConfig, command_line, train

    fields = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__ and k != "command"}
    result = train(TrainConfig(**fields, command=command_line()))
    print(f"{result.status}: {result.epochs_done} epochs in {result.run_dir}; best validation nodule Dice "
          f"{result.best_dice:.4f} (epoch {result.best_epoch})")
    if result.best_checkpoint:
        print(f"best checkpoint: {result.best_checkpoint}")
    return 0 if result.status == "finished" else 130
