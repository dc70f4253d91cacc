"""Live size of the selected nodule (area, diameters, extents, taller-than-wide; engine/geometry.py)
and the lengths of the calipers measured by hand."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from ...engine.calibration import Calibration
from ...engine.geometry import Caliper, Measurements, Point, components, measure, select_component, size_text
from ..layers import caliper_text

THROTTLE_MS = 30  # at most one measurement per interval while a stroke streams in changes

FIELDS = {
    "nodule": "Nodule",
    "area": "Area",
    "longest": "Longest diameter",
    "perpendicular": "Perpendicular diameter",
    "height": "Height (antero-posterior)",
    "width": "Width (horizontal)",
    "taller": "Taller than wide",
    "lobe_ap": "Lobe antero-posterior",
    "lobe_width": "Lobe width (horizontal)",
    "calipers": "Calipers",
}
NODULE_FIELDS = ("area", "longest", "perpendicular", "height", "width", "taller")


class MeasurementsPanel(QWidget):
    """Shows geometry.measure of one nodule of the latest mask given to :meth:`update_measurements`:
    the component nearest the point selected (a click on the canvas), else the largest."""

    measured = Signal(object)  # Measurements | None, after each (throttled) measurement

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values = {key: QLabel("–") for key in FIELDS}
        self.values["nodule"].setToolTip("With several nodules, click one (pan tool) to measure it; "
                                         "by default the largest is measured")
        self.values["calipers"].setToolTip("Tools > Caliper: two clicks measure a length")
        for key in ("lobe_ap", "lobe_width"):
            self.values[key].setToolTip("The lobe holding the nodule, as the TRFE-Net's gland outline (light blue) shows it")
        layout = QFormLayout(self)
        for key, title in FIELDS.items():
            layout.addRow(title, self.values[key])
        self._pending: tuple[np.ndarray, tuple[float, float] | None, Point | None] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(THROTTLE_MS)
        self._timer.timeout.connect(self._measure)

    def update_measurements(self, mask: np.ndarray, spacing_mm: tuple[float, float] | None,
                            near: Point | None = None) -> None:
        """Measure the nodule of ``mask`` nearest pixel ``near`` (x, y; None: the largest) soon: calls
        within 30 ms collapse into one measurement of the latest."""
        self._pending = (mask, spacing_mm, near)
        if not self._timer.isActive():
            self._timer.start()

    def show_lobe(self, lobe: Measurements | None) -> None:
        """The lobe's extents (``Segmentation.lobe`` measured), or dashes without an informative gland."""
        self.values["lobe_ap"].setText(size_text(lobe.height_px, lobe.height_mm) if lobe else "–")
        self.values["lobe_width"].setText(size_text(lobe.width_px, lobe.width_mm) if lobe else "–")

    def show_calipers(self, calipers: tuple[Caliper, ...], calibration: Calibration | None) -> None:
        self.values["calipers"].setText("\n".join(caliper_text(c, calibration) for c in calipers) or "–")

    def _measure(self) -> None:
        if self._pending is None:
            return
        mask, spacing, near = self._pending
        self._pending = None
        count = components(mask)
        result = measure(select_component(mask, near), spacing) if count else None
        self.values["nodule"].setText("–" if not count else "1" if count == 1 else
                                      f"{'selected' if near is not None else 'largest'} of {count}")
        self._show(result)
        self.measured.emit(result)

    def _show(self, m: Measurements | None) -> None:
        if m is None:
            for key in NODULE_FIELDS:
                self.values[key].setText("–")
            return
        self.values["area"].setText(size_text(m.area_px, m.area_mm2, "mm²", "px²"))
        self.values["longest"].setText(size_text(m.longest_px, m.longest_mm))
        self.values["perpendicular"].setText(size_text(m.perpendicular_px, m.perpendicular_mm))
        self.values["height"].setText(size_text(m.height_px, m.height_mm))
        self.values["width"].setText(size_text(m.width_px, m.width_mm))
        self.values["taller"].setText("yes" if m.taller_than_wide else "no")
