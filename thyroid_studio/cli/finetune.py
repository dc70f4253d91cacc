"""`thyroid-studio finetune`: fine-tune a checkpoint on corrected frames into a NEW versioned checkpoint.

Prints Dice before and after on held-out corrected frames and on the source's
original validation split (a fixed sample of its training frames when it has none), and
what they say; the source checkpoint is never modified, and neither is
any existing file: ``--out`` must be a new ``.pt`` whose ``.md`` card does not exist yet.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.training.finetuning import MIN_CORRECTED_FRAMES, TRAINABLE, FinetuneConfig
from . import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, print_error
from .arguments import checkpoint_path, non_negative, positive, probability, whole
from .interruption import StopRequest
from .train import SEED, labelled_keys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, metavar="CHECKPOINT", help="checkpoint to start from")
    parser.add_argument("--nodules", required=True, metavar="CORRECTED_DATASET", help="dataset of corrected frames")
    parser.add_argument("--replay", metavar="DATASET", help="original frames to replay (default: the source's training data)")
    parser.add_argument("--replay-ratio", type=non_negative, default=2.0,
                        help="replayed frames per corrected frame (default 2)")
    parser.add_argument("--epochs", type=whole(1, 10_000), default=FinetuneConfig.epochs)
    parser.add_argument("--held-fraction", type=probability, default=0.25,
                        help="corrected exams held out to measure, between 0 and 1 (default 0.25)")
    parser.add_argument("--trainable", choices=list(TRAINABLE), default=FinetuneConfig.trainable,
                        help=f"which parts learn (default {FinetuneConfig.trainable})")
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default=FinetuneConfig.optimizer)
    parser.add_argument("--lr", type=positive, default=FinetuneConfig.lr, help=f"learning rate (default {FinetuneConfig.lr:g})")
    parser.add_argument("--batch", type=whole(1, 4096), default=8)
    parser.add_argument("--seed", type=SEED, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--out", type=checkpoint_path, metavar="FILE.pt",
                        help="new checkpoint (default: next version in the user model folder)")


def check_inputs(args: argparse.Namespace) -> None:
    """ValueError with the first thing that would stop this fine-tuning, found before any work."""
    from ..engine.datasets.index import dataset_groups
    from ..engine.datasets.splits import holdout_split
    from ..engine.inference.segmenter import resolve_device
    from ..engine.io.files import output_folder_problem
    from ..engine.models.checkpoint import CheckpointError, load_checkpoint
    from ..engine.models.library import user_dir
    from ..engine.training.finetuning import check_output

    try:
        load_checkpoint(args.source)  # the weights too: a file whose weights do not fit fails here, not mid-run
    except CheckpointError as exc:
        raise ValueError(str(exc)) from exc
    keys = labelled_keys(args.nodules, "--nodules")
    if len(keys) < MIN_CORRECTED_FRAMES:
        raise ValueError(f"--nodules {args.nodules}: {len(keys)} corrected frames; fine-tuning needs at least {MIN_CORRECTED_FRAMES}")
    holdout_split(keys, args.held_fraction, dataset_groups(args.nodules))  # at least two groups?
    if args.replay:
        labelled_keys(args.replay, "--replay")
    if args.out is not None:
        check_output(Path(args.source), args.out, [args.nodules, args.replay])
        card = args.out.with_suffix(".md")
        if card.exists():
            raise ValueError(f"--out {args.out}: its card {card} exists and would be overwritten; choose another --out")
        if problem := output_folder_problem(args.out.parent):
            raise ValueError(f"--out {args.out}: its folder {problem}")
    elif problem := output_folder_problem(user_dir()):
        raise ValueError(f"the user model folder {user_dir()} {problem}; pass --out FILE.pt")
    resolve_device(args.device)


def run(args: argparse.Namespace) -> int:
    from ..engine.training.finetuning import finetune, format_table
    from ..engine.training.run_folder import command_line

    try:
        check_inputs(args)
    except (ValueError, FileExistsError) as exc:
        print_error("finetune", str(exc))
        return EXIT_USAGE
    fields = {k: v for k, v in vars(args).items() if k in FinetuneConfig.__dataclass_fields__ and k != "command"}
    fields["out"] = str(args.out) if args.out is not None else None
    try:
        with StopRequest("finetune", "the current step; nothing will be written") as stop:
            result = finetune(FinetuneConfig(**fields, command=command_line()), should_stop=stop)
    except (ValueError, OSError, MemoryError) as exc:
        print_error("finetune", f"failed: {exc}")
        return EXIT_SOME_FAILED
    if result.status != "finished":  # Ctrl-C: stopped at a step, nothing written
        print_error("finetune", "interrupted; nothing written")
        return EXIT_INTERRUPTED
    print(format_table(result.table))
    print(f"wrote {result.checkpoint} (+ card) in {result.seconds:.0f} s")
    return EXIT_OK
