"""Canvas tools with Slicer's effect lifecycle: activate, pointer and key events, reset, refresh, deactivate.

The canvas routes left-button and key events to the active tool; a tool edits the frame's
label only through its ``engine.labels.label_model.LabelModel`` (strokes, calipers, whole-mask
replacements), so each stroke, polygon, caliper or accepted box proposal is one undo step. The Set scale
tool edits no label: it hands a line of known length to the window (``ToolView.scale_drawn``).
Whatever a tool has in progress (a polygon's points, a caliper's first end, a box and its
proposal) belongs to one frame: :meth:`Tool.reset` drops it when the frame changes, and
deactivating the tool does too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, SignalInstance
from PySide6.QtGui import QColor, QKeyEvent, QPainterPath
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QWidget

from ..engine.calibration import Calibration
from ..engine.geometry import Caliper
from ..engine.inference.prompting import BoxXYXY
from ..engine.io.ruler import RulerProposal
from ..engine.labels.label_model import LabelModel
from ..engine.labels.painting import Point, fill_polygon, paint_segment, snap_centre
from .layers import BoxItem, PreviewPathItem, ProposalItem, RulerItem, caliper_text


class ToolView(Protocol):
    """What a tool uses of the view it works in; the canvas is one, and tools know nothing else of it."""

    label_model: LabelModel  # the shown frame's label: every edit goes through it
    calibration: Calibration | None  # the shown frame's, for caliper lengths
    ruler: RulerProposal | None  # the shown frame's ruler proposal (None: none, or not known yet)
    nodule_clicked: SignalInstance  # (x, y) frame pixel the pan tool clicked
    status_text: SignalInstance  # a line for the status bar
    box_drawn: SignalInstance  # the box tool's box, to be answered with a proposal
    scale_drawn: SignalInstance  # the Set scale tool's line (a Caliper) and the ruler proposal it is, or None

    @property
    def brush_size(self) -> int: ...
    def scene(self) -> QGraphicsScene: ...
    def viewport(self) -> QWidget: ...
    def image_rect(self) -> QRectF: ...
    def pan_by(self, delta: QPointF) -> None: ...
    def show_brush_cursor(self, centre: QPointF) -> None: ...
    def hide_brush_cursor(self) -> None: ...


@dataclass(frozen=True)
class Pointer:
    """A mouse event as tools see it: scene and viewport positions, keyboard modifiers."""

    scene: QPointF
    view: QPointF
    modifiers: Qt.KeyboardModifier

    def pixel(self) -> Point:
        """(x, y) in pixel-centre coordinates (engine/labels/painting.py): the scene minus half a pixel."""
        return self.scene.x() - 0.5, self.scene.y() - 0.5


class Tool:
    """Base tool: does nothing. Subclasses override the events they use."""

    cursor = Qt.CursorShape.ArrowCursor

    def __init__(self, view: ToolView) -> None:
        self.view = view
        self._items: tuple[QGraphicsItem, ...] = ()  # what the tool draws: in the scene while it is active

    def activate(self) -> None:
        self.view.viewport().setCursor(self.cursor)
        for item in self._items:
            self.view.scene().addItem(item)

    @property
    def in_progress(self) -> bool:
        """Something is under way that the tool's own keys act on (Esc, Enter): the canvas then keeps
        those keys from the window's shortcuts."""
        return False

    def reset(self) -> None:
        """Finish or drop anything in progress (the frame is about to change)."""

    def refresh(self) -> None:
        """The view shows a new frame, or learnt more of it (its ruler): redraw what the tool shows of it."""

    def deactivate(self) -> None:
        """Reset, and leave no items behind."""
        self.reset()
        for item in self._items:
            self.view.scene().removeItem(item)

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
    """Drag the view; a click without a drag selects the nodule under (or nearest to) it."""

    cursor = Qt.CursorShape.OpenHandCursor
    CLICK_SLOP = 3.0  # viewport pixels a click may move and still be a click

    def __init__(self, view: ToolView) -> None:
        super().__init__(view)
        self._last: QPointF | None = None
        self._dragged = False

    def press(self, pointer: Pointer) -> None:
        self._last, self._dragged = pointer.view, False

    def move(self, pointer: Pointer) -> None:
        if self._last is not None and (self._dragged or _far(pointer.view, self._last, self.CLICK_SLOP)):
            self._dragged = True
            self.view.pan_by(pointer.view - self._last)
            self._last = pointer.view

    def release(self, pointer: Pointer) -> None:
        if self._last is not None and not self._dragged:
            self.view.nodule_clicked.emit(*pointer.pixel())
        self._last = None

    def reset(self) -> None:
        self._last = None


class BrushTool(Tool):
    """Paint (or, with ``erase``, clear) a disc of ``view.brush_size`` pixels along the drag."""

    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, view: ToolView, erase: bool = False) -> None:
        super().__init__(view)
        self._value = not erase
        self._text = "Erase" if erase else "Brush"
        self._last: Point | None = None

    def _centre(self, pointer: Pointer) -> Point:
        return snap_centre(*pointer.pixel(), self.view.brush_size)

    def press(self, pointer: Pointer) -> None:
        centre = self._centre(pointer)
        self.view.label_model.begin_stroke(self._text)
        self._last = centre
        self._dab(centre)

    def move(self, pointer: Pointer) -> None:
        centre = self._centre(pointer)
        self.view.show_brush_cursor(QPointF(centre[0] + 0.5, centre[1] + 0.5))
        # An undo while the button is held closed the stroke: the rest of this drag paints nothing.
        if self._last is not None and centre != self._last and self.view.label_model.in_stroke:
            self._dab(centre)

    def release(self, pointer: Pointer) -> None:
        self.reset()

    def deactivate(self) -> None:
        super().deactivate()
        self.view.hide_brush_cursor()

    def reset(self) -> None:
        if self._last is not None:
            self._last = None
            self.view.label_model.end_stroke()

    def _dab(self, centre: Point) -> None:
        start, radius, value = self._last, self.view.brush_size / 2, self._value
        self.view.label_model.paint(lambda mask: paint_segment(mask, start, centre, radius, value))
        self._last = centre


class PolygonTool(Tool):
    """Click vertices (or drag a lasso); double-click or Enter fills, with Shift erases; Esc cancels."""

    cursor = Qt.CursorShape.CrossCursor
    LASSO_STEP = 3.0  # viewport pixels between lasso points

    def __init__(self, view: ToolView) -> None:
        super().__init__(view)
        self._points: list[QPointF] = []
        self._last_view: QPointF | None = None  # viewport position of the last vertex
        self._pressed = False
        self._lasso = False
        self._preview = PreviewPathItem(QColor(0, 255, 0))
        self._items = (self._preview,)

    def reset(self) -> None:
        self._points.clear()
        self._last_view = None
        self._pressed = False
        self._lasso = False
        self._draw(None)

    @property
    def in_progress(self) -> bool:
        return bool(self._points)

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
            self.reset()
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
        self.reset()
        if len(points) < 3:
            return
        erase = bool(modifiers & Qt.KeyboardModifier.ShiftModifier)
        label = self.view.label_model
        label.begin_stroke("Polygon erase" if erase else "Polygon fill")
        label.paint(lambda mask: fill_polygon(mask, points, not erase))
        label.end_stroke()

    def _draw(self, mouse: QPointF | None) -> None:
        """The outline so far, plus a rubber band to the mouse."""
        path = QPainterPath()
        if self._points:
            path.moveTo(self._points[0])
            for p in self._points[1:] + ([mouse] if mouse is not None else []):
                path.lineTo(p)
        self._preview.setPath(path)


class CaliperTool(Tool):
    """Two clicks measure a length between pixel centres: the first fixes one end, a line with its
    length follows the mouse, the second adds the caliper to the label (one undo step). Esc drops
    the first end."""

    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, view: ToolView) -> None:
        super().__init__(view)
        self._start: Point | None = None
        self._preview = PreviewPathItem(QColor(255, 255, 255))
        self._items = (self._preview,)

    def reset(self) -> None:
        self._start = None
        self._preview.setPath(QPainterPath())

    @property
    def in_progress(self) -> bool:
        return self._start is not None

    def press(self, pointer: Pointer) -> None:
        end = _pixel_centre(pointer)
        if self._start is None:
            self._start = end
            self._draw(end)
            return
        caliper = Caliper(self._start, end)
        self.reset()
        if caliper.length_px > 0:
            self.view.label_model.add_caliper(caliper)

    def double_click(self, pointer: Pointer) -> None:
        self.press(pointer)  # a quick second click arrives as a double-click

    def move(self, pointer: Pointer) -> None:
        if self._start is not None:
            self._draw(_pixel_centre(pointer))

    def key(self, event: QKeyEvent) -> bool:
        if event.key() == Qt.Key.Key_Escape and self._start is not None:
            self.reset()
            return True
        return False

    @property
    def pending(self) -> Point | None:
        """The first end of a caliper being measured."""
        return self._start

    def _draw(self, end: Point) -> None:
        path = QPainterPath()
        path.moveTo(self._start[0] + 0.5, self._start[1] + 0.5)
        path.lineTo(end[0] + 0.5, end[1] + 0.5)
        self._preview.setPath(path)
        self.view.status_text.emit(caliper_text(Caliper(self._start, end), self.view.calibration))


class ScaleTool(Tool):
    """Set scale, as ImageJ's: drag, or click twice, along a length you know (the burnt-in depth ruler) and
    the view asks for it in millimetres (``ToolView.scale_drawn``). When the frame's ruler was read
    (``ToolView.ruler``), its ticks are ringed and a dashed line joins the first used to the last: Enter
    takes that line (its length by the ticks). Esc drops a line in progress."""

    cursor = Qt.CursorShape.CrossCursor
    CLICK_SLOP = PanTool.CLICK_SLOP

    def __init__(self, view: ToolView) -> None:
        super().__init__(view)
        self._start: Point | None = None
        self._pressed: QPointF | None = None  # viewport position of the press that started a drag
        self._dragged = False
        self._preview = PreviewPathItem(RulerItem.COLOUR)
        self._ruler = RulerItem()
        self._items = (self._preview, self._ruler)

    def activate(self) -> None:
        super().activate()
        self.refresh()

    def refresh(self) -> None:
        ruler = self.view.ruler
        self._ruler.set_proposal(ruler)
        if ruler is not None:
            self.view.status_text.emit(f"Set scale: ruler read, {ruler.describe()}; Enter takes it, or drag along a "
                                       "length you know")

    def reset(self) -> None:
        self._start, self._pressed, self._dragged = None, None, False
        self._preview.setPath(QPainterPath())

    @property
    def in_progress(self) -> bool:
        return self._start is not None

    def press(self, pointer: Pointer) -> None:
        if self._start is not None:
            self._finish(_pixel_centre(pointer))
            return
        self._start, self._pressed, self._dragged = _pixel_centre(pointer), pointer.view, False
        self._draw(self._start)

    def move(self, pointer: Pointer) -> None:
        if self._start is None:
            return
        if self._pressed is not None and _far(pointer.view, self._pressed, self.CLICK_SLOP):
            self._dragged = True
        self._draw(_pixel_centre(pointer))

    def release(self, pointer: Pointer) -> None:
        if self._dragged:
            self._finish(_pixel_centre(pointer))
        self._pressed = None

    def double_click(self, pointer: Pointer) -> None:
        self.press(pointer)  # a quick second click arrives as a double-click

    def key(self, event: QKeyEvent) -> bool:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._start is None and self.view.ruler:
            self.view.scale_drawn.emit(Caliper(*self.view.ruler.line), self.view.ruler)
        elif event.key() == Qt.Key.Key_Escape and self._start is not None:
            self.reset()
        else:
            return False
        return True

    def _finish(self, end: Point) -> None:
        line = Caliper(self._start, end)
        self.reset()
        if line.length_px > 0:
            self.view.scale_drawn.emit(line, None)

    def _draw(self, end: Point) -> None:
        path = QPainterPath()
        path.moveTo(self._start[0] + 0.5, self._start[1] + 0.5)
        path.lineTo(end[0] + 0.5, end[1] + 0.5)
        self._preview.setPath(path)
        self.view.status_text.emit(f"Set scale: {Caliper(self._start, end).length_px:.1f} px")


class BoxTool(Tool):
    """Box prompt: drag a box and the canvas asks for the mask of what it holds (``Canvas.box_drawn``);
    the answer (:meth:`show_proposal`) is drawn dashed in its own colour (``layers.PROPOSAL``). Enter or a click
    accepts it as the label (one edit), with Shift adds it to the label, with Alt subtracts it;
    Esc drops it; a new box replaces it."""

    cursor = Qt.CursorShape.CrossCursor
    CLICK_SLOP = PanTool.CLICK_SLOP

    def __init__(self, view: ToolView) -> None:
        super().__init__(view)
        self._from: Pointer | None = None  # where the button went down
        self._dragging = False
        self.box: BoxXYXY | None = None  # the box asked about
        self.proposal: np.ndarray | None = None  # the answer to it, (H, W) bool
        self._box_item = BoxItem()
        self._proposal_item = ProposalItem()
        self._items = (self._box_item, self._proposal_item)

    def reset(self) -> None:
        self._from, self._dragging = None, False
        self.box = self.proposal = None
        self._box_item.hide()
        self._proposal_item.set_mask(None)

    @property
    def in_progress(self) -> bool:
        return self.box is not None

    def press(self, pointer: Pointer) -> None:
        self._from, self._dragging = pointer, False

    def move(self, pointer: Pointer) -> None:
        if self._from is not None and (self._dragging or _far(pointer.view, self._from.view, self.CLICK_SLOP)):
            self._dragging = True
            self._box_item.setRect(QRectF(self._from.scene, pointer.scene).normalized())
            self._box_item.show()

    def release(self, pointer: Pointer) -> None:
        start, dragged = self._from, self._dragging
        self._from, self._dragging = None, False
        if start is None:
            return
        if not dragged:
            self.accept(pointer.modifiers)
            return
        box = _pixel_box(QRectF(start.scene, pointer.scene).normalized(), self.view.image_rect())
        if box is None:  # dragged outside the frame
            self.reset()
            return
        self.box, self.proposal = box, None
        self._proposal_item.set_mask(None)
        self._box_item.setRect(QRectF(box[0], box[1], box[2] - box[0], box[3] - box[1]))
        self._box_item.show()
        self.view.box_drawn.emit(box)

    def show_proposal(self, box: BoxXYXY, mask: np.ndarray) -> bool:
        """Show the answer to ``box``; False (and nothing shown) when it answers an older box."""
        if box != self.box:
            return False
        self.proposal = mask
        self._proposal_item.set_mask(mask)
        return True

    def key(self, event: QKeyEvent) -> bool:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.proposal is not None:
            self.accept(event.modifiers())
        elif event.key() == Qt.Key.Key_Escape and self.box is not None:
            self.reset()
        else:
            return False
        return True

    def accept(self, modifiers: Qt.KeyboardModifier) -> None:
        """The proposal into the label as one edit: replacing it, with Shift added, with Alt subtracted."""
        proposal = self.proposal
        if proposal is None:
            return
        label = self.view.label_model.mask
        if modifiers & Qt.KeyboardModifier.AltModifier:
            mask, text = label & ~proposal, "Box prompt: subtract"
        elif modifiers & Qt.KeyboardModifier.ShiftModifier:
            mask, text = label | proposal, "Box prompt: add"
        else:
            mask, text = proposal, "Box prompt"
        self.reset()
        self.view.label_model.replace(mask, text)


def _pixel_box(rect: QRectF, frame: QRectF) -> BoxXYXY | None:
    """The frame pixels a scene rectangle touches, as an exclusive box; None when it misses the frame."""
    rect = rect.intersected(frame)
    x0, y0 = math.floor(rect.left()), math.floor(rect.top())
    x1, y1 = math.ceil(rect.right()), math.ceil(rect.bottom())
    if rect.isEmpty() or x1 <= x0 or y1 <= y0:
        return None
    return float(x0), float(y0), float(x1), float(y1)


def _pixel_centre(pointer: Pointer) -> Point:
    """The centre of the pixel under the pointer: calipers measure between pixels."""
    x, y = pointer.pixel()
    return float(round(x)), float(round(y))


def _far(a: QPointF, b: QPointF | None, distance: float) -> bool:
    """Whether ``a`` is at least ``distance`` (Manhattan) from ``b``; True when there is no ``b``."""
    if b is None:
        return True
    step = a - b
    return abs(step.x()) + abs(step.y()) >= distance
