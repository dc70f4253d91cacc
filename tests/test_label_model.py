"""The label of one frame (Qt-free): strokes as single edits, undo mid-stroke, calipers in the same
history, listeners told what to redraw."""
from __future__ import annotations

import numpy as np
import pytest

from thyroid_studio.engine.findings.fields import Findings
from thyroid_studio.engine.geometry import Caliper
from thyroid_studio.engine.labels.label_model import LabelChange, LabelModel
from thyroid_studio.engine.labels.painting import paint_disc


def dab(label: LabelModel, x: float, y: float, radius: float = 3, value: bool = True) -> None:
    label.paint(lambda mask: paint_disc(mask, x, y, radius, value))


def test_a_stroke_is_one_edit_and_listeners_see_each_dab_and_the_end() -> None:
    label = LabelModel(np.zeros((40, 60), bool))
    changes: list[LabelChange] = []
    label.subscribe(changes.append)
    label.begin_stroke("Brush")
    for x in (10, 20, 30):
        dab(label, x, 20)
    assert [c.finished for c in changes] == [False] * 3 and all(c.box is not None for c in changes)
    label.end_stroke()
    assert changes[-1].finished and len(label.history) == 1 and label.history.undo_text == "Brush"
    painted = label.mask.copy()
    assert label.undo() and not label.mask.any()
    assert label.redo() and np.array_equal(label.mask, painted)
    label.unsubscribe(changes.append)
    label.undo()
    assert len(changes) == 6  # three dabs, the end, undo, redo; nothing after unsubscribing


def test_undo_while_the_stroke_is_open_takes_back_only_that_stroke() -> None:
    label = LabelModel(np.zeros((40, 60), bool))
    label.begin_stroke("First")
    dab(label, 10, 10)
    label.end_stroke()
    first = label.mask.copy()
    label.begin_stroke("Second")
    dab(label, 40, 30)  # button still held
    second = label.mask.copy()
    assert label.undo()  # closes the open stroke into its own edit, then undoes it
    assert np.array_equal(label.mask, first) and not label.in_stroke
    with pytest.raises(RuntimeError):
        dab(label, 45, 30)  # the drag goes on: no stroke to paint into (the brush tool checks in_stroke)
    assert label.redo() and np.array_equal(label.mask, second)
    label.undo()
    label.undo()
    assert not label.mask.any()


def test_replace_and_calipers_share_one_history() -> None:
    label = LabelModel(np.zeros((40, 60), bool))
    changes: list[LabelChange] = []
    label.subscribe(changes.append)
    target = np.zeros((40, 60), bool)
    target[5:15, 5:25] = True
    assert label.replace(target, "Accept") and not label.replace(target, "Again")
    label.add_caliper(Caliper((0, 0), (3, 4)))
    assert changes[-1] == LabelChange(calipers=True, finished=True)
    label.clear_calipers()
    assert label.calipers == () and label.history.undo_text == "Clear calipers"
    label.undo()
    assert label.calipers == (Caliper((0, 0), (3, 4)),)
    label.undo()
    assert label.calipers == () and np.array_equal(label.mask, target)
    label.undo()
    assert not label.mask.any() and not label.history.can_undo
    with pytest.raises(ValueError):
        label.replace(np.zeros((4, 4), bool), "Wrong size")


def test_the_model_owns_its_mask() -> None:
    start = np.zeros((10, 10), bool)
    label = LabelModel(start)
    label.replace(np.ones((10, 10), bool), "Fill")
    assert not start.any()  # the caller's array is never edited


def test_findings_are_edits_of_the_label_and_a_replacement_with_findings_is_one_edit() -> None:
    label = LabelModel(np.zeros((40, 60), bool), Findings({"margins": "spiculated"}))
    changes: list[LabelChange] = []
    label.subscribe(changes.append)
    assert label.set_finding("composition", "solid") and not label.set_finding("composition", "solid")
    assert changes[-1] == LabelChange(findings=True, finished=True) and len(label.history) == 1
    assert label.history.undo_text == "Composition: solid"
    assert label.set_finding("margins", None)  # back to unknown
    assert label.findings == Findings({"composition": "solid"})
    target = np.zeros((40, 60), bool)
    target[5:10, 5:10] = True
    assert label.replace(target, "Open the saved label", findings=Findings({"tirads": "3"}))
    assert len(label.history) == 3 and changes[-1].findings and changes[-1].box is not None
    assert label.undo()  # mask and findings together
    assert not label.mask.any() and label.findings == Findings({"composition": "solid"})
    assert label.redo() and label.mask[7, 7] and label.findings == Findings({"tirads": "3"})
    label.undo()
    label.undo()
    label.undo()
    assert label.findings == Findings({"margins": "spiculated"}) and not label.history.can_undo
    assert not label.replace(np.zeros((40, 60), bool), "Same", findings=Findings({"margins": "spiculated"}))
