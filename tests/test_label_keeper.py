"""Edits live with their frame, and a frame is its file (issue 18, items 2 and 3), through real widgets and events:
stepping through edited frames asks nothing and keeps each label (corrected, undo intact, autosaved); Ctrl+S saves
the shown frame, Ctrl+Shift+S every corrected one with one summary; closing asks once, naming the frames; the
optional save on leaving a frame; an accepted (or edited) propagated label is corrected like any edit; DDTI's 1
and 2 (the same pixels, two nodules) are two items that resume each with its own label; a renamed file is found
by its pixels, and the app says so."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from test_app import answers, models, paint, window  # noqa: F401 (fixtures)
from test_app_saving import case_folder, key, launch, records

from thyroid_studio.app.autosave import Autosave
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.labels.worklist import State

Button = QMessageBox.StandardButton
CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def told(monkeypatch) -> list[tuple[str, str]]:
    """The (title, text) of every information or warning box, answered at once (no modal loop in a test)."""
    seen = []
    for name in ("information", "warning"):
        monkeypatch.setattr(QMessageBox, name, lambda parent, title, text, *a, **k: seen.append((title, text)))
    return seen


def edit_and_step(qtbot, window, steps: int) -> list[np.ndarray]:
    """Paint on the shown frame and step on, ``steps`` times; the labels painted, in order."""
    painted = []
    for i in range(steps):
        paint(qtbot, window, [(10 + i, 20), (40, 24)])
        painted.append(window.canvas.label())
        key(qtbot, window, Qt.Key.Key_Right)
    return painted


def test_stepping_through_twenty_edited_frames_asks_nothing_and_keeps_every_edit(qtbot, window, answers, tmp_path):
    window.open_paths([case_folder(tmp_path / "case", 21)])
    painted = edit_and_step(qtbot, window, 20)  # today: one Save / Discard / Cancel question per step (20)
    assert answers.asked == [] and window.current == 20
    assert [window.worklist[row].state for row in range(20)] == [State.CORRECTED] * 20
    autosave = Autosave(tmp_path / "home" / "autosave")
    qtbot.waitUntil(lambda: len(autosave.pending().labels) == 20, timeout=10000)  # autosaved as before
    key(qtbot, window, Qt.Key.Key_Home)
    assert np.array_equal(window.canvas.label(), painted[0])
    assert window.undo_action.text() == "&Undo Brush"
    key(qtbot, window, Qt.Key.Key_Z, CTRL)  # its own history, intact
    assert not window.canvas.label().any() and window.worklist[0].state is not State.CORRECTED
    for step in range(19):
        key(qtbot, window, Qt.Key.Key_Left if step % 2 else Qt.Key.Key_Right)  # back and forth: still nothing asked
    assert answers.asked == []


def test_save_all_corrected_saves_every_corrected_frame_with_one_summary(qtbot, window, answers, told, tmp_path):
    dataset = tmp_path / "dataset"
    window.settings.setValue("dataset/folder", str(dataset))
    window.open_paths([case_folder(tmp_path / "case", 6)])
    edit_and_step(qtbot, window, 4)
    window.worklist.set_propagated(5, np.ones((48, 64), bool), "litemedsam (propagated)")  # not reviewed
    key(qtbot, window, Qt.Key.Key_S, CTRL | SHIFT)
    assert [r["source"].rsplit("/", 1)[1] for r in records(dataset)] == ["1.png", "2.png", "3.png", "4.png"]
    assert [window.worklist[row].state for row in range(4)] == [State.SAVED] * 4
    assert window.worklist[5].state is State.PROPAGATED and answers.asked == []
    assert len(told) == 1  # one summary for the four frames
    title, text = told[0]
    assert title == "Saved to the dataset" and text.startswith("Saved 4 of 4 frames in")
    assert "1 propagated frame(s) not reviewed yet, not saved" in text

    key(qtbot, window, Qt.Key.Key_Home)
    paint(qtbot, window, [(30, 30), (50, 30)])
    key(qtbot, window, Qt.Key.Key_Right)
    paint(qtbot, window, [(30, 30), (50, 30)])
    answers.append(Button.No)  # both already saved with another mask: asked once for the two
    key(qtbot, window, Qt.Key.Key_S, CTRL | SHIFT)
    assert answers.asked == ["Already in the dataset"]
    assert answers.texts[0].startswith("Replace the saved labels of 2 frames already in the dataset?")
    assert len(told) == 2 and "Not saved (2)" in told[1][1] and len(records(dataset)) == 4


def test_closing_asks_once_naming_the_unsaved_frames(qtbot, window, answers, told, tmp_path):
    window.settings.setValue("dataset/folder", str(tmp_path / "dataset"))
    window.open_paths([case_folder(tmp_path / "case", 5)])
    edit_and_step(qtbot, window, 3)
    window.worklist.set_propagated(4, np.ones((48, 64), bool), "litemedsam (propagated)")
    answers.append(Button.Cancel)
    window.close()
    assert window.isVisible() and answers.asked == ["Unsaved labels"]
    assert answers.texts[0].startswith("4 frame(s) have labels not saved to the dataset: 1, 2, 3, 5 (propagated")
    answers.append(Button.Save)
    window.close()
    assert not window.isVisible() and len(answers.asked) == 2 and len(told) == 1
    assert len(records(tmp_path / "dataset")) == 4 and window.worklist.unsaved_rows() == []


def test_saving_when_leaving_a_frame_is_a_setting(qtbot, models, answers, tmp_path):
    settings, dataset = tmp_path / "settings.ini", tmp_path / "dataset"
    window = launch(qtbot, settings)
    window.settings.setValue("dataset/folder", str(dataset))
    assert not window.save_when_leaving_action.isChecked()  # off by default
    window.save_when_leaving_action.trigger()
    window.open_paths([case_folder(tmp_path / "case", 3)])
    paint(qtbot, window, [(30, 30), (50, 30)])
    key(qtbot, window, Qt.Key.Key_Right)
    assert window.worklist[0].state is State.SAVED and answers.asked == [] and len(records(dataset)) == 1
    key(qtbot, window, Qt.Key.Key_Right)  # nothing edited: nothing saved
    assert len(records(dataset)) == 1
    window.close()
    window.settings.sync()
    assert launch(qtbot, settings).save_when_leaving_action.isChecked()  # remembered


def test_an_accepted_or_edited_propagated_label_is_corrected_and_leaving_it_asks_nothing(qtbot, window, answers,
                                                                                          tmp_path):
    window.open_paths([case_folder(tmp_path / "case", 4)])
    for row in (1, 2):
        mask = np.zeros((48, 64), bool)
        mask[10:30, 10:30] = True
        window.worklist.set_propagated(row, mask, "litemedsam (propagated)")
    key(qtbot, window, Qt.Key.Key_Right)
    key(qtbot, window, Qt.Key.Key_Return, CTRL)  # Cine > Accept propagated label
    assert window.worklist[1].state is State.CORRECTED
    key(qtbot, window, Qt.Key.Key_Right)  # today: "Unsaved label: save it to the dataset?"
    assert window.current == 2 and answers.asked == []
    paint(qtbot, window, [(40, 40), (50, 40)])  # an edit reviews it too
    assert window.worklist[2].state is State.CORRECTED
    key(qtbot, window, Qt.Key.Key_Z, CTRL)  # undoing the edit leaves it reviewed: the frame keeps its propagated label
    assert window.worklist[2].state is State.CORRECTED and window.canvas.label()[15, 15]
    key(qtbot, window, Qt.Key.Key_Right)
    assert answers.asked == []


# ----------------------------------------------------------------------------- which frame is which


def test_ddti_1_and_2_are_two_items_each_resumed_with_its_own_label(qtbot, models, answers, shared_data, tmp_path):
    """The issue's scenario: DDTI 1 and 2 hold the same pixels and different nodules (59851 and 59616 px)."""
    one, two = (shared_data / "ddti" / "image" / f"{n}.png" for n in (1, 2))
    truth = {n: read_mask(shared_data / "ddti" / "mask" / f"{n}.png") for n in (1, 2)}
    assert [int(truth[n].sum()) for n in (1, 2)] == [59851, 59616]
    settings, dataset = tmp_path / "settings.ini", tmp_path / "dataset"
    first = launch(qtbot, settings)
    first.settings.setValue("dataset/folder", str(dataset))
    first.open_paths([one, two])
    key(qtbot, first, Qt.Key.Key_S, CTRL)  # save 1 (its ground truth is its label)
    first.close()
    first.settings.sync()

    second = launch(qtbot, settings)
    second.open_paths([one, two])
    rows = [second.worklist.row_of(path) for path in (one, two)]
    qtbot.waitUntil(lambda: second.worklist[rows[0]].state is State.SAVED, timeout=10000)
    qtbot.wait(300)  # the look-up of 2 has had its time too
    assert second.worklist[rows[1]].state is not State.SAVED  # today: "saved", with 1's label
    key(qtbot, second, Qt.Key.Key_N)  # next unsaved: 2, not skipped
    assert second.current == rows[1] and int(second.canvas.label().sum()) == 59616
    key(qtbot, second, Qt.Key.Key_S, CTRL)  # today: "Replace the saved mask of 0000? 2 is already saved"
    assert answers.asked == [] and [r["key"] for r in records(dataset)] == ["0000", "0001"]
    second.close()
    second.settings.sync()

    third = launch(qtbot, settings)
    third.open_paths([one, two])
    qtbot.waitUntil(lambda: all(third.worklist[r].state is State.SAVED for r in rows), timeout=10000)
    assert [int(third.worklist.label(r).mask.sum()) for r in rows] == [59851, 59616]
    key(qtbot, third, Qt.Key.Key_N)
    assert third.statusBar().currentMessage() == "Every frame is saved"


def test_a_renamed_file_resumes_by_its_pixels_and_the_app_says_so(qtbot, models, answers, tmp_path):
    settings, dataset = tmp_path / "settings.ini", tmp_path / "dataset"
    folder = case_folder(tmp_path / "case", 2)
    first = launch(qtbot, settings)
    first.settings.setValue("dataset/folder", str(dataset))
    first.open_paths([folder / "1.png"])
    paint(qtbot, first, [(30, 30), (50, 30)])
    saved = first.canvas.label()
    key(qtbot, first, Qt.Key.Key_S, CTRL)
    first.close()
    first.settings.sync()
    renamed = Path(folder / "1.png").rename(folder / "first.png")

    second = launch(qtbot, settings)
    second.open_paths([renamed])
    qtbot.waitUntil(lambda: second.worklist[0].state is State.SAVED, timeout=10000)
    assert np.array_equal(second.canvas.label(), saved)
    message = second.statusBar().currentMessage()
    assert "first: found in the dataset by its pixels only, as 0000" in message and "renamed or moved?" in message
    paint(qtbot, second, [(10, 40), (20, 40)])
    answers.append(Button.Yes)
    key(qtbot, second, Qt.Key.Key_S, CTRL)
    assert "which is not there any more (renamed or moved?)" in answers.texts[-1]
    assert [r["op"] for r in records(dataset)] == ["add", "replace"] and records(dataset)[1]["source"] == str(renamed)
