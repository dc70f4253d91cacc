"""`thyroid-studio report`: one PDF report per input file, one page per frame.

Each page is engine.reports.page's: the frame with the model's contours, measurements,
findings (the model's, or the user's from ``--labels``), ACR TI-RADS, the model, the date, and
"For research, not diagnosis"; thyroid_studio.report_pdf draws it with Qt's PDF writer (offscreen).
Exit status: 0 every input reported, 1 some inputs failed (one line each on stderr), 2 usage error.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from itertools import islice
from pathlib import Path

from ..engine.inference.segmenter import DEVICE_CHOICES
from . import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, print_error, use_network_threads
from .arguments import scale, scale_help, whole

MAX_PAGES = 20  # frames per report by default: a long clip would give a PDF nobody reads
BATCH_SIZE = 4  # frames per forward pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (searched recursively), DICOM, video")
    parser.add_argument("--out", required=True, help="output folder for <name>.pdf (must not be an input folder)")
    parser.add_argument("--model", help="model name or checkpoint file (default: the shipped TRFE-Net)")
    parser.add_argument("--labels", type=Path, help="labels.csv with your findings per frame (they take precedence "
                        "over the model's)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--scale", type=scale, metavar="auto|MM_PER_PIXEL", help=scale_help("each page"))
    parser.add_argument("--max-pages", type=whole(1, 10_000), default=MAX_PAGES,
                        help=f"at most this many frames of a multi-frame file (default {MAX_PAGES})")


def _frames(source: Path, max_pages: int, scale: float | str | None) -> tuple[list, int]:
    """The first ``max_pages`` frames of ``source`` (calibrated as ``--scale`` asks) and how many it has."""
    from ..engine.io.frames import count_frames, read_frames
    from ..engine.io.ruler import calibrated

    total = count_frames(source)
    return [calibrated(frame, scale) for frame in islice(read_frames(source), max_pages)], total


def run(args: argparse.Namespace) -> int:
    use_network_threads()
    from ..engine.findings.fields import read_labels
    from ..engine.inference.batch import check_output_dir, make_output_dir, plan_jobs
    from ..engine.inference.segmenter import Segmenter
    from ..engine.io.outputs import folder_lock
    from ..engine.models.checkpoint import CheckpointError
    from ..engine.models.library import resolve_model
    from ..report_pdf import ensure_gui_application

    def fail(message: str) -> None:
        print_error("report", message)

    try:
        plan = check_output_dir([*args.paths, *([args.labels] if args.labels else [])], args.out)
        labels = read_labels(args.labels) if args.labels else {}
        segmenter = Segmenter.from_checkpoint(resolve_model(args.model), device=args.device)
        jobs = plan_jobs(args.paths, args.out)
        plan.add_inputs(job.source for job in jobs)
        if jobs:
            make_output_dir(args.out)
    except (CheckpointError, ValueError) as exc:
        fail(str(exc))
        return EXIT_USAGE
    if not jobs:
        fail("no supported files among the inputs")
        return EXIT_USAGE
    ensure_gui_application()
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(folder_lock(args.out))
        except ValueError as exc:  # another run holds the folder
            fail(str(exc))
            return EXIT_USAGE
        return _reports(jobs, plan, labels, args.labels, segmenter, args.max_pages, args.scale, fail)


def _reports(jobs, plan, labels, labels_path, segmenter, max_pages: int, scale: float | str | None, fail) -> int:
    """Write each job's report (claimed in ``plan`` first: never onto an input, a folder or another report)."""
    from ..engine.findings.fields import unattached, unattached_message
    from ..engine.inference.batch import batches
    from ..engine.io.frames import FrameReadError
    from ..engine.reports.page import build_page
    from ..report_pdf import write_report_pdf

    failed = 0
    names: list[str] = []  # the frames reported, which --labels' ids must name
    for job in jobs:
        target = job.out_folder / f"{job.source.stem}.pdf"
        if (problem := plan.claim(target, job.source, "report")) is not None:
            fail(f"skipped {job.source}: its report {target.name} {problem}; rename it")
            failed += 1
            continue
        try:
            frames, total = _frames(job.source, max_pages, scale)
            pages = []
            names += [frame.name for frame in frames]
            for batch in batches(frames, BATCH_SIZE):
                results = segmenter.segment([frame.pixels for frame in batch])
                pages += [build_page(frame, result, findings=labels.get(frame.name), meta=segmenter.meta)
                          for frame, result in zip(batch, results)]
        except FrameReadError as exc:  # its message names the file
            fail(f"skipped {exc}")
            failed += 1
            continue
        except (OSError, ValueError) as exc:
            fail(f"skipped {job.source}: {exc}")
            failed += 1
            continue
        try:
            write_report_pdf(target, pages, title=f"Thyroid nodule report: {job.source.name}")
        except OSError as exc:  # its message would name the temporary file
            fail(f"skipped {job.source}: {target} cannot be written ({exc.strerror or exc})")
            failed += 1
            continue
        if total > len(frames):
            print(f"{job.source}: {total} frames; the report holds the first {len(frames)} (--max-pages)", file=sys.stderr)
        print(target)
    if labels and (message := unattached_message(labels_path, unattached(labels, names), names)):
        fail(message)
    return EXIT_SOME_FAILED if failed else EXIT_OK
