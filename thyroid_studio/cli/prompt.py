"""`thyroid-studio prompt`: one mask per box listed in a CSV, with the LiteMedSAM box-prompt model.

A thin wrapper over engine.inference.prompt_batch.prompt_boxes (the CSV format and the mask names are
documented there and in the README).
"""
from __future__ import annotations

import argparse
import sys

from ..engine.inference.segmenter import DEVICE_CHOICES
from . import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, bar_progress, print_error, use_network_threads
from .arguments import whole
from .interruption import StopRequest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--boxes", required=True, metavar="CSV",
                        help="CSV with columns file,x0,y0,x1,y1 (frame pixels, x1/y1 exclusive) and optionally frame "
                             "(0-based, for multi-frame files); segment's segmentation.csv works as is")
    parser.add_argument("--out", required=True,
                        help="output folder: <name>.png per row (a second box on the same frame: <name>_box2.png, ...) "
                             "and prompt.csv mapping rows to masks")
    parser.add_argument("--model", help="prompt model name or file (default: the shipped LiteMedSAM)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--threads", type=whole(1, 1024), help="CPU threads for the network (default: one core fewer than the machine has)")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..engine.inference.prompt_batch import BoxTableError, prompt_boxes, read_box_table
    from ..engine.inference.prompting import PromptSegmenter
    from ..engine.models.checkpoint import CheckpointError
    from ..engine.models.library import default_prompt_model, resolve_model

    use_network_threads(args.threads)
    try:
        read_box_table(args.boxes)  # a table that cannot be used fails before the model loads
        model = resolve_model(args.model) if args.model else default_prompt_model()
        prompter = PromptSegmenter.from_checkpoint(model, device=args.device)
    except (BoxTableError, CheckpointError, ValueError) as exc:
        print_error("prompt", str(exc))
        return EXIT_USAGE
    with tqdm(unit="box", desc="prompt", file=sys.stderr, dynamic_ncols=True) as bar:
        progress = bar_progress(bar)

        def failed(line: int, message: str) -> None:
            bar.write(f"skipped line {line}: {message}", file=sys.stderr)

        try:
            with StopRequest("prompt", "the current box") as stop:
                report = prompt_boxes(args.boxes, args.out, prompter, progress, failed, should_stop=stop)
        except (BoxTableError, ValueError) as exc:
            bar.clear()
            print_error("prompt", str(exc))
            return EXIT_USAGE
    done = "interrupted: " if report.cancelled else ""
    print(f"{done}{report.masks} masks from {report.rows} rows in {report.seconds:.1f} s; summary: {report.csv_path}",
          file=sys.stderr)
    if report.cancelled:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_SOME_FAILED
