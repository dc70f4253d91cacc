"""Box prompts and cine propagation in the app, through real widgets and events (issue 11): the box tool
(X) with each frame's embedding computed in the background, its proposal accepted, added, subtracted or
dropped as one edit; Propagate (Shift+P) on a multi-frame DICOM clip in a job with progress and stop,
each frame's label set through its own history and marked "propagated" for review."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QMessageBox
from test_app import answers, at, models, window  # noqa: F401 (fixtures)
from test_frames import write_dicom

from thyroid_studio.app.autosave import Autosave
from thyroid_studio.app.main_window import MainWindow
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.inference.prompting import PromptSegmenter, box_around
from thyroid_studio.engine.labels.worklist import State
from thyroid_studio.engine.metrics import dice
from thyroid_studio.engine.models.prompt_checkpoint import PromptModelMeta, save_prompt_model

from prompt_models import BoxEcho, tiny_litemedsam

LEFT = Qt.MouseButton.LeftButton
SHIFT, ALT = Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.AltModifier
H, W = 150, 200


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


@pytest.fixture
def frame_file(tmp_path) -> Path:
    return write_png(tmp_path / "frame.png", textured())


def open_frame(qtbot, window: MainWindow, path: Path) -> None:
    window.open_paths([path])
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)  # the box tool, through its Tools menu shortcut
    assert window.canvas.tool == "box" and window.tool_actions["box"].isChecked()


# ----------------------------------------------------------------------------- the box tool


def test_box_proposal_is_dashed_in_the_label_colour_and_enter_accepts_it_as_one_edit(qtbot, window, frame_file):
    use(window, BoxEcho())
    open_frame(qtbot, window, frame_file)
    qtbot.waitUntil(lambda: window.prompt_worker.ready(window._pixels), timeout=10000)  # embedded on opening
    proposal = propose(qtbot, window, (40, 30), (120, 90))
    x0, y0, x1, y1 = box_tool(window).box
    assert all(abs(a - b) <= 1 for a, b in zip((x0, y0, x1, y1), (40, 30, 120, 90)))  # frame pixels, x1/y1 exclusive
    assert roughly(proposal, int(x0), int(y0), int(x1), int(y1))
    item = box_tool(window)._proposal_item
    assert item.scene() is window.canvas.scene() and not item.path().isEmpty()
    assert item.pen().style() == Qt.PenStyle.DashLine and item.pen().color() == QColor(0, 255, 0)
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


# ----------------------------------------------------------------------------- cine propagation


@pytest.fixture
def clip(tmp_path) -> Path:
    """A 6-frame multi-frame DICOM; frame 4 (0-based) is black, where BoxEcho finds nothing."""
    frames = np.stack([textured(k=k) for k in range(6)])
    frames[4] = 0
    return write_dicom(tmp_path / "clip.dcm", frames, frames=6)


def label_with_a_box(qtbot, window: MainWindow, start=(60, 50), end=(100, 90)) -> np.ndarray:
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)
    propose(qtbot, window, start, end)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    return window.canvas.label()


def rows_of(window: MainWindow, clip: Path) -> list[int]:
    return [window.worklist.row_of(clip, index) for index in range(6)]


def state_text(window: MainWindow, row: int) -> str:
    """The state the frame list shows (without the uncertainty of frames already segmented, read ahead too)."""
    return window.frames_model.data(window.frames_model.index(row)).split("\n")[1].split(" · ")[0]


def test_propagate_carries_the_label_until_the_mask_vanishes_each_frame_marked_and_undoable(
        qtbot, window, clip, answers, tmp_path, monkeypatch):
    errors = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *args: errors.append(text))
    echo = BoxEcho()
    use(window, echo)
    window.open_paths([clip])
    rows = rows_of(window, clip)
    start = label_with_a_box(qtbot, window)
    autosave = Autosave(tmp_path / "home" / "autosave")
    qtbot.waitUntil(lambda: len(autosave.pending().labels) == 1, timeout=5000)  # the start frame's edit
    with qtbot.waitSignal(window.propagation.ended, timeout=20000) as ended:
        qtbot.keyClick(window.canvas, Qt.Key.Key_P, SHIFT)  # Cine > Propagate
        assert window.propagation.isVisible() and window.stop_propagation_action.isEnabled()
    assert ended.args == ["Propagated to 3 frame(s); the mask vanished on frame 5"]
    assert not window.propagation.isVisible() and not window.stop_propagation_action.isEnabled()
    assert "vanished on frame 5" in window.statusBar().currentMessage()
    for k in (1, 2, 3):
        entry = window.worklist[rows[k]]
        assert entry.state is State.PROPAGATED and state_text(window, rows[k]) == "propagated"
        assert entry.label.history.undo_text == "Propagate" and len(entry.label.history) == 1
        assert entry.proposed_by == "litemedsam (propagated)"
    widths = [box[2] - box[0] for box in (box_around(window.worklist[rows[k]].label.mask, 0) for k in range(4))]
    assert all(abs(b - a - 10) <= 2 for a, b in zip(widths, widths[1:])), widths  # BoxEcho: the box before + 5 px
    assert all(window.worklist[rows[k]].label is None for k in (4, 5))  # after the mask vanished: untouched
    assert np.array_equal(window.canvas.label(), start)  # the shown frame stays as it was
    qtbot.waitUntil(lambda: len(autosave.pending().labels) == 4, timeout=5000)  # propagated: kept against a crash

    # review: only the propagated frames listed; stepping through them; accepting or saving clears the mark
    window.settings.setValue("dataset/folder", str(tmp_path / "dataset"))
    window.keeper.black_out = False  # the DICOM question answered once this session (tested in test_app_models)
    window.only_propagated_action.trigger()
    assert window.frame_order.rowCount() == 3
    answers.append(QMessageBox.StandardButton.Save)  # leaving the start frame asks about its label
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.current == rows[1]
    propagated = window.canvas.label()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # Accept propagated label
    assert window.worklist[rows[1]].state is State.CORRECTED and window.frame_order.rowCount() == 2
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # its own undo
    assert not np.array_equal(window.canvas.label(), propagated)
    answers.append(QMessageBox.StandardButton.Discard)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)  # the first listed frame after the hidden one
    assert window.current == rows[2]
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)  # saving clears it too
    assert window.worklist[rows[2]].state is State.SAVED and window.frame_order.rowCount() == 1 and not errors
    window.only_propagated_action.trigger()
    assert window.frame_order.rowCount() == 6


def test_propagation_stops_on_esc_and_the_clip_end_ends_it(qtbot, window, clip, tmp_path):
    echo = GatedEcho()
    use(window, echo)
    window.open_paths([clip])
    rows = rows_of(window, clip)
    echo.gate.release()  # frame 0's own embedding
    label_with_a_box(qtbot, window)
    qtbot.keyClick(window.canvas, Qt.Key.Key_P, SHIFT)
    echo.gate.release()  # one frame through
    qtbot.waitUntil(lambda: window.worklist[rows[1]].state is State.PROPAGATED, timeout=10000)
    propose(qtbot, window, (10, 10), (50, 50))  # frame 0's embedding is ready: answered at once
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)  # a box in progress takes Esc: the box goes ...
    assert box_tool(window).box is None and window.propagation.running  # ... the propagation goes on
    with qtbot.waitSignal(window.propagation.ended, timeout=10000) as ended:
        qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)  # Cine > Stop propagating
        assert window.propagation.text.text() == "Stopping…"
        echo.gate.release()  # the frame under way finishes; no other starts
    assert ended.args[0] in ("Propagation stopped after 1 frame(s)", "Propagation stopped after 2 frame(s)")
    assert window.worklist[rows[3]].label is None and window.worklist[rows[5]].label is None
    assert threading.main_thread().name not in echo.threads

    qtbot.keyClick(window.canvas, Qt.Key.Key_P, SHIFT)  # again, stopped by the status bar's button
    assert window.propagation.isVisible()
    with qtbot.waitSignal(window.propagation.ended, timeout=10000) as ended:
        qtbot.mouseClick(window.propagation.stop_button, LEFT)
        assert not window.propagation.stop_button.isEnabled()
        echo.gate.release()
    assert ended.args[0] in ("Propagation stopped after 0 frame(s)", "Propagation stopped after 1 frame(s)")


def test_propagate_runs_to_the_end_of_the_clip_and_is_refused_off_a_clip(qtbot, window, tmp_path, frame_file):
    use(window, BoxEcho())
    frames = np.stack([textured(k=k) for k in range(3)])
    path = write_dicom(tmp_path / "short.dcm", frames, frames=3)
    window.open_paths([path])
    qtbot.keyClick(window.canvas, Qt.Key.Key_P, SHIFT)
    assert "label is empty" in window.statusBar().currentMessage() and not window.propagation.running
    label_with_a_box(qtbot, window)
    with qtbot.waitSignal(window.propagation.ended, timeout=20000) as ended:
        qtbot.keyClick(window.canvas, Qt.Key.Key_P, SHIFT)
    assert ended.args == ["Propagated to 2 frame(s), to the end of the clip"]
    assert [window.worklist[window.worklist.row_of(path, i)].state for i in (1, 2)] == [State.PROPAGATED] * 2
    qtbot.keyClick(window.canvas, Qt.Key.Key_End)  # leaving the start frame: the fixture answers Discard
    qtbot.keyClick(window.canvas, Qt.Key.Key_P, SHIFT)
    assert "last frame of its clip" in window.statusBar().currentMessage()

    window.open_paths([frame_file])
    label_with_a_box(qtbot, window)
    qtbot.keyClick(window.canvas, Qt.Key.Key_P, SHIFT)
    assert "not part of a clip" in window.statusBar().currentMessage() and not window.propagation.running
