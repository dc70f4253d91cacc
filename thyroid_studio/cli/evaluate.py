"""`thyroid-studio evaluate`: score a model, or a folder of predicted masks, against ground-truth masks.

The scoring is ``engine.training.evaluation`` (the one that training and fine-tuning use): masks at each
frame's original resolution, per image (mean ± std) and pooled over all pixels, printed in the
paper's table style; for a model with a gland head, how much of the true nodule its gland
covers (the region prior's coverage) and the gland's share of the ultrasound image; and when a
``labels.csv`` (engine.findings.fields) lies beside the masks, or is given with ``--labels``, and the
model has findings heads, its predicted findings (engine.findings.classification_metrics).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..engine.inference.segmenter import DEVICE_CHOICES
from . import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, print_error, use_network_threads
from .arguments import json_path, whole


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model name or checkpoint file to run on the images")
    source.add_argument("--predictions", type=Path, help="folder of predicted masks, matched to images by stem")
    parser.add_argument("--images", type=Path, help="folder of images (or DICOM/video)")
    parser.add_argument("--masks", type=Path, help="folder of ground-truth masks, matched by stem, and of DICOM SEGs, "
                        "matched to the DICOM frames they reference")
    parser.add_argument("--dataset", type=Path, help="dataset root (TN3K, TG3K, image/ + mask/) instead of --images/--masks")
    parser.add_argument("--split", help="split of --dataset to score (default: all)")
    parser.add_argument("--json", type=json_path, help="write the summary and per-image metrics to this .json file")
    parser.add_argument("--labels", type=Path, help="labels.csv of the frames' findings (default: a labels.csv "
                        "in the --masks folder or beside it, or in the --dataset root)")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--batch-size", type=whole(1, 1024), default=4, help="frames per forward pass with --model")
    parser.add_argument("--tta", action="store_true", help="with --model: flip test-time augmentation")
    parser.add_argument("--inside-gland", action="store_true",
                        help="with --model: drop nodule components outside the predicted gland")


@dataclass
class Problems:
    """Frames that could not be scored, by reason."""

    missing_predictions: list[str] = field(default_factory=list)
    missing_masks: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def report(self) -> None:
        """One line per kind of missing file (names listed), and one line per unreadable file."""
        for title, names in (("missing predictions", self.missing_predictions),
                             ("no ground-truth mask", self.missing_masks)):
            if names:
                shown = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
                print(f"{title} (not scored): {shown}", file=sys.stderr)
        for message in self.unreadable:
            print(f"not scored: {message}", file=sys.stderr)

    def __bool__(self) -> bool:
        return bool(self.missing_predictions or self.missing_masks or self.unreadable)


def masks_by_stem(folder: Path) -> dict[str, Path]:
    """Mask files below ``folder`` by file stem (overlays and hidden files skipped; first in sorted order wins)."""
    from ..engine.io.frames import IMAGE_EXTENSIONS

    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and not path.stem.endswith("_overlay"):
            found.setdefault(path.stem, path)
    return found


def _inputs(args: argparse.Namespace) -> tuple[list[Path], dict[str, Path]]:
    """The image files and the ground-truth mask files by key, from --dataset/--split or --images/--masks."""
    from ..engine.datasets.layouts import open_dataset
    from ..engine.io.dicom_seg import is_seg
    from ..engine.io.frames import find_inputs, is_dicom

    if args.dataset:
        if args.images or args.masks:
            raise ValueError("give --dataset ROOT or --images DIR and --masks DIR, not both")
        samples = open_dataset(args.dataset).split(args.split or "all")
        return [s.image for s in samples], {s.key: s.mask for s in samples if s.mask is not None}
    if args.split:
        raise ValueError("--split chooses a split of --dataset; give --dataset ROOT")
    if not (args.images and args.masks):
        raise ValueError("give --images DIR and --masks DIR, or --dataset ROOT [--split NAME]")
    for folder in (args.images, args.masks):
        if not folder.is_dir():
            raise ValueError(f"{folder}: not a folder")
    frames = [path for path in find_inputs([args.images]) if not (is_dicom(path) and is_seg(path))]  # SEGs: labels
    return frames, masks_by_stem(args.masks)


def check_outputs(args: argparse.Namespace) -> None:
    """ValueError, before any scoring, for a predictions folder that is missing, options that need --model,
    or a --json that cannot be written or would land on an input or in a dataset (``io.outputs``)."""
    from ..engine.io.files import output_folder_problem
    from ..engine.io.outputs import OutputPlan

    if args.predictions and not args.predictions.is_dir():
        raise ValueError(f"{args.predictions}: not a folder")
    if args.predictions and (args.tta or args.inside_gland):
        raise ValueError("--tta and --inside-gland change what a model predicts; they need --model, not --predictions")
    if args.json:
        if args.json.is_dir():
            raise ValueError(f"--json {args.json} is a folder")
        if problem := output_folder_problem(args.json.parent):
            raise ValueError(f"--json {args.json}: its folder {problem}")
        inputs = (args.images, args.masks, args.predictions, args.dataset, args.labels)
        OutputPlan(path for path in inputs if path).check(args.json, "--json")


def seg_labels(args: argparse.Namespace, problems: Problems):
    """The DICOM SEGs in the --masks folder (engine.io.dicom_seg.SegLabels); an unreadable one is a problem."""
    from ..engine.io.dicom_seg import SegLabels, index_segs

    if not args.masks:
        return SegLabels({})
    segs, unreadable = index_segs(sorted(args.masks.rglob("*")))
    problems.unreadable += unreadable
    return SegLabels(segs)


def _pairs(images: list[Path], truth: dict[str, Path], segs, problems: Problems) -> Iterator[tuple]:
    """(frame, ground-truth bool mask) for every frame that has a readable mask: a mask file named after it, else
    a DICOM SEG that references it. SEGs that reference none of the frames are problems, one line each."""
    from ..engine.datasets.layouts import DatasetError, read_mask
    from ..engine.io.dicom_seg import SegError
    from ..engine.io.frames import FrameReadError, read_frames

    for image in images:
        segs.instance(image)
        try:
            for frame in read_frames(image):
                try:
                    mask = read_mask(truth[frame.name]) if frame.name in truth else \
                        segs.label(frame.source, frame.index, frame.pixels.shape[:2])
                except (DatasetError, SegError) as exc:
                    problems.unreadable.append(str(exc))
                    continue
                if mask is None:
                    problems.missing_masks.append(frame.name)
                    continue
                yield frame, mask
        except FrameReadError as exc:
            problems.unreadable.append(str(exc))
    problems.unreadable += [f"{path.name}: references another instance ({uid}), none of the frames of --images"
                            for path, uid in segs.strangers()]


def _predictions(args: argparse.Namespace, pairs: Iterator[tuple], problems: Problems) -> Iterator[tuple]:
    """(frame, ground truth, Segmentation) from the model, or from the predictions folder (masks only)."""
    from ..engine.datasets.layouts import DatasetError, read_mask
    from ..engine.inference.batch import batches
    from ..engine.inference.segmenter import PostProcess, Segmentation, Segmenter
    from ..engine.models.library import resolve_model

    if args.predictions:
        predicted = masks_by_stem(args.predictions)
        for frame, truth in pairs:
            if frame.name not in predicted:
                problems.missing_predictions.append(frame.name)
                continue
            try:
                mask = read_mask(predicted[frame.name])
            except DatasetError as exc:
                problems.unreadable.append(str(exc))
                continue
            yield frame, truth, Segmentation(mask.astype(np.float32), mask)
        return
    segmenter = Segmenter.from_checkpoint(resolve_model(args.model), device=args.device, flip_tta=args.tta,
                                          postprocess=PostProcess(inside_gland=args.inside_gland))
    for batch in batches(pairs, max(1, args.batch_size)):
        results = segmenter.segment([frame.pixels for frame, _ in batch])
        for (frame, truth), result in zip(batch, results):
            yield frame, truth, result


def _json_safe(value):
    """NaN (an undefined metric) becomes null, so the file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def labels_path(args: argparse.Namespace) -> Path | None:
    """``--labels``, else the first labels.csv found in the dataset root, the masks folder or beside it."""
    from ..engine.findings.fields import LABELS_FILE

    if args.labels:
        return args.labels
    folders = [args.dataset] if args.dataset else [args.masks, args.masks.parent] if args.masks else []
    return next((folder / LABELS_FILE for folder in folders if (folder / LABELS_FILE).is_file()), None)


def run(args: argparse.Namespace) -> int:
    use_network_threads()
    from ..engine.datasets.layouts import DatasetError
    from ..engine.findings.classification_metrics import format_findings_table
    from ..engine.findings.fields import LabelsError, read_labels, unattached, unattached_message
    from ..engine.io.files import write_text_atomic
    from ..engine.metrics import format_table
    from ..engine.models.checkpoint import CheckpointError
    from ..engine.training.evaluation import Case, Evaluation

    problems, evaluation, with_findings = Problems(), Evaluation(), 0
    try:
        check_outputs(args)
        labels_file = labels_path(args)
        labels = read_labels(labels_file) if labels_file else {}
        images, truth = _inputs(args)
        pairs = _pairs(images, truth, seg_labels(args, problems), problems)
        for frame, gt, result in _predictions(args, pairs, problems):
            if result.nodule_mask.shape != gt.shape:
                problems.unreadable.append(f"{frame.name}: prediction {result.nodule_mask.shape} and mask {gt.shape} differ in size")
                continue
            spacing = frame.spacing_for(result.nodule_mask | gt)
            evaluation.add(Case(frame.name, frame.pixels, gt, spacing, labels.get(frame.name)), result)
            with_findings += result.findings is not None
    except (CheckpointError, DatasetError, LabelsError, ValueError) as exc:
        print_error("evaluate", str(exc))
        return EXIT_USAGE
    problems.report()
    scored = [row["name"] for row in evaluation.masks.per_image]
    stray = unattached(labels, scored)
    if len(stray) < len(labels) and (message := unattached_message(labels_file, stray, scored)):
        print(message, file=sys.stderr)  # rows that attach to no scored frame are said (all of them: see below)
    if not evaluation.masks.per_image:
        print_error("evaluate", "nothing to score")
        return EXIT_USAGE
    summary = evaluation.summary()
    findings = summary.pop("findings", None)
    print(format_table(summary))
    if findings:
        print(f"findings scored on {len(evaluation.findings)} of {with_findings} frames (labels: {labels_file})", file=sys.stderr)
        print("\n" + format_findings_table(findings))
    elif labels:
        why = ("no labelled frame got predicted findings (that needs --model with a model that has findings heads)"
               if any(name in labels for name in scored) else
               f"none of its {len(labels)} ids names a scored frame (ids like {next(iter(labels))!r}, frames like "
               f"{scored[0]!r})")
        print(f"findings not scored: {labels_file} is there, but {why}", file=sys.stderr)
    if prior := summary.get("gland_prior"):
        print(f"\ngland prior on {prior['n']} nodule frames: the predicted gland covers a median "
              f"{100 * prior['coverage_median']:.1f} % of the true nodule (10th percentile {100 * prior['coverage_p10']:.1f} %) "
              f"and {100 * prior['gland_share_mean']:.1f} % of the ultrasound image")
    if args.json:
        source = {"model": args.model} if args.model else {"predictions": str(args.predictions)}
        payload = {**source, "summary": summary, "per_image": evaluation.rows(), **asdict(problems)}
        if findings:
            payload.update(labels=str(labels_file), findings=findings)
        try:
            write_text_atomic(args.json, json.dumps(_json_safe(payload), indent=2) + "\n")
        except OSError as exc:
            print_error("evaluate", f"cannot write --json {args.json} ({exc.strerror or exc})")
            return EXIT_SOME_FAILED
    return EXIT_SOME_FAILED if problems else EXIT_OK
