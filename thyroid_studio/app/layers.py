"""Scene items drawn over the frame: the editable label, model contours, the probability heat map,
diameters and calipers, the brush cursor, a box prompt and its proposed mask, the ticks of a ruler
proposal (Set scale).

The label is a raster (ARGB image in the mask's own pixels) so a brush dab re-renders
only its own rectangle; model layers change once per inference and are vector paths
(sharp at any zoom) built from ``geometry.contours``. Titles, colours and fill hatches
come from the roles table (``engine/models/roles.py``); a filled area is hatched, never tinted,
so two filled layers stay apart where they overlap.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (QGraphicsEllipseItem, QGraphicsItem, QGraphicsPathItem, QGraphicsPixmapItem,
                               QGraphicsRectItem, QGraphicsSimpleTextItem, QStyleOptionGraphicsItem, QWidget)

# isort: split
import qimage2ndarray  # after PySide6: it picks the Qt binding already imported

from ..engine import geometry
from ..engine.calibration import Calibration
from ..engine.io.ruler import RulerProposal
from ..engine.labels.painting import Box
from ..engine.models.roles import PRIMARY_ROLE, ROLES

HEATMAP = "probability"  # the layer showing the primary model's nodule probability
PROPOSAL = "proposal"  # a box prompt's answer, not yet accepted into the label
HATCH_PERIOD, HATCH_WIDTH = 9, 2  # image pixels from one hatch line of a filled label to the next; line width
TILE = 12  # screen pixels from one hatch line of a filled model layer to the next: apart, not blended
PREVIEW_Z = 101  # what a tool is drawing (a polygon, a caliper, a box and its proposal): above every layer


def screen_pen(colour: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A pen ``width`` screen pixels wide at any zoom (cosmetic)."""
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)
    return pen


@dataclass(frozen=True)
class LayerSpec:
    """How a layer looks by default: a role of ``engine/models/roles.py`` on screen, or the heat map."""

    title: str
    rgb: tuple[int, int, int]
    line_width: float  # screen pixels (cosmetic pen)
    z: float
    hatch: str | None  # fill pattern (roles.HATCHES); None: the layer cannot be filled
    opacity: float
    visible: bool = True
    listed: bool = True  # a layer of the Layers panel (False: what a tool draws, e.g. a box prompt's proposal)

    def colour(self, alpha: float = 1.0) -> QColor:
        colour = QColor(*self.rgb)
        colour.setAlphaF(alpha)
        return colour


SPECS: dict[str, LayerSpec] = {
    # the roles' order is their stacking order: the label on top
    **{key: LayerSpec(role.title, role.colour, float(role.thickness), len(ROLES) - i, role.hatch, role.opacity)
       for i, (key, role) in enumerate(ROLES.items())},
    HEATMAP: LayerSpec(f"{ROLES[PRIMARY_ROLE].title} probability", (252, 136, 36), 0.0, 0.5, None, 0.6, visible=False),
    # magenta: apart from the label's green it will replace, and from every model's colour
    PROPOSAL: LayerSpec("Box proposal", (255, 64, 255), 2.0, PREVIEW_Z, None, 1.0, listed=False),
}
LAYERS = tuple(name for name, spec in SPECS.items() if spec.listed)


@dataclass(frozen=True)
class LayerStyle:
    """A layer's current display settings (see ``Canvas.set_layer_style``)."""

    visible: bool
    filled: bool
    opacity: float


class LabelLayerItem(QGraphicsItem):
    """The label as a raster: opaque one-pixel outline, and when filled a hatched interior.

    :meth:`render` recolours only a box of the image, and the item repaints only the
    exposed part of it, so painting costs in proportion to the dab, not the frame.
    """

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self._spec = spec
        self._filled = False
        self._image = QImage(1, 1, QImage.Format.Format_ARGB32_Premultiplied)
        self._pixels = qimage2ndarray.byte_view(self._image)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.setZValue(spec.z)

    def _palette(self) -> np.ndarray:
        """Premultiplied BGRA for (outside, interior, outline, interior on a hatch line)."""
        r, g, b = self._spec.rgb
        hatch = [b, g, r, 255] if self._filled else [0, 0, 0, 0]
        return np.array([[0, 0, 0, 0], [0, 0, 0, 0], [b, g, r, 255], hatch], dtype=np.uint8)

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
        if not mask[r0:r1, c0:c1].any():  # nothing to draw (often a whole frame without a label yet)
            self._pixels[r0:r1, c0:c1] = 0
        else:
            classes = _classify(mask, r0, r1, c0, c1)
            if self._filled:
                classes[(classes == 1) & _hatch_lines(self._spec.hatch, r0, r1, c0, c1)] = 3
            self._pixels[r0:r1, c0:c1] = self._palette()[classes]
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


def _hatch_lines(hatch: str | None, r0: int, r1: int, c0: int, c1: int, period: int = HATCH_PERIOD) -> np.ndarray:
    """Which pixels of rows r0:r1, columns c0:c1 lie on the hatch's lines (fixed to the image, so
    re-rendering a box continues the pattern)."""
    line = _HATCH_LINES.get(hatch)
    if line is None:
        return np.zeros((r1 - r0, c1 - c0), bool)
    rows, cols = np.arange(r0, r1)[:, None], np.arange(c0, c1)[None, :]
    return np.broadcast_to(line(rows, cols) % period < HATCH_WIDTH, (r1 - r0, c1 - c0))


_HATCH_LINES = {"/": lambda r, c: r + c, "\\": lambda r, c: c - r, "-": lambda r, c: r, "|": lambda r, c: c}


def hatch_brush(spec: LayerSpec) -> QBrush:
    """A tiling brush of opaque lines in the layer's colour and hatch direction, clear between them."""
    rgba = np.zeros((TILE, TILE, 4), np.uint8)
    rgba[_hatch_lines(spec.hatch, 0, TILE, 0, TILE, TILE)] = (*spec.rgb, 255)
    return QBrush(QPixmap.fromImage(qimage2ndarray.array2qimage(rgba)))


class ContourLayerItem(QGraphicsPathItem):
    """A model's mask as vector contours, outlined or filled."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self._spec = spec
        self.setPen(screen_pen(spec.colour(), spec.line_width))
        self.set_filled(False)
        self.setZValue(spec.z)

    def set_filled(self, filled: bool) -> None:
        """Hatch the interior in the role's own direction (lines cross, colours never mix), or leave it clear."""
        self.setBrush(hatch_brush(self._spec) if filled else QBrush(Qt.BrushStyle.NoBrush))

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Show the outer contours of ``mask``; None clears the layer."""
        path = QPainterPath()
        if mask is not None:
            for contour in geometry.contours(mask):
                # contours run through pixel centres; the scene puts pixel c at [c, c + 1)
                path.addPolygon([QPointF(x + 0.5, y + 0.5) for x, y in contour.tolist()])
                path.closeSubpath()
        self.setPath(path)


class ProposalItem(ContourLayerItem):
    """A mask proposed for the label (a box prompt's answer, not yet accepted): its contours dashed in a colour
    of their own (``SPECS[PROPOSAL]``), above every layer."""

    def __init__(self) -> None:
        super().__init__(SPECS[PROPOSAL])
        pen = self.pen()
        pen.setStyle(Qt.PenStyle.DashLine)
        self.setPen(pen)
        self.setZValue(PREVIEW_Z)


class BoxItem(QGraphicsRectItem):
    """The box being dragged or prompting: a thin dashed white rectangle."""

    def __init__(self) -> None:
        super().__init__()
        self.setPen(screen_pen(QColor(255, 255, 255, 220), 1.0, Qt.PenStyle.DashLine))
        self.setZValue(PREVIEW_Z)
        self.hide()


class PreviewPathItem(QGraphicsPathItem):
    """A line a tool draws as it goes (a polygon so far, a caliper being measured): dashed, above every layer."""

    def __init__(self, colour: QColor) -> None:
        super().__init__()
        self.setPen(screen_pen(colour, 1.5, Qt.PenStyle.DashLine))
        self.setZValue(PREVIEW_Z)


class RulerItem(QGraphicsPathItem):
    """The ticks a ruler proposal was read from, ringed, and a dashed line from its first tick used to its last."""

    COLOUR = QColor(255, 200, 0)  # amber: neither a contour's colour nor the calipers' white
    RING = 4.0  # image pixels

    def __init__(self) -> None:
        super().__init__()
        self.setPen(screen_pen(self.COLOUR, 1.5, Qt.PenStyle.DashLine))
        self.setZValue(PREVIEW_Z)

    def set_proposal(self, proposal: RulerProposal | None) -> None:
        path = QPainterPath()
        if proposal is not None:
            ticks = [QPointF(x + 0.5, y + 0.5) for x, y in proposal.ruler.ticks]  # pixel centres in the scene
            path.moveTo(ticks[0])
            path.lineTo(ticks[-1])
            for tick in ticks:
                path.addEllipse(tick, self.RING, self.RING)
        self.setPath(path)


class DiametersItem(QGraphicsPathItem):
    """The longest diameter and its perpendicular, drawn as thin dashed lines."""

    def __init__(self) -> None:
        super().__init__()
        self.setPen(screen_pen(QColor(255, 255, 255, 200), 1.0, Qt.PenStyle.DashLine))
        self.setZValue(5)

    def set_measurements(self, measurements: geometry.Measurements | None) -> None:
        path = QPainterPath()
        if measurements is not None:
            for a, b in (measurements.longest_ends, measurements.perpendicular_ends):
                # geometry puts pixel centres at integers; the scene at half-integers
                path.moveTo(a[0] + 0.5, a[1] + 0.5)
                path.lineTo(b[0] + 0.5, b[1] + 0.5)
        self.setPath(path)


class HeatmapItem(QGraphicsPixmapItem):
    """A nodule probability map: the colour runs dark to bright with it, and so does the opacity,
    so where the model is sure there is no nodule the frame shows through."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.setZValue(spec.z)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._pending: np.ndarray | None = None  # a probability given while hidden, drawn once shown

    def set_probability(self, prob: np.ndarray | None) -> None:
        """Show ``prob`` (H, W floats in 0..1); None clears the layer. While the layer is hidden (its default)
        the map is only kept, and drawn when the layer is shown: stepping through frames costs nothing for it."""
        self._pending = None
        if prob is None:
            self.setPixmap(QPixmap())
        elif not self.isVisible():
            self._pending = prob
            self.setPixmap(QPixmap())
        else:
            self._render(prob)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemVisibleHasChanged and self.isVisible() \
                and self._pending is not None:
            prob, self._pending = self._pending, None
            self._render(prob)
        return super().itemChange(change, value)

    def _render(self, prob: np.ndarray) -> None:
        level = np.clip(np.asarray(prob, np.float32) * 255, 0, 255).astype(np.uint8)
        rgb = cv2.applyColorMap(level, cv2.COLORMAP_INFERNO)[..., ::-1]
        rgba = np.dstack([rgb, level])
        self.setPixmap(QPixmap.fromImage(qimage2ndarray.array2qimage(rgba)))


class CalipersItem(QGraphicsPathItem):
    """Calipers measured by hand: a line with end ticks and its length beside it."""

    TICK = 4.0  # image pixels each side of an end

    def __init__(self) -> None:
        super().__init__()
        self.setPen(screen_pen(QColor(255, 255, 255), 1.5))
        self.setZValue(6)
        self._texts: list[QGraphicsSimpleTextItem] = []

    def set_calipers(self, calipers: tuple[geometry.Caliper, ...], calibration: Calibration | None) -> None:
        for text in self._texts:
            text.setParentItem(None)
            if text.scene() is not None:
                text.scene().removeItem(text)
        self._texts = []
        path = QPainterPath()
        for caliper in calipers:
            a, b = (QPointF(x + 0.5, y + 0.5) for x, y in (caliper.a, caliper.b))  # pixel centres in the scene
            path.moveTo(a)
            path.lineTo(b)
            direction = b - a
            length = max((direction.x() ** 2 + direction.y() ** 2) ** 0.5, 1e-9)
            normal = QPointF(-direction.y() / length, direction.x() / length) * self.TICK
            for end in (a, b):
                path.moveTo(end - normal)
                path.lineTo(end + normal)
            self._texts.append(self._label(caliper_text(caliper, calibration), b))
        self.setPath(path)

    def _label(self, text: str, at: QPointF) -> QGraphicsSimpleTextItem:
        item = QGraphicsSimpleTextItem(text, self)
        item.setBrush(QColor(255, 255, 255))
        item.setFont(QFont(item.font().family(), 9))
        item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)  # readable at any zoom
        item.setPos(at + QPointF(3, 3))
        return item


def caliper_text(caliper: geometry.Caliper, calibration: Calibration | None) -> str:
    """'12.3 mm (45.6 px)', or the pixels alone without a calibration or with an end outside its region."""
    spacing = calibration.for_points((caliper.a, caliper.b)) if calibration else None
    return geometry.size_text(caliper.length_px, caliper.length_mm(spacing))


class BrushCursor(QGraphicsEllipseItem):
    """A circle the size of the brush, following the mouse over the image."""

    def __init__(self) -> None:
        super().__init__()
        self.setPen(screen_pen(QColor(255, 255, 255, 220), 1.5))
        self.setZValue(100)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.hide()

    def set_diameter(self, diameter: float) -> None:
        self.setRect(-diameter / 2, -diameter / 2, diameter, diameter)
