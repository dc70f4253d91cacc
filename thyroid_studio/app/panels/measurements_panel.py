"""Live size of the label: area, diameters, extents, taller-than-wide (engine/geometry.py)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from ...engine.geometry import Measurements, measure

THROTTLE_MS = 30  # at most one measurement per interval while a stroke streams in changes

FIELDS = {
    "area": "Area",
    "longest": "Longest diameter",
    "perpendicular": "Perpendicular diameter",
    "height": "Height (antero-posterior)",
    "width": "Width (horizontal)",
    "taller": "Taller than wide",
}


def _with_mm(px: int | float, mm: float | None, unit: str = "mm", px_unit: str = "px") -> str:
    """'12.3 mm (45.6 px)', or the pixels alone without a spacing."""
    text = f"{px:.1f} {px_unit}" if isinstance(px, float) else f"{px} {px_unit}"
    return text if mm is None else f"{mm:.1f} {unit} ({text})"


class MeasurementsPanel(QWidget):
    """Shows geometry.measure of the latest mask given to :meth:`update_measurements`."""

    measured = Signal(object)  # Measurements | None, after each (throttled) measurement

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values = {key: QLabel("–") for key in FIELDS}
        layout = QFormLayout(self)
        for key, title in FIELDS.items():
            layout.addRow(title, self.values[key])
        self._pending: tuple[np.ndarray, tuple[float, float] | None] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(THROTTLE_MS)
        self._timer.timeout.connect(self._measure)

    def update_measurements(self, mask: np.ndarray, spacing_mm: tuple[float, float] | None) -> None:
        """Measure ``mask`` soon: calls within 30 ms collapse into one measurement of the latest."""
        self._pending = (mask, spacing_mm)
        if not self._timer.isActive():
            self._timer.start()

    def _measure(self) -> None:
        if self._pending is None:
            return
        mask, spacing = self._pending
        self._pending = None
        result = measure(mask, spacing)
        self._show(result)
        self.measured.emit(result)

    def _show(self, m: Measurements | None) -> None:
        if m is None:
            for label in self.values.values():
                label.setText("–")
            return
        self.values["area"].setText(_with_mm(m.area_px, m.area_mm2, "mm²", "px²"))
        self.values["longest"].setText(_with_mm(m.longest_px, m.longest_mm))
        self.values["perpendicular"].setText(_with_mm(m.perpendicular_px, m.perpendicular_mm))
        self.values["height"].setText(_with_mm(m.height_px, m.height_mm))
        self.values["width"].setText(_with_mm(m.width_px, m.width_mm))
        self.values["taller"].setText("yes" if m.taller_than_wide else "no")
