"""The index of a dataset that :class:`~.dataset_writer.DatasetWriter` keeps: ``records.jsonl``, folded into items.

``records.jsonl`` is the dataset's commit log. Its first line is a header,
``{"records": "thyroid-studio", "version": 2, "folds": K}``; every other line is one committed
change, appended and flushed to the disk (``files.append_durable``):

- ``add``: a new item: ``key``, ``image``, ``mask`` (paths relative to the root), ``shape``
  [H, W], ``sha256`` (:func:`content_hash` of the frame's pixels: who the frame *is*),
  ``image_sha256`` and ``mask_sha256`` (the stored files' bytes: that they are intact),
  ``fold`` (the fold whose val holds it), ``source``, ``frame_index``, ``saved_at``, and
  when known ``spacing_mm`` [row, col] with ``scale_source`` (where it came from: ``dicom``, ``user``,
  ``ruler``, ``option``; ``calibration.SOURCES``), ``findings`` {field: class}, ``blackout``
  [y0, y1, x0, x1], ``seg`` and ``seg_sha256`` (the mask as a DICOM SEG, for a frame from DICOM),
  plus the caller's fields (``proposed_by``, ``dice_ai_vs_label``, ...);
- ``replace``: a new mask (and findings, and SEG; ``"seg": null`` when the item has none any more) for an
  item; ``history`` names where its previous mask was kept (``history/<key>.r<n>.<ext>``);
- ``adopt``: an item that was in the folder before the writer first opened it;
- ``remove``: an item dropped by ``dataset check --repair`` (its files moved to ``orphans/``).

A line is committed once it ends with its newline, so a torn last line (a crash in the
middle of an append) is not part of the log. An item is in the dataset iff the log says
so; the fold files and ``labels.csv`` are derived from the items (:func:`fold_lists`,
:func:`labels_of`) and rewritten after each commit.

Who a frame *is* (:meth:`DatasetIndex.find`): its file and frame index first, as the record of
where an item came from names them (``source``, ``frame_index``), its pixels second, only for a
file renamed or moved since it was saved. Two files with the same pixels (DDTI holds several
such pairs, each with its own nodule) are two items. Which items must stay on one side of any
split (:func:`item_groups`): the frames of one file, and frames holding the same pixels.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..calibration import checked_spacing
from ..findings.fields import Findings, LabelsError
from ..io.outputs import resolved
from .layouts import DatasetError, read_mask, sort_key
from .splits import MAX_FOLDS, exam_id, linked_groups

RECORDS = "records.jsonl"
HEADER = {"records": "thyroid-studio", "version": 2}
OPS = ("add", "replace", "adopt", "remove")
SAVES = ("add", "replace")  # the operations that come from a save (not adopt/remove)
# How DatasetIndex.find found an item (Match.matched_by):
FILE = "file"  # its record names this file and frame index, and it holds the same pixels
RECORD = "record"  # its record names this file and frame index, but the pixels changed since (re-encoded, edited)
CONTENT = "content"  # the same pixels, and the file it was saved from is gone (renamed or moved) or was never recorded


def content_hash(pixels: np.ndarray) -> str:
    """SHA-256 of a frame's pixels, shape and type: the same frame gives the same hash, whatever file it came in.

    Hash pixels as ``frames.read_frame`` hands them out (uint8, gray or RGB), as the writer does.
    """
    pixels = np.ascontiguousarray(pixels)
    digest = hashlib.sha256(f"{pixels.dtype.str}{pixels.shape}".encode())
    digest.update(pixels.data)
    return digest.hexdigest()


def bytes_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Item:
    """One item of the dataset as its records leave it."""

    key: str
    image: Path
    mask: Path
    shape: tuple[int, int]
    sha256: str  # content_hash of the frame's pixels (before any blackout)
    image_sha256: str  # bytes of the stored image file
    mask_sha256: str  # bytes of the stored mask file
    fold: int | None  # the fold whose val holds it (None: none)
    source: str | None = None
    frame_index: int = 0
    saved_at: str | None = None
    spacing_mm: tuple[float, float] | None = None
    scale_source: str | None = None  # where spacing_mm came from (calibration.SOURCES); None in older records
    findings: Findings = field(default_factory=Findings)
    history: tuple[Path, ...] = ()  # its previous masks, oldest first
    seg: Path | None = None  # its mask as a DICOM SEG (frames from DICOM)
    seg_sha256: str | None = None
    record: dict = field(default_factory=dict, compare=False)  # its latest add/replace/adopt line

    def read_mask(self) -> np.ndarray:
        """The saved mask as a bool array."""
        return read_mask(self.mask)


    @property
    def origin(self) -> tuple[str, int] | None:
        """Where it came from (:func:`origin`); None when its record does not say."""
        return origin(self.source, self.frame_index) if self.source else None


def origin(source: str | os.PathLike, frame_index: int = 0) -> tuple[str, int]:
    """A frame's file and index, comparable however its path was spelt (relative, through a link)."""
    return _real_path(os.fspath(source)), int(frame_index)


def _real_path(path: str) -> str:
    return _real_absolute(path) if os.path.isabs(path) else os.path.realpath(path)


@functools.lru_cache(maxsize=1 << 16)
def _real_absolute(path: str) -> str:
    """``os.path.realpath`` of an absolute path, remembered: a dataset's items are looked up once per opened frame."""
    return os.path.realpath(path)


@dataclass(frozen=True)
class Match:
    """An item that holds a frame, and how it was found: :data:`FILE`, :data:`RECORD` or :data:`CONTENT`."""

    item: Item
    matched_by: str


@dataclass(frozen=True)
class _Tables:
    """The items by origin and by content hash, each list oldest first (rebuilt when the items change)."""

    by_origin: dict[tuple[str, int], list[Item]]
    by_content: dict[str, list[Item]]

    @classmethod
    def of(cls, items: dict[str, Item]) -> "_Tables":
        by_origin: dict[tuple[str, int], list[Item]] = {}
        by_content: dict[str, list[Item]] = {}
        for item in items.values():
            if item.source:
                by_origin.setdefault(item.origin, []).append(item)
            by_content.setdefault(item.sha256, []).append(item)
        return cls(by_origin, by_content)


class DatasetIndex:
    """Reads ``records.jsonl`` (only what was appended since the last read) and answers lookups.

    Read-only and lock-free: it sees committed lines only. The writer keeps one under its lock.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.path = self.root / RECORDS
        self._reset()

    def _reset(self) -> None:
        self._file_id: tuple[int, int] | None = None
        self._offset = 0
        self._read = 0  # lines read so far (the header included)
        self._lines: list[dict] = []
        self._items: dict[str, Item] = {}
        self._tables: _Tables | None = None
        self.folds: int | None = None

    @property
    def exists(self) -> bool:
        """Whether ``records.jsonl`` starts with the header (False: no records, or an older writer's)."""
        try:
            with open(self.path, "rb") as handle:
                first = json.loads(handle.readline())
        except (FileNotFoundError, ValueError):
            return False
        return isinstance(first, dict) and first.get("records") == HEADER["records"]

    def refresh(self) -> None:
        """Take in the lines committed since the last read (everything again if the file was rewritten)."""
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            self._reset()
            return
        with handle:
            stat = os.fstat(handle.fileno())
            if (stat.st_dev, stat.st_ino) != self._file_id or stat.st_size < self._offset:
                self._reset()
                self._file_id = (stat.st_dev, stat.st_ino)
            handle.seek(self._offset)
            data = handle.read()
        committed = data[: data.rfind(b"\n") + 1]  # a last line without its newline is not committed
        for raw in committed.splitlines():
            self._read += 1
            if raw.strip():
                self._take(_parse(raw, self.path, self._read), self._read)
        self._offset += len(committed)

    def _take(self, line: dict, number: int) -> None:
        if self.folds is None:
            folds = line.get("folds")
            if line.get("records") != HEADER["records"] or not isinstance(folds, int):
                raise DatasetError(f"{self.path}: line 1 is not a thyroid-studio records header "
                                   "(written by an older version? `thyroid-studio dataset check --repair` converts it)")
            if not 2 <= folds <= MAX_FOLDS:
                raise DatasetError(f"{self.path}: line 1 gives {folds} folds; a dataset has 2 to {MAX_FOLDS}")
            if line.get("version") != HEADER["version"]:
                raise DatasetError(f"{self.path}: records version {line.get('version')}; this version reads "
                                   f"{HEADER['version']}")
            self.folds = line["folds"]
            return
        try:
            self._items = apply(self._items, line, self.root)
            self._tables = None
        except (KeyError, TypeError, ValueError, LabelsError) as exc:
            raise DatasetError(f"{self.path}:{number}: not a valid record ({type(exc).__name__}: {exc})") from exc
        self._lines.append(line)

    @property
    def items(self) -> dict[str, Item]:
        """Key -> item, in the order the items were added."""
        self.refresh()
        return dict(self._items)

    def lines(self) -> list[dict]:
        """Every committed change after the header, oldest first."""
        self.refresh()
        return list(self._lines)

    def find(self, pixels: np.ndarray | None = None, *, source: str | os.PathLike | None = None,
             frame_index: int = 0, content: str | None = None) -> Match | None:
        """The item that holds a frame (``pixels``, or their ``content`` hash; ``source`` and ``frame_index``: its
        file), or None.

        The file first: the item whose record names this file and frame, with the same pixels (:data:`FILE`), else
        the newest such item of the frame's size (:data:`RECORD`: the file changed since it was saved). Then the
        pixels (:data:`CONTENT`), only among items whose recorded file is gone or was never recorded (every item
        when no ``source`` is given): a file renamed or moved since. Of several, the one whose recorded path ends
        most like ``source`` (the same name in a moved folder), with the same frame index."""
        self.refresh()
        if self._tables is None:
            self._tables = _Tables.of(self._items)
        if pixels is not None and content is None:
            content = content_hash(pixels)
        if source is not None:
            same_file = self._tables.by_origin.get(origin(source, frame_index), [])
            same = [item for item in same_file if content is None or item.sha256 == content]
            if same:
                return Match(same[-1], FILE)
            sized = [item for item in same_file if pixels is None or tuple(pixels.shape[:2]) == item.shape]
            if sized:
                return Match(sized[-1], RECORD)
        if content is None:
            return None
        moved = [item for item in self._tables.by_content.get(content, [])
                 if source is None or not item.source or not os.path.exists(item.source)]
        if not moved:
            return None
        likeness = [_likeness(item, source, frame_index) for item in moved]
        return Match(moved[max(range(len(moved)), key=lambda i: (likeness[i], i))], CONTENT)


def _likeness(item: Item, source: str | os.PathLike | None, frame_index: int) -> tuple[bool, int]:
    """(same frame index, how many trailing parts of the paths agree): which of several items with the same
    pixels a renamed or moved file most likely is."""
    if source is None or not item.source:
        return item.frame_index == frame_index, 0
    mine, theirs = Path(source).parts[::-1], Path(item.source).parts[::-1]
    agree = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
    return item.frame_index == frame_index, agree


def _parse(raw: bytes, path: Path, number: int) -> dict:
    try:
        line = json.loads(raw)
    except ValueError as exc:
        raise DatasetError(f"{path}:{number}: not JSON ({exc})") from exc
    if not isinstance(line, dict):
        raise DatasetError(f"{path}:{number}: not a JSON object")
    return line


def inside(root: Path, name: object) -> Path:
    """``root / name`` for a relative path that stays inside the dataset, as it reads and as it resolves: its folder,
    links followed, lies inside the dataset's (the file itself may be a link: the writer moves, replaces or deletes
    the link, never what it points to). ValueError otherwise, so that a damaged or crafted record or journal, or a
    link to a folder elsewhere, can never make the writer (or ``check --repair``) touch a file outside."""
    if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts or "\\" in name:
        raise ValueError(f"{name!r:.80} is not a path inside the dataset")
    path = root / name
    real_root, real_folder = resolved(root), resolved(path.parent)
    if real_folder != real_root and real_root not in real_folder.parents:
        raise ValueError(f"{name!r:.80} leads outside the dataset through a link (its folder is {real_folder})")
    return path


def item_key(value: object) -> str:
    """A record's key: a plain name (it names files: ``<key>.png``, ``history/<key>.r1.png``); ValueError otherwise."""
    key = str(value)
    if not key or key in (".", "..") or any(c in key for c in "/\\\0"):
        raise ValueError(f"key {key!r:.80} is not a plain name")
    return key


def apply(items: dict[str, Item], line: dict, root: Path) -> dict[str, Item]:
    """The items after one committed change (a new dict; ``items`` is left as it was)."""
    op, key = line["op"], item_key(line["key"])
    items = dict(items)
    if op in ("add", "adopt"):
        if key in items:
            raise ValueError(f"{op} of {key}, which is already an item")
        items[key] = Item(
            key=key, image=inside(root, line["image"]), mask=inside(root, line["mask"]), shape=tuple(line["shape"]),
            sha256=line["sha256"], image_sha256=line["image_sha256"], mask_sha256=line["mask_sha256"],
            fold=line.get("fold"), source=line.get("source"), frame_index=int(line.get("frame_index", 0)),
            saved_at=line.get("saved_at"), spacing_mm=_spacing(line.get("spacing_mm")),
            scale_source=line.get("scale_source"), findings=Findings(line.get("findings") or {}),
            **_seg(line, None, root), record=line)
    elif op == "replace":
        old = items[key]
        items[key] = replace(
            old, mask=inside(root, line["mask"]), mask_sha256=line["mask_sha256"], source=line.get("source", old.source),
            frame_index=int(line.get("frame_index", old.frame_index)), saved_at=line.get("saved_at"),
            spacing_mm=_spacing(line["spacing_mm"]) if "spacing_mm" in line else old.spacing_mm,
            scale_source=line.get("scale_source") if "spacing_mm" in line else old.scale_source,
            findings=Findings(line["findings"]) if "findings" in line else old.findings,
            history=(*old.history, inside(root, line["history"])), **_seg(line, old, root), record=line)
    elif op == "remove":
        del items[key]
    else:
        raise ValueError(f"unknown op {op!r}; known: {', '.join(OPS)}")
    return items


def _seg(line: dict, old: Item | None, root: Path) -> dict:
    """An item's ``seg`` and ``seg_sha256`` after a line: its own, else (a replace that names none) the old item's."""
    if "seg" not in line:
        return {"seg": old.seg, "seg_sha256": old.seg_sha256} if old is not None else {}
    if line["seg"] is None:
        return {"seg": None, "seg_sha256": None}
    return {"seg": inside(root, line["seg"]), "seg_sha256": str(line["seg_sha256"])}


def _spacing(value: object) -> tuple[float, float] | None:
    return None if value is None else checked_spacing(value, "spacing_mm")


def item_groups(items: dict[str, Item]) -> dict[str, str]:
    """Each item's group (named by its oldest item): items linked by one file (the frames of a clip or of a
    multi-frame file, one image saved again), by the same pixels (copies of one source image) or by one
    exam of one folder (DDTI's dual-view halves ``1xxxx`` and ``2xxxx``: :func:`_ddti_exam`) stay together."""
    links: dict[str, list[tuple]] = {}
    for key, item in items.items():
        links[key] = [("pixels", item.sha256)]
        if item.source:
            path = item.origin[0]
            links[key].append(("file", path))
            exam = _ddti_exam(os.path.splitext(os.path.basename(path))[0])
            if exam is not None:
                links[key].append(("exam", os.path.dirname(path), exam))
    return linked_groups(links)


def _ddti_exam(stem: str) -> int | None:
    """The exam of a file named as DDTI names them (``splits.exam_id``: ``7``, and ``10007`` and ``20007``, the two
    halves of dual-view frame 7); None for other names (a date-like ``20230107`` is no dual-view half)."""
    dual = len(stem) == 5 and stem[0] in "12"
    return exam_id(stem) if stem.isdigit() and (len(stem) <= 4 or dual) else None


def dataset_groups(root: str | os.PathLike) -> dict[str, str] | None:
    """:func:`item_groups` of the dataset the writer keeps at ``root``; None for a dataset without records
    (its keys are its exams: ``splits.exam_id``)."""
    index = DatasetIndex(root)
    return item_groups(index.items) if index.exists else None


def item_folds(items: dict[str, Item], groups: dict[str, str] | None = None) -> dict[str, int | None]:
    """Each item's fold: its group's (``groups``, default :func:`item_groups`), the fold of the group's oldest item
    that has one, so that no group straddles two folds; an item in no fold (None) stays in none."""
    groups = item_groups(items) if groups is None else groups
    of_group: dict[str, int] = {}
    for key, item in items.items():
        if item.fold is not None:
            of_group.setdefault(groups[key], item.fold)
    return {key: None if item.fold is None else of_group[groups[key]] for key, item in items.items()}


def new_fold(items: dict[str, Item], key: str, folds: int) -> int:
    """The fold for the new item ``key`` (in ``items``, with fold None): its group's, else the fold holding the
    fewest items (the lowest of those), so that unrelated frames go round the folds in turn."""
    groups = item_groups(items)
    current = item_folds(items, groups)
    fold = next((current[k] for k, group in groups.items() if group == groups[key] and current[k] is not None), None)
    if fold is not None:
        return fold
    counts = Counter(f for f in current.values() if f is not None)
    return min(range(folds), key=lambda k: (counts[k], k))


def fold_lists(listing: list[str], items: dict[str, Item], folds: int) -> list[dict[str, list[int]]]:
    """Each fold's ``{"train": [...], "val": [...]}`` of positions in ``listing`` (the trainval keys as the
    reader sorts them): an item is in its fold's val (:func:`item_folds`) and every other fold's train; a key
    without an item (a file the records do not know) is in none."""
    out: list[dict[str, list[int]]] = [{"train": [], "val": []} for _ in range(folds)]
    fold_of = item_folds(items)
    for position, key in enumerate(listing):
        fold_of_key = fold_of.get(key)
        if fold_of_key is None:
            continue
        for k, fold in enumerate(out):
            fold["val" if k == fold_of_key else "train"].append(position)
    return out


def labels_of(items: dict[str, Item]) -> dict[str, Findings]:
    """``labels.csv`` rows: the findings of every item that has some, in key order."""
    return {key: items[key].findings for key in sorted(items, key=sort_key) if items[key].findings}
