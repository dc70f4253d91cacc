"""The Findings panel, File > Export report and Help > About through real widgets and events (issue 8
items 4 and 5): the primary model's predicted findings (tiny models with and without findings heads),
the user's findings as undoable edits of the frame's label, ACR TI-RADS from both and the mask's shape,
the size, findings autosaved and recovered, the report PDF's text, LiteMedSAM's card. Findings that change only
on purpose (issue 18, item 1): the wheel over the panel scrolls it and never turns a drop-down nobody opened; a
drop-down clicked and closed with Esc leaves the frame keys (arrows, H, Shift+P) to the window; Esc and a click on
the image hand the keyboard back to the canvas; only an open drop-down keeps its keys."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDockWidget, QFileDialog, QMessageBox, QScrollArea, QTabWidget, QWidget

from thyroid_studio.app.autosave import Autosave
from thyroid_studio.app.dialogs.about_dialog import AboutDialog
from thyroid_studio.app.launch import open_window
from thyroid_studio.app.panels.findings_panel import NO_HEADS
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.findings.fields import FIELDS, Findings, merged
from thyroid_studio.engine.findings.shape import shape_of
from thyroid_studio.engine.findings.tirads import score
from thyroid_studio.engine.labels.worklist import State

from app_driving import SAMPLE, SAMPLES, case_folder, open_and_wait, paint, reactivate, tiny_defaults
from frame_files import burnt_in_dicom

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def models(request, tmp_path, monkeypatch) -> dict[str, Path]:
    """Tiny untrained TRFE-Net (the primary model; with findings heads unless the test passes False) and
    U-Net as the shipped defaults; the user folder in tmp."""
    heads = getattr(request, "param", True)
    vocabulary = {k: list(v) for k, v in FIELDS.items()} if heads else {}
    return tiny_defaults(tmp_path, monkeypatch, vocabulary, version="5")


def choose(qtbot, window, field: str, key=Qt.Key.Key_End) -> None:
    """Pick a class in a field's drop-down with the keyboard: open it (Space), End: the last class, Home: unknown."""
    combo = window.findings_panel.combos[field]
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Space)
    qtbot.waitUntil(combo.view().isVisible)
    qtbot.keyClick(combo.view(), key)
    qtbot.keyClick(combo.view(), Qt.Key.Key_Return)


def table(window) -> dict[str, tuple[str, ...]]:
    panel = window.findings_panel.table
    rows = [[panel.item(r, c).text() for c in range(4)] for r in range(panel.rowCount())]
    return {row[0]: tuple(row[1:]) for row in rows}


def expected_level(window) -> str:
    entry, label = window.worklist[window.current], window.canvas.label_model
    result = score(merged(label.findings, entry.predictions["trfe"].findings), 
                   shape_of(label.mask, window.worklist.spacing_for(window.current, label.mask)))
    return f"{result.level.name} ({result.level.title}): {result.total} points"


def test_predicted_findings_user_findings_undo_and_tirads(qtbot, window):
    row = open_and_wait(qtbot, window)
    panel = window.findings_panel
    predicted = window.worklist[row].predictions["trfe"].findings
    assert predicted is not None and f"= {predicted.suspicious:.2f}" in panel.model_note.text()
    for name, classes in FIELDS.items():
        probs = predicted.probabilities[name]
        combo = panel.combos[name]
        texts = [combo.itemText(i) for i in range(combo.count())]
        assert texts == ["unknown", *(f"{c}  ({probs[c]:.2f})" for c in classes)]
        best = max(probs, key=probs.get)
        assert panel.predicted[name].text() == f"model: {best} {probs[best]:.2f}" and combo.currentData() is None
    assert table(window)["Composition"][2] == "model" and table(window)["Shape"][2] == "mask"
    assert panel.level.text() == expected_level(window)

    choose(qtbot, window, "composition")  # solid, over the model's guess
    label = window.canvas.label_model
    assert window.current == row and label.findings == Findings({"composition": "solid"})
    assert table(window)["Composition"] == ("solid or almost completely solid", "2", "user")
    assert panel.level.text() == expected_level(window) and window.worklist[row].state is State.CORRECTED
    assert window.undo_action.text() == "&Undo Composition: solid"
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, CTRL)  # in the label's own history
    assert label.findings == Findings() and panel.combos["composition"].currentData() is None
    assert table(window)["Composition"][2] == "model" and window.worklist[row].state is State.AI
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, CTRL | SHIFT)
    assert panel.combos["composition"].currentData() == "solid" and window.worklist[row].unsaved


@pytest.mark.parametrize("models", [False], indirect=True)
def test_a_model_without_findings_heads_scores_the_users_findings_and_the_mask(qtbot, window):
    row = open_and_wait(qtbot, window)
    panel = window.findings_panel
    assert panel.model_note.text() == NO_HEADS and all(label.text() == "" for label in panel.predicted.values())
    assert panel.combos["margins"].itemText(5) == "spiculated"  # no probabilities to show
    truth = read_mask(SAMPLES / "mask" / "1.png")
    assert table(window)["Composition"] == ("unknown", "-", "") and table(window)["Shape"][2] == "mask"
    assert panel.size.text().startswith("Size: ") and "px" in panel.size.text()
    for name in FIELDS:
        choose(qtbot, window, name)  # the last class of each: 5, solid, marked-hypo, spiculated, micro
    assert window.canvas.label_model.findings == Findings({name: classes[-1] for name, classes in FIELDS.items()})
    shape = shape_of(truth)
    points = 2 + 3 + 2 + 3 + (3 if shape.taller_than_wide else 0)
    assert panel.level.text() == f"TR5 (highly suspicious): {points} points" == expected_level(window)
    for _ in FIELDS:
        qtbot.keyClick(window.canvas, Qt.Key.Key_Z, CTRL)
    assert window.canvas.label_model.findings == Findings() and window.worklist[row].state is State.AI
    assert np.array_equal(window.canvas.label(), truth)  # the findings' undo left the mask alone


def test_size_in_millimetres_when_the_frame_has_a_spacing(qtbot, window, tmp_path):
    path, _ = burnt_in_dicom(tmp_path / "us.dcm")
    window.open_paths([path])
    paint(qtbot, window, [(40, 30), (70, 32)])
    qtbot.waitUntil(lambda: " mm (longest × perpendicular)" in window.findings_panel.size.text())


def test_export_report_writes_the_shown_frame_as_a_pdf(qtbot, window, tmp_path, monkeypatch):
    row = open_and_wait(qtbot, window)
    choose(qtbot, window, "margins")  # spiculated
    asked = []

    def save_dialog(parent, title, default, *args, **kwargs):
        asked.append(default)
        return str(tmp_path / "out" / "report"), "PDF (*.pdf)"

    (tmp_path / "out").mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    qtbot.keyClick(window.canvas, Qt.Key.Key_E, CTRL)  # File > Export report…
    assert asked == [str(SAMPLE.parent / "1.pdf")]  # the frame's name
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report.pdf"]  # nothing partial left beside it
    pdf = pdfium.PdfDocument(str(tmp_path / "out" / "report.pdf"))
    assert len(pdf) == 1
    text = pdf[0].get_textpage().get_text_range()
    level = window.findings_panel.level.text().split(":")[0]  # "TR4 (moderately suspicious)"
    suspicious = f"{window.worklist[row].predictions['trfe'].findings.suspicious:.2f}"
    for expected in ("Thyroid nodule report: 1", "trfe-tiny version 5", "For research, not diagnosis.", "spiculated",
                     "Measured on the label.", level, suspicious):
        assert expected in text, expected
    assert window.settings.value("report/folder") == str(tmp_path / "out")


def test_findings_are_autosaved_and_recovered(qtbot, models, tmp_path, monkeypatch):
    folder = tmp_path / "home" / "autosave"
    autosave = Autosave(folder)
    label = read_mask(SAMPLES / "mask" / "1.png")
    autosave.store(SAMPLE, 0, label, None, "1", Findings({"echogenicity": "hypoechogenicity"}))
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    window = open_window([SAMPLE], QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), autosave)
    qtbot.addWidget(window)
    entry = window.worklist[window.worklist.row_of(SAMPLE)]
    assert entry.findings == Findings({"echogenicity": "hypoechogenicity"}) and entry.state is State.CORRECTED
    assert window.findings_panel.combos["echogenicity"].currentData() == "hypoechogenicity"
    (next(folder.glob("*.json"))).write_text(json.dumps({"source": str(SAMPLE), "index": 0, "findings": ["x"]}))
    assert "damaged" in Autosave(folder).pending().problems[0]  # a damaged description never raises
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Discard)
    window.close()


def test_about_lists_the_models_and_litemedsam(qtbot, window, models):
    shutil.copy(REPO / "models" / "litemedsam.md", models["trfe"].parent / "litemedsam.md")
    (models["trfe"].parent / "litemedsam.pt").write_bytes(b"")  # shipped beside the segmentation models
    about = AboutDialog(window)
    qtbot.addWidget(about)
    tabs = about.findChild(QTabWidget)
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["About", "trfe-tiny", "unet-tiny", "litemedsam"]
    about_text, card = (tabs.widget(i).toPlainText() for i in (0, 3))
    assert "For research, not diagnosis" in about_text and "Segment anything in medical images" in about_text
    assert card.startswith("litemedsam (LiteMedSAM, box prompts)") and "For research, not diagnosis" in card


# ----------------------------------------------------------------------------- findings that change only on purpose

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


@pytest.fixture
def reading(qtbot, window, tmp_path):
    """The window on a four-frame case, short enough that the Findings panel has to scroll, frame 2 shown."""
    window.resize(1000, 420)
    reactivate(qtbot, window)  # keys go to the active window's shortcuts
    window.open_paths([case_folder(tmp_path / "case", 4)])
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
