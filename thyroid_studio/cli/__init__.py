"""`thyroid-studio`: the app with no subcommand, or one of the batch subcommands.

Each subcommand lives in its own module of this package and exposes
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status); modules
are imported only when their subcommand runs, so ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

SUBCOMMANDS = {
    "segment": "batch-segment image files, folders, DICOM and video",
    "evaluate": "score a model or a folder of masks against ground-truth masks",
    "models": "list the available checkpoints and their cards",
    "train": "train a network on nodule (and gland) datasets",
    "finetune": "fine-tune a checkpoint on corrected labels",
    "report": "write a PDF report per file: contours, measurements, findings, ACR TI-RADS",
    "dataset": "add labelled frames to a dataset, check or repair it, count it",
    "prompt": "one mask per box listed in a CSV (LiteMedSAM box prompts)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thyroid-studio",
        description="Thyroid nodule segmentation in ultrasound (TRFE-Net). For research, not diagnosis. "
        "With no subcommand, opens the desktop app: thyroid-studio [FILE_OR_FOLDER ...]",
    )
    parser.add_argument("--version", action="version", version=f"thyroid-studio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(command=name)
        _module(name).add_arguments(sub)
    return parser


def _module(name: str):
    return importlib.import_module(f".{name}", __name__)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        from ..app.launch import launch_app

        return launch_app(argv)
    args = build_parser().parse_args(argv)
    try:
        return _module(args.command).run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
