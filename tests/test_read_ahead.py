"""Contours ready when the frame appears (app/read_ahead.py, InferenceWorker.read_ahead,
PromptWorker.embed_ahead): the next frames in the reading direction are segmented before they are shown,
below the shown frame, a jump drops what was queued, nothing is computed twice, and the next frame's
embedding is made once the shown frame's is. Real widgets and key presses; no timing asserted."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from thyroid_studio.app import prompt_worker, read_ahead
from thyroid_studio.app.layers import SPECS, ContourLayerItem
from thyroid_studio.app.prompt_worker import PromptWorker
from thyroid_studio.app.read_ahead import AHEAD
from thyroid_studio.app.workers import AheadFrame, InferenceWorker
from thyroid_studio.engine.inference.prompting import PromptSegmenter
from thyroid_studio.engine.inference.segmenter import Segmentation
from thyroid_studio.engine.models.roles import MODEL_ROLES

from frame_files import write_dicom


def clip(path: Path, frames: int) -> Path:
    """A multi-frame DICOM whose frames differ (a bright square moving right)."""
    pixels = np.full((frames, 48, 64), 40, np.uint8)
    for k in range(frames):
        pixels[k, 16:32, 4 + 4 * k:20 + 4 * k] = 200
    return write_dicom(path, pixels, frames=frames)


def segmented(window, row: int) -> bool:
    return set(MODEL_ROLES) <= set(window.worklist[row].predictions)


def idle(worker: InferenceWorker) -> bool:
    with worker._cond:
        return not worker._has_work()


def drawn(window, role: str, mask: np.ndarray) -> bool:
    """Whether the canvas draws exactly ``mask``'s contours on ``role``'s layer."""
    expected = ContourLayerItem(SPECS[role])
    expected.set_mask(mask)
    return window.canvas.layer_item(role).path() == expected.path()


def test_the_next_frames_are_segmented_before_they_are_shown(qtbot, window, tmp_path):
    path = clip(tmp_path / "clip.dcm", 8)
    window.open_paths([path])
    rows = [window.worklist.row_of(path, k) for k in range(8)]
    qtbot.waitUntil(lambda: all(segmented(window, r) for r in rows[:AHEAD + 1]) and idle(window.inference),
                    timeout=20000)
    assert not any(window.worklist[r].predictions for r in rows[AHEAD + 1:])  # only AHEAD frames ahead
    assert window.worklist.cached_frame(rows[1]) is not None  # read by the worker, kept for showing

    asked = []
    submit = window.inference.submit
    window.inference.submit = lambda key, pixels, roles=MODEL_ROLES: (asked.append(key), submit(key, pixels, roles))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.current == rows[1] and asked == []  # nothing left to compute for the frame stepped onto
    for role in MODEL_ROLES:  # its contours are on the canvas as the key press returns
        assert drawn(window, role, window.worklist[rows[1]].predictions[role].nodule_mask)
    qtbot.waitUntil(lambda: segmented(window, rows[AHEAD + 1]), timeout=20000)  # reading ahead moved on


def test_reading_goes_the_way_of_the_last_step_and_a_jump_drops_the_old_place(qtbot, window, tmp_path):
    path = clip(tmp_path / "clip.dcm", 12)
    window.open_paths([path])
    rows = [window.worklist.row_of(path, k) for k in range(12)]
    qtbot.keyClick(window.canvas, Qt.Key.Key_End)  # a jump to the last frame: nothing after it to read
    assert window.current == rows[11]
    qtbot.waitUntil(lambda: segmented(window, rows[11]) and idle(window.inference), timeout=20000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Left)  # reading backwards now
    expected = rows[10 - AHEAD:10]
    qtbot.waitUntil(lambda: all(segmented(window, r) for r in expected) and idle(window.inference), timeout=20000)
    untouched = rows[AHEAD + 1:10 - AHEAD]  # beyond what was read ahead of frame 0 and of frame 10
    assert untouched and not any(window.worklist[r].predictions for r in untouched)


class GatedSegmenter:
    """Stands in for a Segmenter: records (frame number, role) per call; holds its first call until released."""

    def __init__(self, role: str, calls: list, gate: threading.Event, started: threading.Event) -> None:
        self.role, self.calls, self.gate, self.started = role, calls, gate, started

    def __call__(self, pixels: np.ndarray) -> Segmentation:
        self.started.set()
        self.gate.wait(10)
        self.calls.append((int(pixels[0, 0]), self.role))
        mask = np.zeros(pixels.shape[:2], bool)
        return Segmentation(mask.astype(np.float32), mask)

    @property
    def meta(self):
        return type("Meta", (), {"name": f"{self.role}-gated"})()


@pytest.fixture
def gated(qtbot):
    """An InferenceWorker whose two models are GatedSegmenters; frames are keyed and tagged by number."""
    worker, calls, gate, started = InferenceWorker(), [], threading.Event(), threading.Event()
    fake = Path("gated.pt")
    worker.set_models({role: fake for role in MODEL_ROLES})
    worker._segmenters = {role: (fake, GatedSegmenter(role, calls, gate, started)) for role in MODEL_ROLES}
    results = []
    worker.result.connect(lambda key, role, result, model: results.append((key, role)))
    worker.start()
    yield worker, calls, gate, started, results
    gate.set()
    worker.stop()


def frame(number: int) -> AheadFrame:
    return AheadFrame(number, Path(f"{number}.png"), 0, np.full((4, 4), number, np.uint8), MODEL_ROLES)


def test_a_jump_cancels_what_was_read_ahead_and_the_shown_frame_goes_first(qtbot, gated):
    worker, calls, gate, started, results = gated
    worker.read_ahead([frame(1), frame(2), frame(3)])
    qtbot.waitUntil(started.is_set)  # frame 1's first model is running, held
    worker.read_ahead([frame(7)])  # the user jumped
    worker.submit(5, np.full((4, 4), 5, np.uint8))  # and frame 5 is shown
    gate.set()
    qtbot.waitUntil(lambda: len(results) == 5 and idle(worker), timeout=10000)
    first, second = MODEL_ROLES
    assert calls == [(1, first), (5, first), (5, second), (7, first), (7, second)]  # 2 and 3 dropped


def test_a_frame_stepped_onto_while_read_ahead_is_not_segmented_twice(qtbot, gated):
    worker, calls, gate, started, results = gated
    worker.read_ahead([frame(1), frame(2)])
    qtbot.waitUntil(started.is_set)  # frame 1's first model is running, held
    worker.submit(1, np.full((4, 4), 1, np.uint8))  # the user steps onto frame 1: both models asked for
    worker.read_ahead([frame(2), frame(3)])
    gate.set()
    qtbot.waitUntil(lambda: len(results) == 6 and idle(worker), timeout=10000)
    assert sorted(calls) == sorted((n, role) for n in (1, 2, 3) for role in MODEL_ROLES)  # each once


class CountingPrompter(PromptSegmenter):
    """Records which frames (by their first pixel) were embedded, in order; frame 2's embedding is held
    until ``gate`` is set. A box gets an empty mask."""

    def __init__(self, embedded: list, gate: threading.Event) -> None:  # no model: embed and segment are stubbed
        self.embedded, self.gate, self._cache = embedded, gate, {}

    def cached(self, pixels):
        return self._cache.get(id(pixels))

    def embed(self, pixels, cache=True):
        if id(pixels) not in self._cache:
            if pixels[0, 0] == 2:
                self.gate.wait(10)
            self.embedded.append(int(pixels[0, 0]))
            self._cache[id(pixels)] = object()
        return self._cache[id(pixels)]

    def segment(self, embedding, box):
        return np.zeros((4, 4), bool)


def test_the_next_frames_embedding_comes_after_the_shown_frames_and_never_holds_up_a_box(qtbot):
    embedded, gate, proposals = [], threading.Event(), []
    worker = PromptWorker(prompter=CountingPrompter(embedded, gate))
    worker.proposal.connect(lambda key, box, mask: proposals.append(key))
    shown, after = np.full((4, 4), 1, np.uint8), np.full((4, 4), 2, np.uint8)
    worker.show_frame(1, shown)
    worker.embed_ahead(2, after)
    worker.start()
    try:
        qtbot.waitUntil(lambda: embedded == [1], timeout=5000)
        worker.ask(1, shown, (0.0, 0.0, 2.0, 2.0))  # while frame 2's embedding is held on the other thread
        qtbot.waitUntil(lambda: proposals == [1], timeout=5000)
        assert not worker.ready(after)
        gate.set()
        qtbot.waitUntil(lambda: embedded == [1, 2], timeout=5000)
        assert worker.ready(after)  # a box on it, once shown, is answered at once
        worker.show_frame(2, after)  # stepping on: nothing embedded twice
        qtbot.waitUntil(lambda: not worker._has_work(), timeout=5000)
        assert embedded == [1, 2]
    finally:
        gate.set()
        worker.stop()


def test_a_frame_stepped_past_before_it_settles_is_never_embedded_and_a_box_does_not_wait(qtbot, monkeypatch):
    monkeypatch.setattr(prompt_worker, "SETTLE_S", 1000.0)  # nothing settles during the test
    embedded, proposals = [], []
    worker = PromptWorker(prompter=CountingPrompter(embedded, threading.Event()))
    worker.proposal.connect(lambda key, box, mask: proposals.append(key))
    first, second = np.full((4, 4), 1, np.uint8), np.full((4, 4), 3, np.uint8)
    worker.start()
    try:
        worker.show_frame(1, first)
        worker.show_frame(3, second)  # stepped on at once
        worker.ask(3, second, (0.0, 0.0, 2.0, 2.0))
        qtbot.waitUntil(lambda: proposals == [3], timeout=5000)
        assert embedded == [3]  # for the box; the frame stepped past was never embedded
    finally:
        worker.stop()


class ArrayPrompter(CountingPrompter):
    """Records the very arrays embedded (frames of one clip share their first pixel)."""

    def embed(self, pixels, cache=True):
        if id(pixels) not in self._cache:
            self.embedded.append(pixels)
            self._cache[id(pixels)] = object()
        return self._cache[id(pixels)]


def test_while_stepping_through_a_clip_the_shown_frame_is_embedded_only_once_the_user_stops(
        qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr(read_ahead, "READING_PACE_S", 1000.0)  # every step after the first is reading on
    monkeypatch.setattr(read_ahead, "STEPPING_SETTLE_S", 1000.0)  # and the user never stops
    monkeypatch.setattr(prompt_worker, "SETTLE_S", 0.0)
    embedded = []
    window.prompt_worker.use(ArrayPrompter(embedded, threading.Event()))
    path = clip(tmp_path / "clip.dcm", 6)
    window.open_paths([path])
    rows = [window.worklist.row_of(path, k) for k in range(6)]

    def was_embedded(row: int) -> bool:
        return any(array is window.worklist.cached_frame(row).pixels for array in embedded)

    qtbot.waitUntil(lambda: was_embedded(rows[0]), timeout=10000)  # opened: embedded after the usual moment
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)  # a first step: not reading yet
    qtbot.waitUntil(lambda: was_embedded(rows[1]), timeout=10000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)  # stepping on: reading
    assert window.current == rows[2]
    qtbot.waitUntil(lambda: segmented(window, rows[3]) and idle(window.inference), timeout=20000)
    with window.prompt_worker._cond:
        waiting = window.prompt_worker._due_in()
    # its embedding waits for the user to stop, and so does the next frame's, though its contours are done
    assert waiting > 100 and not was_embedded(rows[3])
    qtbot.keyClick(window.canvas, Qt.Key.Key_End)  # a jump is no step: the usual moment
    qtbot.waitUntil(lambda: was_embedded(rows[5]), timeout=10000)
