"""`thyroid-studio dataset`: add labelled frames to a TN3K-layout dataset, check it (and repair it), count it.

All writes go through engine/datasets/writer.py, the writer the app's saves use, so several
`add` runs and app windows can write to one dataset at once, and a crash leaves it whole.
Exit status: 0 all done, 1 some inputs failed or problems were found, 2 usage error.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from . import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, print_error
from .interruption import StopRequest

ACTIONS = {
    "add": "append the image/mask pairs of SOURCE (image/ + mask/, or TN3K) to DATASET; duplicates are skipped",
    "check": "list the problems of DATASET (exit 1 if any); --repair fixes what is safe",
    "stats": "items, folds, mask areas and findings of DATASET",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in ACTIONS.items():
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("dataset", type=Path, metavar="DATASET", help="dataset folder (TN3K layout; created by add)")
        if name == "add":
            sub.add_argument("source", type=Path, metavar="SOURCE",
                             help="folder with image/ + mask/ (optional labels.csv), or a TN3K layout")
            sub.add_argument("--split", help="split of SOURCE to add (default: trainval for TN3K, else all)")
        if name == "check":
            sub.add_argument("--repair", action="store_true",
                             help="fix what is safe (interrupted writes, orphans moved to orphans/, fold files and "
                                  "labels.csv rewritten from the records) and report the rest")


def run(args: argparse.Namespace) -> int:
    return {"add": _add, "check": _check, "stats": _stats}[args.action](args)


def _error(action: str, message: str) -> None:
    print_error(f"dataset {action}", message)


def _add(args: argparse.Namespace) -> int:
    from ..engine.datasets.layouts import DatasetError, open_dataset, read_mask
    from ..engine.datasets.writer import AlreadySaved, DatasetWriter
    from ..engine.findings.fields import LABELS_FILE, LabelsError, read_labels, unattached, unattached_message
    from ..engine.io.files import output_folder_problem
    from ..engine.io.outputs import OutputPlan

    try:
        source = open_dataset(args.source)
        split = args.split or ("trainval" if "trainval" in source.splits() else "all")
        samples = source.split(split)
    except DatasetError as exc:
        _error("add", str(exc))
        return EXIT_USAGE
    if args.dataset.resolve() == source.root.resolve():
        _error("add", f"{args.dataset}: the dataset and SOURCE are the same folder")
        return EXIT_USAGE
    if problem := output_folder_problem(args.dataset):
        _error("add", f"DATASET {args.dataset} {problem}")
        return EXIT_USAGE
    plan = OutputPlan([source.root, *(path for s in samples for path in (s.image, s.mask) if path is not None),
                       source.root / LABELS_FILE])
    if problem := plan.folder_problem(args.dataset, dataset=True):  # links followed: no source file inside it
        _error("add", f"DATASET {args.dataset} {problem}; add into a folder apart from SOURCE")
        return EXIT_USAGE
    failed = 0
    labels = {}
    if (source.root / LABELS_FILE).is_file():
        try:
            labels = read_labels(source.root / LABELS_FILE)
        except LabelsError as exc:
            _error("add", f"{exc}; adding without findings")
            failed += 1
        stray = unattached(labels, (s.key for s in source.samples))
        if message := unattached_message(source.root / LABELS_FILE, stray, [s.key for s in source.samples], "image"):
            _error("add", message)  # e.g. ids 10, 11 against 0010.png, 0011.png: nothing would say so
            failed += 1
    try:
        writer = DatasetWriter(args.dataset)
    except (DatasetError, OSError) as exc:
        _error("add", str(exc))
        return EXIT_USAGE
    for line in writer.recovered:
        print(f"recovered: {line}")
    added = skipped = 0
    with StopRequest("dataset add", "the current frame (the dataset stays consistent)") as stop:
        for sample in samples:
            if stop():
                break
            if sample.mask is None:
                _error("add", f"{sample.image}: no mask; not added")
                failed += 1
                continue
            try:
                writer.add(sample.image, read_mask(sample.mask), source=sample.image.resolve(),
                           findings=labels.get(sample.key))
                added += 1
            except AlreadySaved as exc:
                print(f"skipped {sample.image}: already in the dataset as {exc.key}"
                      + ("" if exc.same_mask else " (with another mask; not merged)"))
                skipped += 1
            except (DatasetError, ValueError, OSError) as exc:
                _error("add", f"{sample.image}: {exc}")
                failed += 1
    print(f"{args.dataset}: {'interrupted; ' if stop() else ''}added {added}, skipped {skipped} already there, "
          f"{failed} failed (from {len(samples)} in {split} of {args.source})")
    if stop():
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from ..engine.datasets.check import check, repair
    from ..engine.datasets.layouts import DatasetError
    from ..engine.io.files import output_folder_problem

    if not args.dataset.is_dir():
        _error("check", f"{args.dataset}: not a folder")
        return EXIT_USAGE
    if args.repair and (problem := output_folder_problem(args.dataset)):
        _error("check", f"--repair writes into {args.dataset}, which {problem}")
        return EXIT_USAGE
    try:
        if args.repair:
            fixed, problems = repair(args.dataset)
            for line in fixed:
                print(f"fixed: {line}")
        else:
            problems = check(args.dataset)
    except (DatasetError, OSError) as exc:
        _error("check", str(exc))
        return EXIT_SOME_FAILED
    for line in problems:
        print(line)
    print(f"{args.dataset}: {len(problems)} problem(s)" if problems else f"{args.dataset}: consistent")
    return EXIT_SOME_FAILED if problems else EXIT_OK


def _stats(args: argparse.Namespace) -> int:
    from ..engine.datasets.layouts import DatasetError
    from ..engine.datasets.stats import dataset_stats

    try:
        stats = dataset_stats(args.dataset)
    except DatasetError as exc:
        _error("stats", str(exc))
        return EXIT_USAGE
    print(f"{stats.root}: {stats.layout} layout, {stats.items} items, {stats.masks} with a mask "
          f"({stats.empty_masks} empty)")
    print("splits: " + ", ".join(f"{name} {count}" for name, count in stats.splits.items() if isinstance(count, int)))
    for count in stats.splits.values():
        if isinstance(count, str):
            print(f"split: {count}")
    if stats.area_percentiles:
        shown = ", ".join(f"p{p} {100 * v:.2f}%" for p, v in stats.area_percentiles.items())
        print(f"mask area (share of the frame): {shown}")
    if stats.labels_error:
        print(f"findings: {stats.labels_error}")
    elif stats.findings:
        print(f"findings: {stats.labelled} items labelled")
        for name, counts in stats.findings.items():
            print(f"  {name}: " + (", ".join(f"{value} {n}" for value, n in sorted(counts.items())) or "-"))
    return EXIT_SOME_FAILED if stats.labels_error or any(isinstance(c, str) for c in stats.splits.values()) else EXIT_OK
