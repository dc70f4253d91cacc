"""Mask edits as deltas (napari-style), strokes grouped into one delta, bounded undo/redo.

A :class:`MaskDelta` stores only what changed: the bounding box, which pixels inside it
changed, and their old and new values, so a long history of brush strokes costs memory in
proportion to the painted area, not to the frame. :class:`History` keeps any edits that
can undo and redo themselves on a target; ``engine/labels/label_model.py`` records its mask and
caliper edits in one. No Qt here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .painting import Box, union_box


@dataclass(frozen=True)
class MaskDelta:
    """The changed pixels of one edit: ``where`` marks them inside ``box``."""

    box: Box
    where: np.ndarray  # bool, the box's shape
    old: np.ndarray  # values before, one per True in ``where``
    new: np.ndarray  # values after

    @property
    def nbytes(self) -> int:
        return self.where.nbytes + self.old.nbytes + self.new.nbytes


def apply(mask: np.ndarray, delta: MaskDelta) -> None:
    """Redo: write the delta's new values into ``mask`` in place."""
    mask[delta.box][delta.where] = delta.new


def revert(mask: np.ndarray, delta: MaskDelta) -> None:
    """Undo: write the delta's old values back into ``mask`` in place."""
    mask[delta.box][delta.where] = delta.old


def delta_between(before: np.ndarray, after: np.ndarray, offset: tuple[int, int] = (0, 0)) -> MaskDelta | None:
    """The delta turning ``before`` into ``after``; None when they are equal.

    ``offset`` (row, col) places the two arrays inside a larger mask, for comparing
    only a region of it.
    """
    if before.shape != after.shape:
        raise ValueError(f"shapes differ: {before.shape} and {after.shape}")
    changed = before != after
    if not changed.any():
        return None
    rows = np.flatnonzero(changed.any(axis=1))
    cols = np.flatnonzero(changed.any(axis=0))
    local = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    where = changed[local]
    box = (slice(rows[0] + offset[0], rows[-1] + 1 + offset[0]),
           slice(cols[0] + offset[1], cols[-1] + 1 + offset[1]))
    return MaskDelta(box, where, before[local][where], after[local][where])


class StrokeRecorder:
    """Groups the dabs of one stroke into a single delta.

    One copy of the mask is taken when the stroke starts; each dab only widens the
    stroke's bounding box (no per-dab copies), and :meth:`finish` compares the snapshot
    with the mask inside that box alone.
    """

    def __init__(self, mask: np.ndarray) -> None:
        self._mask = mask
        self._before = mask.copy()
        self._box: Box | None = None

    def touched(self, box: Box | None) -> None:
        """Note that a dab may have changed ``box`` (as returned by the painting functions)."""
        self._box = union_box(self._box, box)

    def finish(self) -> MaskDelta | None:
        """The stroke's delta (None if it changed nothing); the mask already holds it."""
        if self._box is None:
            return None
        rows, cols = self._box
        return delta_between(self._before[self._box], self._mask[self._box], (rows.start, cols.start))


class Undoable(Protocol):
    """One recorded edit of a target (a mask, a label with calipers...), already applied when pushed."""

    text: str  # what the edit did, for "Undo <text>"

    def undo(self, target: Any) -> None: ...

    def redo(self, target: Any) -> None: ...


class History:
    """Bounded undo/redo of edits on one target; a new edit clears the redo list."""

    def __init__(self, cap: int = 100) -> None:
        if cap < 1:
            raise ValueError("cap must be at least 1")
        self.cap = cap
        self._undo: list[Undoable] = []
        self._redo: list[Undoable] = []

    def __len__(self) -> int:
        """How many edits can be undone."""
        return len(self._undo)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_text(self) -> str:
        return self._undo[-1].text if self._undo else ""

    @property
    def redo_text(self) -> str:
        return self._redo[-1].text if self._redo else ""

    def push(self, edit: Undoable) -> None:
        """Record an edit already applied to the target; the oldest falls off past the cap."""
        self._undo.append(edit)
        del self._undo[:-self.cap]
        self._redo.clear()

    def undo(self, target: Any) -> Undoable | None:
        """Revert the latest edit on ``target``; returns it (None when there is none)."""
        if not self._undo:
            return None
        edit = self._undo.pop()
        edit.undo(target)
        self._redo.append(edit)
        return edit

    def redo(self, target: Any) -> Undoable | None:
        """Re-apply the latest undone edit on ``target``; returns it (None when there is none)."""
        if not self._redo:
            return None
        edit = self._redo.pop()
        edit.redo(target)
        self._undo.append(edit)
        return edit

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
