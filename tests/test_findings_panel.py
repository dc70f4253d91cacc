"""Findings that change only on purpose (issue 18, item 1), through real widgets and events: the wheel over the
Findings panel scrolls it and never turns a drop-down nobody opened; a drop-down clicked and closed with Esc
leaves the frame keys (arrows, H, Shift+P) to the window; Esc and a click on the image hand the keyboard back
to the canvas; only an open drop-down keeps its keys."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDockWidget, QScrollArea, QWidget
from test_app import answers, models, window  # noqa: F401 (fixtures)
from test_app_models import reactivate

from thyroid_studio.engine.findings.fields import Findings

SHIFT = Qt.KeyboardModifier.ShiftModifier
LEFT = Qt.MouseButton.LeftButton
NOTCH = 120  # one wheel notch, in 1/8 degree


def pointer_on(widget) -> tuple:
    """(its window, the point of that window over the middle of ``widget``): where the mouse rests."""
    return widget.window(), QPointF(widget.mapTo(widget.window(), widget.rect().center()))


def wheel(pointer: tuple, notches: int) -> None:
    """Roll the wheel at ``pointer`` (down for positive ``notches``), one real event a notch (through the window
    system, as a mouse's: it goes to the widget under the pointer, then to its parents if ignored)."""
    window, at = pointer
    for _ in range(abs(notches)):
        QTest.wheelEvent(window.windowHandle(), at, QPoint(0, -NOTCH if notches > 0 else NOTCH))
        QApplication.processEvents()


def case(folder: Path, count: int = 4) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(1, count + 1):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(30, 220, (48, 64), dtype=np.uint8))
    return folder


@pytest.fixture
def reading(qtbot, window, tmp_path):
    """The window on a four-frame case, short enough that the Findings panel has to scroll, frame 2 shown."""
    window.resize(1000, 420)
    reactivate(qtbot, window)  # keys go to the active window's shortcuts
    window.open_paths([case(tmp_path / "case")])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.current == 1
    return window


def findings_area(window) -> QScrollArea:
    area = window.findings_panel.parentWidget().parentWidget()
    assert isinstance(area, QScrollArea)
    return area


def click_open_and_escape(qtbot, combo) -> None:
    """Click a drop-down (its list opens), then Esc (its list closes; it keeps the focus the click gave it)."""
    findings_area(combo.window()).ensureWidgetVisible(combo)  # the panel scrolls to it, as a user would
    qtbot.mouseClick(combo, LEFT)
    qtbot.waitUntil(combo.view().isVisible)
    qtbot.keyClick(combo.view(), Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not combo.view().isVisible())
    assert combo.hasFocus()


def test_the_wheel_over_the_panel_scrolls_it_and_turns_no_drop_down(qtbot, reading):
    window, margins = reading, reading.findings_panel.combos["margins"]
    area = findings_area(window)
    area.ensureWidgetVisible(margins)  # the pointer rests on "Margins", the panel scrolled half-way
    scrollbar, start = area.verticalScrollBar(), area.verticalScrollBar().value()
    assert 0 < start < scrollbar.maximum()
    pointer = pointer_on(margins)
    wheel(pointer, 10)  # ten notches down; today "Margins" becomes "spiculated" and the frame "corrected"
    assert scrollbar.value() > start  # the panel scrolled instead, other drop-downs passing under the pointer
    wheel(pointer, -20)
    assert scrollbar.value() == 0
    assert all(combo.currentData() is None for combo in window.findings_panel.combos.values())
    assert window.canvas.label_model.findings == Findings() and not window.canvas.label_model.history.can_undo
    assert window.worklist[window.current].state.value != "corrected" and not margins.hasFocus()


def test_a_clicked_and_closed_drop_down_leaves_the_frame_keys_to_the_window(qtbot, reading):
    window = reading
    combos = window.findings_panel.combos
    click_open_and_escape(qtbot, combos["echogenicity"])
    qtbot.keyClick(combos["echogenicity"], Qt.Key.Key_H)  # Fill holes: no change to an empty label, no finding
    qtbot.keyClick(combos["echogenicity"], Qt.Key.Key_Right)
    assert window.current == 2
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Down)
    assert window.current == 3
    click_open_and_escape(qtbot, combos["composition"])
    qtbot.keyClick(combos["composition"], Qt.Key.Key_Up)
    assert window.current == 2
    qtbot.keyClick(combos["composition"], Qt.Key.Key_P, SHIFT)  # Cine > Propagate, not "predominantly-cystic"
    assert "not part of a clip" in window.statusBar().currentMessage()
    for row in range(len(window.worklist)):
        assert window.worklist[row].findings == Findings(), row
    assert all(combo.currentData() is None for combo in combos.values())


def test_esc_and_a_click_on_the_image_hand_the_keyboard_back_to_the_canvas(qtbot, reading):
    window, combo = reading, reading.findings_panel.combos["calcifications"]
    click_open_and_escape(qtbot, combo)
    qtbot.keyClick(combo, Qt.Key.Key_Escape)
    assert QApplication.focusWidget() is window.canvas
    click_open_and_escape(qtbot, combo)
    qtbot.mouseClick(window.canvas.viewport(), LEFT, pos=window.canvas.viewport().rect().center())
    assert QApplication.focusWidget() is window.canvas
    wheel(pointer_on(combo), 3)
    assert combo.currentData() is None


def test_only_an_open_drop_down_keeps_its_keys_and_a_choice_hands_them_back(qtbot, reading):
    window, combo = reading, reading.findings_panel.combos["composition"]
    findings_area(window).ensureWidgetVisible(combo)
    qtbot.mouseClick(combo, LEFT)
    qtbot.waitUntil(combo.view().isVisible)
    for _ in range(2):
        qtbot.keyClick(combo.view(), Qt.Key.Key_Down)  # moves in the open list; the frame stays
    assert window.current == 1
    qtbot.keyClick(combo.view(), Qt.Key.Key_Return)
    reactivate(qtbot, window)  # the offscreen platform gives no focus back once the list closes
    chosen = combo.itemData(2)
    assert combo.currentData() == chosen and window.canvas.label_model.findings == Findings({"composition": chosen})
    assert QApplication.focusWidget() is window.canvas  # the choice made, the frame keys work at once
    wheel(pointer_on(combo), 3)
    assert combo.currentData() == chosen
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.current == 2 and window.worklist[1].findings == Findings({"composition": chosen})


def test_the_frame_keys_work_from_every_panel_widget_that_takes_the_focus(qtbot, reading):
    window = reading
    focusable = [w for dock in window.findChildren(QDockWidget) for w in dock.findChildren(QWidget)
                 if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isVisibleTo(window)]
    assert len(focusable) >= 5
    for widget in focusable:
        widget.setFocus()
        start = window.current
        qtbot.keyClick(widget, Qt.Key.Key_Right if start < 2 else Qt.Key.Key_Left)
        assert window.current != start, widget
