"""Cine propagation in the app, through real widgets and events (issue 11): Propagate (Shift+P) on a
multi-frame DICOM clip in a job with progress and stop, each frame's label set through its own history and
marked "propagated" for review; the end of the clip, and frames off a clip."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from thyroid_studio.app.autosave import Autosave
from thyroid_studio.app.main_window import MainWindow
from thyroid_studio.engine.inference.prompting import box_around
from thyroid_studio.engine.labels.worklist import State

from box_prompts import GatedEcho, box_tool, propose, textured, use
from frame_files import write_dicom
from prompt_models import BoxEcho

LEFT = Qt.MouseButton.LeftButton
SHIFT = Qt.KeyboardModifier.ShiftModifier


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


@pytest.mark.slow
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
    window.keeper.black_out = False  # the DICOM question answered once this session (tested in test_label_keeper.py)
    window.only_propagated_action.trigger()
    assert window.frame_order.rowCount() == 3
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)  # the start frame keeps its unsaved label: no question
    assert window.current == rows[1]
    propagated = window.canvas.label()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # Accept propagated label
    assert window.worklist[rows[1]].state is State.CORRECTED and window.frame_order.rowCount() == 2
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # its own undo
    assert not np.array_equal(window.canvas.label(), propagated)
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
    qtbot.keyClick(window.canvas, Qt.Key.Key_End)  # leaving the start frame asks nothing
    qtbot.keyClick(window.canvas, Qt.Key.Key_P, SHIFT)
    assert "last frame of its clip" in window.statusBar().currentMessage()

    window.open_paths([frame_file])
    label_with_a_box(qtbot, window)
    qtbot.keyClick(window.canvas, Qt.Key.Key_P, SHIFT)
    assert "not part of a clip" in window.statusBar().currentMessage() and not window.propagation.running
