"""The Findings panel of the shown frame: what the primary model predicts (P(suspicious) and each
field's class probabilities, when it has findings heads), the user's own findings (one drop-down per
field of ``engine/findings/fields.py`` FIELDS, plus "unknown"), the ACR TI-RADS points and level
(``engine/findings/tirads.py``: the user's findings over the model's, the shape from the label) and the size
from the Measurements panel.

Its drop-downs change only on purpose (:class:`FindingCombo`): not by the wheel rolling over them (the panel
scrolls), not by keys meant for the window. The panel holds no findings of its own: a choice is reported by
``finding_chosen`` and becomes an edit of the frame's label (``engine/labels/label_model.py``, undone in the
same history as the mask); ``done`` then hands the keyboard back to the image, and the window shows the
label's findings again with :meth:`FindingsPanel.show_frame`. The rows of the TI-RADS table are the report's
(``engine/report_content.tirads_table``)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QWheelEvent
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QGridLayout, QGroupBox, QHeaderView, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from ...engine.findings.fields import FIELDS, TITLES, Findings, PredictedFindings, merged
from ...engine.findings.shape import shape_of
from ...engine.findings.tirads import score
from ...engine.geometry import Measurements
from ...engine.inference.segmenter import Segmentation
from ...engine.reports.page import UNKNOWN, tirads_table

NO_FRAME = "No frame shown."
WAITING = "Waiting for the model's prediction…"
NO_HEADS = "This model has no findings heads: set the findings below."
COMBO_CHARACTERS = 14  # a drop-down's width; longer class names are cut in the closed drop-down only
OPEN_KEYS = (Qt.Key.Key_Space, Qt.Key.Key_F4)  # open a focused drop-down, as every Qt drop-down (and Alt+Down)


class FindingCombo(QComboBox):
    """A drop-down that changes only on purpose: its value is chosen in its open list (a click, or Space / F4 /
    Alt+Down on a focused one). The wheel rolling over it scrolls the panel unless the user clicked it (it has
    the focus); while closed it takes no other key, so the window's one-key shortcuts (frame stepping, tools)
    work from it as from anywhere; Esc hands the keyboard back (``escaped``)."""

    escaped = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # not WheelFocus: rolling over it does not take the focus

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()  # on to the scroll area holding the panel

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, alt = event.key(), event.modifiers() & Qt.KeyboardModifier.AltModifier
        if key == Qt.Key.Key_Escape:
            self.escaped.emit()
        elif key in OPEN_KEYS or (alt and key == Qt.Key.Key_Down):
            self.showPopup()
        else:
            event.ignore()  # arrows, letters, Home/End: no choice; the window's shortcuts have had them first


class FindingsPanel(QWidget):
    """Predicted and user's findings, ACR TI-RADS and size of the shown frame."""

    finding_chosen = Signal(str, object)  # field, class name or None (unknown): the user's choice
    done = Signal()  # a choice was made, or Esc pressed in a drop-down: the keyboard goes back to the image

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_note = QLabel(NO_FRAME)
        self.model_note.setWordWrap(True)
        fields = QGroupBox("Findings (yours; the model's guess under each)")
        grid = QGridLayout(fields)
        self.combos: dict[str, FindingCombo] = {}
        self.predicted: dict[str, QLabel] = {}
        for row, name in enumerate(FIELDS):
            combo = self.combos[name] = FindingCombo()
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(COMBO_CHARACTERS)
            combo.addItem(UNKNOWN, None)
            for value in FIELDS[name]:
                combo.addItem(value, value)
            combo.activated.connect(lambda index, n=name: self._chosen(n, index))
            combo.escaped.connect(self.done)
            self.predicted[name] = QLabel()
            self.predicted[name].setStyleSheet("color: #555;")
            title = QLabel(TITLES[name])
            title.setWordWrap(True)
            grid.addWidget(title, 2 * row, 0)
            grid.addWidget(combo, 2 * row, 1)
            grid.addWidget(self.predicted[name], 2 * row + 1, 1)
        grid.setColumnStretch(1, 1)

        acr = QGroupBox("ACR TI-RADS")
        acr_layout = QVBoxLayout(acr)
        self.level = QLabel("–")
        self.level.setStyleSheet("font-weight: bold;")
        self.table = QTableWidget(0, 4)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)  # the long ACR option names
        self.table.setWordWrap(True)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #555; font-size: small;")
        for widget in (self.level, self.table, self.note):
            acr_layout.addWidget(widget)

        self.size = QLabel("Size: –")
        layout = QVBoxLayout(self)
        for widget in (self.model_note, fields, acr, self.size):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.setEnabled(False)

    def _chosen(self, name: str, index: int) -> None:
        self.finding_chosen.emit(name, self.combos[name].itemData(index))
        self.done.emit()

    def show_frame(self, user: Findings, prediction: Segmentation | None, mask: np.ndarray,
                   spacing_mm: tuple[float, float] | None) -> None:
        """Show the frame's findings: the user's (``user``), the primary model's ``prediction`` (None: not
        there yet) and the TI-RADS score of both with the shape of ``mask`` (the label)."""
        self.setEnabled(True)
        predicted = prediction.findings if prediction is not None else None
        if prediction is None:
            self.model_note.setText(WAITING)
        elif predicted is None:
            self.model_note.setText(NO_HEADS)
        else:
            self.model_note.setText(f"Model: P(suspicious, TI-RADS 4a or above) = {predicted.suspicious:.2f}")
        for name, combo in self.combos.items():
            self._show_field(name, combo, user.get(name), predicted)
        result = score(merged(user, predicted), shape_of(mask, spacing_mm))
        table = tirads_table(result, user)
        self.table.setHorizontalHeaderLabels(list(table.header))
        self.table.setRowCount(len(table.rows))
        for row, cells in enumerate(table.rows):
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.level.setText(f"{result.level.name} ({result.level.title}): {result.total} points")
        self.note.setText(table.note)

    def _show_field(self, name: str, combo: QComboBox, value: str | None, predicted: PredictedFindings | None) -> None:
        probs = predicted.probabilities.get(name, {}) if predicted is not None else {}
        for i, option in enumerate(FIELDS[name], start=1):
            combo.setItemText(i, f"{option}  ({probs[option]:.2f})" if option in probs else option)
        combo.setCurrentIndex(combo.findData(value) if value is not None else 0)
        best = max(probs, key=probs.get) if probs else None
        self.predicted[name].setText(f"model: {best} {probs[best]:.2f}" if best is not None else "")

    def set_size(self, measurements: Measurements | None) -> None:
        """The measured nodule's size (``MeasurementsPanel.measured``): millimetres where the spacing is known."""
        if measurements is None:
            self.size.setText("Size: –")
            return
        m = measurements
        if m.longest_mm is not None:
            self.size.setText(f"Size: {m.longest_mm:.1f} × {m.perpendicular_mm:.1f} mm (longest × perpendicular)")
        else:
            self.size.setText(f"Size: {m.longest_px:.1f} × {m.perpendicular_px:.1f} px (longest × perpendicular; "
                              "no pixel spacing)")
