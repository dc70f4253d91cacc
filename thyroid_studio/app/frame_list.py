"""The frame list: a Qt list model mirroring the Qt-free ``engine.worklist.Worklist`` (thumbnail, name,
state), and its view."""
from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

import qimage2ndarray  # after PySide6: it picks the Qt binding already imported

from ..engine.frames import FrameReadError
from ..engine.worklist import State, Worklist

THUMB = 64
STATE_COLOURS = {
    State.NOT_SEGMENTED: QColor("#9e9e9e"),
    State.AI: QColor("#ffb300"),
    State.CORRECTED: QColor("#43a047"),
    State.SAVED: QColor("#1e88e5"),
}
StateRole = Qt.ItemDataRole.UserRole + 1
Index = QModelIndex | QPersistentModelIndex


class FrameListModel(QAbstractListModel):
    """One row per worklist entry; listens to the worklist, never holds state of its own but thumbnails."""

    def __init__(self, worklist: Worklist, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worklist = worklist
        self._thumbs: dict[tuple[str, int], QIcon] = {}
        self._decoded_row: int | None = None
        worklist.subscribe(self)

    # worklist listener
    def rows_inserting(self, first: int, last: int) -> None:
        self.beginInsertRows(QModelIndex(), first, last)

    def rows_inserted(self) -> None:
        self.endInsertRows()

    def row_changed(self, row: int) -> None:
        index = self.index(row)
        self.dataChanged.emit(index, index)

    # model
    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.worklist)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        entry = self.worklist[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{entry.name}\n{entry.state.value}" + ("  ⚠" if entry.error else "")
        if role == Qt.ItemDataRole.ToolTipRole:
            where = f"{entry.source}" + (f" (frame {entry.index + 1} of {entry.count})" if entry.count > 1 else "")
            return f"{where}\n{entry.error}" if entry.error else where
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(index.row())
        if role == Qt.ItemDataRole.ForegroundRole:
            return STATE_COLOURS[entry.state]
        if role == StateRole:
            return entry.state
        return None

    def _thumbnail(self, row: int) -> QIcon | None:
        """Read lazily (only rows on screen ask); frames of multi-frame files only once decoded for viewing."""
        entry = self.worklist[row]
        icon = self._thumbs.get(entry.key)
        if icon is None:
            if entry.count > 1 and row != self._decoded_row:
                return None
            try:
                gray = self.worklist.frame(row).gray()
            except FrameReadError:
                return None
            scale = THUMB / max(gray.shape)
            small = cv2.resize(gray, (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale))),
                               interpolation=cv2.INTER_AREA)
            icon = self._thumbs[entry.key] = QIcon(QPixmap.fromImage(qimage2ndarray.gray2qimage(np.ascontiguousarray(small))))
        return icon

    def frame_decoded(self, row: int) -> None:
        """The view decoded this row's frame: its thumbnail is now cheap to make."""
        self._decoded_row = row
        self.row_changed(row)


class FrameListView(QListView):
    """Thumbnails with name and state; one frame selected at a time."""

    def __init__(self, model: FrameListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow keys step frames through the window's actions
