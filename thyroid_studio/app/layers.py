"""Scene items drawn over the frame: the editable label, model contours, the brush cursor.

The label is a raster (ARGB image in the mask's own pixels) so a brush dab re-renders
only its own rectangle; model layers change once per inference and are vector paths
(sharp at any zoom) built from ``geometry.contours``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsPathItem, QStyleOptionGraphicsItem, QWidget

import qimage2ndarray  # after PySide6: it picks the Qt binding already imported

from ..engine import geometry
from ..engine.painting import Box

LAYERS = ("label", "trfe", "unet", "gland")
FILL_ALPHA = 0.35  # of a filled layer's interior; outlines are opaque


@dataclass(frozen=True)
class LayerSpec:
    """How a layer looks by default; colours follow the TRFE-Net paper (engine/overlay.py)."""

    title: str
    rgb: tuple[int, int, int]
    line_width: float  # screen pixels (cosmetic pen)
    z: float
    filled: bool
    opacity: float

    def colour(self, alpha: float = 1.0) -> QColor:
        colour = QColor(*self.rgb)
        colour.setAlphaF(alpha)
        return colour


SPECS: dict[str, LayerSpec] = {
    "label": LayerSpec("Label / ground truth", (0, 255, 0), 2.0, 4, False, 1.0),
    "trfe": LayerSpec("TRFE-Net", (255, 0, 0), 2.0, 3, False, 1.0),
    "unet": LayerSpec("U-Net", (255, 255, 0), 2.0, 2, False, 1.0),
    "gland": LayerSpec("Thyroid gland", (0, 200, 255), 1.0, 1, False, 0.6),
}


@dataclass(frozen=True)
class LayerStyle:
    """A layer's current display settings (see ``Canvas.set_layer_style``)."""

    visible: bool
    filled: bool
    opacity: float


class LabelLayerItem(QGraphicsItem):
    """The label as a raster: translucent interior, opaque one-pixel outline.

    :meth:`render` recolours only a box of the image, and the item repaints only the
    exposed part of it, so painting costs in proportion to the dab, not the frame.
    """

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self._spec = spec
        self._filled = spec.filled
        self._image = QImage(1, 1, QImage.Format.Format_ARGB32_Premultiplied)
        self._pixels = qimage2ndarray.byte_view(self._image)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.setZValue(spec.z)

    def _palette(self) -> np.ndarray:
        """Premultiplied BGRA for (outside, interior, outline)."""
        r, g, b = self._spec.rgb
        interior = FILL_ALPHA if self._filled else 0.0
        return np.array([[0, 0, 0, 0], [b * interior, g * interior, r * interior, 255 * interior],
                         [b, g, r, 255]], dtype=np.uint8)

    def set_filled(self, filled: bool, mask: np.ndarray) -> None:
        self._filled = filled
        self.render(mask)

    def render(self, mask: np.ndarray, box: Box | None = None) -> None:
        """Redraw the pixels of ``box`` (the whole mask when None) from ``mask``."""
        h, w = mask.shape
        if self._pixels.shape[:2] != (h, w):
            self.prepareGeometryChange()
            self._image = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
            self._pixels = qimage2ndarray.byte_view(self._image)
            box = None
        if box is None:
            box = slice(0, h), slice(0, w)
        # An edit changes its neighbours' outline too: redraw one pixel more on each side.
        r0, r1 = max(box[0].start - 1, 0), min(box[0].stop + 1, h)
        c0, c1 = max(box[1].start - 1, 0), min(box[1].stop + 1, w)
        self._pixels[r0:r1, c0:c1] = self._palette()[_classify(mask, r0, r1, c0, c1)]
        self.update(QRectF(c0, r0, c1 - c0, r1 - r0))

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._image.width(), self._image.height())

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        exposed = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()
        if exposed.isEmpty():
            return
        # Smooth only when shrunk (so a thin outline does not vanish); sharp pixels when zoomed in.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, painter.worldTransform().m11() < 1)
        painter.drawImage(QRectF(exposed), self._image, QRectF(exposed))


def _classify(mask: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """0 outside, 1 interior, 2 outline (a label pixel with a 4-neighbour outside it)."""
    h, w = mask.shape
    context = np.zeros((r1 - r0 + 2, c1 - c0 + 2), bool)  # one pixel around; False past the edge
    R0, R1, C0, C1 = max(r0 - 1, 0), min(r1 + 1, h), max(c0 - 1, 0), min(c1 + 1, w)
    context[R0 - r0 + 1:R1 - r0 + 1, C0 - c0 + 1:C1 - c0 + 1] = mask[R0:R1, C0:C1]
    inside = context[1:-1, 1:-1]
    interior = inside & context[:-2, 1:-1] & context[2:, 1:-1] & context[1:-1, :-2] & context[1:-1, 2:]
    return inside.astype(np.uint8) + (inside & ~interior)


class ContourLayerItem(QGraphicsPathItem):
    """A model's mask as vector contours, outlined or filled."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self._spec = spec
        pen = QPen(spec.colour(), spec.line_width)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.set_filled(spec.filled)
        self.setZValue(spec.z)

    def set_filled(self, filled: bool) -> None:
        self.setBrush(QBrush(self._spec.colour(FILL_ALPHA)) if filled else QBrush(Qt.BrushStyle.NoBrush))

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Show the outer contours of ``mask``; None clears the layer."""
        path = QPainterPath()
        if mask is not None:
            for contour in geometry.contours(mask):
                # contours run through pixel centres; the scene puts pixel c at [c, c + 1)
                path.addPolygon([QPointF(x + 0.5, y + 0.5) for x, y in contour.tolist()])
                path.closeSubpath()
        self.setPath(path)


class DiametersItem(QGraphicsPathItem):
    """The longest diameter and its perpendicular, drawn as thin dashed lines."""

    def __init__(self) -> None:
        super().__init__()
        pen = QPen(QColor(255, 255, 255, 200), 1.0, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setZValue(5)

    def set_measurements(self, measurements: geometry.Measurements | None) -> None:
        path = QPainterPath()
        if measurements is not None:
            for a, b in (measurements.longest_ends, measurements.perpendicular_ends):
                # geometry puts pixel centres at integers; the scene at half-integers
                path.moveTo(a[0] + 0.5, a[1] + 0.5)
                path.lineTo(b[0] + 0.5, b[1] + 0.5)
        self.setPath(path)


class BrushCursor(QGraphicsEllipseItem):
    """A circle the size of the brush, following the mouse over the image."""

    def __init__(self) -> None:
        super().__init__()
        pen = QPen(QColor(255, 255, 255, 220), 1.5)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setZValue(100)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.hide()

    def set_diameter(self, diameter: float) -> None:
        self.setRect(-diameter / 2, -diameter / 2, diameter, diameter)
