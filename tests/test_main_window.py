"""The desktop app with real widgets and events (pytest-qt, offscreen): open a real sample, AI contours
from tiny models, paint, undo, save, unsaved-edit prompts, autosave recovery, drag-and-drop, batch and
fine-tune dialogs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox, QTextBrowser

from thyroid_studio.app.autosave import Autosave
from thyroid_studio.app.dialogs.about_dialog import AboutDialog
from thyroid_studio.app.dialogs.models_dialog import ModelsDialog, chosen_models
from thyroid_studio.app.launch import parse_args
from thyroid_studio.app.main_window import MainWindow
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.datasets.writer import DatasetWriter
from thyroid_studio.engine.labels.worklist import State
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, save_checkpoint

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
SAMPLE = SAMPLES / "image" / "1.png"
LEFT = Qt.MouseButton.LeftButton
Button = QMessageBox.StandardButton


@pytest.fixture
def models(tmp_path, monkeypatch) -> dict[str, Path]:
    """Tiny untrained TRFE-Net and U-Net as the shipped defaults; the user folder in tmp."""
    return tiny_defaults(tmp_path, monkeypatch)


def tiny_defaults(tmp_path: Path, monkeypatch, trfe_findings: dict[str, list[str]] | None = None,
                  **meta) -> dict[str, Path]:
    """Tiny untrained TRFE-Net (with findings heads for ``trfe_findings``) and U-Net as the shipped defaults,
    with the ``meta`` fields in their ModelMeta; the user folder in tmp."""
    folder = tmp_path / "models"
    paths = {}
    for role, arch, findings in (("trfe", "trfe-a", trfe_findings or {}), ("unet", "unet", {})):
        model_meta = ModelMeta(arch=arch, width=4, input_size=(64, 64), findings=findings, name=f"{role}-tiny", **meta)
        model = build_model(arch, width=4, findings=findings or None)
        paths[role] = save_checkpoint(folder / f"{role}-tiny.pt", model, model_meta)
    (folder / "defaults.json").write_text(json.dumps({r: p.name for r, p in paths.items()}))
    monkeypatch.setenv("THYROID_STUDIO_MODELS", str(folder))
    monkeypatch.setenv("THYROID_STUDIO_HOME", str(tmp_path / "home"))
    return paths


class Answers(list):
    """Answers QMessageBox.question gives, in order; ``asked`` and ``texts`` record the questions."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []
        self.texts: list[str] = []

    def __call__(self, parent, title, text, *args, **kwargs):
        self.asked.append(title)
        self.texts.append(text)
        return self.pop(0) if self else QMessageBox.StandardButton.Discard  # no exception inside Qt handlers


@pytest.fixture
def answers(monkeypatch) -> Answers:
    queue = Answers()
    monkeypatch.setattr(QMessageBox, "question", queue)
    return queue


@pytest.fixture
def window(qtbot, models, tmp_path, answers):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def open_and_wait(qtbot, window: MainWindow, path: Path = SAMPLE) -> int:
    window.open_paths([path])
    row = window.worklist.row_of(path)
    entry = window.worklist[row]
    qtbot.waitUntil(lambda: len(entry.predictions) == 2, timeout=20000)
    return row


def at(window: MainWindow, x: float, y: float) -> QPoint:
    return window.canvas.mapFromScene(QPointF(x, y))


def paint(qtbot, window: MainWindow, points: list[tuple[float, float]]) -> None:
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)  # brush, through its menu shortcut
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, LEFT, pos=at(window, *points[0]))
    for p in points[1:]:
        qtbot.mouseMove(viewport, at(window, *p))
    qtbot.mouseRelease(viewport, LEFT, pos=at(window, *points[-1]))


def test_open_sample_shows_ai_contours_ground_truth_and_dice(qtbot, window):
    row = open_and_wait(qtbot, window)
    entry = window.worklist[row]
    assert entry.state is State.AI
    assert entry.models == {"trfe": "trfe-tiny", "unet": "unet-tiny"}
    truth = read_mask(SAMPLES / "mask" / "1.png")
    assert np.array_equal(window.canvas.label(), truth)  # green = ground truth
    assert window.layers_panel.rows["trfe"].dice.text().startswith("Dice ")
    assert window.layers_panel.rows["unet"].dice.text().startswith("Dice ")
    assert window.frames_model.data(window.frames_model.index(row)).split("\n")[1].startswith("AI")
    assert "For research, not diagnosis" in window.research_label.text()


def test_paint_undo_autosave_and_crash_recovery(qtbot, window, tmp_path, answers):
    row = open_and_wait(qtbot, window)
    before = window.canvas.label()
    paint(qtbot, window, [(40, 40), (80, 45), (120, 50)])
    after = window.canvas.label()
    assert after[45, 80] and not before[45, 80] and (after != before).sum() > 500
    qtbot.waitUntil(lambda: window.worklist[row].state is State.CORRECTED)
    autosave = Autosave(tmp_path / "home" / "autosave")
    qtbot.waitUntil(lambda: len(autosave.pending().labels) == 1, timeout=5000)
    assert np.array_equal(autosave.pending().labels[0].label, after)

    # a new session after a crash offers the autosaved label back
    answers.append(Button.Yes)
    second = MainWindow(settings=QSettings(str(tmp_path / "s2.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(second)
    second.offer_recovery()
    recovered = second.worklist[second.worklist.row_of(SAMPLE)]
    assert recovered.state is State.CORRECTED and np.array_equal(recovered.label.mask, after)
    answers.append(Button.Discard)
    second.close()
    assert answers.asked[-1] == "Unsaved label" and not autosave.pending()

    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(window.canvas.label(), before)  # exactly
    qtbot.waitUntil(lambda: window.worklist[row].state is State.AI)


def test_autosave_writes_again_only_the_labels_changed_since_it_last_ran(window, monkeypatch):
    """After a propagation (or a recovery) many labels are unsaved: an edit of one must not make the GUI
    thread rewrite all of them."""
    window.open_paths([SAMPLES / "image"])
    stored = []
    monkeypatch.setattr(window.keeper.autosave, "store", lambda source, index, *args: stored.append(source.name))
    labels = [window.worklist.label(row) for row in range(len(window.worklist))]
    for label in labels:
        label.replace(~label.mask, "Invert")
    window.keeper.autosave_all()
    assert sorted(stored) == ["1.png", "10005.png", "3.png"]
    stored.clear()
    labels[1].replace(~labels[1].mask, "Invert back")  # clean again: its file goes
    labels[2].replace(np.zeros_like(labels[2].mask), "Clear")
    window.keeper.autosave_all()
    assert stored == [window.worklist[2].source.name]


def test_accept_clean_and_save_writes_tn3k_png_and_record(qtbot, window, tmp_path):
    dataset = tmp_path / "dataset"
    window.settings.setValue("dataset/folder", str(dataset))
    row = open_and_wait(qtbot, window)
    entry = window.worklist[row]
    proposal = entry.predictions["trfe"].nodule_mask  # untrained weights: make the proposal known
    proposal[:] = False
    proposal[100:140, 200:260] = True
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)  # Accept TRFE-Net mask as label
    assert np.array_equal(window.canvas.label(), entry.predictions["trfe"].nodule_mask)
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)  # fill holes (undoable command)
    paint(qtbot, window, [(300, 200), (310, 205)])
    label = window.canvas.label()
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert entry.state is State.SAVED
    mask = cv2.imread(str(dataset / "trainval-mask" / "0000.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255} and np.array_equal(mask > 0, label)
    assert (dataset / "trainval-image" / "0000.png").read_bytes() == SAMPLE.read_bytes()
    assert (dataset / "tn3k-trainval-fold0.json").is_file()
    record = json.loads((dataset / "records.jsonl").read_text().splitlines()[-1])
    assert record["proposed_by"] == "trfe-tiny" and record["source"] == str(SAMPLE)
    assert 0 < record["dice_ai_vs_label"]["trfe-tiny"] < 1 and record["saved_at"]


def test_unsaved_edits_ask_on_switching_frames_and_on_close(qtbot, window, answers):
    window.open_paths([SAMPLES / "image"])
    first = window.current
    paint(qtbot, window, [(60, 60), (90, 60)])
    answers.append(Button.Cancel)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)  # next frame: asks, cancelled -> stays
    assert window.current == first and answers.asked == ["Unsaved label"]
    answers.append(Button.Cancel)
    window.close()
    assert window.isVisible() and len(answers.asked) == 2
    answers.append(Button.Discard)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.current == first + 1 and window.worklist.unsaved_rows() == []
    qtbot.keyClick(window.canvas, Qt.Key.Key_Left)
    assert window.current == first and np.array_equal(window.canvas.label(), window.worklist[first].ground_truth)
    window.close()
    assert not window.isVisible() and len(answers.asked) == 3  # nothing unsaved: no question


def test_drag_and_drop_opens_a_file(qtbot, window):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(SAMPLE))])
    pos = QPointF(200, 200)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, LEFT, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, LEFT, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert window.worklist.row_of(SAMPLE) == window.current == 0


def test_batch_dialog_processes_a_folder_and_loads_results(qtbot, window, models, tmp_path):
    dialog = window.run_batch([SAMPLES / "image"], tmp_path / "out", models["trfe"])
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=30000)
    assert dialog.report.frames == 3 and not dialog.report.cancelled
    assert (tmp_path / "out" / "segmentation.csv").is_file()
    assert "3 / 3 frames" in dialog.status.text() or "Done" in dialog.status.text()
    assert len(window.worklist) == 3 and all(e.state is State.AI for e in window.worklist.entries)
    dialog.cancel()  # now "Close"
    assert not dialog.isVisible()


def test_batch_dialog_can_be_cancelled(qtbot, window, models, tmp_path):
    inputs = tmp_path / "many"
    inputs.mkdir()
    for i in range(40):
        shutil.copy(SAMPLE, inputs / f"{i}.png")
    dialog = window.run_batch([inputs], tmp_path / "out", models["trfe"])
    dialog.cancel()
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=30000)
    assert dialog.report.cancelled and dialog.report.frames < 40
    assert "Cancelled" in dialog.status.text()


@pytest.fixture
def corrected(tmp_path) -> Path:
    """A tiny TN3K-style dataset of corrected labels, as the app saves them."""
    writer = DatasetWriter(tmp_path / "corrected")
    for i, image in enumerate(sorted((SAMPLES / "image").glob("*.png")) * 3):
        pixels, mask = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE), read_mask(SAMPLES / "mask" / image.name)
        shift = 7 * (i // 3)  # distinct frames (the writer stores an image only once); 9: fine-tuning needs 8
        writer.add(np.roll(pixels, shift, axis=1), np.roll(mask, shift, axis=1), source=f"{image}#{i}")
    return tmp_path / "corrected"


@pytest.mark.slow
def test_finetune_dialog_runs_and_activates_the_new_model(qtbot, window, models, corrected, tmp_path):
    dialog = window.run_finetune(corrected, models["trfe"], epochs=1, batch=2, replay_ratio=0.0, device="cpu")
    qtbot.waitUntil(lambda: dialog.result is not None or dialog.failure is not None, timeout=120000)
    assert dialog.result is not None and dialog.result.status == "finished", dialog.failure
    new = Path(dialog.result.checkpoint)
    assert new.is_file() and new.parent == tmp_path / "home" / "models"
    assert dialog.table.isVisible() and dialog.table.rowCount() >= 1
    assert len(dialog.loss_curve.xData) >= 2  # one point per step
    assert list(dialog.dice_curve.xData) == [0, 1]  # held-out Dice before and after the one epoch
    qtbot.mouseClick(dialog.activate_button, LEFT)
    assert window.settings.value("models/trfe") == str(new)
    assert models["trfe"].is_file()  # the old model stays available (rollback)


@pytest.mark.slow
def test_finetune_dialog_can_be_cancelled(qtbot, window, models, corrected):
    dialog = window.run_finetune(corrected, models["trfe"], epochs=500, batch=2, replay_ratio=0.0, device="cpu")
    qtbot.waitUntil(lambda: len(dialog._loss[0]) > 0, timeout=120000)
    dialog.cancel()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=60000)
    assert dialog.result.status == "stopped" and "Cancelled" in dialog.status.text()
    assert window.settings.value("models/trfe") is None


def test_command_line_arguments():
    assert parse_args([]).paths == []
    assert parse_args(["a.png", "folder"]).paths == [Path("a.png"), Path("folder")]


def test_about_dialog_and_model_choice(qtbot, window, models):
    about = AboutDialog(window)
    qtbot.addWidget(about)
    pages = [browser.toPlainText() for browser in about.findChildren(QTextBrowser)]
    assert any("For research, not diagnosis" in p and "SPIE 9287" in p and "ISBI 2021" in p for p in pages)
    assert len(pages) == 3  # about + one card per model

    assert chosen_models(window.settings) == models
    dialog = ModelsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.combos["unet"].setCurrentIndex(dialog.combos["unet"].findData(str(models["unet"])))
    dialog.accept()
    assert chosen_models(window.settings)["unet"] == models["unet"]


def test_video_frames_are_listed_and_stepped_with_arrow_keys(qtbot, window, tmp_path):
    video = tmp_path / "cine.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for i in range(4):
        writer.write(np.full((64, 96, 3), 40 * i, np.uint8))
    writer.release()
    window.open_paths([video])
    assert [e.name for e in window.worklist.entries] == [f"cine_f{i:04d}" for i in range(4)]
    assert window.current == 0
    for expected in (1, 2, 3, 3):
        qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
        assert window.current == expected
    qtbot.keyClick(window.canvas, Qt.Key.Key_Left)
    assert window.current == 2 and "frame 3/4" in window.windowTitle()
    qtbot.waitUntil(lambda: len(window.worklist[2].predictions) == 2, timeout=20000)
