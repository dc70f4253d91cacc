"""Keeping labels through real widgets and events (issue 9 item 1): one writer per dataset folder, asking
before a saved mask is replaced (never a second copy), frames found in the dataset open with their saved
label and findings, "Next unsaved frame", DICOM frames (the black-out question, once a session; black-out
and pixel spacing in the dataset), and recovery from any autosave leftover (bugs 4 and 13). Issue 18: edits live
with their frame (stepping through edited frames asks nothing; Ctrl+S, Save all corrected with one summary, one
question on closing, the optional save on leaving a frame, accepted or edited propagated labels are corrected),
and a frame is its file: DDTI's 1 and 2 (the same pixels, two nodules) are two items, each resumed with its own
label; a renamed file is found by its pixels, and the app says so."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from thyroid_studio.app import label_keeper
from thyroid_studio.app.autosave import Autosave
from thyroid_studio.app.label_keeper import AS_IS, BLACK_OUT
from thyroid_studio.app.launch import open_window
from thyroid_studio.app.main_window import MainWindow
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.datasets.writer import DatasetWriter
from thyroid_studio.engine.findings.fields import Findings, read_labels
from thyroid_studio.engine.io.frames import read_frame
from thyroid_studio.engine.labels.worklist import State
from thyroid_studio.engine.preprocessing import ultrasound_region

from app_driving import SAMPLE, SAMPLES, button_named, case_folder, click_in_next_modal, paint, reactivate
from frame_files import burnt_in_dicom, write_dicom

Button = QMessageBox.StandardButton
CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def launch(qtbot, settings_file: Path) -> MainWindow:
    """A new session of the app on the settings (dataset folder, models) kept in ``settings_file``."""
    window = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    reactivate(qtbot, window)  # keys go to the active window's shortcuts
    return window


def key(qtbot, window: MainWindow, k, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window.canvas, k, modifiers)


def records(dataset: Path) -> list[dict]:
    return [json.loads(line) for line in (dataset / "records.jsonl").read_text().splitlines()[1:]]


def test_a_case_resumes_where_it_was_left(qtbot, models, answers, tmp_path):
    """Issue 9's scenario: correct frame 77 of a folder, save, quit, relaunch on the same folder with the
    same dataset folder: 77 opens with the saved label and findings, "saved"; saving again asks first."""
    folder, dataset, settings = case_folder(tmp_path / "case", 80), tmp_path / "dataset", tmp_path / "settings.ini"
    first = launch(qtbot, settings)
    first.settings.setValue("dataset/folder", str(dataset))
    first.open_paths([folder])
    key(qtbot, first, Qt.Key.Key_End)
    for _ in range(3):
        key(qtbot, first, Qt.Key.Key_Left)
    assert first.worklist[first.current].name == "77"
    paint(qtbot, first, [(20, 20), (40, 24)])
    combo = first.findings_panel.combos["composition"]
    qtbot.mouseClick(combo, Qt.MouseButton.LeftButton)  # opened; End in its list is the last class, not the last frame
    qtbot.waitUntil(combo.view().isVisible)
    qtbot.keyClick(combo.view(), Qt.Key.Key_End)
    qtbot.keyClick(combo.view(), Qt.Key.Key_Return)
    assert first.worklist[first.current].name == "77"
    assert first.canvas.label_model.findings == Findings({"composition": "solid"})
    corrected = first.canvas.label()
    key(qtbot, first, Qt.Key.Key_S, CTRL)
    assert first.worklist[first.current].state is State.SAVED
    assert read_labels(dataset / "labels.csv")["0000"] == Findings({"composition": "solid"})
    first.close()
    first.settings.sync()

    second = launch(qtbot, settings)
    second.open_paths([folder])
    row = second.worklist.row_of(folder / "77.png")
    qtbot.waitUntil(lambda: second.worklist[row].state is State.SAVED, timeout=10000)
    assert [e.name for e in second.worklist.entries if e.state is State.SAVED] == ["77"]
    key(qtbot, second, Qt.Key.Key_End)
    for _ in range(3):
        key(qtbot, second, Qt.Key.Key_Left)
    assert second.current == row and np.array_equal(second.canvas.label(), corrected)
    assert second.findings_panel.combos["composition"].currentData() == "solid"
    assert second.frames_model.data(second.frames_model.index(row)).split("\n")[1] == "saved"

    paint(qtbot, second, [(10, 40), (30, 40)])
    again = second.canvas.label()
    answers.append(Button.No)
    key(qtbot, second, Qt.Key.Key_S, CTRL)
    assert answers.asked[-1] == "Already in the dataset"
    assert answers.texts[-1].startswith("Replace the saved mask of 0000?")
    assert second.worklist[row].state is State.CORRECTED
    assert np.array_equal(read_mask(dataset / "trainval-mask" / "0000.png"), corrected)  # declined: kept
    answers.append(Button.Yes)
    key(qtbot, second, Qt.Key.Key_S, CTRL)
    assert second.worklist[row].state is State.SAVED
    assert np.array_equal(read_mask(dataset / "trainval-mask" / "0000.png"), again)
    assert np.array_equal(read_mask(dataset / "history" / "0000.r1.png"), corrected)  # the previous mask kept
    assert sorted(p.name for p in (dataset / "trainval-image").iterdir()) == ["0000.png"]  # never a second copy
    assert [r["op"] for r in records(dataset)] == ["add", "replace"]
    asked = len(answers.asked)
    key(qtbot, second, Qt.Key.Key_S, CTRL)  # the same label again: nothing to replace, no question
    assert len(answers.asked) == asked and len(records(dataset)) == 2 and second.worklist[row].state is State.SAVED


def test_a_dataset_folder_chosen_later_resumes_the_open_frames_and_next_unsaved_skips_them(
        qtbot, window, tmp_path, monkeypatch):
    folder, dataset = case_folder(tmp_path / "case", 5), tmp_path / "dataset"
    writer = DatasetWriter(dataset)
    saved = {}
    for name in ("2", "3", "5"):
        frame = read_frame(folder / f"{name}.png")
        saved[name] = np.zeros(frame.pixels.shape, bool)
        saved[name][5:20, 5:int(name) * 5] = True
        writer.add(folder / f"{name}.png", saved[name], source=folder / f"{name}.png",
                   findings=Findings({"margins": "spiculated"}) if name == "3" else None)
    cv2.imwrite(str(folder / "5.png"), np.full((48, 64), 99, np.uint8))  # changed since it was saved: found by record

    window.open_paths([folder])
    assert not any(e.state is State.SAVED for e in window.worklist.entries)
    monkeypatch.setattr(label_keeper, "choose_folder", lambda *args, **kwargs: dataset)
    next(a for a in window.findChildren(type(window.undo_action)) if a.text() == "Choose &dataset folder…").trigger()
    qtbot.waitUntil(lambda: [e.state for e in window.worklist.entries].count(State.SAVED) == 3, timeout=10000)
    assert "5: its pixels changed since it was saved as 0002" in window.statusBar().currentMessage()
    for name in ("2", "3", "5"):
        row = window.worklist.row_of(folder / f"{name}.png")
        assert np.array_equal(window.worklist.label(row).mask, saved[name])
    assert window.worklist[window.worklist.row_of(folder / "3.png")].findings == Findings({"margins": "spiculated"})

    key(qtbot, window, Qt.Key.Key_Home)
    shown = []
    for _ in range(3):
        key(qtbot, window, Qt.Key.Key_N)  # next unsaved frame, wrapping round
        shown.append(window.worklist[window.current].name)
    assert shown == ["4", "1", "4"]
    for _ in range(2):  # save what is left: then nothing is unsaved
        paint(qtbot, window, [(30, 30), (40, 30)])
        key(qtbot, window, Qt.Key.Key_S, CTRL)
        key(qtbot, window, Qt.Key.Key_N)
    assert all(e.state is State.SAVED for e in window.worklist.entries)
    assert window.statusBar().currentMessage() == "Every frame is saved"


def test_one_writer_for_the_dataset_folder(qtbot, window, tmp_path, monkeypatch):
    made = []

    class Counted(DatasetWriter):
        def __init__(self, *args, **kwargs):
            made.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(label_keeper, "DatasetWriter", Counted)
    window.settings.setValue("dataset/folder", str(tmp_path / "dataset"))
    window.open_paths([case_folder(tmp_path / "case", 3)])
    for _ in range(3):
        paint(qtbot, window, [(30, 30), (40, 30)])
        key(qtbot, window, Qt.Key.Key_S, CTRL)
        key(qtbot, window, Qt.Key.Key_Right)
    assert made == [tmp_path / "dataset"] and len(records(tmp_path / "dataset")) == 3


# ----------------------------------------------------------------------------- DICOM frames in the dataset


def test_a_dicom_frame_saved_with_black_out_keeps_only_its_ultrasound_region_and_its_spacing(qtbot, window, tmp_path):
    path, pixels = burnt_in_dicom(tmp_path / "us.dcm")
    region = ultrasound_region(pixels)
    assert (region.y0, region.y1, region.x0, region.x1) == (8, 72, 10, 110)
    dataset = tmp_path / "dataset"
    window.settings.setValue("dataset/folder", str(dataset))
    window.open_paths([path])
    paint(qtbot, window, [(50, 40), (60, 40)])
    click_in_next_modal(qtbot, button_named(BLACK_OUT))
    key(qtbot, window, Qt.Key.Key_S, CTRL)
    reactivate(qtbot, window)
    assert window.worklist[window.current].state is State.SAVED
    stored = cv2.imread(str(dataset / "trainval-image" / "0000.png"), cv2.IMREAD_UNCHANGED)
    inside = np.zeros(pixels.shape, bool)
    inside[8:72, 10:110] = True
    assert stored.shape == pixels.shape and not stored[~inside].any() and pixels[~inside].any()  # the text is gone
    assert np.array_equal(stored[inside], pixels[inside])
    record = records(dataset)[0]
    assert record["blackout"] == [8, 72, 10, 110] and record["spacing_mm"] == pytest.approx([0.2, 0.25])


def test_saving_a_dicom_frame_warns_and_carries_the_black_out_choice(qtbot, window, tmp_path, monkeypatch):
    calls = []
    original = DatasetWriter.add

    def add(self, image, mask, **kwargs):  # what reaches the writer (its effect: the test above)
        box = kwargs.get("blackout_outside")
        calls.append(box is not None)
        assert box is None or (box.height, box.width) == (64, 96)  # this frame's ultrasound region: all of it
        return original(self, image, mask, **kwargs)

    monkeypatch.setattr(DatasetWriter, "add", add)
    window.settings.setValue("dataset/folder", str(tmp_path / "dataset"))
    window.open_paths([write_dicom(tmp_path / f"us{i}.dcm", np.full((64, 96), 60 + 10 * i, np.uint8)) for i in range(4)])

    seen = []

    def save_next(answer: str | None) -> None:
        paint(qtbot, window, [(30, 30), (50, 30)])
        if answer is not None:
            click_in_next_modal(qtbot, button_named(answer) if answer != "Cancel" else lambda box: box.button(Button.Cancel),
                                seen)
        qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
        reactivate(qtbot, window)  # the offscreen platform gives focus back to no window after a dialog
        if answer != "Cancel":
            qtbot.keyClick(window.canvas, Qt.Key.Key_Right)

    save_next(BLACK_OUT)
    assert calls == [True] and window.keeper.black_out is True
    assert seen[0].startswith("us0 came from DICOM") and "burnt into the pixels" in seen[0]
    save_next(None)  # asked once a session
    assert calls == [True, True]
    window.keeper.black_out = None  # as in a new session
    save_next(AS_IS)
    assert calls == [True, True, False]
    window.keeper.black_out = None
    save_next("Cancel")
    assert calls == [True, True, False] and window.worklist[window.current].unsaved  # cancelled: nothing stored


# ----------------------------------------------------------------------------- recovery (bugs 4 and 13)

class Told:
    """Records the (title, text) of every question and warning; questions are answered ``answer``."""

    def __init__(self, answer: Button = Button.Yes) -> None:
        self.answer = answer
        self.questions: list[tuple[str, str]] = []
        self.warnings: list[tuple[str, str]] = []

    def question(self, parent, title, text, *args, **kwargs):
        self.questions.append((title, text))
        return self.answer

    def warning(self, parent, title, text, *args, **kwargs):
        self.warnings.append((title, text))
        return Button.Ok


@pytest.fixture
def told(monkeypatch) -> Told:
    told = Told()
    monkeypatch.setattr(QMessageBox, "question", told.question)
    monkeypatch.setattr(QMessageBox, "warning", told.warning)
    return told


def _damage_png(path: Path, kind: str) -> None:
    path.write_bytes(b"" if kind == "empty" else path.read_bytes()[:40])


@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage json", "json list", "no description"])
def test_the_app_starts_and_recovers_what_it_can_from_any_leftover(qtbot, models, tmp_path, told, kind):
    folder = tmp_path / "home" / "autosave"
    autosave = Autosave(folder)
    good = read_mask(SAMPLES / "mask" / "1.png")
    good[:20, :20] = True
    autosave.store(SAMPLE, 0, good, "trfe-tiny", "1")
    damaged = SAMPLES / "image" / "3.png"
    autosave.store(damaged, 0, np.ones((360, 560), bool), None, "3")
    stem = autosave._stem(damaged, 0)
    if kind in ("empty", "truncated"):
        _damage_png(folder / f"{stem}.png", kind)
    else:
        text = {"garbage json": "{\"source\": \"/x", "json list": "[1, 2]", "no description": None}[kind]
        if text is None:
            (folder / f"{stem}.json").unlink()
        else:
            (folder / f"{stem}.json").write_text(text)

    window = open_window([SAMPLES / "image"], QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), autosave)
    qtbot.addWidget(window)
    [(title, text)] = told.questions
    assert title == "Recover unsaved labels" and "of 1 were kept" in text  # names the frame it recovers
    if kind in ("empty", "truncated"):
        assert "3: its autosaved label is empty or damaged" in text  # and the one it cannot
    else:
        assert "the frame" in text and "unknown" in text
    recovered = window.worklist[window.worklist.row_of(SAMPLE)]
    assert window.current == window.worklist.row_of(SAMPLE) and np.array_equal(recovered.label.mask, good)
    assert [item.name for item in autosave.pending().labels] == ["1"] and not autosave.pending().problems
    told.answer = Button.Discard
    window.close()


def test_only_unreadable_leftovers_are_named_and_removed(qtbot, models, tmp_path, told):
    folder = tmp_path / "home" / "autosave"
    folder.mkdir(parents=True)
    (folder / "0123456789abcdef.json").write_text("not json at all")
    (folder / ".0123.tmp.png").write_bytes(b"")  # a temporary file a crash left
    window = open_window([SAMPLE], QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), Autosave(folder))
    qtbot.addWidget(window)
    assert told.questions == [] and told.warnings[0][0] == "Autosaved labels unreadable"
    assert "0123456789abcdef.json" in told.warnings[0][1] and list(folder.iterdir()) == []
    assert window.isVisible() and window.current is not None


# ----------------------------------------------------------------------------- edits live with their frame (issue 18)

@pytest.fixture
def summaries(monkeypatch) -> list[tuple[str, str]]:
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


def test_save_all_corrected_saves_every_corrected_frame_with_one_summary(qtbot, window, answers, summaries, tmp_path):
    dataset = tmp_path / "dataset"
    window.settings.setValue("dataset/folder", str(dataset))
    window.open_paths([case_folder(tmp_path / "case", 6)])
    edit_and_step(qtbot, window, 4)
    window.worklist.set_propagated(5, np.ones((48, 64), bool), "litemedsam (propagated)")  # not reviewed
    key(qtbot, window, Qt.Key.Key_S, CTRL | SHIFT)
    assert [r["source"].rsplit("/", 1)[1] for r in records(dataset)] == ["1.png", "2.png", "3.png", "4.png"]
    assert [window.worklist[row].state for row in range(4)] == [State.SAVED] * 4
    assert window.worklist[5].state is State.PROPAGATED and answers.asked == []
    assert len(summaries) == 1  # one summary for the four frames
    title, text = summaries[0]
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
    assert len(summaries) == 2 and "Not saved (2)" in summaries[1][1] and len(records(dataset)) == 4


def test_closing_asks_once_naming_the_unsaved_frames(qtbot, window, answers, summaries, tmp_path):
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
    assert not window.isVisible() and len(answers.asked) == 2 and len(summaries) == 1
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
