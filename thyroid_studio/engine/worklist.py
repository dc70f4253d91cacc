"""The frames a user has opened and where each one stands: the document model under the app's frame list.

Qt-free, so it is tested without a display and the GUI only mirrors it. Each
:class:`Entry` is one frame of a source file with the AI predictions ("trfe"
red, "unet" yellow), its ground truth (a mask found beside the image), the
label being corrected (green) and its state: not segmented, AI, corrected or
saved. A label is *unsaved* when it differs from its baseline (the last saved
label, else the ground truth, else empty), so undoing every edit makes a frame
clean again. Listeners are told about inserted rows and changed rows.
"""
from __future__ import annotations

import csv
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Protocol

import numpy as np

from . import geometry
from .datasets import DatasetError, DatasetWriter, find_mask, read_mask
from .frames import IMAGE_EXTENSIONS, Frame, FrameReadError, count_frames, find_inputs, read_frame
from .inference import Segmentation
from .metrics import confusion, overlap_metrics

ROLES = ("trfe", "unet")  # red, yellow
_FRAME_CACHE = 8  # decoded frames kept in memory (cine stepping back and forth)


class State(str, Enum):
    NOT_SEGMENTED = "not segmented"
    AI = "AI"
    CORRECTED = "corrected"
    SAVED = "saved"


@dataclass
class Entry:
    """One frame of a source file and everything known about it."""

    source: Path
    index: int = 0
    count: int = 1
    ground_truth: np.ndarray | None = None  # read with the frame (see Worklist.frame)
    ground_truth_file: Path | None = None  # a mask found beside the image, not yet read
    predictions: dict[str, Segmentation] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)  # role -> name of the model that predicted it
    label: np.ndarray | None = None  # None: the baseline (not yet edited in this session)
    saved_label: np.ndarray | None = None
    proposed_by: str | None = None  # model whose mask was accepted as the starting label
    spacing_mm: tuple[float, float] | None = None
    error: str | None = None  # why the frame could not be read or segmented

    @property
    def key(self) -> tuple[str, int]:
        return str(self.source), self.index

    @property
    def name(self) -> str:
        """Same naming as ``Frame.name``: the stem, with ``_f0003`` for frames of multi-frame files."""
        return self.source.stem if self.count == 1 else f"{self.source.stem}_f{self.index:04d}"

    @property
    def baseline(self) -> np.ndarray | None:
        return self.saved_label if self.saved_label is not None else self.ground_truth

    def current_label(self, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """The label to show: the edited one, else the baseline, else empty of ``shape`` (None if unknown)."""
        for mask in (self.label, self.baseline):
            if mask is not None:
                return mask
        return np.zeros(shape, bool) if shape is not None else None

    @property
    def unsaved(self) -> bool:
        if self.label is None:
            return False
        base = self.baseline
        return not (np.array_equal(self.label, base) if base is not None else not self.label.any())

    @property
    def state(self) -> State:
        if self.unsaved:
            return State.CORRECTED
        if self.saved_label is not None:
            return State.SAVED
        return State.AI if self.predictions else State.NOT_SEGMENTED


class Listener(Protocol):
    def rows_inserting(self, first: int, last: int) -> None: ...
    def rows_inserted(self) -> None: ...
    def row_changed(self, row: int) -> None: ...


class Worklist:
    """The ordered opened frames, with a small cache of decoded pixels."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self._rows: dict[tuple[str, int], int] = {}
        self._listeners: list[Listener] = []
        self._frames: OrderedDict[tuple[str, int], Frame] = OrderedDict()

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, row: int) -> Entry:
        return self.entries[row]

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def row_of(self, source: str | os.PathLike, index: int = 0) -> int | None:
        return self._rows.get((str(Path(source)), index))

    # ------------------------------------------------------------ opening

    def add(self, paths: Iterable[str | os.PathLike]) -> tuple[list[int], list[str]]:
        """Open files and folders (every frame of multi-frame files); already-open frames are not repeated.

        Returns the rows of the given frames (new or already open) and one message per unreadable file.
        """
        rows, new, errors = [], [], []
        for source in find_inputs(list(paths)):
            try:
                count = count_frames(source)
            except FrameReadError as exc:
                errors.append(str(exc))
                continue
            truth = find_mask(source) if count == 1 else None  # a file check; read with the frame
            for index in range(count):
                row = self.row_of(source, index)
                if row is None:
                    row = len(self.entries) + len(new)
                    new.append(Entry(Path(source), index, count, ground_truth_file=truth))
                rows.append(row)
        if new:
            first = len(self.entries)
            for listener in self._listeners:
                listener.rows_inserting(first, first + len(new) - 1)
            for entry in new:
                self._rows[entry.key] = len(self.entries)
                self.entries.append(entry)
            for listener in self._listeners:
                listener.rows_inserted()
        return rows, errors

    def frame(self, row: int) -> Frame:
        """The decoded frame of ``row`` (FrameReadError if it cannot be read), cached."""
        entry = self.entries[row]
        frame = self._frames.get(entry.key)
        if frame is None:
            frame = read_frame(entry.source, entry.index)
            entry.spacing_mm = frame.spacing_mm
            if entry.ground_truth_file is not None:
                entry.ground_truth = _ground_truth(entry, frame)
                entry.ground_truth_file = None
            self._frames[entry.key] = frame
            while len(self._frames) > _FRAME_CACHE:
                self._frames.popitem(last=False)
        else:
            self._frames.move_to_end(entry.key)
        return frame

    # ------------------------------------------------------------ changes

    def _changed(self, row: int) -> None:
        for listener in self._listeners:
            listener.row_changed(row)

    def set_prediction(self, row: int, role: str, result: Segmentation, model: str) -> None:
        entry = self.entries[row]
        entry.predictions[role] = result
        entry.models[role] = model
        entry.error = None
        self._changed(row)

    def clear_predictions(self) -> None:
        """Forget every prediction (the models changed); labels are kept."""
        for row, entry in enumerate(self.entries):
            if entry.predictions:
                entry.predictions.clear()
                entry.models.clear()
                self._changed(row)

    def set_error(self, row: int, message: str) -> None:
        self.entries[row].error = message
        self._changed(row)

    def set_label(self, row: int, mask: np.ndarray) -> bool:
        """Record the label as edited by the user; False when it is what the worklist already holds."""
        entry = self.entries[row]
        current = entry.current_label(mask.shape)
        if current is not None and np.array_equal(current, mask):
            return False
        entry.label = mask.astype(bool, copy=True)
        self._changed(row)
        return True

    def proposal(self, row: int, role: str) -> np.ndarray | None:
        """The ``role`` model's mask, to accept as the label (None before its prediction arrives)."""
        entry = self.entries[row]
        result = entry.predictions.get(role)
        if result is None:
            return None
        entry.proposed_by = entry.models.get(role, role)
        return result.nodule_mask.copy()

    def discard(self, row: int) -> None:
        """Drop unsaved edits: the label goes back to its baseline."""
        entry = self.entries[row]
        entry.label = None
        entry.proposed_by = None
        self._changed(row)

    def unsaved_rows(self) -> list[int]:
        return [row for row, entry in enumerate(self.entries) if entry.unsaved]

    # ------------------------------------------------------------ scores and saving

    def dice(self, row: int) -> dict[str, float | None]:
        """Dice of each model's mask against the ground truth (None without one of them)."""
        entry = self.entries[row]
        out: dict[str, float | None] = {}
        for role in ROLES:
            result = entry.predictions.get(role)
            ok = result is not None and entry.ground_truth is not None
            out[role] = _dice(result.nodule_mask, entry.ground_truth) if ok else None
        return out

    def record(self, row: int) -> dict[str, Any]:
        """What is stored with a saved mask (the writer adds when): which model proposed it and how
        much the user changed each model's mask (Dice between it and the final label)."""
        entry = self.entries[row]
        label = entry.current_label()
        change = {
            entry.models.get(role, role): round(_dice(result.nodule_mask, label), 4)
            for role, result in entry.predictions.items()
        }
        return {
            "proposed_by": entry.proposed_by,
            "models": dict(entry.models),
            "dice_ai_vs_label": change,
            "label_pixels": int(np.count_nonzero(label)),
        }

    def save(self, row: int, writer: DatasetWriter):
        """Append the frame and its label to a TN3K-style dataset; returns the writer's Sample."""
        entry = self.entries[row]
        frame = self.frame(row)
        label = entry.current_label(frame.pixels.shape[:2])
        image = entry.source if entry.source.suffix.lower() in IMAGE_EXTENSIONS else frame.pixels
        sample = writer.add(image, label, source=entry.source, frame_index=entry.index, record=self.record(row))
        entry.saved_label, entry.label = label.copy(), None
        self._changed(row)
        return sample

    def load_batch_results(self, csv_path: str | os.PathLike) -> tuple[list[int], list[str]]:
        """Open the frames of a batch run's ``segmentation.csv`` with their masks as TRFE-Net predictions.

        Returns the rows opened and one message per source or mask that could not be read.
        """
        csv_path = Path(csv_path)
        with open(csv_path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        opened, errors = self.add(dict.fromkeys(Path(r["file"]) for r in rows))
        for r in rows:
            row = self.row_of(r["file"], int(r["frame"]))
            if row is None:
                continue
            try:
                mask = read_mask(csv_path.parent / r["mask"])
            except DatasetError as exc:
                errors.append(str(exc))
                continue
            result = Segmentation(mask.astype(np.float32), mask)
            self.set_prediction(row, "trfe", result, r.get("model") or "batch")
        return opened, errors


def cleaned(mask: np.ndarray, operation: str) -> np.ndarray:
    """The label after one clean-up: "fill_holes", "largest" (keep the largest component) or "clear"."""
    if operation == "fill_holes":
        return geometry.fill_holes(mask)
    if operation == "largest":
        return geometry.largest_component(mask)
    if operation == "clear":
        return np.zeros_like(mask, bool)
    raise ValueError(f"unknown clean-up {operation!r}")


def _dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice only (no distances: cheap enough to refresh while painting); 1 when both are empty."""
    return float(overlap_metrics(*confusion(pred, truth))["dice"])


def _ground_truth(entry: Entry, frame: Frame) -> np.ndarray | None:
    """The mask found beside the frame's image; None (with the reason in ``entry.error``) if unusable."""
    try:
        truth = read_mask(entry.ground_truth_file)
    except DatasetError as exc:
        entry.error = f"{entry.name}: {exc}; no ground truth"
        return None
    if truth.shape != frame.pixels.shape[:2]:
        entry.error = (f"{entry.name}: ground-truth mask is {truth.shape[1]}x{truth.shape[0]}, "
                       f"the frame {frame.pixels.shape[1]}x{frame.pixels.shape[0]}; mask ignored")
        return None
    return truth
