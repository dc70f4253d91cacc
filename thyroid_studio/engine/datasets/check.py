"""Is a dataset consistent, and making it so: ``thyroid-studio dataset check [--repair]``.

:func:`check` lists problems, one line each: images without a mask, masks that are not
0/255 or not the size of their image, unreadable files, fold files in which a trainval item
is not in exactly one fold's val and every other fold's train, a ``labels.csv`` that cannot be
read or names no item; and for a dataset the writer keeps (dataset_writer.py): leftovers of an
interrupted write, records whose files (SEGs too) are missing or changed, files the records do not
know (orphans), the same frame (the same pixels from the same file, or from files not recorded) stored
twice, and fold files or ``labels.csv`` that differ from what the records determine.

:func:`repair` fixes what is safe: the writer's recovery (temporary files, a torn record line,
the interrupted change finished or undone), the conversion of a folder the writer has not
kept before, records whose image or mask is gone dropped, masks of other values than 0 and 255
(TN3K's JPEG masks) rewritten as 0/255 PNG with the original kept in ``history/``, orphans and
exact duplicates moved to ``orphans/`` (never deleted), and the derived files rewritten. The
rest is reported.
"""
from __future__ import annotations

import contextlib
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import numpy as np
from filelock import FileLock, Timeout

from ..findings.fields import LABELS_FILE, LabelsError, read_labels
from ..io.files import is_temporary
from ..io.frames import FrameReadError, decode_image
from .index import RECORDS, DatasetIndex, Item, bytes_hash, fold_lists, labels_of
from .layouts import Dataset, DatasetError, fold_files, image_files, open_dataset, read_json
from .writer import HISTORY, IMAGES, JOURNAL, LOCK, LOCK_TIMEOUT_S, MASKS, SEGS, DatasetWriter, links_problem


def check(root: str | Path) -> list[str]:
    """Every problem of the dataset at ``root``, one line each (empty: consistent)."""
    root = Path(root)
    try:
        dataset = open_dataset(root)
    except DatasetError as exc:
        return [str(exc)]
    if problem := links_problem(root):  # the lock itself would be opened through the link
        return [problem]
    with _locked(root):
        problems = _leftovers(root) + _pairs(dataset)
        if dataset.layout == "tn3k":
            problems += _folds(root, dataset)
        index = DatasetIndex(root)
        items = None
        if index.exists:
            try:
                items = index.items
            except DatasetError as exc:
                problems.append(str(exc))
            else:
                problems += _records(root, index, items)
        elif (root / RECORDS).is_file():
            problems.append(f"{RECORDS}: written by an older version (no hashes, no folds); `--repair` converts it")
        problems += _labels(root, dataset, items)
    return problems


def repair(root: str | Path) -> tuple[list[str], list[str]]:
    """Fix what is safe (see the module docstring); returns (what was fixed, the problems left), one line each."""
    root = Path(root)
    try:
        writer = DatasetWriter(root)
    except (DatasetError, OSError) as exc:
        return [], [str(exc)]
    fixed = list(writer.recovered)
    with writer.locked():
        for key, item in writer.index.items.items():
            missing = [writer.relative(p) for p in (item.image, item.mask) if not p.is_file()]
            if missing:
                moved = writer.remove(key, f"{' and '.join(missing)} missing")
                fixed.append(f"{key}: dropped from the records ({' and '.join(missing)} missing)"
                             + (f"; {', '.join(writer.relative(p) for p in moved)} kept" if moved else ""))
        for first, later in _exact_duplicates(writer.index.items):
            moved = writer.remove(later.key, f"the same image and mask as {first.key}")
            fixed.append(f"{later.key}: the same image and mask as {first.key}; dropped, its files moved to "
                         + ", ".join(writer.relative(p) for p in moved))
        for key, item in writer.index.items.items():
            if not _binary(item.mask):
                writer.binarize_mask(key)
                fixed.append(f"{writer.relative(item.mask)}: made 0/255 (threshold 127, as training reads it); "
                             f"the original kept in {HISTORY}/")
        for path in _orphans(root, writer.index.items):
            fixed.append(f"{writer.relative(path)}: not in the records; moved to "
                         f"{writer.relative(writer.move_to_orphans(path))}")
        fixed += [f"{name}: rewritten from the records" for name in writer.write_derived()]
    return fixed, check(root)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold the writer's lock while checking a dataset it keeps (no writer half-way); others are read as they are."""
    if not (root / RECORDS).is_file():
        yield
        return
    lock = FileLock(root / LOCK, timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise DatasetError(f"{root}: another program is writing to this dataset") from None
    except OSError:  # a read-only copy: nobody can be writing to it
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _leftovers(root: Path) -> list[str]:
    problems = []
    for folder in (root, *(root / name for name in (IMAGES, MASKS, "test-image", "test-mask", SEGS, HISTORY))):
        if folder.is_dir():
            problems += [f"{p.relative_to(root)}: a temporary file of an interrupted write"
                         for p in sorted(folder.iterdir()) if is_temporary(p)]
    if (root / JOURNAL).is_file():
        problems.append(f"{JOURNAL}: a change was interrupted; `--repair` finishes or undoes it")
    return problems


def _pairs(dataset: Dataset) -> list[str]:
    """Each image readable with a 0/255 mask of its size."""
    problems = []
    for sample in dataset.samples:
        image = _decode(sample.image)
        name = sample.image.relative_to(dataset.root)
        if image is None:
            problems.append(f"{name}: not a readable image")
        if sample.mask is None:
            problems.append(f"{name}: no mask")
            continue
        mask = _decode(sample.mask)
        mask_name = sample.mask.relative_to(dataset.root)
        if mask is None:
            problems.append(f"{mask_name}: not a readable image")
            continue
        values = np.unique(mask)
        if not set(values.tolist()) <= {0, 255}:
            shown = ", ".join(str(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")
            problems.append(f"{mask_name}: holds values {shown}, not only 0 and 255")
        if image is not None and mask.shape[:2] != image.shape[:2]:
            problems.append(f"{mask_name}: {mask.shape[1]}x{mask.shape[0]}, its image {image.shape[1]}x{image.shape[0]}")
    return problems


def _binary(path: Path) -> bool:
    mask = _decode(path)
    return mask is None or set(np.unique(mask).tolist()) <= {0, 255}  # (unreadable: reported, not rewritten)


def _decode(path: Path) -> np.ndarray | None:
    """The stored values, decoded as every reader decodes a still image (its orientation applied), or None."""
    try:
        return decode_image(path, np.fromfile(str(path), np.uint8))
    except (OSError, FrameReadError):
        return None


def _folds(root: Path, dataset: Dataset) -> list[str]:
    """Each trainval item in exactly one fold's val and in every other fold's train."""
    keys = [s.key for s in dataset.split("trainval")]
    found = fold_files(root)
    if not found:
        return [f"no tn3k-trainval-fold*.json for {len(keys)} trainval items"] if keys else []
    problems, val_of, train_of = [], defaultdict(list), defaultdict(list)
    for k, path in found:
        try:
            fold = read_json(path)
        except DatasetError as exc:
            problems.append(str(exc))
            continue
        for part, into in (("val", val_of), ("train", train_of)):
            positions = fold.get(part, [])
            bad = [p for p in positions if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < len(keys)]
            if bad:
                problems.append(f"{path.name}: {part} positions {bad[:5]} outside the {len(keys)} trainval items")
            for p in positions:
                if p not in bad:
                    into[p].append(k)
    folds = [k for k, _ in found]
    for position, key in enumerate(keys):
        vals, trains = val_of[position], train_of[position]
        if len(vals) != 1:
            problems.append(f"{key}: in the val of {len(vals)} folds {vals} (not exactly one)")
        expected = sorted(k for k in folds if k not in vals)
        if sorted(trains) != expected:
            problems.append(f"{key}: in the train of folds {sorted(trains)}, expected {expected}")
    return problems


def _records(root: Path, index: DatasetIndex, items: dict[str, Item]) -> list[str]:
    """The records against the files: each item's files there and unchanged, no orphans, no image twice."""
    problems = []
    for key, item in items.items():
        files = [("image", item.image, item.image_sha256), ("mask", item.mask, item.mask_sha256)]
        for what, path, digest in files + ([("SEG", item.seg, item.seg_sha256)] if item.seg is not None else []):
            if not path.is_file():
                problems.append(f"{key}: its {what} {path.relative_to(root)} is missing")
            elif bytes_hash(path.read_bytes()) != digest:
                problems.append(f"{key}: {path.relative_to(root)} is not the {what} saved (changed outside the writer)")
        problems += [f"{key}: its previous mask {p.relative_to(root)} is missing" for p in item.history if not p.is_file()]
    problems += [f"{p.relative_to(root)}: not in the records (an orphan)" for p in _orphans(root, items)]
    by_frame = defaultdict(list)
    for item in items.values():
        by_frame[item.sha256, item.origin].append(item.key)  # two files with the same pixels are two items
    problems += [f"{', '.join(keys)}: the same frame stored {len(keys)} times" for keys in by_frame.values()
                 if len(keys) > 1]
    listing = [p.stem for p in image_files(root / IMAGES)]
    paths = dict(fold_files(root))
    if sorted(paths) != list(range(index.folds)):
        problems.append(f"fold files {sorted(paths)}; the records have {index.folds} folds")
    for k, fold in enumerate(fold_lists(listing, items, index.folds)):
        if k in paths and _json_or_none(paths[k]) != fold:
            problems.append(f"{paths[k].name}: differs from the folds of the records")
    return problems


def _json_or_none(path: Path) -> dict | None:
    try:
        return read_json(path)
    except DatasetError:
        return None


def _orphans(root: Path, items: dict[str, Item]) -> list[Path]:
    """Image files in the trainval and history folders, and SEG files in the SEG folder, that no item names."""
    known = {p for item in items.values() for p in (item.image, item.mask, item.seg, *item.history)}
    segs = sorted((root / SEGS).glob("*.dcm")) if (root / SEGS).is_dir() else []
    found = [p for name in (IMAGES, MASKS, HISTORY) for p in image_files(root / name)]
    return [p for p in found + [p for p in segs if not is_temporary(p)] if p not in known]


def _exact_duplicates(items: dict[str, Item]) -> list[tuple[Item, Item]]:
    """(first, later) pairs of items of the same frame (pixels and origin) with the same mask."""
    first: dict[tuple, Item] = {}
    pairs = []
    for item in items.values():
        seen = first.setdefault((item.sha256, item.mask_sha256, item.origin), item)
        if seen is not item:
            pairs.append((seen, item))
    return pairs


def _labels(root: Path, dataset: Dataset, items: dict[str, Item] | None) -> list[str]:
    path = root / LABELS_FILE
    if not path.is_file():
        return [f"{LABELS_FILE}: missing; the records hold findings"] if items and labels_of(items) else []
    try:
        labels = read_labels(path)
    except LabelsError as exc:
        return [str(exc)]
    keys = {s.key for s in dataset.samples}
    problems = [f"{LABELS_FILE}: id {key} names no item" for key in labels if key not in keys]
    if items is not None:
        expected = labels_of(items)
        for key in sorted(set(expected) | {k for k, v in labels.items() if v}):
            if labels.get(key) != expected.get(key):
                problems.append(f"{LABELS_FILE}: {key} has {_shown(labels.get(key))}, the records "
                                f"{_shown(expected.get(key))}")
    return problems


def _shown(findings) -> str:
    return ", ".join(f"{k}={v}" for k, v in findings.values.items()) if findings else "no findings"
