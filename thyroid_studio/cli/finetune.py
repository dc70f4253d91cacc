"""`thyroid-studio finetune`: fine-tune a checkpoint on corrected frames into a NEW versioned checkpoint.

Prints Dice before and after on held-out corrected frames and on the source's
original validation split; the source checkpoint is never modified.
"""
from __future__ import annotations

import argparse

from ..engine.finetuning import TRAINABLE, FinetuneConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, metavar="CHECKPOINT", help="checkpoint to start from")
    parser.add_argument("--nodules", required=True, metavar="CORRECTED_DATASET", help="dataset of corrected frames")
    parser.add_argument("--replay", metavar="DATASET", help="original frames to replay (default: the source's training data)")
    parser.add_argument("--replay-ratio", type=float, default=2.0, help="replayed frames per corrected frame (default 2)")
    parser.add_argument("--epochs", type=int, default=FinetuneConfig.epochs)
    parser.add_argument("--held-fraction", type=float, default=0.25, help="corrected exams held out to measure (default 0.25)")
    parser.add_argument("--trainable", choices=list(TRAINABLE), default=FinetuneConfig.trainable, help="which parts learn")
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default=FinetuneConfig.optimizer)
    parser.add_argument("--lr", type=float, default=FinetuneConfig.lr, help="learning rate")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--out", metavar="FILE", help="new checkpoint (default: next version in the user model folder)")


def run(args: argparse.Namespace) -> int:
    from ..engine.finetuning import finetune, format_table
    from ..engine.run_folder import command_line

    fields = {k: v for k, v in vars(args).items() if k in FinetuneConfig.__dataclass_fields__ and k != "command"}
    try:
        result = finetune(FinetuneConfig(**fields, command=command_line()))
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}")
        return 2
    print(format_table(result.table))
    print(f"wrote {result.checkpoint} (+ card) in {result.seconds:.0f} s")
    return 0
