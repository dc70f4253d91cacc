"""The label of one frame: its mask, its calipers, the user's findings and their one undo history (Qt-free).

napari's labels layer is the model: the data and its history live together, views only
listen. Every change goes through this class (Slicer's "one call after saving state for
undo"): a stroke's dabs (:meth:`LabelModel.paint` between :meth:`~LabelModel.begin_stroke`
and :meth:`~LabelModel.end_stroke`) become one edit, a whole-mask replacement or a caliper
is one edit, a finding chosen is one edit (the findings belong to the label: they are saved
with it, and undone in the same history), and undo/redo replay them. Each frame's entry in the worklist holds its own
model, so undo survives switching frames, and there is no second copy of the mask to keep
in step. Listeners get a :class:`LabelChange` after every change.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..findings.fields import TITLES, Findings
from ..geometry import Caliper
from .history import History, MaskDelta, StrokeRecorder, apply, delta_between, revert
from .painting import Box, union_box

UNDO_LIMIT = 200  # edits per frame; a delta holds only changed pixels, so this stays small in memory


@dataclass(frozen=True)
class LabelChange:
    """What a listener must redraw, and whether an edit is complete."""

    box: Box | None = None  # mask pixels that may differ; None: no mask pixel changed
    calipers: bool = False  # the caliper list changed
    findings: bool = False  # the user's findings changed
    finished: bool = False  # an edit completed (stroke end, command, undo, redo): states, saving, autosave
    replayed: bool = False  # the change is an undo or a redo (not a new edit)


@dataclass(frozen=True)
class MaskEdit:
    """Mask pixels changed (a stroke, a replacement): the delta is applied, or reverted."""

    delta: MaskDelta
    text: str

    @property
    def change(self) -> LabelChange:
        return LabelChange(self.delta.box, finished=True)

    def undo(self, label: "LabelModel") -> None:
        revert(label.mask, self.delta)

    def redo(self, label: "LabelModel") -> None:
        apply(label.mask, self.delta)


@dataclass(frozen=True)
class CaliperEdit:
    """The caliper list before and after (a caliper added, the list cleared)."""

    before: tuple[Caliper, ...]
    after: tuple[Caliper, ...]
    text: str

    @property
    def change(self) -> LabelChange:
        return LabelChange(calipers=True, finished=True)

    def undo(self, label: "LabelModel") -> None:
        label.calipers = self.before

    def redo(self, label: "LabelModel") -> None:
        label.calipers = self.after


@dataclass(frozen=True)
class FindingsEdit:
    """The user's findings before and after."""

    before: Findings
    after: Findings
    text: str

    @property
    def change(self) -> LabelChange:
        return LabelChange(findings=True, finished=True)

    def undo(self, label: "LabelModel") -> None:
        label.findings = self.before

    def redo(self, label: "LabelModel") -> None:
        label.findings = self.after


@dataclass(frozen=True)
class GroupEdit:
    """Several edits made as one (a mask replaced together with its findings): one undo step."""

    parts: tuple[MaskEdit | FindingsEdit, ...]
    text: str

    @property
    def change(self) -> LabelChange:
        changes = [part.change for part in self.parts]
        box = None
        for change in changes:
            box = union_box(box, change.box)
        return LabelChange(box, any(c.calipers for c in changes), any(c.findings for c in changes), finished=True)

    def undo(self, label: "LabelModel") -> None:
        for part in reversed(self.parts):
            part.undo(label)

    def redo(self, label: "LabelModel") -> None:
        for part in self.parts:
            part.redo(label)


Edit = MaskEdit | CaliperEdit | FindingsEdit | GroupEdit
Listener = Callable[[LabelChange], None]


class LabelModel:
    """A bool mask (``mask``, owned: edit it only through this class), hand-made ``calipers``, the
    user's ``findings`` (engine/findings/fields.py; a field not set is unknown) and the bounded history of all three."""

    def __init__(self, mask: np.ndarray, findings: Findings | None = None, undo_limit: int = UNDO_LIMIT) -> None:
        self.mask = np.array(mask, dtype=bool, copy=True)
        self.calipers: tuple[Caliper, ...] = ()
        self.findings = findings if findings is not None else Findings()
        self.history = History(undo_limit)
        self._stroke: StrokeRecorder | None = None
        self._stroke_text = ""
        self._listeners: list[Listener] = []

    # ----- listeners
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, change: LabelChange) -> None:
        for listener in list(self._listeners):
            listener(change)

    # ----- strokes
    @property
    def in_stroke(self) -> bool:
        return self._stroke is not None

    def begin_stroke(self, text: str) -> None:
        """Open a stroke: the dabs until :meth:`end_stroke` become one edit named ``text``."""
        self.end_stroke()
        self._stroke, self._stroke_text = StrokeRecorder(self.mask), text

    def paint(self, painter: Callable[[np.ndarray], Box | None]) -> None:
        """Run one dab ``painter(mask) -> box`` inside the open stroke (see ``engine/labels/painting.py``)."""
        if self._stroke is None:
            raise RuntimeError("paint() outside a stroke: call begin_stroke() first")
        box = painter(self.mask)
        if box is not None:
            self._stroke.touched(box)
            self._notify(LabelChange(box))

    def end_stroke(self) -> None:
        """Close the open stroke (if any) into one edit; a stroke that changed nothing records none."""
        stroke, self._stroke = self._stroke, None
        delta = stroke.finish() if stroke is not None else None
        if delta is not None:
            self._record(MaskEdit(delta, self._stroke_text))

    # ----- whole edits
    def replace(self, mask: np.ndarray, text: str, findings: Findings | None = None) -> bool:
        """Replace the whole mask (and, given ``findings``, the findings too) as one edit; False (and no
        edit) when nothing changes."""
        self.end_stroke()
        new = np.asarray(mask, dtype=bool)
        if new.shape != self.mask.shape:
            raise ValueError(f"label shape {new.shape} differs from the frame's {self.mask.shape}")
        parts: list[MaskEdit | FindingsEdit] = []
        delta = delta_between(self.mask, new)
        if delta is not None:
            apply(self.mask, delta)
            parts.append(MaskEdit(delta, text))
        if findings is not None and findings != self.findings:
            parts.append(FindingsEdit(self.findings, findings, text))
            self.findings = findings
        if not parts:
            return False
        self._record(parts[0] if len(parts) == 1 else GroupEdit(tuple(parts), text))
        return True

    def set_finding(self, name: str, value: str | None) -> bool:
        """Set one field of the findings (``None``: unknown) as one edit; False when it already has that value."""
        return self.set_findings(self.findings.replace(name, value), f"{TITLES[name]}: {value or 'unknown'}")

    def set_findings(self, findings: Findings, text: str) -> bool:
        """Replace the findings as one edit; False (and no edit) when they are the same."""
        self.end_stroke()
        if findings == self.findings:
            return False
        edit = FindingsEdit(self.findings, findings, text)
        self.findings = findings
        self._record(edit)
        return True

    def add_caliper(self, caliper: Caliper) -> None:
        self._set_calipers((*self.calipers, caliper), "Caliper")

    def clear_calipers(self) -> None:
        if self.calipers:
            self._set_calipers((), "Clear calipers")

    def _set_calipers(self, calipers: tuple[Caliper, ...], text: str) -> None:
        self.end_stroke()
        edit = CaliperEdit(self.calipers, calipers, text)
        self.calipers = calipers
        self._record(edit)

    def _record(self, edit: Edit) -> None:
        """Push an edit already applied and tell the listeners."""
        self.history.push(edit)
        self._notify(edit.change)

    # ----- undo and redo
    def undo(self) -> bool:
        """Undo the latest edit. A stroke still open (button held) is first closed into its own
        edit, so undo takes back exactly that stroke and never mixes it into an older edit."""
        self.end_stroke()
        return self._replay(self.history.undo(self))

    def redo(self) -> bool:
        self.end_stroke()
        return self._replay(self.history.redo(self))

    def _replay(self, edit: Edit | None) -> bool:
        if edit is not None:
            self._notify(replace(edit.change, replayed=True))
        return edit is not None
