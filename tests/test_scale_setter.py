"""Set scale in the app (app/scale_setter.py, the Set scale tool, the Set scale dialog) through real
widgets and events: the ruler read and offered but never applied on its own, confirmed with Enter and
kept for the folder, a line drawn and typed in for the file, the status bar, calipers and measurements in
millimetres, the scale kept between sessions and recorded with a saved item, then forgotten."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDialogButtonBox, QRadioButton

from thyroid_studio.app.layers import RulerItem
from thyroid_studio.app.main_window import MainWindow
from thyroid_studio.engine.datasets.index import DatasetIndex

from app_driving import LEFT, at
from ruler_frames import draw_ticks, speckle_frame


@pytest.fixture
def case(tmp_path) -> Path:
    """a.png with a depth ruler (ticks 50 px apart: 0.2 mm/px), b.png without one, in one folder."""
    folder = tmp_path / "case"
    folder.mkdir()
    ruled = speckle_frame()
    draw_ticks(ruled, 50.0, 7)
    assert cv2.imwrite(str(folder / "a.png"), ruled)
    assert cv2.imwrite(str(folder / "b.png"), speckle_frame(seed=2))
    return folder


def ok(qtbot, dialog) -> None:
    qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok), LEFT)


def caliper(qtbot, window, start, end) -> str:
    """Measure with the caliper tool (two clicks); the Measurements panel's text for it."""
    qtbot.keyClick(window.canvas, Qt.Key.Key_C)
    viewport = window.canvas.viewport()
    qtbot.mouseClick(viewport, LEFT, pos=at(window, *start))
    qtbot.mouseClick(viewport, LEFT, pos=at(window, *end))
    return window.measurements.values["calipers"].text().splitlines()[-1]


def test_the_ruler_is_offered_confirmed_with_enter_and_kept_for_the_folder(qtbot, window, case, tmp_path):
    window.open_paths([case])
    a, b = window.worklist.row_of(case / "a.png"), window.worklist.row_of(case / "b.png")
    assert window.current == a
    qtbot.waitUntil(lambda: window.worklist[a].ruler_read, timeout=5000)
    assert window.worklist.calibration(a) is None  # offered, never applied on its own
    assert window.scale_setter.label.text() == "Pixels only; the ruler reads 0.2 mm/px: Set scale (K) to use it"
    assert caliper(qtbot, window, (100.5, 100.5), (100.5, 150.5)) == "50.0 px"

    qtbot.keyClick(window.canvas, Qt.Key.Key_K)
    assert window.canvas.tool == "scale"
    [ticks] = [i for i in window.canvas.scene().items() if isinstance(i, RulerItem) and not i.path().isEmpty()]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    dialog = window.scale_setter.dialog
    assert dialog.isVisible() and dialog.length.value() == 60.0  # six intervals of 1 cm
    qtbot.mouseClick(dialog.findChild(QRadioButton, "folder"), LEFT)
    ok(qtbot, dialog)

    calibration = window.worklist.calibration(a)
    assert calibration.source == "ruler" and calibration.spacing_mm == pytest.approx((0.2, 0.2), rel=0.005)
    assert window.worklist.calibration(b) == calibration  # the folder's other file too
    assert window.scale_setter.label.text() == "Scale: 0.2 mm/px from the depth ruler's tick marks"
    assert window.measurements.values["calipers"].text() == "10.0 mm (50.0 px)"  # the caliper follows

    window.settings.sync()  # a new session on the same settings keeps the scale
    second = MainWindow(settings=QSettings(window.settings.fileName(), QSettings.Format.IniFormat))
    qtbot.addWidget(second)
    second.open_paths([case / "b.png"])
    assert second.worklist.calibration(second.current) == calibration
    second.close()


def test_a_line_drawn_and_typed_in_is_the_users_scale_for_the_file_saved_then_forgotten(qtbot, window, case, tmp_path):
    window.open_paths([case])
    a, b = window.worklist.row_of(case / "a.png"), window.worklist.row_of(case / "b.png")
    qtbot.waitUntil(lambda: window.worklist[a].ruler_read, timeout=5000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_K)
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, LEFT, pos=at(window, 60.5, 100.5))
    qtbot.mouseMove(viewport, at(window, 60.5, 140.5))
    qtbot.mouseMove(viewport, at(window, 60.5, 180.5))
    qtbot.mouseRelease(viewport, LEFT, pos=at(window, 60.5, 180.5))  # a drag along 80 px
    dialog = window.scale_setter.dialog
    assert dialog.length.value() == 10.0 and dialog.findChild(QRadioButton, "file").isChecked()
    dialog.length.selectAll()
    qtbot.keyClicks(dialog.length, "20")
    assert "0.2500 mm per pixel" in dialog.result.text()
    ok(qtbot, dialog)
    assert window.worklist.calibration(a).spacing_mm == pytest.approx((0.25, 0.25))
    assert window.worklist.calibration(a).source == "user" and window.worklist.calibration(b) is None
    assert window.scale_setter.label.text() == "Scale: 0.25 mm/px from a length set by the user"

    window.settings.setValue("dataset/folder", str(tmp_path / "dataset"))
    assert window.save_current()
    item = next(iter(DatasetIndex(tmp_path / "dataset").items.values()))
    assert item.spacing_mm == pytest.approx((0.25, 0.25)) and item.scale_source == "user"

    next(action for action in window.actions() if action.text().startswith("&Forget the set scale")).trigger()
    assert window.worklist.calibration(a) is None
    assert json.loads(window.settings.value("scales/rules")) == []
    assert window.scale_setter.label.text().startswith("Pixels only; the ruler reads 0.2 mm/px")


def test_esc_drops_a_line_and_cancel_keeps_the_frame_in_pixels(qtbot, window, case):
    window.open_paths([case / "b.png"])  # no ruler: Enter proposes nothing
    row = window.current
    qtbot.waitUntil(lambda: window.worklist[row].ruler_read, timeout=5000)
    assert window.scale_setter.label.text() == "Pixels only (Set scale: K)"
    qtbot.keyClick(window.canvas, Qt.Key.Key_K)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert window.scale_setter.dialog is None
    viewport = window.canvas.viewport()
    qtbot.mouseClick(viewport, LEFT, pos=at(window, 50.5, 50.5))  # first end of a two-click line
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    qtbot.mouseClick(viewport, LEFT, pos=at(window, 90.5, 50.5))  # a new first end, not a line's second
    assert window.scale_setter.dialog is None
    qtbot.mouseClick(viewport, LEFT, pos=at(window, 150.5, 50.5))
    dialog = window.scale_setter.dialog
    assert dialog is not None and dialog.line.length_px == 60.0  # from the second first end
    dialog.length.selectAll()
    qtbot.keyClicks(dialog.length, "0.03")  # 0.0005 mm per pixel: no scanner's
    assert not dialog.ok.isEnabled() and "not from 0.001 to 10" in dialog.result.text()
    qtbot.keyClick(dialog.length, Qt.Key.Key_Return)
    assert dialog.isVisible()
    qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Cancel), LEFT)
    assert window.worklist.calibration(row) is None and len(window.worklist.scales) == 0
