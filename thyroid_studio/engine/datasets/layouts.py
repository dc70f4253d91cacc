"""Reading dataset layouts on disk (TN3K, TG3K, image + mask pairs).

Writing a TN3K layout safely is writer.py's job (its records: index.py; checking and
repairing it: check.py).

Layouts read by :func:`open_dataset`:

- ``tn3k``: ``trainval-image/``, ``trainval-mask/``, ``test-image/``, ``test-mask/``,
  ``tn3k-trainval-fold{k}.json`` = ``{"train": [...], "val": [...]}`` of positions in the
  trainval listing sorted by the integer before the first dot (non-numeric names after,
  by name). Splits: ``all``, ``trainval``, ``test``, ``fold{k}-train``, ``fold{k}-val``.
- ``tg3k``: ``thyroid-image/``, ``thyroid-mask/``, ``tg3k-trainval.json`` (``train``/``val``
  of frame numbers, ints or zero-padded strings). Splits: ``all``, ``train``, ``val``.
- ``pair``: ``image/`` + ``mask/`` (masks optional), or a folder of plain images with
  optional ``<stem>_mask.png`` beside them; an optional ``split.json`` maps split names
  to keys (strings or ints). Splits: ``all`` plus those of ``split.json``.

A mask matches an image with the same file name, else the same stem (PNG preferred).
Split entries that name no sample raise :class:`DatasetError` rather than being dropped.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..io.frames import FrameReadError, read_frame

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
TN3K_FOLDERS = ("trainval-image", "trainval-mask", "test-image", "test-mask")
_FOLD_FILE = re.compile(r"^tn3k-trainval-fold(\d+)\.json$")


class DatasetError(ValueError):
    """A folder is not a dataset, or its split files disagree with its contents."""


@dataclass(frozen=True)
class Sample:
    image: Path
    mask: Path | None
    key: str  # the image's file stem
    seg: Path | None = None  # the DICOM SEG of its mask, for a frame from DICOM saved by the writer


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read any image file as a bool mask: gray value > 127 (fits TN3K's lossy JPEG masks), except that a
    mask whose largest value is 1 is taken as stored 0/1 (> 0), since read as 0/255 it would be empty.

    Read through ``frames.read_frame``: the same size caps, and a 0-byte or damaged file is a DatasetError.
    """
    try:
        pixels = read_frame(path).gray()
    except FrameReadError as exc:
        raise DatasetError(f"{path}: cannot read the mask: {exc.problem}") from exc
    return pixels > (0 if pixels.max() == 1 else 127)


def sort_key(name: str) -> tuple[int, int, str]:
    """TN3K order: by the integer before the first dot; non-numeric names after, by name."""
    head = name.split(".", 1)[0]
    if head.isascii() and head.isdigit():
        return 0, int(head), name
    return 1, 0, name


def find_mask(image_path: str | os.PathLike) -> Path | None:
    """The mask of an image: ``image/``->``mask/`` or ``X-image/``->``X-mask/``, else ``<stem>_mask.png``."""
    image_path = Path(image_path)
    for folder in _mask_folders(image_path.parent):
        found = _match_mask(image_path.name, _files(folder))
        if found is not None:
            return found
    beside = image_path.with_name(f"{image_path.stem}_mask.png")
    return beside if beside.is_file() else None


def _mask_folders(image_dir: Path) -> list[Path]:
    if image_dir.name == "image":
        return [image_dir.with_name("mask")]
    if image_dir.name.endswith("-image"):
        return [image_dir.with_name(image_dir.name[: -len("image")] + "mask")]
    return []


def _files(folder: Path) -> dict[str, Path]:
    """Visible image files of a folder by name (hidden ones, e.g. temporary files, skipped)."""
    if not folder.is_dir():
        return {}
    return {p.name: p for p in folder.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()}


def _match_mask(image_name: str, masks: dict[str, Path]) -> Path | None:
    if image_name in masks:
        return masks[image_name]
    stem = Path(image_name).stem
    for ext in IMAGE_EXTENSIONS:
        if stem + ext in masks:
            return masks[stem + ext]
    return None


def image_files(folder: Path) -> list[Path]:
    """Visible image files of a folder in TN3K order (:func:`sort_key`): what positions in fold files count."""
    return sorted(_files(folder).values(), key=lambda p: sort_key(p.name))


def _samples(image_dir: Path, mask_dir: Path) -> list[Sample]:
    masks = _files(mask_dir)
    return [Sample(p, _match_mask(p.name, masks), p.stem) for p in image_files(image_dir)]


def _plain_samples(folder: Path) -> list[Sample]:
    files = _files(folder)
    images = sorted((p for p in files.values() if not p.stem.endswith("_mask")), key=lambda p: sort_key(p.name))
    return [Sample(p, files.get(f"{p.stem}_mask.png"), p.stem) for p in images]


class Dataset:
    """Samples of one dataset folder in canonical order, and its named splits."""

    def __init__(self, root: Path, layout: str, samples: list[Sample],
                 splits: dict[str, Callable[[], list[Sample]]]):
        self.root = root
        self.layout = layout
        self.samples = samples
        self._splits = splits

    def splits(self) -> list[str]:
        return list(self._splits)

    def split(self, name: str) -> list[Sample]:
        if name not in self._splits:
            raise DatasetError(f"{self.root}: no split {name!r}; it has {', '.join(self._splits)}")
        return self._splits[name]()

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r}, layout={self.layout!r}, samples={len(self.samples)})"


def open_dataset(root: str | os.PathLike) -> Dataset:
    """Detect the layout of ``root`` and list its samples; DatasetError if it has none."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    if (root / "trainval-image").is_dir() or (root / "test-image").is_dir():
        return _open_tn3k(root)
    if (root / "thyroid-image").is_dir():
        return _open_tg3k(root)
    if (root / "image").is_dir():
        return _open_pair(root, _samples(root / "image", root / "mask"))
    plain = _plain_samples(root)
    if plain:
        return _open_pair(root, plain)
    raise DatasetError(
        f"{root}: no dataset found; looked for trainval-image/ or test-image/ (TN3K), "
        f"thyroid-image/ (TG3K), image/ (+ mask/), or image files ({', '.join(IMAGE_EXTENSIONS)}) in the folder")


def _open_tn3k(root: Path) -> Dataset:
    trainval = _samples(root / "trainval-image", root / "trainval-mask")
    test = _samples(root / "test-image", root / "test-mask")
    splits: dict[str, Callable[[], list[Sample]]] = {
        "all": lambda: trainval + test, "trainval": lambda: list(trainval)}
    if (root / "test-image").is_dir():
        splits["test"] = lambda: list(test)
    for k, path in fold_files(root):
        for part in ("train", "val"):
            splits[f"fold{k}-{part}"] = (lambda path=path, part=part:
                                         _by_position(trainval, read_json(path).get(part, []), path))
    return Dataset(root, "tn3k", trainval + test, splits)


def fold_files(root: Path) -> list[tuple[int, Path]]:
    """``(k, path)`` of a TN3K root's ``tn3k-trainval-fold{k}.json`` files, by k."""
    found = ((_FOLD_FILE.match(p.name), p) for p in root.glob("tn3k-trainval-fold*.json"))
    return sorted((int(m.group(1)), p) for m, p in found if m)


def _open_tg3k(root: Path) -> Dataset:
    samples = _samples(root / "thyroid-image", root / "thyroid-mask")
    return Dataset(root, "tg3k", samples, _key_splits(samples, root / "tg3k-trainval.json"))


def _open_pair(root: Path, samples: list[Sample]) -> Dataset:
    return Dataset(root, "pair", samples, _key_splits(samples, root / "split.json"))


def _key_splits(samples: list[Sample], split_file: Path) -> dict[str, Callable[[], list[Sample]]]:
    """"all" plus one split per list in ``split_file`` (if present), resolved when asked for."""
    splits: dict[str, Callable[[], list[Sample]]] = {"all": lambda: list(samples)}
    if split_file.is_file():
        for name, entries in read_json(split_file).items():
            if isinstance(entries, list):
                splits[name] = lambda entries=entries: _by_key(samples, entries, split_file)
    return splits


def read_json(path: Path) -> dict:
    """A JSON object file (a split or fold file); DatasetError if it cannot be read or is not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object of lists")
    return data


def _by_position(samples: list[Sample], positions: list, source: Path) -> list[Sample]:
    bad = [p for p in positions if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < len(samples)]
    if bad:
        raise DatasetError(f"{source}: positions {bad[:5]} outside the {len(samples)}-item trainval listing")
    return [samples[p] for p in positions]


def _by_key(samples: list[Sample], entries: list, source: Path) -> list[Sample]:
    """Samples named by keys or frame numbers (ints or zero-padded strings)."""
    by_key = {s.key: s for s in samples}
    by_number = {int(s.key): s for s in samples if s.key.isascii() and s.key.isdigit()}
    found, missing = [], []
    for entry in entries:
        sample = by_key.get(entry) if isinstance(entry, str) else None
        if sample is None:
            sample = by_number.get(_as_number(entry))
        if sample is None:
            missing.append(entry)
        else:
            found.append(sample)
    if missing:
        raise DatasetError(f"{source}: {len(missing)} entries name no sample, e.g. {missing[:5]}")
    return found


def _as_number(entry: object) -> int | None:
    if isinstance(entry, int) and not isinstance(entry, bool):
        return entry
    if isinstance(entry, str) and entry.isascii() and entry.isdigit():
        return int(entry)
    return None

