"""`thyroid-studio segment`: a thin command-line wrapper over engine.inference.batch.segment_paths."""
from __future__ import annotations

import argparse
import logging
import sys

from ..engine.inference.refinement import REFINEMENTS
from ..engine.inference.segmenter import DEVICE_CHOICES
from ..engine.models.checkpoint import CheckpointError
from ..engine.preprocessing import CONTRAST_MODES
from . import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, bar_progress, print_error, use_network_threads
from .arguments import probability, scale, scale_help, whole
from .interruption import StopRequest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (searched recursively), DICOM, video")
    parser.add_argument("--out", required=True, help="output folder (must not be inside an input folder)")
    parser.add_argument("--model", help="model name or checkpoint file (default: the shipped TRFE-Net)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--overlay", action="store_true", help="also write <name>_overlay.png with the contours")
    parser.add_argument("--gland", action="store_true",
                        help="also write <name>_gland.png (0/255), the predicted thyroid gland (models with a gland head)")
    parser.add_argument("--seg-out", action="store_true",
                        help="also write <name>_seg.dcm beside each mask of a DICOM input: a DICOM Segmentation (SEG) "
                             "referencing the frame, the model's nodule (and gland with --gland) as segments, for a "
                             "PACS or a viewer; other inputs get none, with a line saying why")
    parser.add_argument("--tta", action="store_true", help="flip test-time augmentation: average each frame and its mirror")
    parser.add_argument("--batch-size", type=whole(1, 1024), default=4, help="frames per forward pass (default 4)")
    parser.add_argument("--no-crop", action="store_true", help="feed the whole frame, not the detected ultrasound region")
    parser.add_argument("--contrast", choices=CONTRAST_MODES, help="contrast mode (default: the model's)")
    parser.add_argument("--largest", action="store_true", help="keep only the largest nodule component")
    parser.add_argument("--fill-holes", action="store_true", help="fill holes in the nodule mask")
    parser.add_argument("--inside-gland", action="store_true", help="drop nodule components outside the predicted gland")
    parser.add_argument("--threshold", type=probability, help="nodule probability threshold, between 0 and 1 "
                        "(default: the model's)")
    parser.add_argument("--refine", choices=REFINEMENTS, default="none",
                        help="second stage: 'medsam' redraws each nodule with LiteMedSAM from the box of the first "
                             "stage's largest component (about 1 s more per frame on a CPU; see bench/README.md)")
    parser.add_argument("--scale", type=scale, metavar="auto|MM_PER_PIXEL",
                        help=scale_help("the CSV's scale_source column"))
    parser.add_argument("--threads", type=whole(1, 1024), help="CPU threads for the network (default: one core fewer "
                        "than the machine has, leaving one to the reader and writer threads; see bench/README.md)")


class _BarWarnings(logging.Handler):
    """The engine's warnings written above the progress bar, as ``warning: ...`` lines."""

    def __init__(self, bar) -> None:
        super().__init__(logging.WARNING)
        self.bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        self.bar.write(f"warning: {record.getMessage()}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..engine.inference.batch import CSV_NAME, BatchOptions, check_output_dir, make_output_dir, segment_paths
    from ..engine.inference.refinement import with_refinement
    from ..engine.inference.segmenter import PostProcess, Segmenter
    from ..engine.io.frames import find_inputs
    from ..engine.models.library import resolve_model

    use_network_threads(args.threads)
    if not find_inputs(args.paths):
        print_error("segment", f"no images, DICOM or video found in {', '.join(args.paths)}")
        return EXIT_USAGE
    try:
        check_output_dir(args.paths, args.out)
        segmenter = Segmenter.from_checkpoint(
            resolve_model(args.model),
            device=args.device,
            crop=not args.no_crop,
            contrast=args.contrast,
            postprocess=PostProcess(args.largest, args.fill_holes, args.inside_gland),
            threshold=args.threshold,
            flip_tta=args.tta,
        )
        if args.gland and not segmenter.has_gland:
            raise ValueError(f"--gland needs a model with a gland head; {segmenter.meta.arch} has none")
        segmenter = with_refinement(segmenter, args.refine)
        make_output_dir(args.out)
    except (CheckpointError, ValueError) as exc:
        print_error("segment", str(exc))
        return EXIT_USAGE
    with tqdm(unit="frame", desc="segment", file=sys.stderr, dynamic_ncols=True) as bar:
        progress = bar_progress(bar)

        def failed(path, message: str) -> None:
            bar.write(f"thyroid-studio segment: {message}" if path.name == CSV_NAME else f"skipped {message}",
                      file=sys.stderr)

        warnings = _BarWarnings(bar)  # e.g. a DICOM calibration refused: a line of its own, not inside the bar
        logging.getLogger("thyroid_studio").addHandler(warnings)
        try:
            with StopRequest("segment", "the current batch of frames") as stop:
                options = BatchOptions(args.overlay, args.batch_size, gland=args.gland, seg=args.seg_out,
                                       scale=args.scale)
                result = segment_paths(args.paths, args.out, segmenter, options, progress,
                                       should_stop=stop, on_failure=failed)
        except ValueError as exc:  # the output folder taken by another run, the summary's name by an input, ...
            bar.clear()
            print_error("segment", str(exc))
            return EXIT_USAGE
        finally:
            logging.getLogger("thyroid_studio").removeHandler(warnings)
    summary = f"summary: {result.csv_path}" if result.csv_path else "no summary CSV"
    if args.scale is not None and result.frames:
        origins = {"none": "no calibration (pixels only)"}
        print("millimetres: " + ", ".join(f"{count} frame(s) from {origins.get(source, source)}"
                                          for source, count in sorted(result.scales.items())), file=sys.stderr)
    done = "interrupted after " if result.cancelled else ""
    print(
        f"{done}{result.frames} frames from {result.files_done} of {result.files} files "
        f"in {result.seconds:.1f} s ({result.frames_per_second:.1f} frames/s); {summary}",
        file=sys.stderr,
    )
    if result.cancelled:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_SOME_FAILED
