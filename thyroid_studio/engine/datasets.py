"""Dataset layouts on disk (TN3K, TG3K, image + mask pairs) and an append-only TN3K writer.

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

import datetime as _dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .files import write_bytes_atomic, write_image_atomic, write_mask_png, write_text_atomic
from .frames import FrameReadError, read_frame

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
RECORDS = "records.jsonl"
_RESERVED = ("key", "image", "mask", "source", "frame_index", "saved_at")
_FOLD_FILE = re.compile(r"^tn3k-trainval-fold(\d+)\.json$")


class DatasetError(ValueError):
    """A folder is not a dataset, or its split files disagree with its contents."""


@dataclass(frozen=True)
class Sample:
    image: Path
    mask: Path | None
    key: str  # the image's file stem


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


def _samples(image_dir: Path, mask_dir: Path) -> list[Sample]:
    masks = _files(mask_dir)
    images = sorted(_files(image_dir).values(), key=lambda p: sort_key(p.name))
    return [Sample(p, _match_mask(p.name, masks), p.stem) for p in images]


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
    for k, path in _fold_files(root):
        for part in ("train", "val"):
            splits[f"fold{k}-{part}"] = (lambda path=path, part=part:
                                         _by_position(trainval, _read_json(path).get(part, []), path))
    return Dataset(root, "tn3k", trainval + test, splits)


def _fold_files(root: Path) -> list[tuple[int, Path]]:
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
        for name, entries in _read_json(split_file).items():
            if isinstance(entries, list):
                splits[name] = lambda entries=entries: _by_key(samples, entries, split_file)
    return splits


def _read_json(path: Path) -> dict:
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


class DatasetWriter:
    """Creates or extends a TN3K layout, append-only: existing positions and folds never change.

    New items go to ``trainval-image/`` as the next free number (``0000``...), so they sort
    last; their mask is ``trainval-mask/<stem>.png`` (0/255). Position i joins fold k's val
    when i % folds == k, and its train otherwise. Each save appends a line to
    ``records.jsonl``; saving the same (source, frame_index) again replaces that item's mask.
    """

    def __init__(self, root: str | os.PathLike, folds: int = 5):
        self.root = Path(root)
        self.folds = folds
        for name in ("trainval-image", "trainval-mask", "test-image", "test-mask"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self.image_dir, self.mask_dir = self.root / "trainval-image", self.root / "trainval-mask"
        listing = self._listing()
        odd = [p.name for p in listing if sort_key(p.name)[0]]
        if odd:
            raise DatasetError(f"{self.image_dir}: non-numeric names {odd[:5]} would sort after new items "
                               "and shift their positions; cannot append")
        extra = [p.name for k, p in _fold_files(self.root) if k >= folds]
        if extra:
            raise DatasetError(f"{self.root}: has {extra[:3]} but the writer was asked for {folds} folds")
        for k in range(folds):
            if not self._fold_path(k).is_file():
                write_text_atomic(self._fold_path(k), _fold_json(_initial_fold(len(listing), folds, k)))

    def add(self, image: Path | np.ndarray, mask: np.ndarray, *, source: str | os.PathLike,
            frame_index: int = 0, record: dict | None = None) -> Sample:
        """Save one labelled frame (new item, or a new mask for a frame saved before)."""
        record = dict(record or {})
        clash = sorted(set(record) & set(_RESERVED))
        if clash:
            raise ValueError(f"record keys {clash} are reserved")
        mask = np.asarray(mask)
        source = os.fspath(source)
        key = self._lookup().get((source, int(frame_index)))
        if key is not None:
            return self._replace_mask(key, mask, source, int(frame_index), record)
        return self._append(image, mask, source, int(frame_index), record)

    def records(self) -> list[dict]:
        """Every save so far, oldest first."""
        path = self.root / RECORDS
        if not path.is_file():
            return []
        out = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError as exc:
                    raise DatasetError(f"{path}:{number}: not JSON: {exc}") from exc
        return out

    def _lookup(self) -> dict[tuple[str, int], str]:
        return {(r["source"], int(r["frame_index"])): r["key"] for r in self.records()}

    def _listing(self) -> list[Path]:
        return sorted(_files(self.image_dir).values(), key=lambda p: sort_key(p.name))

    def _fold_path(self, k: int) -> Path:
        return self.root / f"tn3k-trainval-fold{k}.json"

    def _next_number(self) -> int:
        names = list(_files(self.image_dir)) + list(_files(self.mask_dir))
        numbers = [sort_key(n)[1] for n in names if sort_key(n)[0] == 0]
        return max(numbers, default=-1) + 1

    def _append(self, image: Path | np.ndarray, mask: np.ndarray, source: str,
                frame_index: int, record: dict) -> Sample:
        pixels_shape, data, suffix = _image_payload(image)
        _check_mask(mask, pixels_shape)
        position = len(self._listing())
        key = f"{self._next_number():04d}"
        image_path, mask_path = self.image_dir / (key + suffix), self.mask_dir / f"{key}.png"
        old_folds = {k: self._fold_path(k).read_text(encoding="utf-8") for k in range(self.folds)}
        if isinstance(data, bytes):
            write_bytes_atomic(image_path, data)
        else:
            write_image_atomic(image_path, data)
        try:
            write_mask_png(mask_path, mask)
            for k, text in old_folds.items():
                write_text_atomic(self._fold_path(k), _fold_json(_with_position(json.loads(text), position,
                                                                                self.folds, k)))
            self._record(key, image_path, mask_path, source, frame_index, record)
        except BaseException:
            image_path.unlink(missing_ok=True)
            mask_path.unlink(missing_ok=True)
            for k, text in old_folds.items():
                write_text_atomic(self._fold_path(k), text)
            raise
        return Sample(image_path, mask_path, key)

    def _replace_mask(self, key: str, mask: np.ndarray, source: str, frame_index: int,
                      record: dict) -> Sample:
        image_path = next((p for p in self._listing() if p.stem == key), None)
        if image_path is None:
            raise DatasetError(f"{self.root}: records name {key!r} but {self.image_dir} has no such image")
        _check_mask(mask, _image_payload(image_path)[0])
        mask_path = write_mask_png(self.mask_dir / f"{key}.png", mask)
        self._record(key, image_path, mask_path, source, frame_index, record)
        return Sample(image_path, mask_path, key)

    def _record(self, key: str, image_path: Path, mask_path: Path, source: str,
                frame_index: int, record: dict) -> None:
        path = self.root / RECORDS
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        line = {"key": key, "image": image_path.relative_to(self.root).as_posix(),
                "mask": mask_path.relative_to(self.root).as_posix(), "source": source,
                "frame_index": frame_index,
                "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **record}
        write_text_atomic(path, old + json.dumps(line) + "\n")


def _image_payload(image: Path | np.ndarray) -> tuple[tuple[int, int], bytes | np.ndarray, str]:
    """(height, width), what to write (file bytes unchanged, or pixels for a PNG) and the suffix."""
    if isinstance(image, np.ndarray):
        if image.ndim not in (2, 3) or image.dtype != np.uint8:
            raise ValueError(f"pixels must be uint8 (H, W) or (H, W, 3), got {image.shape} {image.dtype}")
        return image.shape[:2], image, ".png"
    path = Path(image)
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise ValueError(f"{path}: not a single-frame image file ({', '.join(IMAGE_EXTENSIONS)}); pass its pixels")
    data = path.read_bytes()
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ValueError(f"{path}: not a readable image")
    return decoded.shape[:2], data, path.suffix.lower()


def _check_mask(mask: np.ndarray, shape: tuple[int, int]) -> None:
    if mask.shape != tuple(shape):
        raise ValueError(f"mask shape {mask.shape} differs from the image's {tuple(shape)}")


def _initial_fold(count: int, folds: int, k: int) -> dict[str, list[int]]:
    return {"train": [i for i in range(count) if i % folds != k], "val": [i for i in range(count) if i % folds == k]}


def _with_position(fold: dict, position: int, folds: int, k: int) -> dict:
    part = "val" if position % folds == k else "train"
    return {**fold, part: [*fold.get(part, []), position]}


def _fold_json(fold: dict) -> str:
    return json.dumps(fold) + "\n"
