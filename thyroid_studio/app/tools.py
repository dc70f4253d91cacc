"""Canvas tools with Slicer's effect lifecycle: activate, pointer and key events, deactivate.

The canvas routes left-button and key events to the active tool; a tool edits the label
only through ``LabelModel`` strokes, so each stroke or polygon is one undo command.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QKeyEvent, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem

from ..engine.painting import Point, fill_polygon, paint_segment, snap_centre

if TYPE_CHECKING:
    from .canvas import Canvas


@dataclass(frozen=True)
class Pointer:
    """A mouse event as tools see it: scene and viewport positions, keyboard modifiers."""

    scene: QPointF
    view: QPointF
    modifiers: Qt.KeyboardModifier

    def pixel(self) -> Point:
        """(x, y) in pixel-centre coordinates (engine/painting.py): the scene minus half a pixel."""
        return self.scene.x() - 0.5, self.scene.y() - 0.5


class Tool:
    """Base tool: does nothing. Subclasses override the events they use."""

    cursor = Qt.CursorShape.ArrowCursor

    def __init__(self, canvas: "Canvas") -> None:
        self.canvas = canvas

    def activate(self) -> None:
        self.canvas.viewport().setCursor(self.cursor)

    def deactivate(self) -> None:
        """Finish or drop anything in progress; leave no items behind."""

    def press(self, pointer: Pointer) -> None:
        """Left button down."""

    def move(self, pointer: Pointer) -> None:
        """Every mouse move, button held or not."""

    def release(self, pointer: Pointer) -> None:
        """Left button up."""

    def double_click(self, pointer: Pointer) -> None:
        """Left double-click (arrives instead of the second press)."""

    def key(self, event: QKeyEvent) -> bool:
        """A key press; True when the tool used it."""
        return False


class PanTool(Tool):
    """Drag the view."""

    cursor = Qt.CursorShape.OpenHandCursor

    def __init__(self, canvas: "Canvas") -> None:
        super().__init__(canvas)
        self._last: QPointF | None = None

    def press(self, pointer: Pointer) -> None:
        self._last = pointer.view

    def move(self, pointer: Pointer) -> None:
        if self._last is not None:
            self.canvas.pan_by(pointer.view - self._last)
            self._last = pointer.view

    def release(self, pointer: Pointer) -> None:
        self._last = None

    def deactivate(self) -> None:
        self._last = None


class BrushTool(Tool):
    """Paint (or, with ``erase``, clear) a disc of ``canvas.brush_size`` pixels along the drag."""

    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, canvas: "Canvas", erase: bool = False) -> None:
        super().__init__(canvas)
        self._value = not erase
        self._text = "Erase" if erase else "Brush"
        self._last: Point | None = None

    def _centre(self, pointer: Pointer) -> Point:
        return snap_centre(*pointer.pixel(), self.canvas.brush_size)

    def press(self, pointer: Pointer) -> None:
        centre = self._centre(pointer)
        self.canvas.model.begin_stroke(self._text)
        self._last = centre
        self._dab(centre)

    def move(self, pointer: Pointer) -> None:
        centre = self._centre(pointer)
        self.canvas.show_brush_cursor(QPointF(centre[0] + 0.5, centre[1] + 0.5))
        if self._last is not None and centre != self._last:
            self._dab(centre)

    def release(self, pointer: Pointer) -> None:
        self._end()

    def deactivate(self) -> None:
        self._end()
        self.canvas.hide_brush_cursor()

    def _dab(self, centre: Point) -> None:
        start, radius, value = self._last, self.canvas.brush_size / 2, self._value
        self.canvas.model.paint(lambda mask: paint_segment(mask, start, centre, radius, value))
        self._last = centre

    def _end(self) -> None:
        if self._last is not None:
            self._last = None
            self.canvas.model.end_stroke()


class PolygonTool(Tool):
    """Click vertices (or drag a lasso); double-click or Enter fills, with Shift erases; Esc cancels."""

    cursor = Qt.CursorShape.CrossCursor
    LASSO_STEP = 3.0  # viewport pixels between lasso points

    def __init__(self, canvas: "Canvas") -> None:
        super().__init__(canvas)
        self._points: list[QPointF] = []
        self._last_view: QPointF | None = None  # viewport position of the last vertex
        self._pressed = False
        self._lasso = False
        self._preview = QGraphicsPathItem()
        pen = QPen(QColor(0, 255, 0), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._preview.setPen(pen)
        self._preview.setZValue(101)

    def activate(self) -> None:
        super().activate()
        self.canvas.scene().addItem(self._preview)

    def deactivate(self) -> None:
        self._cancel()
        self.canvas.scene().removeItem(self._preview)

    def press(self, pointer: Pointer) -> None:
        self._pressed = True
        self._add(pointer)

    def move(self, pointer: Pointer) -> None:
        if self._pressed and _far(pointer.view, self._last_view, self.LASSO_STEP):
            self._lasso = True
            self._add(pointer)
        if self._points:
            self._draw(pointer.scene)

    def release(self, pointer: Pointer) -> None:
        self._pressed = False
        if self._lasso:
            self._finish(pointer.modifiers)

    def double_click(self, pointer: Pointer) -> None:
        if self._last_view is None or _far(pointer.view, self._last_view, self.LASSO_STEP):
            self._add(pointer)  # a double-click without the press before it (synthetic events)
        self._finish(pointer.modifiers)

    def key(self, event: QKeyEvent) -> bool:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._finish(event.modifiers())
        elif event.key() == Qt.Key.Key_Escape and self._points:
            self._cancel()
        elif event.key() == Qt.Key.Key_Backspace and self._points:
            self._points.pop()
            self._last_view = None
            self._draw(None)
        else:
            return False
        return True

    def _add(self, pointer: Pointer) -> None:
        self._points.append(pointer.scene)
        self._last_view = pointer.view
        self._draw(pointer.scene)

    def _finish(self, modifiers: Qt.KeyboardModifier) -> None:
        points = np.array([(p.x() - 0.5, p.y() - 0.5) for p in self._points])
        self._cancel()
        if len(points) < 3:
            return
        erase = bool(modifiers & Qt.KeyboardModifier.ShiftModifier)
        model = self.canvas.model
        model.begin_stroke("Polygon erase" if erase else "Polygon fill")
        model.paint(lambda mask: fill_polygon(mask, points, not erase))
        model.end_stroke()

    def _cancel(self) -> None:
        self._points.clear()
        self._last_view = None
        self._pressed = False
        self._lasso = False
        self._draw(None)

    def _draw(self, mouse: QPointF | None) -> None:
        """The outline so far, plus a rubber band to the mouse."""
        path = QPainterPath()
        if self._points:
            path.moveTo(self._points[0])
            for p in self._points[1:] + ([mouse] if mouse is not None else []):
                path.lineTo(p)
        self._preview.setPath(path)


def _far(a: QPointF, b: QPointF | None, distance: float) -> bool:
    """Whether ``a`` is at least ``distance`` (Manhattan) from ``b``; True when there is no ``b``."""
    if b is None:
        return True
    step = a - b
    return abs(step.x()) + abs(step.y()) >= distance
