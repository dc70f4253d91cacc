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
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..calibration import checked_spacing
from ..findings.fields import Findings, LabelsError
from ..io.outputs import resolved
from .layouts import DatasetError, read_mask, sort_key
from .splits import MAX_FOLDS

RECORDS = "records.jsonl"
HEADER = {"records": "thyroid-studio", "version": 2}
OPS = ("add", "replace", "adopt", "remove")
SAVES = ("add", "replace")  # the operations that come from a save (not adopt/remove)


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


@dataclass(frozen=True)
class Match:
    """An item that holds a frame, and how it was found: ``"content"`` (same pixels) or ``"record"``
    (same source and frame index; the pixels differ, e.g. the file changed since it was saved)."""

    item: Item
    matched_by: str


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

    def hashes(self) -> frozenset[str]:
        """The content hashes of every saved frame (to mark frames "saved" without opening items)."""
        return frozenset(item.sha256 for item in self.items.values())

    def find(self, pixels: np.ndarray | None = None, *, source: str | os.PathLike | None = None,
             frame_index: int = 0, content: str | None = None) -> Match | None:
        """The item that holds a frame: by content (``pixels``, or their ``content`` hash) first, then by
        its record (``source`` and ``frame_index``; only if the saved image has the frame's size)."""
        items = self.items.values()
        if pixels is not None and content is None:
            content = content_hash(pixels)
        if content is not None:
            found = next((item for item in items if item.sha256 == content), None)
            if found is not None:
                return Match(found, "content")
        if source is None:
            return None
        wanted = (os.fspath(source), int(frame_index))
        found = next((item for item in reversed(list(items)) if (item.source, item.frame_index) == wanted), None)
        if found is None or (pixels is not None and tuple(pixels.shape[:2]) != found.shape):
            return None
        return Match(found, "record")


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


def fold_lists(listing: list[str], items: dict[str, Item], folds: int) -> list[dict[str, list[int]]]:
    """Each fold's ``{"train": [...], "val": [...]}`` of positions in ``listing`` (the trainval keys as the
    reader sorts them): an item is in its fold's val and every other fold's train; a key without an
    item (a file the records do not know) is in none."""
    out: list[dict[str, list[int]]] = [{"train": [], "val": []} for _ in range(folds)]
    for position, key in enumerate(listing):
        item = items.get(key)
        if item is None or item.fold is None:
            continue
        for k, fold in enumerate(out):
            fold["val" if k == item.fold else "train"].append(position)
    return out


def labels_of(items: dict[str, Item]) -> dict[str, Findings]:
    """``labels.csv`` rows: the findings of every item that has some, in key order."""
    return {key: items[key].findings for key in sorted(items, key=sort_key) if items[key].findings}
