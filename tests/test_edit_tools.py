"""The editing tools in the app through real widgets and events: one owner per label (undo survives switching
frames, undo mid-stroke), tools that forget their points with the frame, measurements per nodule selected with
the pointer, the caliper in pixels and millimetres (issue 9)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from thyroid_studio.app.layers import CalipersItem
from thyroid_studio.engine import geometry
from thyroid_studio.engine.calibration import Calibration
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.labels.worklist import State

from app_driving import SAMPLES, at, key, open_and_wait, paint, shown_canvas

LEFT = Qt.MouseButton.LeftButton
CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def test_undo_survives_switching_frames(qtbot, window, answers, tmp_path):
    window.settings.setValue("dataset/folder", str(tmp_path / "dataset"))
    window.open_paths([SAMPLES / "image"])
    first = window.current
    before = window.canvas.label()
    paint(qtbot, window, [(480, 320), (530, 330)])
    painted = window.canvas.label()
    assert window.undo_action.text() == "&Undo Brush" and window.undo_action.isEnabled()
    key(qtbot, window, Qt.Key.Key_Right)  # no question: the edit stays with its frame, unsaved
    assert window.current == first + 1 and window.worklist[first].state is State.CORRECTED and answers.asked == []
    assert not window.undo_action.isEnabled()  # the other frame's own (empty) history
    key(qtbot, window, Qt.Key.Key_Left)
    assert window.current == first and np.array_equal(window.canvas.label(), painted)
    key(qtbot, window, Qt.Key.Key_Z, CTRL)  # the stroke made before leaving the frame
    assert np.array_equal(window.canvas.label(), before) and window.worklist[first].state is not State.CORRECTED
    key(qtbot, window, Qt.Key.Key_Z, CTRL | SHIFT)
    key(qtbot, window, Qt.Key.Key_S, CTRL)
    key(qtbot, window, Qt.Key.Key_Right)
    key(qtbot, window, Qt.Key.Key_Left)
    assert np.array_equal(window.canvas.label(), painted) and window.worklist[first].state is State.SAVED
    key(qtbot, window, Qt.Key.Key_Z, CTRL)  # undo reaches across saving, too
    assert np.array_equal(window.canvas.label(), before) and window.worklist[first].state is State.CORRECTED


def test_undo_while_the_button_is_held_takes_back_only_the_open_stroke(qtbot, window):
    open_and_wait(qtbot, window)
    paint(qtbot, window, [(480, 320), (500, 320)])
    first = window.canvas.label()
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, LEFT, pos=at(window, 20, 20))
    qtbot.mouseMove(viewport, at(window, 60, 20))
    key(qtbot, window, Qt.Key.Key_Z, CTRL)  # mid-stroke
    assert np.array_equal(window.canvas.label(), first)
    qtbot.mouseMove(viewport, at(window, 100, 20))  # the drag goes on, painting nothing
    qtbot.mouseRelease(viewport, LEFT, pos=at(window, 100, 20))
    assert np.array_equal(window.canvas.label(), first)
    history = window.canvas.label_model.history
    assert len(history) == 1 and history.undo_text == "Brush" and history.can_redo
    key(qtbot, window, Qt.Key.Key_Y, CTRL)  # redo: exactly the part painted before the undo
    redone = window.canvas.label()
    assert redone[20, 40] and not redone[20, 100] and np.array_equal(redone & ~first, redone ^ first)
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert np.array_equal(window.canvas.label(), read_mask(SAMPLES / "mask" / "1.png"))


def test_polygon_points_stay_with_their_frame_and_their_tool(qtbot, window):
    window.open_paths([SAMPLES / "image"])
    viewport = window.canvas.viewport()
    key(qtbot, window, Qt.Key.Key_P)
    qtbot.mouseClick(viewport, LEFT, pos=at(window, 10, 10))  # one point on the first frame
    key(qtbot, window, Qt.Key.Key_Right)
    polygon = window.canvas._tools["polygon"]
    assert polygon._preview.path().isEmpty() and polygon._points == []  # no rubber band from the old frame
    truth = window.canvas.label()
    for corner in ((300, 200), (340, 200)):
        qtbot.mouseClick(viewport, LEFT, pos=at(window, *corner))
    qtbot.mouseDClick(viewport, LEFT, pos=at(window, 340, 240))
    filled = window.canvas.label() & ~truth
    assert filled.any() and not filled[:150].any()  # only this frame's three points

    qtbot.mouseClick(viewport, LEFT, pos=at(window, 10, 10))
    key(qtbot, window, Qt.Key.Key_B)  # another tool and back: the point is gone
    key(qtbot, window, Qt.Key.Key_P)
    assert polygon._points == [] and polygon._preview.path().isEmpty()


def test_measurements_follow_one_nodule_and_a_click_selects_another(qtbot, window):
    open_and_wait(qtbot, window)
    truth = read_mask(SAMPLES / "mask" / "1.png")
    paint(qtbot, window, [(500, 330), (520, 330)])  # a second, small blob
    values = window.measurements.values
    expected = geometry.measure(truth)
    qtbot.waitUntil(lambda: values["nodule"].text() == "largest of 2")
    assert values["height"].text() == f"{expected.height_px} px"  # not the span of both blobs
    key(qtbot, window, Qt.Key.Key_V)
    qtbot.mouseClick(window.canvas.viewport(), LEFT, pos=at(window, 510, 330))
    qtbot.waitUntil(lambda: values["nodule"].text() == "selected of 2")
    small = geometry.measure(geometry.select_component(window.canvas.label(), (510, 330)))
    assert values["height"].text() == f"{small.height_px} px" and small.height_px < 40


def test_caliper_two_clicks_drawn_listed_and_undone(qtbot, window):
    open_and_wait(qtbot, window)
    viewport = window.canvas.viewport()
    key(qtbot, window, Qt.Key.Key_C)
    qtbot.mouseClick(viewport, LEFT, pos=at(window, 100.5, 100.5))
    qtbot.mouseMove(viewport, at(window, 130.5, 140.5))
    qtbot.mouseClick(viewport, LEFT, pos=at(window, 130.5, 140.5))
    [caliper] = window.canvas.label_model.calipers
    assert abs(caliper.length_px - 50) < 1.5
    [item] = [i for i in window.canvas.scene().items() if isinstance(i, CalipersItem)]
    assert not item.path().isEmpty() and window.measurements.values["calipers"].text().endswith(" px")
    assert window.undo_action.text() == "&Undo Caliper"
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert window.canvas.label_model.calipers == () and item.path().isEmpty()
    assert window.measurements.values["calipers"].text() == "–"


def test_caliper_in_millimetres_when_the_spacing_is_known(qtbot):
    canvas = shown_canvas(qtbot)
    canvas.set_image(np.zeros((150, 200), np.uint8), calibration=Calibration((0.5, 0.5)))
    canvas.set_tool("caliper")
    for x in (20.5, 80.5):
        qtbot.mouseClick(canvas.viewport(), LEFT, pos=canvas.mapFromScene(x, 50.5))
    [item] = [i for i in canvas.scene().items() if isinstance(i, CalipersItem)]
    assert [t.text() for t in item.childItems()] == ["30.0 mm (60.0 px)"]


def test_caliper_in_pixels_only_when_an_end_leaves_the_calibrated_region(qtbot):
    canvas = shown_canvas(qtbot)
    canvas.set_image(np.zeros((150, 200), np.uint8), calibration=Calibration((0.5, 0.5), (10, 10, 100, 140)))
    canvas.set_tool("caliper")
    for x in (20.5, 80.5, 50.5, 150.5):  # the first caliper inside the region, the second reaching out of it
        qtbot.mouseClick(canvas.viewport(), LEFT, pos=canvas.mapFromScene(x, 50.5))
    [item] = [i for i in canvas.scene().items() if isinstance(i, CalipersItem)]
    assert [t.text() for t in item.childItems()] == ["30.0 mm (60.0 px)", "100.0 px"]
