"""The one writer of a TN3K-layout dataset: safe with several writers at once and across crashes.

Layout: ``trainval-image/NNNN.<ext>`` and ``trainval-mask/NNNN.png`` (0/255), for frames from DICOM
``trainval-seg/NNNN.dcm`` (the mask as a DICOM SEG referencing the source instance, beside the TN3K
folders, which stay as they are; a replaced mask's SEG is ``NNNN.r<n>.dcm``), the fold files
``tn3k-trainval-fold{k}.json``, ``records.jsonl`` (the commit log, see dataset_index.py),
``labels.csv`` (findings, engine/findings/fields.py), ``history/`` (replaced masks), and two hidden
files: ``.dataset.lock`` (an OS file lock) and ``.transaction.json`` (the journal of the
change in progress). Keys are the next free number, so new items sort last and the positions
of the others never move. A new item joins the fold of its group (the frames of its file, frames
with its pixels: ``index.item_groups``), else the fold holding the fewest items.

Every change is one transaction under the lock, in this order:

1. recover (below); look the frame up (``DatasetIndex.find``: its file and frame index, else its
   pixels for a file renamed or moved since it was saved);
2. write the journal: which files the change will touch;
3. (replace) copy the current mask to ``history/<key>.r<n>.<ext>``;
4. write the image (add), the mask and its SEG (a new name on replace) to temporary names, fsync, rename into
   place, fsync the folder;
5. **commit**: append the record line to ``records.jsonl`` and fsync it;
6. rewrite the derived files from the records (fold files, ``labels.csv``); (replace) remove a
   previous mask of another extension, and the previous SEG;
7. delete the journal.

Recovery, under the lock when a writer opens the dataset and before each transaction (and by
``dataset check --repair``): a torn last record line is cut off; temporary files are deleted;
a journal whose record is committed is finished (step 6 again), otherwise undone (an add's
files deleted, a replace's history copy moved back onto the mask and its new SEG deleted). So after any crash an item
is in the dataset with its own files, or not at all. The writer never deletes a file it did
not write: files the records do not know are reported by ``dataset check`` and moved to
``orphans/`` by ``check --repair``.

A folder the writer opens for the first time (empty, a TN3K copy, or a dataset of the older
writer) is converted once: each image with a mask becomes an ``adopt`` record, keeping its
fold and its findings from ``labels.csv``.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np
from filelock import FileLock, Timeout

from ..calibration import SOURCES, checked_spacing
from ..findings.fields import FIELDS, KEY_COLUMN, LABELS_FILE, Findings, LabelsError, labels_text, read_labels
from ..io.files import (TEXT_ERRORS, append_durable, encode_image, fsync, is_temporary, mask_png, write_bytes_atomic,
                        write_text_atomic)
from ..io.frames import IMAGE_EXTENSIONS as FRAME_IMAGE_EXTENSIONS
from ..io.frames import read_frame
from ..io.image_header import orientation
from ..io.tables import TableError, read_table
from ..preprocessing import Box
from .index import (CONTENT, FILE, HEADER, RECORDS, SAVES, DatasetIndex, Item, apply, bytes_hash, content_hash,
                    fold_lists, inside, item_key, labels_of, new_fold)
from .layouts import (IMAGE_EXTENSIONS, TN3K_FOLDERS, DatasetError, Sample, find_mask, fold_files, image_files,
                      open_dataset, read_json, read_mask, sort_key)

LOCK = ".dataset.lock"
JOURNAL = ".transaction.json"
HISTORY = "history"
ORPHANS = "orphans"
DEFAULT_FOLDS = 5
LOCK_TIMEOUT_S = 60.0
LOCK_POLL_S = 0.005  # how often a waiting writer tries the lock (transactions take milliseconds)
IMAGES, MASKS = TN3K_FOLDERS[0], TN3K_FOLDERS[1]
SEGS = "trainval-seg"  # DICOM SEGs of the masks of frames from DICOM (made only when one is saved)
RESERVED = ("op", "key", "image", "mask", "shape", "sha256", "image_sha256", "mask_sha256", "fold", "source",
            "frame_index", "saved_at", "previous_saved_at", "spacing_mm", "scale_source", "findings", "blackout",
            "history", "reason", "seg", "seg_sha256")


class AlreadySaved(DatasetError):
    """The frame is already an item: saved from this file and frame (``matched_by`` FILE), or found by its pixels
    because the file it was saved from is gone (CONTENT: renamed or moved); ``add(..., replace=True)`` replaces
    its mask."""

    def __init__(self, item: Item, same_mask: bool, matched_by: str = FILE):
        self.key, self.item, self.same_mask, self.matched_by = item.key, item, same_mask, matched_by
        how = ("saved from this file and frame" if matched_by == FILE else
               f"the same pixels, saved from {item.source or 'a file not recorded'}, which is not there any more")
        super().__init__(f"already in the dataset as {item.key} ({how}; "
                         f"{'the same mask' if same_mask else 'another mask'}); its mask was not replaced")


class DatasetWriter:
    """Adds labelled frames to a TN3K-layout dataset, or replaces the mask of a frame saved before."""

    def __init__(self, root: str | os.PathLike, folds: int | None = None, lock_timeout: float = LOCK_TIMEOUT_S):
        """Open (creating if needed) the dataset at ``root``; ``folds``: for a new dataset (default 5),
        else it must match. ``recovered`` lists what recovery found to finish or undo. DatasetError for a folder
        that holds a dataset of another layout (its frames would be hidden behind the new TN3K folders)."""
        self.root = Path(root)
        if problem := links_problem(self.root):
            raise DatasetError(problem)
        _refuse_other_layout(self.root)
        for name in TN3K_FOLDERS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self.image_dir, self.mask_dir, self.seg_dir = self.root / IMAGES, self.root / MASKS, self.root / SEGS
        self.index = DatasetIndex(self.root)
        self._lock = FileLock(self.root / LOCK, timeout=lock_timeout)
        self._lock_timeout = lock_timeout
        self.recovered: list[str] = []
        with self._locked():
            existed = self.index.exists
            odd = [p.name for p in image_files(self.image_dir) if sort_key(p.name)[0]]
            if odd:
                raise DatasetError(f"{self.image_dir}: non-numeric names {odd[:5]} would sort after new items "
                                   "and shift their positions; cannot append")
            if not self.index.exists:
                self.recovered += self._convert(folds)
            self.index.refresh()
            if folds is not None and folds != self.index.folds:
                raise DatasetError(f"{self.root}: has {self.index.folds} folds but the writer was asked for {folds}")
            self.folds: int = self.index.folds
            rewritten = self.write_derived()
            if existed:
                self.recovered += [f"{name}: rewritten from the records" for name in rewritten]

    # ------------------------------------------------------------------ public

    def add(self, image: str | os.PathLike | np.ndarray, mask: np.ndarray, *, source: str | os.PathLike,
            frame_index: int = 0, record: dict | None = None, findings: Findings | None = None,
            spacing_mm: tuple[float, float] | None = None, scale_source: str | None = None,
            blackout_outside: Box | None = None, replace: bool = False, seg: bytes | None = None) -> Sample:
        """Save one labelled frame: a new item, or (``replace=True``) a new mask for the item that is this frame
        (``DatasetIndex.find``: saved from ``source`` and ``frame_index`` with the same pixels, or with the same pixels
        from a file that is gone), the previous mask kept in ``history/``. Another file with the same pixels, or
        this file changed since it was saved, is a new item.

        ``image``: a single-frame image file (its bytes are stored unchanged) or uint8 pixels (stored
        as PNG). ``record``: extra fields for the record (who proposed the mask, Dice, ...).
        ``findings``: stored in the record and ``labels.csv`` (None: unchanged on replace).
        ``spacing_mm``: (row, column) mm per pixel, when the frame has one; ``scale_source``: where it came
        from (a key of ``calibration.SOURCES``: the DICOM header, the user, the burnt-in ruler, an option).
        ``blackout_outside``: store the image black outside this box (burnt-in text); the item is
        still found by the original pixels. ``seg``: the mask as a DICOM SEG file (``dicom_seg.seg_bytes``) for a
        frame from DICOM, stored beside it (a replace without one drops the previous SEG, which no longer fits the
        mask). Raises :class:`AlreadySaved` for a frame already saved
        when ``replace`` is False, ValueError for bad input, DatasetError when the dataset is busy.
        """
        extra = dict(record or {})
        clash = sorted(set(extra) & set(RESERVED))
        if clash:
            raise ValueError(f"record keys {clash} are reserved")
        pixels, data, suffix = _incoming(image)
        mask = np.asarray(mask)
        if mask.shape != pixels.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} differs from the image's {pixels.shape[:2]}")
        line: dict = {"source": os.fspath(source), "frame_index": int(frame_index)}
        if spacing_mm is not None:
            line["spacing_mm"] = list(checked_spacing(spacing_mm, "spacing_mm"))
        if scale_source is not None:
            if spacing_mm is None or scale_source not in SOURCES:
                raise ValueError(f"scale_source {scale_source!r} needs a spacing_mm and one of {', '.join(SOURCES)}")
            line["scale_source"] = scale_source
        if findings is not None:
            line["findings"] = dict(findings.values)
        original = pixels
        content = content_hash(pixels)
        if blackout_outside is not None:
            pixels, data, suffix = _black_out_outside(pixels, blackout_outside), None, ".png"
            line["blackout"] = [blackout_outside.y0, blackout_outside.y1, blackout_outside.x0, blackout_outside.x1]
        mask_bytes = mask_png(mask)
        with self._locked():
            match = self.index.find(original, source=source, frame_index=frame_index, content=content)
            if match is not None and match.matched_by in (FILE, CONTENT):
                if not replace:
                    raise AlreadySaved(match.item, match.item.mask_sha256 == bytes_hash(mask_bytes), match.matched_by)
                return self._replace(match.item, mask_bytes, seg, {**line, **extra})
            image_bytes = data if data is not None else encode_image(pixels, suffix)
            return self._append(image_bytes, suffix, pixels.shape[:2], content, mask_bytes, seg, {**line, **extra})

    def records(self) -> list[dict]:
        """Every save (add and replace records) so far, oldest first."""
        return [line for line in self.index.lines() if line["op"] in SAVES]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the dataset's lock (recovered first) for several changes, e.g. a repair."""
        with self._locked():
            yield

    def remove(self, key: str, reason: str) -> list[Path]:
        """Drop an item (``dataset check --repair`` only): a ``remove`` record, its files moved to orphans/."""
        with self._locked():
            item = self.index.items[key]
            line = {"op": "remove", "key": key, "reason": reason, "saved_at": _now()}
            append_durable(self.index.path, _line_bytes(line))
            moved = [self.move_to_orphans(p) for p in (item.image, item.mask, item.seg, *item.history)
                     if p is not None and p.is_file()]
            self.write_derived()
            return moved

    def binarize_mask(self, key: str) -> Sample:
        """Rewrite an item's mask that holds values other than 0 and 255 (a lossy JPEG mask of a TN3K copy) as a
        0/255 PNG, thresholded as :func:`datasets.read_mask` reads it; the original kept in ``history/``."""
        with self._locked():
            item = self.index.items[key]
            return self._replace(item, mask_png(read_mask(item.mask)), None, {"reason": "mask made 0/255"})

    def move_to_orphans(self, path: Path) -> Path:
        """Move a file the records do not know to ``orphans/<its folder>/`` (never deleted)."""
        with self._locked():
            target = self.root / ORPHANS / path.parent.relative_to(self.root) / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            while target.exists():
                target = target.with_name(f"{target.stem}.again{target.suffix}")
            os.replace(path, target)
            fsync(path.parent)
            fsync(target.parent)
            return target

    def write_derived(self) -> list[str]:
        """Rewrite what the records determine and differs on disk: fold files and ``labels.csv``; returns their names."""
        with self._locked():
            items = self.index.items
            listing = [p.stem for p in image_files(self.image_dir)]
            written = []
            for k, fold in enumerate(fold_lists(listing, items, self.index.folds)):
                if _write_if_changed(self._fold_path(k), json.dumps(fold) + "\n"):
                    written.append(self._fold_path(k).name)
            if self._write_labels(items):
                written.append(LABELS_FILE)
            return written

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the lock (re-entrant); on first entry recover, and undo the change in progress if it fails."""
        outer = not self._lock.is_locked
        try:
            self._lock.acquire(poll_interval=LOCK_POLL_S)
        except Timeout:
            raise DatasetError(f"{self.root}: another program is writing to this dataset "
                               f"(waited {self._lock_timeout:.0f} s for {LOCK})") from None
        try:
            if outer:
                self.recovered += self._recover()
            try:
                yield
            except Exception:
                if outer:
                    self._recover()
                raise
        finally:
            self._lock.release()

    def _append(self, image_bytes: bytes, suffix: str, shape: tuple[int, int], content: str, mask_bytes: bytes,
                seg_bytes: bytes | None, fields: dict) -> Sample:
        key = self._next_key()
        image_path, mask_path = self.image_dir / f"{key}{suffix}", self.mask_dir / f"{key}.png"
        seg_path = self.seg_dir / f"{key}.dcm" if seg_bytes is not None else None
        line = {"op": "add", "key": key, "image": self.relative(image_path), "mask": self.relative(mask_path),
                "shape": list(shape), "sha256": content, "image_sha256": bytes_hash(image_bytes),
                "mask_sha256": bytes_hash(mask_bytes), "fold": None, "saved_at": _now(),
                **self._seg_fields(seg_path, seg_bytes), **fields}
        line["fold"] = new_fold(apply(self.index.items, line, self.root), key, self.index.folds)
        files = [line["image"], line["mask"]] + ([line["seg"]] if seg_path is not None else [])
        self._begin({"op": "add", "key": key, "files": files})
        write_bytes_atomic(image_path, image_bytes, durable=True)
        write_bytes_atomic(mask_path, mask_bytes, durable=True)
        if seg_path is not None:
            write_bytes_atomic(seg_path, seg_bytes, durable=True)
        append_durable(self.index.path, _line_bytes(line))  # the commit
        self._finish()
        return Sample(image_path, mask_path, key, seg_path)

    def _replace(self, item: Item, mask_bytes: bytes, seg_bytes: bytes | None, fields: dict) -> Sample:
        """A new mask (and SEG, under a new name: the previous one is removed only after the commit)."""
        if not item.mask.is_file():
            raise DatasetError(f"{item.mask}: the mask of {item.key} is missing; "
                               "`thyroid-studio dataset check --repair` reports what to do")
        revision = len(item.history) + 1
        history = self.root / HISTORY / f"{item.key}.r{revision}{item.mask.suffix}"
        mask_path = self.mask_dir / f"{item.key}.png"
        seg_path = self.seg_dir / f"{item.key}.r{revision}.dcm" if seg_bytes is not None else None
        line = {"op": "replace", "key": item.key, "mask": self.relative(mask_path),
                "mask_sha256": bytes_hash(mask_bytes), "history": self.relative(history), "saved_at": _now(),
                "previous_saved_at": item.saved_at, **self._seg_fields(seg_path, seg_bytes), **fields}
        segs = {"seg": line["seg"]} if seg_path is not None else {}
        if item.seg is not None:
            segs["seg_previous"] = self.relative(item.seg)
            line.setdefault("seg", None)  # the previous SEG no longer fits the mask: the item has none now
        self._begin({"op": "replace", "key": item.key, "mask": line["mask"], "previous": self.relative(item.mask),
                     "history": line["history"], **segs})
        write_bytes_atomic(history, item.mask.read_bytes(), durable=True)
        write_bytes_atomic(mask_path, mask_bytes, durable=True)
        if seg_path is not None:
            write_bytes_atomic(seg_path, seg_bytes, durable=True)
        append_durable(self.index.path, _line_bytes(line))  # the commit
        self._finish()
        return Sample(item.image, mask_path, item.key, seg_path)

    def _seg_fields(self, seg_path: Path | None, seg_bytes: bytes | None) -> dict:
        """The record's ``seg`` and ``seg_sha256``, for a save with a SEG."""
        if seg_path is None:
            return {}
        return {"seg": self.relative(seg_path), "seg_sha256": bytes_hash(seg_bytes)}

    def _begin(self, journal: dict) -> None:
        write_text_atomic(self.root / JOURNAL, json.dumps(journal) + "\n", durable=True)

    def _journal(self) -> dict:
        """The journal of the change in progress, checked: an op this writer writes, naming files inside the dataset."""
        path = self.root / JOURNAL
        journal = read_json(path)
        try:
            if not isinstance(journal["key"], str):
                raise TypeError("its key is not text")
            item_key(journal["key"])
            if journal["op"] == "add":
                names = journal["files"]
            elif journal["op"] == "replace":
                names = [journal[k] for k in ("mask", "previous", "history")] + \
                    [journal[k] for k in ("seg", "seg_previous") if k in journal]
            else:
                raise ValueError(f"unknown op {journal['op']!r:.40}")
            if not isinstance(names, list):
                raise ValueError("its files are not a list")
            for name in names:
                inside(self.root, name)
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: not a journal this program wrote ({type(exc).__name__}: {exc}); "
                               "check the dataset, then delete the file by hand") from exc
        return journal

    def _finish(self) -> None:
        """After the commit: the derived files, a previous mask of another name, then the journal."""
        journal = self._journal()
        if journal["op"] == "replace" and journal["previous"] != journal["mask"]:
            (self.root / journal["previous"]).unlink(missing_ok=True)
        if journal["op"] == "replace" and "seg_previous" in journal:
            (self.root / journal["seg_previous"]).unlink(missing_ok=True)
        self.write_derived()
        (self.root / JOURNAL).unlink()

    def _recover(self) -> list[str]:
        """Bring the folder back to its last commit (see the module docstring); what was done, one line each."""
        done = []
        records = self.root / RECORDS
        if records.is_file():
            data = records.read_bytes()
            if data and not data.endswith(b"\n"):
                os.truncate(records, data.rfind(b"\n") + 1)
                fsync(records)
                done.append(f"{RECORDS}: cut off a torn last line (a save interrupted before its commit)")
        for folder in (self.root, self.image_dir, self.mask_dir, self.seg_dir, self.root / HISTORY):
            for path in (folder.iterdir() if folder.is_dir() else ()):
                if is_temporary(path) and path.is_file():
                    path.unlink()
                    done.append(f"deleted {self.relative(path)}, a temporary file of an interrupted write")
        journal_path = self.root / JOURNAL
        if journal_path.is_file():
            journal = self._journal()
            if self._committed(journal):
                self._finish()
                done.append(f"finished the committed {journal['op']} of {journal['key']}")
            else:
                self._undo(journal)
                journal_path.unlink()
                done.append(f"undid the interrupted {journal['op']} of {journal['key']} (never committed)")
        return done

    def _committed(self, journal: dict) -> bool:
        if not self.index.exists:
            return False
        if journal["op"] == "add":
            return journal["key"] in self.index.items
        return any(line["op"] == "replace" and line.get("history") == journal["history"]
                   for line in self.index.lines())

    def _undo(self, journal: dict) -> None:
        if journal["op"] == "add":
            for name in journal["files"]:
                (self.root / name).unlink(missing_ok=True)
            for folder in (self.image_dir, self.mask_dir, self.seg_dir):
                if folder.is_dir():
                    fsync(folder)
            return
        if "seg" in journal:  # a new name: the previous SEG was never touched
            (self.root / journal["seg"]).unlink(missing_ok=True)
        history, previous, mask = (self.root / journal[k] for k in ("history", "previous", "mask"))
        if history.is_file():  # the mask may have been replaced: put the committed one back
            os.replace(history, previous)
            fsync(previous.parent)
        if mask != previous:
            mask.unlink(missing_ok=True)

    # ------------------------------------------------------------------ conversion of a folder

    def _convert(self, folds: int | None) -> list[str]:
        """Write the records of a folder the writer has not kept before (empty, a TN3K copy, an older dataset)."""
        found = fold_files(self.root)
        folds = folds or (len(found) or DEFAULT_FOLDS)
        if found and len(found) != folds:
            raise DatasetError(f"{self.root}: has {len(found)} fold files but the writer was asked for {folds}")
        val_of = {p: k for k, path in found for p in read_json(path).get("val", [])}
        labels = self._old_labels()
        saves = self._old_records()
        lines, skipped = [], []
        for position, image in enumerate(image_files(self.image_dir)):
            mask = find_mask(image)
            if mask is None:
                skipped.append(f"{self.relative(image)} has no mask: not adopted (an orphan for `check`)")
                continue
            try:
                pixels = read_frame(image).pixels
            except ValueError as exc:
                skipped.append(f"{exc}: not adopted")
                continue
            key = image.stem
            lines.append({**saves.get(key, {}), "op": "adopt", "key": key, "image": self.relative(image),
                          "mask": self.relative(mask), "shape": list(pixels.shape[:2]),
                          "sha256": content_hash(pixels), "image_sha256": bytes_hash(image.read_bytes()),
                          "mask_sha256": bytes_hash(mask.read_bytes()),
                          "fold": val_of.get(position, None if found else position % folds),
                          **({"findings": dict(labels[key].values)} if labels.get(key) else {})})
        old = self.root / RECORDS
        if old.is_file():
            write_bytes_atomic(self.root / HISTORY / "records.v1.jsonl", old.read_bytes(), durable=True)
        header = {**HEADER, "folds": folds}
        write_text_atomic(old, "".join(json.dumps(line) + "\n" for line in [header, *lines]), durable=True)
        return ([f"converted the folder: {len(lines)} existing item(s) adopted"] if lines else []) + skipped

    def _old_labels(self) -> dict[str, Findings]:
        path = self.root / LABELS_FILE
        try:
            return read_labels(path) if path.is_file() else {}
        except LabelsError as exc:
            raise DatasetError(f"{exc}; fix it before this folder can be written to") from exc

    def _old_records(self) -> dict[str, dict]:
        """The last save of each key in an older writer's records.jsonl (its source, model, Dice, ...)."""
        path = self.root / RECORDS
        if not path.is_file():
            return {}
        saves = {}
        for raw in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                line = json.loads(raw)
                if isinstance(line, dict) and "key" in line:
                    saves[str(line["key"])] = {k: v for k, v in line.items() if k not in ("image", "mask")}
        return saves

    # ------------------------------------------------------------------ helpers

    def _next_key(self) -> str:
        """One more than every number in use (items, and any file in the image and mask folders)."""
        names = [*self.index.items, *(p.stem for p in self.image_dir.iterdir()),
                 *(p.stem for p in self.mask_dir.iterdir())]
        numbers = [sort_key(n)[1] for n in names if sort_key(n)[0] == 0]
        return f"{max(numbers, default=-1) + 1:04d}"

    def _fold_path(self, k: int) -> Path:
        return self.root / f"tn3k-trainval-fold{k}.json"

    def relative(self, path: Path) -> str:
        """``path`` relative to the dataset root, with forward slashes (as records store it)."""
        return path.relative_to(self.root).as_posix()

    def _write_labels(self, items: dict[str, Item]) -> bool:
        """``labels.csv`` from the items' findings (other columns of an existing file kept); True if written."""
        path = self.root / LABELS_FILE
        columns, extra = _extra_columns(path)
        labels = labels_of(items)
        rows = {key: labels.get(key, Findings()) for key in sorted(items, key=sort_key) if key in labels or key in extra}
        if not rows and not path.is_file():
            return False
        return _write_if_changed(path, labels_text(rows, extra, columns))


def links_problem(root: Path) -> str | None:
    """Why the writer may not touch ``root``: one of the files and folders it writes (the lock, the records, the
    journal, the image, mask, history and orphans folders) is a link. The records are appended to, which would
    write through a link, and files would be created, moved or deleted in a linked folder elsewhere (a linked lock
    file is an OS error). So a link there is refused with one line, never followed."""
    for name in (LOCK, RECORDS, JOURNAL, *TN3K_FOLDERS, HISTORY, ORPHANS):
        if (root / name).is_symlink():
            return (f"{root / name} is a link (to {os.readlink(root / name)}); the dataset writer never writes through "
                    "a link: replace it with the file or folder itself")
    return None


def _refuse_other_layout(root: Path) -> None:
    """DatasetError for a folder that holds a dataset of another layout (image/ + mask/, TG3K, bare image files):
    the writer's TN3K folders, which readers look for first, would hide its frames from every reader."""
    if not root.is_dir() or (root / RECORDS).exists():
        return
    try:
        layout = open_dataset(root).layout
    except DatasetError:  # empty, or no dataset at all: the writer makes one here
        return
    if layout != "tn3k":
        raise DatasetError(f"{root}: holds a {layout}-layout dataset; the writer keeps TN3K-layout datasets, whose "
                           f"folders would hide these frames. Add them to a new folder instead: "
                           f"thyroid-studio dataset add NEW_FOLDER {root}")


def _extra_columns(path: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Columns of ``labels.csv`` besides id and the findings (sex, age, ...) and their values by id."""
    try:
        header, rows = read_table(path.read_bytes().decode("utf-8-sig"), str(path))
    except (OSError, UnicodeDecodeError, TableError):
        return [], {}
    columns = [c for c in header if c != KEY_COLUMN and c not in FIELDS]
    extra = {(row.cells.get(KEY_COLUMN) or "").strip(): {c: row.cells.get(c) or "" for c in columns} for row in rows}
    return columns, {key: values for key, values in extra.items() if key and any(values.values())}


def _incoming(image: str | os.PathLike | np.ndarray) -> tuple[np.ndarray, bytes | None, str]:
    """The frame's pixels, the file bytes to store unchanged (None: encode the pixels) and the suffix."""
    if isinstance(image, np.ndarray):
        if image.ndim not in (2, 3) or image.dtype != np.uint8 or (image.ndim == 3 and image.shape[2] != 3):
            raise ValueError(f"pixels must be uint8 (H, W) or (H, W, 3), got {image.shape} {image.dtype}")
        return image, None, ".png"
    path = Path(image)
    suffix = path.suffix.lower()
    if suffix not in FRAME_IMAGE_EXTENSIONS:
        raise ValueError(f"{path}: not a single-frame image file ({', '.join(sorted(FRAME_IMAGE_EXTENSIONS))}); "
                         "pass its pixels")
    if suffix not in IMAGE_EXTENSIONS:  # readable, but not listed by dataset readers (.jpe, .dib): store as PNG
        return read_frame(path).pixels, None, ".png"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    pixels = read_frame(path).pixels
    if orientation(data) != 1:  # stored turned (EXIF): store what is shown, which the mask was drawn on, as PNG
        return pixels, None, ".png"
    return pixels, data, suffix


def _black_out_outside(pixels: np.ndarray, box: Box) -> np.ndarray:
    out = np.zeros_like(pixels)
    out[box.y0:box.y1, box.x0:box.x1] = pixels[box.y0:box.y1, box.x0:box.x1]
    return out




def _write_if_changed(path: Path, text: str) -> bool:
    """Write a derived file atomically if it differs. Not fsync'd: a power loss can only leave it stale or
    empty, and every writer rewrites it from the records when it opens the dataset."""
    try:
        if path.read_bytes() == text.encode("utf-8", TEXT_ERRORS):  # bytes: reading text would translate "\r\n"
            return False
    except OSError:
        pass
    write_text_atomic(path, text)
    return True


def _line_bytes(line: dict) -> bytes:
    return (json.dumps(line) + "\n").encode("utf-8")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
