"""Driving the app in tests through real widgets and events (pytest-qt, offscreen): the bundled sample
frames, tiny untrained models as the shipped defaults, scripted answers to questions, opening a frame and
waiting for its AI contours, painting, clicking in modal dialogs, a canvas on screen, a case folder of frames."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from thyroid_studio.app.canvas import Canvas
from thyroid_studio.app.main_window import MainWindow
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, save_checkpoint

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
SAMPLE = SAMPLES / "image" / "1.png"
LEFT = Qt.MouseButton.LeftButton


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


def key(qtbot, window, k, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window.canvas, k, modifiers)


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


def shown_canvas(qtbot) -> Canvas:
    """A canvas on screen, 400 x 300, showing no frame yet."""
    view = Canvas()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    return view


def case_folder(folder: Path, count: int, shape: tuple[int, int] = (48, 64)) -> Path:
    """``1.png`` .. ``<count>.png``: gray frames, each with pixels of its own."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, count + 1):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(30, 220, shape, dtype=np.uint8))
    return folder
