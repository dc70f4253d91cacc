"""The app around its models and files, through real widgets and events (issue 9): recovery from any
autosave leftover, roles checked against architectures, new models keep batch results, fine-tuning's
minimum and default button, the DICOM identifiers warning, the probability heat map, worst first."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox
from test_frames import write_dicom
from test_main_window import SAMPLE, SAMPLES, answers, models, open_and_wait, paint, window  # noqa: F401 (fixtures)

from thyroid_studio.app.autosave import Autosave
from thyroid_studio.app.dialogs.finetune_dialog import FinetuneDialog
from thyroid_studio.app.dialogs.models_dialog import ModelsDialog, chosen_models
from thyroid_studio.app.label_keeper import AS_IS, BLACK_OUT
from thyroid_studio.app.launch import open_window
from thyroid_studio.app.layers import HEATMAP
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.datasets.writer import DatasetWriter
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, save_checkpoint
from thyroid_studio.engine.progress import Finished

LEFT = Qt.MouseButton.LeftButton
Button = QMessageBox.StandardButton


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


def click_in_next_modal(qtbot, find, seen: list | None = None) -> None:
    """Once a modal dialog is up (its exec() blocks the test), click the button ``find(dialog)`` returns;
    a message box's text goes to ``seen``."""
    def click() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, click)
            return
        if seen is not None and isinstance(dialog, QMessageBox):
            seen.append(dialog.text())
        qtbot.mouseClick(find(dialog), LEFT)
    QTimer.singleShot(0, click)


def reactivate(qtbot, window) -> None:
    """The offscreen platform has no window manager to give focus back once a modal dialog closes."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)


def button_named(text: str):
    return lambda box: next(b for b in box.buttons() if b.text() == text)


# ----------------------------------------------------------------------------- recovery (bugs 4 and 13)

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


# ----------------------------------------------------------------------------- models (bug 9)

def test_a_unet_cannot_take_the_trfe_slot(qtbot, window, models):
    window.settings.setValue("models/trfe", str(models["unet"]))  # e.g. left by an older version
    dialog = ModelsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.show()
    trfe = dialog.combos["trfe"]
    unet_row = trfe.findData(str(models["unet"]))
    assert not trfe.model().item(unet_row).isEnabled() and "cannot draw the TRFE-Net contour" in \
        trfe.model().item(unet_row).toolTip()
    assert trfe.currentData() == str(models["trfe"])  # the saved misfit is not offered as the choice
    for _ in range(3):
        qtbot.keyClick(trfe, Qt.Key.Key_Down)
        qtbot.keyClick(trfe, Qt.Key.Key_Up)
    assert trfe.currentData() == str(models["trfe"])  # the keyboard skips the U-Net
    qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok), LEFT)
    assert chosen_models(window.settings)["trfe"] == models["trfe"]


def test_changing_models_keeps_batch_results(qtbot, window, models, tmp_path):
    dialog = window.run_batch([SAMPLES / "image"], tmp_path / "out", models["trfe"])
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=30000)
    batch_masks = {e.key: e.predictions["trfe"].nodule_mask.copy() for e in window.worklist.entries}
    other = save_checkpoint(tmp_path / "home" / "models" / "trfe-other.pt", build_model("trfe-a", width=4),
                            ModelMeta(arch="trfe-a", width=4, input_size=(64, 64), name="trfe-other"))

    def choose_other(box) -> object:
        box.combos["trfe"].setCurrentIndex(box.combos["trfe"].findData(str(other)))
        return box.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)

    click_in_next_modal(qtbot, choose_other)
    next(a for a in window.actions() if a.text() == "&Choose models…").trigger()
    assert chosen_models(window.settings)["trfe"] == other
    for entry in window.worklist.entries:
        assert np.array_equal(entry.predictions["trfe"].nodule_mask, batch_masks[entry.key])
        assert entry.models["trfe"] == "trfe-tiny" and "trfe" in entry.batch_roles
    assert "Kept the batch results of 3 frame(s)" in window.statusBar().currentMessage()


# ----------------------------------------------------------------------------- fine-tuning (bug 10)

def _finished(before: float, after: float, original_change: float) -> Finished:
    row = {"n": 3, "before": {"dice": before}, "after": {"dice": after}}
    original = {"n": 50, "before": {"dice": 0.75}, "after": {"dice": 0.75 + original_change}}
    return Finished("finished", 12.0, "/models/tuned-v2.pt", {"held_out": row, "original_validation": original})


@pytest.mark.parametrize("before, after, original_change, activated", [
    (0.6566, 0.6537, 0.0, False),  # the corrections were not learnt
    (0.60, 0.70, -0.02, False),  # learnt, but the original frames lost 2 points
    (0.60, 0.70, -0.005, True),
])
def test_keep_current_model_is_the_default_unless_held_out_dice_improved_without_forgetting(
        qtbot, tmp_path, before, after, original_change, activated):
    dialog = FinetuneDialog(tmp_path / "corrected", tmp_path / "base.pt")
    qtbot.addWidget(dialog)
    requested = []
    dialog.activate_requested.connect(requested.append)
    dialog.show()
    dialog.job.done.emit(_finished(before, after, original_change))  # no process: the test plays the job's end
    assert dialog.keep_button.isDefault() is not activated and dialog.activate_button.isDefault() is activated
    qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert requested == ([Path("/models/tuned-v2.pt")] if activated else []) and not dialog.isVisible()
    if not activated:
        assert "did not improve" in dialog.status.text()


@pytest.mark.slow
def test_finetuning_fewer_than_eight_frames_is_refused_with_a_clear_message(qtbot, window, models, tmp_path):
    writer = DatasetWriter(tmp_path / "few")
    for i, image in enumerate(sorted((SAMPLES / "image").glob("*.png")) * 2):
        pixels, mask = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE), read_mask(SAMPLES / "mask" / image.name)
        shift = 7 * (i // 3)  # distinct frames: the writer stores an image only once
        writer.add(np.roll(pixels, shift, axis=1), np.roll(mask, shift, axis=1), source=f"{image}#{i}")
    dialog = window.run_finetune(tmp_path / "few", models["trfe"], epochs=1, device="cpu")
    qtbot.waitUntil(lambda: dialog.failure is not None, timeout=60000)
    assert "6 corrected frames" in dialog.status.text() and "needs at least 8" in dialog.status.text()
    assert dialog.result is None and not (tmp_path / "home" / "models").exists()


# ----------------------------------------------------------------------------- DICOM (bug 12)

def test_saving_a_dicom_frame_warns_and_carries_the_black_out_choice(qtbot, window, tmp_path, monkeypatch):
    calls = []
    original = DatasetWriter.add

    def add(self, image, mask, **kwargs):  # what reaches the writer (its effect: test_app_saving.py)
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


# ----------------------------------------------------------------------------- where the model is unsure

def test_probability_heat_map_layer(qtbot, window):
    row = open_and_wait(qtbot, window)
    heat = window.canvas.layer_item(HEATMAP)
    assert not heat.isVisible()  # optional: off by default
    box = window.layers_panel.rows[HEATMAP].visible
    qtbot.mouseClick(box, LEFT, pos=QPoint(6, box.height() // 2))
    assert heat.isVisible() and window.layers_panel.rows[HEATMAP].filled.isHidden()
    shape = window.worklist[row].predictions["trfe"].nodule_prob.shape
    assert (heat.pixmap().height(), heat.pixmap().width()) == shape


def test_worst_first_orders_by_uncertainty_and_navigation_follows(qtbot, window, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image in enumerate(sorted((SAMPLES / "image").glob("*.png"))):
        shutil.copy(image, folder / f"{i}.png")
    window.open_paths([folder])
    window.worst_first_action.trigger()  # View > Worst first
    entries = window.worklist.entries
    qtbot.waitUntil(lambda: all(e.uncertainty is not None for e in entries), timeout=30000)
    expected = [e.name for e in sorted(entries, key=lambda e: -e.uncertainty)]
    order = window.frame_order
    assert [order.index(r, 0).data().split("\n")[0] for r in range(order.rowCount())] == expected
    assert all(" · unsure " in order.index(r, 0).data() for r in range(order.rowCount()))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Home)
    assert window.worklist[window.current].name == expected[0]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.worklist[window.current].name == expected[1]
    window.worst_first_action.trigger()  # off: the order they were opened in
    assert [order.index(r, 0).data().split("\n")[0] for r in range(order.rowCount())] == ["0", "1", "2"]
