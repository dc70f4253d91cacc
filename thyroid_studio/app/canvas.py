"""The image view: frame, label and model layers, zoom/pan, and the editing tools.

The canvas owns the scene and routes events. It holds no label of its own: it shows the
frame's ``engine.labels.label_model.LabelModel`` (the worklist entry's, the one owner of the mask,
its calipers and its undo history), redraws what that model reports changed, and its tools
(``edit_tools.py``) edit through it. Drawing is in ``layers.py``.
Scene coordinates are image pixels: pixel (row r, column c) covers [c, c + 1) x [r, r + 1).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QPixmap, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

# isort: split
import qimage2ndarray  # after PySide6: it picks the Qt binding already imported

from ..engine.calibration import Calibration
from ..engine.geometry import Measurements
from ..engine.inference.prompting import BoxXYXY
from ..engine.io.ruler import RulerProposal
from ..engine.labels.label_model import LabelChange, LabelModel
from .edit_tools import BoxTool, BrushTool, CaliperTool, PanTool, Pointer, PolygonTool, ScaleTool, Tool
from .layers import (HEATMAP, LAYERS, SPECS, BrushCursor, CalipersItem, ContourLayerItem, DiametersItem, HeatmapItem,
                     LabelLayerItem, LayerStyle)

__all__ = ["Canvas", "LAYERS", "HEATMAP"]

MIN_BRUSH, MAX_BRUSH = 1, 200
MIN_SCALE, MAX_SCALE = 0.02, 64.0  # view pixels per image pixel
WHEEL_ZOOM = 1.0015  # per 1/8 degree of wheel: one notch (120) zooms by about 20 %


class Canvas(QGraphicsView):
    """Shows one frame with its layers and edits its label. See docs/architecture.md for the contract."""

    label_changed = Signal()  # each dab while painting, undo, redo, set_label (not set_image)
    edit_finished = Signal()  # a stroke, polygon, caliper or command completed (also undo and redo)
    cursor_moved = Signal(object)  # (x, y) image coordinates under the mouse, None off the image
    nodule_clicked = Signal(float, float)  # a click (no drag) with the pan tool: (x, y) pixel centre coordinates
    status_text = Signal(str)  # a tool's live feedback, e.g. a caliper's length while measuring
    box_drawn = Signal(object)  # the box tool's box (x0, y0, x1, y1 frame pixels, exclusive): answer with show_box_proposal
    scale_drawn = Signal(object, object)  # Set scale: a line of known length (Caliper), the RulerProposal it is or None
    brush_size_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(Qt.GlobalColor.black)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewport().setMouseTracking(True)

        self.label_model = LabelModel(np.zeros((1, 1), bool))
        self.calibration: Calibration | None = None  # the shown frame's: calipers measure with it
        self.ruler: RulerProposal | None = None  # what the shown frame's ruler proposes (the Set scale tool shows it)

        self._pixels = np.zeros((1, 1), np.uint8)
        self._window = (0.0, 1.0)
        self._image_item = QGraphicsPixmapItem()
        self._image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._label_item = LabelLayerItem(SPECS["label"])
        self._overlays = {name: ContourLayerItem(SPECS[name]) for name in LAYERS if name not in ("label", HEATMAP)}
        self._heatmap = HeatmapItem(SPECS[HEATMAP])
        self._diameters = DiametersItem()
        self._calipers = CalipersItem()
        self._cursor = BrushCursor()
        for item in (self._image_item, self._heatmap, self._label_item, *self._overlays.values(), self._diameters,
                     self._calipers, self._cursor):
            self.scene().addItem(item)
        self._styles = {name: LayerStyle(SPECS[name].visible, False, SPECS[name].opacity) for name in LAYERS}
        for name in LAYERS:
            self.set_layer_style(name)

        self._brush_size = 20
        self._cursor.set_diameter(self._brush_size)
        self._fit = True  # refit on resize until the user zooms
        self._pan_from: QPointF | None = None  # middle or space drag in progress
        self._space = False
        self._tools: dict[str, Tool] = {"pan": PanTool(self), "brush": BrushTool(self),
                                        "eraser": BrushTool(self, erase=True), "polygon": PolygonTool(self),
                                        "caliper": CaliperTool(self), "box": BoxTool(self), "scale": ScaleTool(self)}
        self._tool_name = "pan"
        self._tools["pan"].activate()
        self.set_image(self._pixels)

    # ----- image and layers -------------------------------------------------------------
    def set_image(self, pixels: np.ndarray, label: LabelModel | np.ndarray | None = None,
                  calibration: Calibration | None = None) -> None:
        """Show a uint8 gray or RGB frame with its label (a frame's LabelModel; a mask or None makes a new
        one); drops what the active tool had in progress on the previous frame, clears overlays, fits the view."""
        if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
            raise ValueError(f"expected (H, W) or (H, W, 3) pixels, got shape {pixels.shape}")
        if not isinstance(label, LabelModel):
            label = LabelModel(np.zeros(pixels.shape[:2], bool) if label is None else label)
        if label.mask.shape != pixels.shape[:2]:
            raise ValueError(f"label shape {label.mask.shape} differs from the frame's {pixels.shape[:2]}")
        self._tools[self._tool_name].reset()  # a stroke ends on its own frame; a polygon's points stay there
        self.label_model.unsubscribe(self._label_changed)
        self.label_model = label
        label.subscribe(self._label_changed)
        self.calibration, self.ruler = calibration, None
        self._pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        self._show_pixels()
        for overlay in self._overlays.values():
            overlay.set_mask(None)
        self._heatmap.set_probability(None)
        self._diameters.set_measurements(None)
        self._label_item.render(label.mask)
        self._calipers.set_calipers(label.calipers, calibration)
        self.setSceneRect(self.image_rect())
        self.zoom_fit()
        self._tools[self._tool_name].refresh()

    def set_calibration(self, calibration: Calibration | None) -> None:
        """The shown frame is measured with another calibration now (a scale was set): calipers follow it."""
        self.calibration = calibration
        self._calipers.set_calipers(self.label_model.calipers, calibration)

    def set_ruler(self, proposal: RulerProposal | None) -> None:
        """What the shown frame's ruler proposes, once read (the Set scale tool draws it)."""
        self.ruler = proposal
        self._tools[self._tool_name].refresh()

    def image_rect(self) -> QRectF:
        """The frame in scene coordinates."""
        return QRectF(0, 0, self._pixels.shape[1], self._pixels.shape[0])

    def set_probability(self, prob: np.ndarray | None) -> None:
        """Show the primary model's nodule probability on the heat-map layer; None clears it."""
        if prob is not None and prob.shape != self._pixels.shape[:2]:
            raise ValueError(f"probability shape {prob.shape} differs from the frame's {self._pixels.shape[:2]}")
        self._heatmap.set_probability(prob)

    def set_overlay(self, name: str, mask: np.ndarray | None) -> None:
        """Show a model's mask on a contour layer other than the label ("trfe", "unet", "gland"); None clears it."""
        if name not in self._overlays:
            raise ValueError(f"unknown overlay {name!r}; expected one of {sorted(self._overlays)}")
        if mask is not None and mask.shape != self._pixels.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} differs from the frame's {self._pixels.shape[:2]}")
        self._overlays[name].set_mask(mask)

    def set_diameters(self, measurements: Measurements | None) -> None:
        """Draw the longest and perpendicular diameters (e.g. from MeasurementsPanel.measured); None hides them."""
        self._diameters.set_measurements(measurements)

    def set_layer_style(self, name: str, *, visible: bool | None = None, filled: bool | None = None,
                        opacity: float | None = None) -> None:
        """Change how a layer is drawn; arguments left as None keep their value."""
        old = self.layer_style(name)
        style = LayerStyle(old.visible if visible is None else visible, old.filled if filled is None else filled,
                           old.opacity if opacity is None else min(max(opacity, 0.0), 1.0))
        self._styles[name] = style
        item = self.layer_item(name)
        item.setVisible(style.visible)
        item.setOpacity(style.opacity)
        if name == "label":
            if filled is not None and filled != old.filled:
                self._label_item.set_filled(style.filled, self.label_model.mask)
        elif name in self._overlays:
            self._overlays[name].set_filled(style.filled)

    def layer_style(self, name: str) -> LayerStyle:
        """The current style of a layer."""
        if name not in self._styles:
            raise ValueError(f"unknown layer {name!r}; expected one of {LAYERS}")
        return self._styles[name]

    def layer_item(self, name: str) -> LabelLayerItem | ContourLayerItem | HeatmapItem:
        """The scene item drawing a layer."""
        if name == "label":
            return self._label_item
        return self._heatmap if name == HEATMAP else self._overlays[name]

    def set_window(self, brightness: float, contrast: float) -> None:
        """Display window: ``brightness`` in [-1, 1] shifts by that fraction of full range,
        ``contrast`` > 0 scales about mid-gray (1 = unchanged). The frame data is untouched."""
        self._window = (brightness, max(contrast, 0.0))
        self._show_pixels()

    def _show_pixels(self) -> None:
        brightness, contrast = self._window
        shown = self._pixels
        if (brightness, contrast) != (0.0, 1.0):
            levels = (np.arange(256) - 127.5) * contrast + 127.5 + brightness * 255
            shown = np.clip(np.round(levels), 0, 255).astype(np.uint8)[self._pixels]
        image = qimage2ndarray.gray2qimage(shown) if shown.ndim == 2 else qimage2ndarray.array2qimage(shown)
        self._image_item.setPixmap(QPixmap.fromImage(image))

    # ----- label ------------------------------------------------------------------------
    def label(self) -> np.ndarray:
        """A bool copy of the shown label's mask."""
        return self.label_model.mask.copy()

    def set_label(self, mask: np.ndarray, text: str) -> None:
        """Replace the label's mask as one undoable edit named ``text``."""
        self.label_model.replace(mask, text)

    def _label_changed(self, change: LabelChange) -> None:
        """The label model reports a change: redraw only what it names."""
        if change.box is not None:
            self._label_item.render(self.label_model.mask, change.box)
            self.label_changed.emit()
        if change.calipers:
            self._calipers.set_calipers(self.label_model.calipers, self.calibration)
        if change.finished:
            self.edit_finished.emit()

    # ----- tools ------------------------------------------------------------------------
    @property
    def tool(self) -> str:
        """The active tool's name."""
        return self._tool_name

    def set_tool(self, name: str) -> None:
        """Activate "pan", "brush", "eraser", "polygon", "caliper", "box" or "scale"."""
        if name not in self._tools:
            raise ValueError(f"unknown tool {name!r}; expected one of {sorted(self._tools)}")
        self._tools[self._tool_name].deactivate()
        self._tool_name = name
        self._tools[name].activate()

    def show_box_proposal(self, box: BoxXYXY, mask: np.ndarray) -> bool:
        """The mask a box prompt proposes, drawn by the box tool if ``box`` is still the one it asked
        about on this frame (False: a stale answer, dropped)."""
        if mask.shape != self._pixels.shape[:2]:
            return False
        return self._tools["box"].show_proposal(box, mask)

    @property
    def brush_size(self) -> int:
        """Brush diameter in image pixels."""
        return self._brush_size

    @brush_size.setter
    def brush_size(self, size: int) -> None:
        size = int(min(max(size, MIN_BRUSH), MAX_BRUSH))
        if size != self._brush_size:
            self._brush_size = size
            self._cursor.set_diameter(size)
            self.brush_size_changed.emit(size)

    def step_brush(self, steps: int) -> None:
        """Grow (steps > 0) or shrink the brush by about 20 % a step, at least one pixel."""
        size = self._brush_size
        for _ in range(abs(steps)):
            size = max(size + 1, round(size * 1.2)) if steps > 0 else min(size - 1, round(size / 1.2))
        self.brush_size = size

    def brush_cursor(self) -> BrushCursor:
        """The circle showing the brush on the image."""
        return self._cursor

    def show_brush_cursor(self, centre: QPointF) -> None:
        self._cursor.setPos(centre)
        self._cursor.show()

    def hide_brush_cursor(self) -> None:
        self._cursor.hide()

    # ----- zoom and pan -----------------------------------------------------------------
    def zoom_fit(self) -> None:
        """Fit the whole frame in the view (and keep fitting it when the view is resized)."""
        self.fitInView(self.image_rect(), Qt.AspectRatioMode.KeepAspectRatio)
        self._fit = True

    def zoom_actual(self) -> None:
        """One image pixel per screen pixel, about the view's centre."""
        self._zoom(1.0 / self.transform().m11(), self.viewport().rect().center().toPointF())

    def zoom_by(self, factor: float) -> None:
        """Zoom about the view's centre."""
        self._zoom(factor, self.viewport().rect().center().toPointF())

    def _zoom(self, factor: float, about: QPointF) -> None:
        """Scale by ``factor`` keeping the scene point under ``about`` (viewport) in place."""
        scale = self.transform().m11()
        factor = min(max(scale * factor, MIN_SCALE), MAX_SCALE) / scale
        before = self.mapToScene(about.toPoint())
        self.scale(factor, factor)
        shift = self.mapToScene(about.toPoint()) - before
        self.translate(shift.x(), shift.y())
        self._fit = False

    def pan_by(self, delta: QPointF) -> None:
        """Move the view's content by ``delta`` viewport pixels."""
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))

    # ----- events -----------------------------------------------------------------------
    def _pointer(self, event: QMouseEvent) -> Pointer:
        view = event.position()
        return Pointer(self.mapToScene(view.toPoint()), view, event.modifiers())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
        elif button == Qt.MouseButton.LeftButton:
            self._tools[self._tool_name].press(self._pointer(event))
        else:
            super().mousePressEvent(event)
            return
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pointer = self._pointer(event)
        inside = self.image_rect().contains(pointer.scene)
        self.cursor_moved.emit((pointer.scene.x(), pointer.scene.y()) if inside else None)
        if self._pan_from is not None:
            self.pan_by(event.position() - self._pan_from)
            self._pan_from = event.position()
        else:
            self._tools[self._tool_name].move(pointer)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            self.viewport().setCursor(self._tools[self._tool_name].cursor)
        elif event.button() == Qt.MouseButton.LeftButton:
            self._tools[self._tool_name].release(self._pointer(event))
        else:
            super().mouseReleaseEvent(event)
            return
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._pan_from is None:
            self._tools[self._tool_name].double_click(self._pointer(event))
            event.accept()
        else:
            super().mouseDoubleClickEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        """Wheel zooms about the cursor; Ctrl+wheel sizes the brush."""
        delta = event.angleDelta().y()
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.step_brush(1 if delta > 0 else -1 if delta < 0 else 0)
        elif delta:
            self._zoom(WHEEL_ZOOM ** delta, event.position())
        event.accept()

    def event(self, event: QEvent) -> bool:
        """Esc and Enter go to a tool with something in progress (a polygon, a box), not to the window's
        shortcuts (Esc also stops a propagation)."""
        if event.type() == QEvent.Type.ShortcutOverride and self._tools[self._tool_name].in_progress \
                and event.key() in (Qt.Key.Key_Escape, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._tools[self._tool_name].key(event):
            event.accept()
        elif event.key() == Qt.Key.Key_BracketRight:
            self.step_brush(1)
        elif event.key() == Qt.Key.Key_BracketLeft:
            self.step_brush(-1)
        elif event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
        super().keyReleaseEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self._cursor.hide()
        self.cursor_moved.emit(None)
        super().leaveEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.zoom_fit()
