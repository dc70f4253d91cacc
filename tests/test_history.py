"""Mask deltas, stroke grouping, bounded history, and the painting primitives (no Qt)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from thyroid_studio.engine.labels.history import History, MaskDelta, StrokeRecorder, apply, delta_between, revert
from thyroid_studio.engine.labels.painting import fill_polygon, paint_disc, paint_segment, snap_centre


def blank() -> np.ndarray:
    return np.zeros((150, 200), bool)


def test_delta_holds_only_the_changed_pixels_and_round_trips() -> None:
    before = blank()
    before[10:20, 10:20] = True
    after = before.copy()
    after[40:45, 100:110] = True
    after[12, 12] = False
    delta = delta_between(before, after)
    assert delta.box == (slice(12, 45), slice(12, 110))
    assert delta.where.sum() == 5 * 10 + 1 and len(delta.old) == len(delta.new) == 51
    mask = after.copy()
    revert(mask, delta)
    assert np.array_equal(mask, before)
    apply(mask, delta)
    assert np.array_equal(mask, after)
    assert delta_between(after, after.copy()) is None


def test_stroke_recorder_groups_dabs_into_one_delta() -> None:
    mask = blank()
    original = mask.copy()
    recorder = StrokeRecorder(mask)
    for x in range(20, 120, 10):
        recorder.touched(paint_segment(mask, (x, 50), (x + 10, 60), 4, True))
    recorder.touched(paint_disc(mask, 25, 52, 3, False))  # erase part of its own stroke
    delta = recorder.finish()
    painted = mask.copy()
    revert(mask, delta)
    assert np.array_equal(mask, original)
    apply(mask, delta)
    assert np.array_equal(mask, painted)
    assert delta.box[0].start >= 46 and delta.box[1].stop <= 135  # only the stroke's region


def test_stroke_that_changes_nothing_yields_no_delta() -> None:
    mask = blank()
    recorder = StrokeRecorder(mask)
    recorder.touched(paint_disc(mask, 50, 50, 5, False))  # erasing nothing
    recorder.touched(paint_disc(mask, -50, -50, 5, True))  # wholly outside: no box
    assert recorder.finish() is None


def test_paint_segment_leaves_no_gaps_and_stays_in_its_capsule() -> None:
    mask = blank()
    paint_segment(mask, (10, 20), (190, 20), 2, True)  # one long jump of the mouse
    assert mask[20, 10:191].all()
    assert mask[18:23, 10:191].all() and not mask[17].any() and not mask[23].any()
    assert not mask[:, :8].any() and not mask[:, 193:].any()


def test_disc_sizes_are_symmetric_and_clipped_at_the_edge() -> None:
    mask = blank()
    paint_disc(mask, *snap_centre(50.3, 60.2, 3), 1.5, True)
    assert mask.sum() == 9 and mask[59:62, 49:52].all()
    mask[:] = False
    paint_disc(mask, *snap_centre(50.3, 60.2, 2), 1.0, True)
    assert mask.sum() == 4 and mask[60:62, 50:52].all()
    mask[:] = False
    box = paint_disc(mask, 0, 0, 10, True)
    assert box == (slice(0, 11), slice(0, 11)) and mask[0, 0]


def test_fill_polygon_fills_pixel_centres_inside() -> None:
    mask = blank()
    box = fill_polygon(mask, [(10, 20), (59, 20), (59, 49), (10, 49)], True)
    expected = blank()
    expected[20:50, 10:60] = True
    assert np.array_equal(mask, expected) and box == (slice(20, 50), slice(10, 60))
    fill_polygon(mask, [(20, 30), (29, 30), (29, 39), (20, 39)], False)
    assert mask.sum() == 30 * 50 - 100
    assert fill_polygon(mask, [(0, 0), (5, 5)], True) is None


@dataclass(frozen=True)
class Paint:
    """The smallest edit History can hold: a delta on a bare mask."""

    delta: MaskDelta
    text: str

    def undo(self, mask: np.ndarray) -> None:
        revert(mask, self.delta)

    def redo(self, mask: np.ndarray) -> None:
        apply(mask, self.delta)


def test_history_undo_redo_cap_and_redo_cleared_by_a_new_edit() -> None:
    mask = blank()
    history = History(cap=3)
    states = [mask.copy()]
    for i in range(5):
        before = mask.copy()
        paint_disc(mask, 20 + 30 * i, 50, 5, True)
        history.push(Paint(delta_between(before, mask), f"dab {i}"))
        states.append(mask.copy())
    assert len(history) == 3 and history.undo_text == "dab 4" and history.redo_text == ""
    for i in range(3):  # only the last three edits are kept
        assert history.undo(mask) is not None
        assert np.array_equal(mask, states[4 - i])
    assert history.undo(mask) is None and not history.can_undo
    history.redo(mask)
    assert np.array_equal(mask, states[3]) and history.undo_text == "dab 2"
    assert history.can_redo and history.redo_text == "dab 3"
    before = mask.copy()
    paint_disc(mask, 100, 120, 5, True)
    history.push(Paint(delta_between(before, mask), "dab 5"))
    assert not history.can_redo and history.redo(mask) is None


def test_history_rejects_a_zero_cap() -> None:
    with pytest.raises(ValueError):
        History(cap=0)


def test_delta_memory_is_proportional_to_the_edit() -> None:
    before = np.zeros((960, 1280), bool)
    after = before.copy()
    paint_disc(after, 600, 400, 10, True)
    delta: MaskDelta = delta_between(before, after)
    assert delta.nbytes < 2000
