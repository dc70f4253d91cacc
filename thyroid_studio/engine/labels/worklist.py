"""The frames a user has opened and where each one stands: the document model under the app's frame list.

Qt-free, so it is tested without a display and the GUI only mirrors it. Each
:class:`Entry` is one frame of a source file with the AI predictions (one per
model role of ``engine/models/roles.py``), its ground truth (a mask found beside the
image), the label being corrected (green: a :class:`~.label_model.LabelModel`,
the one owner of the mask, the user's findings and their undo history) and its
state: not segmented, AI, corrected, propagated (a label carried over from the frame
before in a clip, not yet reviewed: accepting it or any new edit of it reviews it) or saved.
A label is *unsaved* when its mask or findings differ from their baseline (the last saved
label and findings, else the ground truth, else empty), so undoing every edit makes a frame
clean again. Unsaved labels live with their frame, with their undo history, whatever frame is
shown: only :meth:`Worklist.release` of a label with nothing to keep frees one.
Listeners are told about inserted rows and changed rows (a label edit counts once
it is complete).
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Protocol

import numpy as np

from .. import metrics
from ..calibration import Calibration, Spacing
from ..datasets.layouts import DatasetError, Sample, find_mask, read_mask
from ..datasets.writer import DatasetWriter
from ..findings.fields import Findings
from ..inference.segmenter import Segmentation
from ..io.dicom_seg import (Algorithm, Segment, SegError, SegLabels, index_segs, instance_uid, is_seg, read_seg,
                           seg_bytes, seg_problem)
from ..io.files import TEXT_ERRORS
from ..io.frames import (IMAGE_EXTENSIONS, Frame, FrameReadError, count_frames, find_inputs, frame_name, is_dicom,
                         read_frame)
from ..io.outputs import resolved
from ..io.tables import TableError, read_table
from ..io.ruler import RulerProposal
from ..models.checkpoint import ModelMeta
from ..models.roles import MODEL_ROLES, PRIMARY_ROLE
from ..preprocessing import ultrasound_region
from ..reports.page import ReportPage, build_page
from .label_model import LabelChange, LabelModel
from .scales import ScaleRules

_FRAME_CACHE = 8  # decoded frames kept in memory (cine stepping back and forth)


class State(str, Enum):
    NOT_SEGMENTED = "not segmented"
    AI = "AI"
    CORRECTED = "corrected"
    PROPAGATED = "propagated"  # an unsaved label set by cine propagation, awaiting the user's review
    SAVED = "saved"


@dataclass
class Entry:
    """One frame of a source file and everything known about it."""

    source: Path
    index: int = 0
    count: int = 1
    ground_truth: np.ndarray | None = None  # read with the frame (see Worklist.frame)
    ground_truth_file: Path | None = None  # a mask found beside the image, or a DICOM SEG of the frame; not yet read
    predictions: dict[str, Segmentation] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)  # role -> name of the model that predicted it
    batch_roles: set[str] = field(default_factory=set)  # roles whose prediction came from a batch run's files
    uncertainty: float | None = None  # of the primary model (engine/inference/uncertainty.py), for "worst first"
    label: LabelModel | None = None  # None: not shown yet, the baseline stands (see Worklist.label)
    saved_label: np.ndarray | None = None  # as stored in the dataset
    saved_findings: Findings = field(default_factory=Findings)  # as stored in the dataset
    proposed_by: str | None = None  # model whose mask was accepted as the starting label
    propagated: bool = False  # the label was propagated from the frame before and is not yet accepted or saved
    calibration: Calibration | None = None  # the file's own (Frame.calibration), known once it was read;
    # what the frame is measured with is Worklist.calibration (the user's scales first)
    ruler: RulerProposal | None = None  # the scale its burnt-in ruler proposes, for the user to confirm
    ruler_read: bool = False  # whether the ruler was looked for (ruler None: none found)
    error: str | None = None  # why the frame could not be read or segmented

    @property
    def key(self) -> tuple[str, int]:
        return str(self.source), self.index

    @property
    def name(self) -> str:
        """``frames.frame_name``, as ``Frame.name``: the stem, with ``_f0003`` for frames of multi-frame files."""
        return frame_name(self.source, self.index, self.count)

    @property
    def baseline(self) -> np.ndarray | None:
        return self.saved_label if self.saved_label is not None else self.ground_truth

    def current_label(self, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """The label's mask, else the baseline, else empty of ``shape`` (None if unknown). Not a copy."""
        for mask in (self.label.mask if self.label is not None else None, self.baseline):
            if mask is not None:
                return mask
        return np.zeros(shape, bool) if shape is not None else None

    @property
    def findings(self) -> Findings:
        """The user's findings: the label's, else those saved."""
        return self.label.findings if self.label is not None else self.saved_findings

    @property
    def unsaved(self) -> bool:
        if self.label is None:
            return False
        base = self.baseline
        same = np.array_equal(self.label.mask, base) if base is not None else not self.label.mask.any()
        return not same or self.label.findings != self.saved_findings

    @property
    def state(self) -> State:
        if self.unsaved:
            return State.PROPAGATED if self.propagated else State.CORRECTED
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
        self._propagating = False  # set_propagated is replacing a label (not an edit that reviews it)
        self.scales = ScaleRules()  # the scales the user set, by file or folder

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

        Files are taken in natural order (71 before 100), and a mask of another opened image (a case
        folder holding ``image/`` and ``mask/``) is that image's ground truth, not a frame of its own; so is a
        DICOM SEG, for each frame it references (of files opened now or before). Returns the rows of the given
        frames (new or already open) and one message per unreadable file, and per SEG that references none of
        the frames open.
        """
        rows, new, errors = [], [], []
        sources = sorted(find_inputs(list(paths)), key=natural_key)
        seg_files = [source for source in sources if is_dicom(source) and is_seg(source)]
        segs, unreadable = index_segs(seg_files)
        errors += unreadable
        labels = SegLabels(segs)
        truths = {source: find_mask(source) for source in sources}  # file checks; each read with its frame
        masks = set(truths.values()) | set(seg_files)
        for source in sources:
            if source in masks:
                continue
            try:
                count = count_frames(source)
            except FrameReadError as exc:
                errors.append(str(exc))
                continue
            for index in range(count):
                truth = truths[source] if count == 1 and truths[source] else labels.seg_for(source, index)
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
        if segs:
            errors += self._attach_segs(labels)
        return rows, errors

    def _attach_segs(self, labels: SegLabels) -> list[str]:
        """SEGs opened after the frames they reference: ground truth of those frames (read now if the frame was,
        and the label of a frame shown without edits becomes it); one line per SEG that references no open frame."""
        for row, entry in enumerate(self.entries):
            if not is_dicom(entry.source):
                continue
            seg = labels.seg_for(entry.source, entry.index)  # also makes the frame's instance known to strangers()
            if seg is None or entry.ground_truth is not None or entry.ground_truth_file is not None:
                continue
            entry.ground_truth_file = seg
            frame = self._frames.get(entry.key)
            if frame is not None:
                entry.ground_truth = _ground_truth(entry, frame)
                entry.ground_truth_file = None
                if entry.ground_truth is not None and entry.label is not None and entry.saved_label is None \
                        and not entry.label.mask.any() and not entry.label.history.can_undo:
                    entry.label.replace(entry.ground_truth.copy(), "Open the SEG label")
            self._changed(row)
        return [f"{path.name}: references another instance ({uid}), not one of the frames open"
                for path, uid in labels.strangers()]

    def frame(self, row: int) -> Frame:
        """The decoded frame of ``row`` (FrameReadError if it cannot be read), cached."""
        entry = self.entries[row]
        frame = self._frames.get(entry.key)
        if frame is None:
            frame = read_frame(entry.source, entry.index)
            self._cache(entry, frame)
        else:
            self._frames.move_to_end(entry.key)
        return frame

    def keep_frame(self, frame: Frame) -> None:
        """A frame of an opened entry decoded elsewhere (a worker reading a clip): cache it, so that
        showing or labelling it does not decode it again."""
        row = self.row_of(frame.source, frame.index)
        if row is not None and self.entries[row].key not in self._frames:
            self._cache(self.entries[row], frame)

    def _cache(self, entry: Entry, frame: Frame) -> None:
        entry.calibration = frame.calibration
        if entry.ground_truth_file is not None:
            entry.ground_truth = _ground_truth(entry, frame)
            entry.ground_truth_file = None
        self._frames[entry.key] = frame
        while len(self._frames) > _FRAME_CACHE:
            self._frames.popitem(last=False)

    def cached_frame(self, row: int) -> Frame | None:
        """The decoded frame of ``row`` if it is in the cache; never decodes."""
        return self._frames.get(self.entries[row].key)

    # ------------------------------------------------------------ changes

    def _changed(self, row: int) -> None:
        for listener in self._listeners:
            listener.row_changed(row)

    def set_prediction(self, row: int, role: str, result: Segmentation, model: str, from_batch: bool = False) -> None:
        entry = self.entries[row]
        entry.predictions[role] = result
        entry.models[role] = model
        if from_batch:
            entry.batch_roles.add(role)
        else:
            entry.batch_roles.discard(role)
        entry.error = None
        self._changed(row)

    def clear_predictions(self, roles: Iterable[str] = MODEL_ROLES) -> None:
        """Forget the predictions of ``roles`` (their models changed) but those loaded from batch runs,
        which are files the user opened; labels are kept."""
        roles = set(roles)
        for row, entry in enumerate(self.entries):
            stale = [role for role in entry.predictions if role in roles and role not in entry.batch_roles]
            for role in stale:
                del entry.predictions[role]
                entry.models.pop(role, None)
            if PRIMARY_ROLE in roles and PRIMARY_ROLE not in entry.batch_roles:
                entry.uncertainty = None
            if stale:
                self._changed(row)

    def set_uncertainty(self, row: int, value: float) -> None:
        self.entries[row].uncertainty = value
        self._changed(row)

    def set_error(self, row: int, message: str) -> None:
        self.entries[row].error = message
        self._changed(row)

    def label(self, row: int) -> LabelModel:
        """The frame's label, made from its baseline the first time (decoding the frame: FrameReadError).

        Views render it and tools edit it; the worklist tells its listeners when an edit completes."""
        entry = self.entries[row]
        if entry.label is None:
            shape = self.frame(row).pixels.shape[:2]
            entry.label = LabelModel(entry.current_label(shape), entry.saved_findings)
            entry.label.subscribe(lambda change, key=entry.key: self._label_changed(key, change))
        return entry.label

    def _label_changed(self, key: tuple[str, int], change: LabelChange) -> None:
        if change.finished:
            row = self._rows[key]
            if not change.replayed and not self._propagating:
                self.entries[row].propagated = False  # a new edit of a propagated label reviews it, as accepting does
            self._changed(row)

    def release(self, row: int) -> None:
        """Free the label of a frame left behind if it holds nothing to keep (no edit, no history)."""
        entry = self.entries[row]
        if entry.label is not None and not entry.unsaved and not entry.label.history.can_undo \
                and not entry.label.history.can_redo:
            entry.label = None

    def set_saved(self, row: int, mask: np.ndarray, findings: Findings | None = None) -> None:
        """``mask`` (and ``findings``; None: unchanged) are the frame's label as stored in the dataset: its new
        baseline, after saving or when a case is resumed. A label without unsaved edits takes them, as one edit
        that can be undone; unsaved edits stay (the history too)."""
        entry = self.entries[row]
        clean = entry.label is not None and not entry.unsaved
        entry.saved_label = np.array(mask, dtype=bool, copy=True)
        entry.propagated = False
        if findings is not None:
            entry.saved_findings = findings
        if clean:
            entry.label.replace(entry.saved_label, "Open the saved label", findings=entry.saved_findings)
        self._changed(row)

    def clip_rows(self, row: int) -> list[int]:
        """The rows of the frames after ``row``'s in its clip (same source), in frame order."""
        entry = self.entries[row]
        after = (self.row_of(entry.source, index) for index in range(entry.index + 1, entry.count))
        return [r for r in after if r is not None]

    def set_propagated(self, row: int, mask: np.ndarray, model: str) -> None:
        """A label propagated from the frame before: replaces the frame's label as one undoable edit and
        marks it *propagated* until the user accepts (:meth:`accept_propagated`) or saves it."""
        entry = self.entries[row]
        entry.propagated = True
        entry.proposed_by = model
        self._propagating = True
        try:
            replaced = self.label(row).replace(mask, "Propagate")
        finally:
            self._propagating = False
        if not replaced:
            self._changed(row)  # the same label as before: the mark alone changed

    def accept_propagated(self, row: int) -> bool:
        """The user reviewed a propagated label and keeps it (an ordinary unsaved label from now on)."""
        entry = self.entries[row]
        if not entry.propagated:
            return False
        entry.propagated = False
        self._changed(row)
        return True

    def calibration(self, row: int) -> Calibration | None:
        """What the frame is measured with: a scale the user set for its file, else the file's own calibration
        (DICOM), else a scale set for its folder (``scales.ScaleRules``); None: pixels only."""
        entry = self.entries[row]
        return self.scales.calibration(entry.source, entry.calibration)

    def set_scale(self, row: int, calibration: Calibration, scope: str) -> list[int]:
        """Keep ``calibration`` for the frame's file or folder (``scales.SCOPES``); returns the opened rows
        whose calibration it changed (each told to the listeners)."""
        before = [self.calibration(r) for r in range(len(self.entries))]
        self.scales.set(self.entries[row].source, scope, calibration)
        return self._recalibrated(before)

    def forget_scale(self, row: int) -> list[int]:
        """Drop the scales set for the frame's file and its folder; returns the rows whose calibration changed."""
        before = [self.calibration(r) for r in range(len(self.entries))]
        self.scales.forget(self.entries[row].source)
        return self._recalibrated(before)

    def _recalibrated(self, before: list[Calibration | None]) -> list[int]:
        changed = [row for row, old in enumerate(before) if self.calibration(row) != old]
        for row in changed:
            self._changed(row)
        return changed

    def set_ruler(self, row: int, proposal: RulerProposal | None) -> None:
        """What the frame's burnt-in ruler proposes (None: no ruler found); shown for the user to confirm."""
        entry = self.entries[row]
        entry.ruler, entry.ruler_read = proposal, True

    def spacing_for(self, row: int, mask: np.ndarray) -> Spacing | None:
        """Millimetres per pixel (row, column) for measuring ``mask`` on this frame; None when unknown or when
        ``mask`` reaches outside the calibrated region (``Calibration.for_mask``)."""
        calibration = self.calibration(row)
        return calibration.for_mask(mask) if calibration else None

    def proposal(self, row: int, role: str) -> np.ndarray | None:
        """The ``role`` model's mask, to accept as the label (None before its prediction arrives)."""
        entry = self.entries[row]
        result = entry.predictions.get(role)
        if result is None:
            return None
        entry.proposed_by = entry.models.get(role, role)
        return result.nodule_mask.copy()

    def discard(self, row: int) -> None:
        """Drop unsaved edits: the label goes back to its baseline, as an edit that can be undone."""
        entry = self.entries[row]
        if entry.label is not None:
            base = entry.baseline
            entry.label.replace(base if base is not None else np.zeros_like(entry.label.mask), "Discard unsaved edits",
                                findings=entry.saved_findings)
        entry.proposed_by = None
        entry.propagated = False
        self._changed(row)

    def unsaved_rows(self) -> list[int]:
        return [row for row, entry in enumerate(self.entries) if entry.unsaved]

    def rows_in(self, state: State) -> list[int]:
        """The rows whose frame is in ``state`` (``State.CORRECTED``: what "Save all corrected" saves)."""
        return [row for row, entry in enumerate(self.entries) if entry.state is state]

    # ------------------------------------------------------------ scores and saving

    def dice(self, row: int) -> dict[str, float | None]:
        """Dice of each model's mask against the ground truth (None without one of them)."""
        entry = self.entries[row]
        out: dict[str, float | None] = {}
        for role in MODEL_ROLES:
            result = entry.predictions.get(role)
            ok = result is not None and entry.ground_truth is not None
            out[role] = metrics.dice(result.nodule_mask, entry.ground_truth) if ok else None
        return out

    def record(self, row: int) -> dict[str, Any]:
        """What is stored with a saved mask (the writer adds when): which model proposed it and how
        much the user changed each model's mask (Dice between it and the final label)."""
        entry = self.entries[row]
        label = entry.current_label()
        change = {
            entry.models.get(role, role): round(metrics.dice(result.nodule_mask, label), 4)
            for role, result in entry.predictions.items()
        }
        return {
            "proposed_by": entry.proposed_by,
            "models": dict(entry.models),
            "dice_ai_vs_label": change,
            "label_pixels": int(np.count_nonzero(label)),
        }

    def save(self, row: int, writer: DatasetWriter, black_out: bool = False, replace: bool = False) -> Sample:
        """Save the frame with its label (mask, findings) and its calibration (spacing and where it came from) into
        a dataset; returns the writer's Sample.

        A frame already in the dataset raises the writer's ``AlreadySaved`` unless ``replace`` (then its mask and
        findings are replaced, the previous mask kept in the dataset's history). ``black_out``: store the image
        black outside its ultrasound region (``preprocessing.ultrasound_region``), where DICOM frames carry
        burnt-in names and dates; the one place the app's choice reaches the writer. A frame from DICOM also
        gets its label as a DICOM SEG (``Sample.seg``; None, with :meth:`seg_problem` saying why, otherwise)."""
        entry = self.entries[row]
        frame = self.frame(row)
        label = entry.current_label(frame.pixels.shape[:2]).copy()
        findings = entry.findings
        image = entry.source if entry.source.suffix.lower() in IMAGE_EXTENSIONS else frame.pixels
        try:
            seg = seg_bytes(entry.source, entry.index, [self.label_segment(row)]) if not self.seg_problem(row) else None
        except SegError:
            seg = None  # seg_problem says why; the mask is saved all the same
        calibration = self.calibration(row)
        sample = writer.add(image, label, source=entry.source, frame_index=entry.index, record=self.record(row),
                            findings=findings if findings or replace else None,
                            spacing_mm=calibration.spacing_mm if calibration else None,
                            scale_source=calibration.source if calibration else None,
                            blackout_outside=ultrasound_region(frame.gray()) if black_out else None, replace=replace,
                            seg=seg)
        self.set_saved(row, label, findings)
        return sample

    def seg_problem(self, row: int) -> str | None:
        """Why the frame's label cannot go out as a DICOM SEG (the frame is not from DICOM, ...), or None."""
        return seg_problem(self.entries[row].source)

    def label_segment(self, row: int) -> Segment:
        """The frame's label as a SEG segment: made by the model whose mask it is, if it is one (unedited), else
        drawn by hand (manual). A model known only by name (a batch run's masks) has version "unknown"."""
        entry = self.entries[row]
        label = entry.current_label(self.frame(row).pixels.shape[:2]).copy()
        made_by = next((self._algorithm(entry, role) for role, result in entry.predictions.items()
                        if np.array_equal(result.nodule_mask, label)), None)
        return Segment("nodule", label, made_by)

    def seg_segments(self, row: int, with_models: bool = False) -> list[Segment]:
        """What a SEG of the frame holds: its label, and with ``with_models`` each model's nodule and gland masks
        as segments of their own."""
        segments = [self.label_segment(row)]
        if with_models:
            entry = self.entries[row]
            for role in MODEL_ROLES:
                result = entry.predictions.get(role)
                if result is not None:
                    made_by = self._algorithm(entry, role)
                    segments.append(Segment("nodule", result.nodule_mask, made_by))
                    if result.gland_mask is not None:
                        segments.append(Segment("gland", result.gland_mask, made_by))
        return segments

    @staticmethod
    def _algorithm(entry: Entry, role: str) -> Algorithm:
        return entry.predictions[role].model or Algorithm(entry.models.get(role, role), "unknown")

    def report_page(self, row: int, meta: ModelMeta | None = None) -> ReportPage:
        """The report of the frame as shown: the primary model's segmentation and findings (``meta``: its model),
        the label when it has a nodule (else the model's mask is measured) and the user's findings."""
        entry = self.entries[row]
        frame = dataclasses.replace(self.frame(row), calibration=self.calibration(row))
        label = entry.current_label(frame.pixels.shape[:2])
        return build_page(frame, entry.predictions.get(PRIMARY_ROLE), label=label if label.any() else None,
                          findings=entry.findings, meta=meta)

    def load_batch_results(self, csv_path: str | os.PathLike) -> tuple[list[int], list[str]]:
        """Open the frames of a batch run's ``segmentation.csv`` with their masks as TRFE-Net predictions.

        Returns the rows opened and one message per source or mask that could not be read.
        """
        csv_path = Path(csv_path)
        try:
            _, table = read_table(csv_path.read_bytes().decode("utf-8", TEXT_ERRORS), str(csv_path))
        except (OSError, TableError) as exc:
            return [], [str(exc)]
        rows, errors = [], []
        folder = resolved(csv_path.parent)
        for r in table:
            try:
                if r.problem:
                    raise ValueError(r.problem)
                mask = resolved(csv_path.parent / r.cells["mask"])
                if folder not in mask.parents:  # a path read from a CSV is trusted only where it resolves
                    raise ValueError(f"its mask {r.cells['mask']!r:.80} lies outside {csv_path.parent}")
                rows.append((r.cells["file"], int(r.cells["frame"]), mask, r.cells.get("model") or "batch"))
            except KeyError as exc:
                errors.append(f"{csv_path}, line {r.line}: no {exc} column")
            except ValueError as exc:
                errors.append(f"{csv_path}, line {r.line}: {exc}")
        opened, problems = self.add(dict.fromkeys(Path(file) for file, *_ in rows))
        errors += problems
        for file, index, mask_path, model in rows:
            row = self.row_of(file, index)
            if row is None:
                continue
            try:
                mask = read_mask(mask_path)
            except DatasetError as exc:
                errors.append(str(exc))
                continue
            result = Segmentation(mask.astype(np.float32), mask)
            self.set_prediction(row, PRIMARY_ROLE, result, model, from_batch=True)
        return opened, errors


def natural_key(path: str | os.PathLike) -> list:
    """Sort key putting numbers in numeric order: ``71.png`` before ``100.png``, ``img9`` before ``img10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def _ground_truth(entry: Entry, frame: Frame) -> np.ndarray | None:
    """The mask found beside the frame's image, or the DICOM SEG of the frame; None (with the reason in
    ``entry.error``, one line) if unusable."""
    path = entry.ground_truth_file
    try:
        if is_dicom(path):
            return read_seg(path).label_for(instance_uid(entry.source), entry.index, frame.pixels.shape[:2])
        truth = read_mask(path)
    except (DatasetError, SegError) as exc:
        entry.error = f"{entry.name}: {exc}; no ground truth"
        return None
    if truth.shape != frame.pixels.shape[:2]:
        entry.error = (f"{entry.name}: ground-truth mask is {truth.shape[1]}x{truth.shape[0]}, "
                       f"the frame {frame.pixels.shape[1]}x{frame.pixels.shape[0]}; mask ignored")
        return None
    return truth
