"""Set scale (as in ImageJ): the length of the line drawn with the Set scale tool in millimetres gives the
millimetres per pixel; the user chooses what the scale is kept for (``engine.labels.scales.SCOPES``).

For a line the frame's ruler proposed, the length is its ticks' (one per centimetre) and, left as it is,
the calibration is the ruler's (least-squares over every tick, source "ruler"); any other line or length is
the user's (source "user"). Pixels are taken as square, as ImageJ does unless told otherwise."""
from __future__ import annotations

from PySide6.QtWidgets import (QButtonGroup, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QRadioButton, QVBoxLayout, QWidget)

from ...engine.calibration import SPACING_RANGE_MM, Calibration
from ...engine.geometry import Caliper
from ...engine.io.ruler import RulerProposal
from ...engine.labels.scales import SCOPES

DEFAULT_LENGTH_MM = 10.0  # one centimetre tick interval
MAX_LENGTH_MM = 1000.0


class ScaleDialog(QDialog):
    """A known length for a drawn line, and where the resulting scale holds."""

    def __init__(self, line: Caliper, proposal: RulerProposal | None, own: Calibration | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set scale")
        self.line, self.proposal = line, proposal
        self.length = QDoubleSpinBox(self)
        self.length.setRange(0.01, MAX_LENGTH_MM)
        self.length.setDecimals(2)
        self.length.setSuffix(" mm")
        self.length.setValue(proposal.length_mm if proposal is not None else DEFAULT_LENGTH_MM)
        self.result = QLabel(self)
        self.length.valueChanged.connect(self._show_result)
        form = QFormLayout()
        form.addRow("Line drawn:", QLabel(f"{line.length_px:.1f} px"
                                          + (f" ({proposal.describe()})" if proposal is not None else ""), self))
        form.addRow("Known length:", self.length)
        form.addRow("Scale:", self.result)
        self.scopes = QButtonGroup(self)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Keep it for:", self))
        for i, scope in enumerate(SCOPES.values()):
            button = QRadioButton(scope.title, self)
            button.setObjectName(scope.key)
            button.setChecked(i == 0)
            self.scopes.addButton(button, i)
            layout.addWidget(button)
        if own is not None:
            note = QLabel(f"This file has a calibration of its own ({own.describe()}): a scale kept for the file "
                          "replaces it, one kept for the folder does not.", self)
            note.setWordWrap(True)
            layout.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self._show_result()

    def accept(self) -> None:
        if self.ok.isEnabled():  # Enter in the length field too
            super().accept()

    def scope(self) -> str:
        """The key of the chosen ``SCOPES`` entry."""
        return self.scopes.checkedButton().objectName()

    def calibration(self) -> Calibration:
        """The scale the dialog shows: the ruler's when its line and length were left as proposed. ValueError when
        the length over the line gives a spacing no calibration may have (``calibration.SPACING_RANGE_MM``)."""
        if self.proposal is not None and abs(self.length.value() - self.proposal.length_mm) < 0.005:
            return self.proposal.calibration()
        mm_per_px = self.length.value() / self.line.length_px
        return Calibration((mm_per_px, mm_per_px), None, "user")

    def _show_result(self) -> None:
        """The scale, or why there is none (OK only for a scale a calibration may have)."""
        try:
            calibration = self.calibration()
        except ValueError:
            low, high = SPACING_RANGE_MM
            self.result.setText(f"{self.length.value() / self.line.length_px:.4g} mm per pixel: not from {low:g} to "
                                f"{high:g}; draw a longer line or check the length")
            self.ok.setEnabled(False)
            return
        self.ok.setEnabled(True)
        self.result.setText(f"{calibration.spacing_mm[0]:.4f} mm per pixel ({1 / calibration.spacing_mm[0]:.2f} px "
                            "per mm), square pixels")
