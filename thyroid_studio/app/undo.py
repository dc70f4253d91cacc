"""The editable label and its Qt undo stack: every edit is a :class:`MaskEditCommand`.

Tools never touch the mask behind the stack's back: a stroke paints through
:meth:`LabelModel.paint` (the GUI redraws each dab's box) and ends with one command
holding the stroke's delta (see ``engine/history.py``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from ..engine.history import MaskDelta, StrokeRecorder, apply, delta_between, revert
from ..engine.painting import Box

UNDO_LIMIT = 200  # commands; a delta holds only changed pixels, so this stays small in memory


class MaskEditCommand(QUndoCommand):
    """One label edit. Pushed after the edit is already on the mask, so the first redo
    (which QUndoStack.push calls) does nothing."""

    def __init__(self, model: "LabelModel", delta: MaskDelta, text: str) -> None:
        super().__init__(text)
        self._model = model
        self._delta = delta
        self._applied = True

    def redo(self) -> None:
        if self._applied:
            return
        self._applied = True
        self._model.write(apply, self._delta)

    def undo(self) -> None:
        self._applied = False
        self._model.write(revert, self._delta)


class LabelModel(QObject):
    """The label mask of the current frame, its undo stack and change notifications."""

    changed = Signal(object)  # Box whose pixels may differ: each dab, undo, redo, replace
    committed = Signal()  # an edit finished: stroke end, command pushed, undone or redone

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mask = np.zeros((1, 1), bool)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(UNDO_LIMIT)
        self._stroke: StrokeRecorder | None = None
        self._stroke_text = ""

    def reset(self, mask: np.ndarray) -> None:
        """Start a new frame: take ``mask`` (copied, as bool) and forget the history.

        Emits nothing: loading a frame is not an edit (the caller redraws).
        """
        self._stroke = None
        self.undo_stack.clear()
        self.mask = np.array(mask, dtype=bool, copy=True)

    def begin_stroke(self, text: str) -> None:
        """Open a stroke: the dabs until :meth:`end_stroke` become one command named ``text``."""
        self.end_stroke()
        self._stroke, self._stroke_text = StrokeRecorder(self.mask), text

    def paint(self, painter: Callable[[np.ndarray], Box | None]) -> None:
        """Run one dab ``painter(mask) -> box`` inside the open stroke and redraw its box."""
        if self._stroke is None:
            raise RuntimeError("paint() outside a stroke: call begin_stroke() first")
        box = painter(self.mask)
        if box is not None:
            self._stroke.touched(box)
            self.changed.emit(box)

    def end_stroke(self) -> None:
        """Close the open stroke (if any) into one undo command."""
        stroke, self._stroke = self._stroke, None
        if stroke is not None:
            self._push(stroke.finish(), self._stroke_text)

    def replace(self, mask: np.ndarray, text: str) -> None:
        """Replace the whole label as one undoable command (no command if nothing changes)."""
        self.end_stroke()
        new = np.asarray(mask, dtype=bool)
        if new.shape != self.mask.shape:
            raise ValueError(f"label shape {new.shape} differs from the frame's {self.mask.shape}")
        delta = delta_between(self.mask, new)
        if delta is not None:
            apply(self.mask, delta)
            self.changed.emit(delta.box)
        self._push(delta, text)

    def write(self, operation: Callable[[np.ndarray, MaskDelta], None], delta: MaskDelta) -> None:
        """Apply or revert ``delta`` for a command, then notify."""
        operation(self.mask, delta)
        self.changed.emit(delta.box)
        self.committed.emit()

    def _push(self, delta: MaskDelta | None, text: str) -> None:
        if delta is not None:
            self.undo_stack.push(MaskEditCommand(self, delta, text))
            self.committed.emit()
