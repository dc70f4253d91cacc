"""The canvas with real widgets and real mouse/key events: painting, undo, tools, panels."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from thyroid_studio.app.canvas import Canvas
from thyroid_studio.app.layers import DiametersItem
from thyroid_studio.app.panels.layers_panel import LayersPanel
from thyroid_studio.app.panels.measurements_panel import MeasurementsPanel

from app_driving import shown_canvas

H, W = 150, 200
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def canvas(qtbot) -> Canvas:
    view = shown_canvas(qtbot)
    view.set_image(np.full((H, W), 90, np.uint8))
    return view


def at(canvas: Canvas, x: float, y: float) -> QPoint:
    """The viewport position showing scene point (x, y)."""
    return canvas.mapFromScene(QPointF(x, y))


def stroke(qtbot, canvas: Canvas, points: list[tuple[float, float]]) -> None:
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, LEFT, pos=at(canvas, *points[0]))
    for p in points[1:]:
        qtbot.mouseMove(viewport, at(canvas, *p))
    qtbot.mouseRelease(viewport, LEFT, pos=at(canvas, *points[-1]))


def wheel(canvas: Canvas, pos: QPoint, steps: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    event = QWheelEvent(QPointF(pos), QPointF(canvas.viewport().mapToGlobal(pos)), QPoint(), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), event)


def test_brush_stroke_paints_where_it_went_and_nowhere_else(qtbot, canvas: Canvas) -> None:
    changed, finished = [], []
    canvas.label_changed.connect(lambda: changed.append(1))
    canvas.edit_finished.connect(lambda: finished.append(1))
    canvas.set_tool("brush")
    canvas.brush_size = 11
    stroke(qtbot, canvas, [(40.5, 60.5), (80.5, 60.5), (120.5, 60.5), (160.5, 60.5)])
    label = canvas.label()
    assert label[60, 40:161].all()  # along the path, no gaps between mouse events
    assert label[56:65, 60:140].all()
    rows, cols = np.nonzero(label)
    assert rows.min() >= 53 and rows.max() <= 67 and cols.min() >= 33 and cols.max() <= 167
    assert len(canvas.label_model.history) == 1  # one stroke = one command
    assert len(changed) >= 4 and len(finished) == 1


def test_eraser_removes_and_undo_redo_restore_exactly(qtbot, canvas: Canvas) -> None:
    start = np.zeros((H, W), bool)
    start[40:110, 30:170] = True
    changed = []
    canvas.label_changed.connect(lambda: changed.append(1))
    canvas.set_image(np.zeros((H, W), np.uint8), start)
    assert len(canvas.label_model.history) == 0 and not changed  # loading a frame is not an edit
    canvas.set_tool("eraser")
    canvas.brush_size = 9
    stroke(qtbot, canvas, [(20.5, 75.5), (100.5, 75.5), (180.5, 75.5)])
    erased = canvas.label()
    assert not erased[71:80, 30:170].any()
    assert erased[40:70, 30:170].all() and erased[81:110, 30:170].all()
    assert len(canvas.label_model.history) == 1
    canvas.label_model.undo()
    assert np.array_equal(canvas.label(), start)
    canvas.label_model.redo()
    assert np.array_equal(canvas.label(), erased)


def test_each_stroke_is_one_command(qtbot, canvas: Canvas) -> None:
    canvas.set_tool("brush")
    stroke(qtbot, canvas, [(30, 30), (60, 40), (90, 30)])
    after_one = canvas.label()
    stroke(qtbot, canvas, [(30, 100), (60, 110), (90, 100)])
    assert len(canvas.label_model.history) == 2
    canvas.label_model.undo()
    assert np.array_equal(canvas.label(), after_one)
    canvas.label_model.undo()
    assert not canvas.label().any()


def test_set_label_is_one_undoable_command(canvas: Canvas) -> None:
    finished = []
    canvas.edit_finished.connect(lambda: finished.append(1))
    mask = np.zeros((H, W), bool)
    mask[10:30, 20:50] = True
    canvas.set_label(mask, "Accept TRFE-Net")
    assert np.array_equal(canvas.label(), mask)
    assert canvas.label_model.history.undo_text == "Accept TRFE-Net"
    canvas.label_model.undo()
    assert not canvas.label().any()
    canvas.label_model.redo()
    assert np.array_equal(canvas.label(), mask)
    assert len(finished) == 3  # push, undo, redo: autosave sees undone edits too
    canvas.label()[:] = False  # a copy: the canvas keeps its own
    assert canvas.label().any()


def test_brush_size_keys_ctrl_wheel_and_cursor_item(qtbot, canvas: Canvas) -> None:
    canvas.set_tool("brush")
    canvas.brush_size = 10
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_size == 12
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size < 12
    size = canvas.brush_size
    wheel(canvas, at(canvas, 100, 75), 2, Qt.KeyboardModifier.ControlModifier)
    assert canvas.brush_size > size
    assert canvas.brush_cursor().rect().width() == canvas.brush_size
    canvas.brush_size = 1000
    assert canvas.brush_size == 200 and canvas.brush_cursor().rect().width() == 200
    canvas.brush_size = 0
    assert canvas.brush_size == 1
    qtbot.mouseMove(canvas.viewport(), at(canvas, 50.5, 40.5))
    cursor = canvas.brush_cursor()
    assert cursor.isVisible() and (cursor.pos().x(), cursor.pos().y()) == (50.5, 40.5)


def test_wheel_zooms_about_the_cursor(canvas: Canvas) -> None:
    pos = at(canvas, 150, 40)
    scale = canvas.transform().m11()
    wheel(canvas, pos, 3)
    assert canvas.transform().m11() > scale * 1.5
    under = canvas.mapToScene(pos)
    assert abs(under.x() - 150) < 1 and abs(under.y() - 40) < 1


def test_polygon_fills_on_double_click_erases_with_shift_and_esc_cancels(qtbot, canvas: Canvas) -> None:
    canvas.set_tool("polygon")
    viewport = canvas.viewport()
    corners = [(20, 30), (120, 30), (120, 90)]
    for corner in corners:
        qtbot.mouseClick(viewport, LEFT, pos=at(canvas, *corner))
    qtbot.mouseDClick(viewport, LEFT, pos=at(canvas, 20, 90))
    label = canvas.label()
    assert label[35:85, 25:115].all()
    assert not label[:28].any() and not label[92:].any() and not label[:, :18].any() and not label[:, 122:].any()
    assert len(canvas.label_model.history) == 1

    for corner in [(40, 40), (80, 40), (80, 70), (40, 70)]:
        qtbot.mouseClick(viewport, LEFT, pos=at(canvas, *corner))
    qtbot.keyClick(canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert not canvas.label()[42:68, 42:78].any() and canvas.label()[35:38, 25:115].all()
    assert len(canvas.label_model.history) == 2

    for corner in [(130, 100), (180, 100), (180, 140)]:
        qtbot.mouseClick(viewport, LEFT, pos=at(canvas, *corner))
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert not canvas.label()[100:].any() and len(canvas.label_model.history) == 2


def test_lasso_drag_fills_on_release(qtbot, canvas: Canvas) -> None:
    canvas.set_tool("polygon")
    stroke(qtbot, canvas, [(50, 50), (100, 50), (100, 100), (50, 100), (50, 52)])
    assert canvas.label()[55:95, 55:95].all() and len(canvas.label_model.history) == 1


def test_overlays_window_and_pan_tool(qtbot, canvas: Canvas) -> None:
    mask = np.zeros((H, W), bool)
    mask[20:60, 30:90] = True
    canvas.set_overlay("trfe", mask)
    assert not canvas.layer_item("trfe").path().isEmpty()
    canvas.set_overlay("trfe", None)
    assert canvas.layer_item("trfe").path().isEmpty()
    with pytest.raises(ValueError):
        canvas.set_overlay("label", mask)
    canvas.set_window(0.2, 1.5)  # display only
    assert len(canvas.label_model.history) == 0 and not canvas.label().any()
    canvas.zoom_by(4)
    canvas.set_tool("pan")
    before = canvas.mapToScene(QPoint(200, 150))
    stroke(qtbot, canvas, [(100, 75), (90, 70)])
    after = canvas.mapToScene(QPoint(200, 150))
    assert after.x() > before.x() and after.y() > before.y()
    assert not canvas.label().any()


def test_layers_panel_toggles_the_layer_item(qtbot, canvas: Canvas) -> None:
    panel = LayersPanel(canvas)
    qtbot.addWidget(panel)
    panel.show()
    row = panel.rows["unet"]
    assert canvas.layer_item("unet").isVisible()
    qtbot.mouseClick(row.visible, LEFT, pos=QPoint(6, row.visible.height() // 2))
    assert not canvas.layer_item("unet").isVisible() and not canvas.layer_style("unet").visible
    row.opacity.setValue(40)
    assert canvas.layer_item("unet").opacity() == pytest.approx(0.4)
    row.filled.setChecked(True)
    assert canvas.layer_style("unet").filled
    panel.set_dice("unet", 0.8123)
    assert row.dice.text() == "Dice 0.812"
    panel.set_dice("unet", None)
    assert row.dice.text() == ""


def test_measurements_panel_shows_a_known_rectangle(qtbot) -> None:
    panel = MeasurementsPanel()
    qtbot.addWidget(panel)
    mask = np.zeros((H, W), bool)
    mask[50:70, 30:70] = True  # 20 high, 40 wide
    panel.update_measurements(mask, (0.5, 0.25))
    qtbot.waitUntil(lambda: panel.values["area"].text() != "–")
    assert panel.values["area"].text() == "100.0 mm² (800 px²)"
    assert panel.values["height"].text() == "10.0 mm (20 px)"
    assert panel.values["width"].text() == "10.0 mm (40 px)"
    assert panel.values["taller"].text() == "no"
    with qtbot.waitSignal(panel.measured) as blocker:
        panel.update_measurements(np.zeros((H, W), bool), None)
    assert blocker.args == [None] and panel.values["area"].text() == "–"


def test_diameters_drawn_from_measurements(qtbot, canvas: Canvas) -> None:
    panel = MeasurementsPanel()
    qtbot.addWidget(panel)
    panel.measured.connect(canvas.set_diameters)
    mask = np.zeros((H, W), bool)
    mask[50:70, 30:90] = True
    with qtbot.waitSignal(panel.measured):
        panel.update_measurements(mask, None)
    [lines] = [item for item in canvas.scene().items() if isinstance(item, DiametersItem)]
    assert lines.path().boundingRect().width() == pytest.approx(60, abs=0.01)
    canvas.set_diameters(None)
    assert lines.path().isEmpty()


def test_filled_layers_stay_apart_where_they_overlap(qtbot):
    """Filled red over filled green must not turn yellow (U-Net's colour): fills are hatched, not tinted."""
    canvas = shown_canvas(qtbot)
    mask = np.zeros((150, 200), bool)
    mask[30:120, 40:160] = True
    canvas.set_image(np.full((150, 200), 60, np.uint8), mask)
    canvas.set_overlay("trfe", mask)
    panel = LayersPanel(canvas)
    qtbot.addWidget(panel)
    panel.show()
    for name in ("label", "trfe"):
        box = panel.rows[name].filled
        qtbot.mouseClick(box, LEFT, pos=QPoint(6, box.height() // 2))
        assert canvas.layer_style(name).filled
    shot = canvas.viewport().grab().toImage()
    inside = canvas.mapFromScene(100, 75)
    rgb = np.array([[shot.pixelColor(inside.x() + dx, inside.y() + dy).getRgb()[:3] for dx in range(-20, 20)]
                    for dy in range(-20, 20)])
    red = (rgb[..., 0] > 180) & (rgb[..., 1] < 80)
    green = (rgb[..., 1] > 180) & (rgb[..., 0] < 80)
    mixed = (rgb[..., 0] > 75) & (rgb[..., 1] > 75)  # translucent tints: (114, 83, 25) over this gray
    assert red.any() and green.any() and not mixed.any()
