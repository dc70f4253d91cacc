"""Box prompts in the app, through real widgets and events (issue 11): the box tool (X) with each frame's
embedding computed in the background on the prompt worker's thread, its proposal accepted, added, subtracted
or dropped as one edit; the shipped prompt model loaded off the GUI thread (propagation: test_propagation.py)."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from thyroid_studio.app.layers import PROPOSAL, SPECS
from thyroid_studio.app.main_window import MainWindow
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.inference.prompting import box_around
from thyroid_studio.engine.labels.worklist import State
from thyroid_studio.engine.metrics import dice
from thyroid_studio.engine.models.prompt_checkpoint import PromptModelMeta, save_prompt_model

from app_driving import at
from box_prompts import GatedEcho, H, W, box_tool, drag, propose, textured, use, write_png
from prompt_models import BoxEcho, tiny_litemedsam

LEFT = Qt.MouseButton.LeftButton
SHIFT, ALT = Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.AltModifier


def filled(x0: int, y0: int, x1: int, y1: int, shape=(H, W)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def roughly(mask: np.ndarray, x0: int, y0: int, x1: int, y1: int, slack: int = 3) -> bool:
    """The mask holds the box shrunk by ``slack`` and nothing outside it grown by ``slack`` (the model
    square's resize blurs edges by a pixel or two)."""
    inner = filled(x0 + slack, y0 + slack, x1 - slack, y1 - slack, mask.shape)
    outer = filled(x0 - slack, y0 - slack, x1 + slack, y1 + slack, mask.shape)
    return bool(mask[inner].all() and not mask[~outer].any())


def open_frame(qtbot, window: MainWindow, path: Path) -> None:
    window.open_paths([path])
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)  # the box tool, through its Tools menu shortcut
    assert window.canvas.tool == "box" and window.tool_actions["box"].isChecked()


def test_box_proposal_is_dashed_in_a_colour_of_its_own_and_enter_accepts_it_as_one_edit(qtbot, window, frame_file):
    use(window, BoxEcho())
    open_frame(qtbot, window, frame_file)
    qtbot.waitUntil(lambda: window.prompt_worker.ready(window._pixels), timeout=10000)  # embedded on opening
    proposal = propose(qtbot, window, (40, 30), (120, 90))
    x0, y0, x1, y1 = box_tool(window).box
    assert all(abs(a - b) <= 1 for a, b in zip((x0, y0, x1, y1), (40, 30, 120, 90)))  # frame pixels, x1/y1 exclusive
    assert roughly(proposal, int(x0), int(y0), int(x1), int(y1))
    item = box_tool(window)._proposal_item
    assert item.scene() is window.canvas.scene() and not item.path().isEmpty()
    assert item.pen().style() == Qt.PenStyle.DashLine and item.pen().color() == QColor(*SPECS[PROPOSAL].rgb)
    assert all(item.pen().color() != QColor(*spec.rgb) for name, spec in SPECS.items() if name != PROPOSAL)
    assert not window.canvas.label().any()  # only proposed so far
    assert "Enter" in window.statusBar().currentMessage()

    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert np.array_equal(window.canvas.label(), proposal)
    history = window.canvas.label_model.history
    assert len(history) == 1 and history.undo_text == "Box prompt" and window.undo_action.text() == "&Undo Box prompt"
    assert box_tool(window).proposal is None and item.path().isEmpty()  # accepted: the dashed outline goes
    assert window.worklist[window.current].state is State.CORRECTED
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not window.canvas.label().any()


def test_shift_adds_alt_subtracts_a_click_accepts_esc_drops_a_new_box_replaces(qtbot, window, frame_file):
    use(window, BoxEcho())
    open_frame(qtbot, window, frame_file)
    a = propose(qtbot, window, (20, 20), (80, 70))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    b = propose(qtbot, window, (120, 60), (180, 130))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, SHIFT)  # adds
    assert np.array_equal(window.canvas.label(), a | b) and (a & ~b).any() and (b & ~a).any()
    c = propose(qtbot, window, (50, 40), (150, 100))
    qtbot.mouseClick(window.canvas.viewport(), LEFT, ALT, at(window, 100, 140))  # a click accepts; Alt subtracts
    assert np.array_equal(window.canvas.label(), (a | b) & ~c)
    history = window.canvas.label_model.history
    assert len(history) == 3 and history.undo_text == "Box prompt: subtract"

    kept = window.canvas.label()
    propose(qtbot, window, (10, 10), (60, 60))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)  # drops the box and its proposal
    assert box_tool(window).box is None and box_tool(window).proposal is None
    assert not box_tool(window)._box_item.isVisible() and box_tool(window)._proposal_item.path().isEmpty()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)  # nothing to accept
    qtbot.mouseClick(window.canvas.viewport(), LEFT, pos=at(window, 30, 30))
    assert np.array_equal(window.canvas.label(), kept) and len(history) == 3

    propose(qtbot, window, (10, 10), (60, 60))
    second = propose(qtbot, window, (100, 20), (190, 50))  # redrawing replaces the proposal
    assert roughly(second, 100, 20, 190, 50) and not second[30, 30]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert np.array_equal(window.canvas.label(), second) and len(history) == 4


def test_a_box_before_the_embedding_is_ready_says_computing_and_is_answered_when_it_is(qtbot, window, frame_file):
    echo = GatedEcho()
    use(window, echo)
    open_frame(qtbot, window, frame_file)
    drag(qtbot, window, (40, 30), (120, 90))
    assert "computing" in window.statusBar().currentMessage()
    qtbot.wait(100)
    assert box_tool(window).proposal is None and not window.prompt_worker.ready(window._pixels)
    echo.gate.release()  # the embedding (on the worker thread) completes
    qtbot.waitUntil(lambda: box_tool(window).proposal is not None, timeout=10000)
    assert roughly(box_tool(window).proposal, 40, 30, 120, 90)
    assert echo.encoded == 1 and threading.main_thread().name not in echo.threads


def test_a_new_frame_replaces_the_embedding_waiting_and_drops_the_box_of_the_old_one(qtbot, window, tmp_path):
    echo = GatedEcho()
    use(window, echo)
    paths = [write_png(tmp_path / f"f{i}.png", textured()) for i in range(3)]
    window.open_paths(paths)
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)
    qtbot.waitUntil(lambda: bool(echo.threads), timeout=5000)  # frame 0 is being embedded (held at the gate)
    drag(qtbot, window, (40, 30), (120, 90))  # a box on frame 0 ...
    first = window._pixels
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)  # ... then frames 1 and 2 while frame 0 still computes
    second = window._pixels
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert box_tool(window).box is None  # the box stayed with frame 0
    echo.gate.release()
    echo.gate.release()
    qtbot.waitUntil(lambda: window.prompt_worker.ready(window._pixels), timeout=10000)
    qtbot.wait(100)
    assert echo.encoded == 2 and window.prompt_worker.ready(first) and not window.prompt_worker.ready(second)
    assert box_tool(window).proposal is None and not window.canvas.label().any()


def test_the_box_and_proposal_belong_to_their_frame_and_tool(qtbot, window, tmp_path):
    use(window, BoxEcho())
    window.open_paths([write_png(tmp_path / f"f{i}.png", textured()) for i in range(2)])
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)
    propose(qtbot, window, (40, 30), (120, 90))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert box_tool(window).proposal is None and box_tool(window)._proposal_item.path().isEmpty()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert not window.canvas.label().any()
    propose(qtbot, window, (40, 30), (120, 90))
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)  # another tool: the box tool's items leave the scene
    assert box_tool(window)._proposal_item.scene() is None and box_tool(window)._box_item.scene() is None
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)
    assert box_tool(window).proposal is None


def test_the_shipped_model_file_is_loaded_off_the_gui_thread_or_its_absence_is_said(qtbot, window, frame_file, models):
    open_frame(qtbot, window, frame_file)  # the models folder has no litemedsam.pt
    said = []  # every status message: a later one (the models' results arriving) may replace it on screen
    window.statusBar().messageChanged.connect(said.append)
    drag(qtbot, window, (40, 30), (120, 90))
    qtbot.waitUntil(lambda: any("no shipped prompt model" in message for message in said), timeout=10000)
    assert box_tool(window).proposal is None

    meta = PromptModelMeta(source="tests: random weights")
    save_prompt_model(models["trfe"].parent / "litemedsam.pt", tiny_litemedsam(), meta)
    window.prompt_worker.use(None)  # the shipped model again: loaded on the worker's next request
    proposal = propose(qtbot, window, (40, 30), (120, 90))
    assert proposal.shape == (H, W) and proposal.dtype == bool
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert np.array_equal(window.canvas.label(), proposal)


@pytest.mark.slow
def test_real_weights_on_a_real_frame_give_the_nodule_from_its_ground_truth_box(qtbot, window, shared_data, models):
    weights = Path(__file__).resolve().parents[1] / "models" / "litemedsam.pt"
    if not weights.is_file():
        pytest.skip("no shipped LiteMedSAM (tools/convert_litemedsam.py makes it)")
    shutil.copy(weights, models["trfe"].parent / "litemedsam.pt")
    image = shared_data / "ddti" / "image" / "10004.png"
    truth = read_mask(shared_data / "ddti" / "mask" / "10004.png")
    open_frame(qtbot, window, image)
    x0, y0, x1, y1 = box_around(truth, 5)
    drag(qtbot, window, (x0 + 0.5, y0 + 0.5), (x1 - 0.5, y1 - 0.5))
    qtbot.waitUntil(lambda: box_tool(window).proposal is not None, timeout=120000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    agreement = dice(window.canvas.label(), truth)
    assert agreement > 0.8, agreement


