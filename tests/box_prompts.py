"""Box prompts in the app for the tests: a gated BoxEcho whose encoder the test lets through frame by frame,
textured frames (BoxEcho's "not black"), a prompt model in the window, dragging a box and waiting for its
proposal."""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import Qt

from thyroid_studio.app.main_window import MainWindow
from thyroid_studio.engine.inference.prompting import PromptSegmenter

from app_driving import at
from prompt_models import BoxEcho

H, W = 150, 200
LEFT = Qt.MouseButton.LeftButton


class GatedEcho(BoxEcho):
    """BoxEcho whose image encoder waits for the test to let each frame through, and records the threads it ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Semaphore(0)
        self.threads: set[str] = set()

    def encode(self, images):
        self.threads.add(threading.current_thread().name)
        assert self.gate.acquire(timeout=30), "the test never let the encoder through"
        return super().encode(images)


def textured(shape=(H, W), k: int = 0) -> np.ndarray:
    """Gray 128 with one black pixel (in column ``k`` of the last row, so frames differ): min-max scaling
    leaves it non-zero (BoxEcho's "not black")."""
    pixels = np.full(shape, 128, np.uint8)
    pixels[-1, k] = 0
    return pixels


def write_png(path: Path, pixels: np.ndarray) -> Path:
    cv2.imwrite(str(path), pixels)
    return path


def use(window: MainWindow, model) -> PromptSegmenter:
    prompter = PromptSegmenter(model, device="cpu")
    window.prompt_worker.use(prompter)
    return prompter


def drag(qtbot, window: MainWindow, start, end, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, LEFT, modifiers, at(window, *start))
    qtbot.mouseMove(viewport, at(window, (start[0] + end[0]) / 2, (start[1] + end[1]) / 2))
    qtbot.mouseMove(viewport, at(window, *end))
    qtbot.mouseRelease(viewport, LEFT, modifiers, at(window, *end))


def box_tool(window: MainWindow):
    return window.canvas._tools["box"]


def propose(qtbot, window: MainWindow, start, end) -> np.ndarray:
    """Drag a box and wait for its proposal."""
    drag(qtbot, window, start, end)
    qtbot.waitUntil(lambda: box_tool(window).proposal is not None, timeout=10000)
    return box_tool(window).proposal
