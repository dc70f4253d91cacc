"""`thyroid-studio segment`: a thin command-line wrapper over engine.batch.segment_paths."""
from __future__ import annotations

import argparse
import sys

from ..engine.checkpoint import CheckpointError
from ..engine.preprocessing import CONTRAST_MODES
from ..engine.inference import DEVICE_CHOICES
from ..engine.refinement import REFINEMENTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (searched recursively), DICOM, video")
    parser.add_argument("--out", required=True, help="output folder (must not be inside an input folder)")
    parser.add_argument("--model", help="model name or checkpoint file (default: the shipped TRFE-Net)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--overlay", action="store_true", help="also write <name>_overlay.png with the contours")
    parser.add_argument("--batch-size", type=_positive, default=4, help="frames per forward pass (default 4)")
    parser.add_argument("--no-crop", action="store_true", help="feed the whole frame, not the detected ultrasound region")
    parser.add_argument("--contrast", choices=CONTRAST_MODES, help="contrast mode (default: the model's)")
    parser.add_argument("--largest", action="store_true", help="keep only the largest nodule component")
    parser.add_argument("--fill-holes", action="store_true", help="fill holes in the nodule mask")
    parser.add_argument("--inside-gland", action="store_true", help="drop nodule components outside the predicted gland")
    parser.add_argument("--threshold", type=float, help="nodule probability threshold (default: the model's)")
    parser.add_argument("--refine", choices=REFINEMENTS, default="none",
                        help="second stage: 'medsam' redraws each nodule with LiteMedSAM from the box of the first "
                             "stage's largest component (about 1 s more per frame on a CPU; see bench/README.md)")
    parser.add_argument("--threads", type=_positive, help="CPU threads for the network (default: one per core; "
                        "use 1 on a machine busy with other work, see bench/README.md)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..engine.batch import BatchOptions, check_output_dir, segment_paths
    from ..engine.inference import PostProcess, Segmenter
    from ..engine.model_library import resolve_model
    from ..engine.refinement import with_refinement

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        check_output_dir(args.paths, args.out)
        segmenter = Segmenter.from_checkpoint(
            resolve_model(args.model),
            device=args.device,
            crop=not args.no_crop,
            contrast=args.contrast,
            postprocess=PostProcess(args.largest, args.fill_holes, args.inside_gland),
            threshold=args.threshold,
        )
        segmenter = with_refinement(segmenter, args.refine)
    except (CheckpointError, ValueError) as exc:
        print(f"thyroid-studio segment: {exc}", file=sys.stderr)
        return 2
    with tqdm(unit="frame", desc="segment", file=sys.stderr, dynamic_ncols=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        def failed(_path, message: str) -> None:
            bar.write(f"skipped {message}", file=sys.stderr)

        report = segment_paths(
            args.paths, args.out, segmenter, BatchOptions(args.overlay, args.batch_size), progress, on_failure=failed
        )
    print(
        f"{report.frames} frames from {report.files - len(report.failures)} of {report.files} files "
        f"in {report.seconds:.1f} s ({report.frames_per_second:.1f} frames/s); summary: {report.csv_path}",
        file=sys.stderr,
    )
    return 0 if report.ok else 1
