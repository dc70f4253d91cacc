"""The frame list: a Qt list model mirroring the Qt-free ``engine.labels.worklist.Worklist`` (thumbnail, name,
state, uncertainty), the order it is shown in (as opened, or worst first) and which frames it shows
(all, or those of one state: the propagated frames to review), and its view.

Thumbnails are read on a worker thread (``workers.ThumbnailLoader``), only for the rows the view asks
for; a frame of a multi-frame file gets one once it has been decoded for viewing (seeking a video for
every frame would cost more than it shows)."""
from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSize, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from ..engine.labels.worklist import State, Worklist
from .workers import THUMB, ThumbnailLoader, thumbnail

STATE_COLOURS = {
    State.NOT_SEGMENTED: QColor("#9e9e9e"),
    State.AI: QColor("#ffb300"),
    State.CORRECTED: QColor("#43a047"),
    State.PROPAGATED: QColor("#ab47bc"),
    State.SAVED: QColor("#1e88e5"),
}
StateRole = Qt.ItemDataRole.UserRole + 1
UncertaintyRole = Qt.ItemDataRole.UserRole + 2
Index = QModelIndex | QPersistentModelIndex


class FrameListModel(QAbstractListModel):
    """One row per worklist entry, in worklist order; listens to the worklist and holds no state of its
    own but thumbnails."""

    def __init__(self, worklist: Worklist, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worklist = worklist
        self._thumbs: dict[tuple[str, int], QIcon | None] = {}  # None: asked for, not there yet
        self.loader = ThumbnailLoader(self)
        self.loader.loaded.connect(self._thumbnail_loaded)
        self.loader.start()
        worklist.subscribe(self)

    def stop(self) -> None:
        """End the thumbnail thread (the window closes)."""
        self.loader.stop()

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

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        entry = self.worklist[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            unsure = f" · unsure {entry.uncertainty:.2f}" if entry.uncertainty is not None else ""
            return f"{entry.name}\n{entry.state.value}{unsure}" + ("  ⚠" if entry.error else "")
        if role == Qt.ItemDataRole.ToolTipRole:
            where = f"{entry.source}" + (f" (frame {entry.index + 1} of {entry.count})" if entry.count > 1 else "")
            return f"{where}\n{entry.error}" if entry.error else where
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(index.row())
        if role == Qt.ItemDataRole.ForegroundRole:
            return STATE_COLOURS[entry.state]
        if role == StateRole:
            return entry.state
        if role == UncertaintyRole:
            return entry.uncertainty
        return None

    def _thumbnail(self, row: int) -> QIcon | None:
        entry = self.worklist[row]
        if entry.key in self._thumbs:
            return self._thumbs[entry.key]
        frame = self.worklist.cached_frame(row)
        if frame is not None:  # decoded for viewing: shrinking it is cheap
            icon = self._thumbs[entry.key] = QIcon(QPixmap.fromImage(thumbnail(frame.gray())))
            return icon
        if entry.count == 1:
            self._thumbs[entry.key] = None
            self.loader.request(entry.key, entry.source, entry.index)
        return None

    def _thumbnail_loaded(self, key: tuple[str, int], image: QImage | None) -> None:
        if image is None:
            return  # unreadable: the frame list says so when the frame is opened
        self._thumbs[key] = QIcon(QPixmap.fromImage(image))
        row = self.worklist.row_of(*key)
        if row is not None:
            self.row_changed(row)

    def frame_decoded(self, row: int) -> None:
        """The view decoded this row's frame: its thumbnail is now cheap to make."""
        key = self.worklist[row].key
        if key in self._thumbs and self._thumbs[key] is None:
            del self._thumbs[key]  # a request to the loader may be pending: the cached frame is faster
        self.row_changed(row)


class FrameOrder(QSortFilterProxyModel):
    """The order the frames are listed in: as opened (files in natural order), or worst first (the
    primary model's uncertainty, highest first; frames not scored yet last); and the frames listed:
    all, or only those in one state."""

    def __init__(self, source: FrameListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSourceModel(source)
        self.setDynamicSortFilter(True)
        self.worst_first = False
        self.only: State | None = None
        self.sort(0)

    def set_worst_first(self, on: bool) -> None:
        self.worst_first = on
        self.invalidate()
        self.sort(0)

    def set_only(self, state: State | None) -> None:
        """List only the frames in ``state`` (None: all of them)."""
        self.only = state
        self.invalidate()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        return self.only is None or self.sourceModel().index(source_row).data(StateRole) == self.only

    def stepped(self, row: int, delta: int) -> int:
        """The list row ``delta`` rows on from worklist ``row``; from a frame the filter hides, the
        first step lands on the listed frame just after (or before) where it would stand."""
        shown = self.mapFromSource(self.sourceModel().index(row))
        if shown.isValid():
            return shown.row() + delta
        key = self._key(self.sourceModel().index(row))
        before = sum(self._key(self.mapToSource(self.index(r, 0))) < key for r in range(self.rowCount()))
        return before + delta - (1 if delta > 0 else 0)

    def lessThan(self, left: Index, right: Index) -> bool:
        return self._key(left) < self._key(right)

    def _key(self, index: Index) -> tuple[float, int]:
        if not self.worst_first:
            return 0.0, index.row()
        uncertainty = index.data(UncertaintyRole)
        return (-uncertainty if uncertainty is not None else math.inf), index.row()


class FrameListView(QListView):
    """Thumbnails with name and state; one frame selected at a time."""

    def __init__(self, model: FrameOrder, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow keys step frames through the window's actions
