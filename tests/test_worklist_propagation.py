"""The worklist's side of cine propagation (Qt-free): a clip's following rows, frames decoded by a worker
joining the cache, the "propagated" state and what clears it (accepting, saving, discarding)."""
from __future__ import annotations

import numpy as np
import pytest
from test_frames import write_dicom

from thyroid_studio.engine.datasets.writer import DatasetWriter
from thyroid_studio.engine.io.frames import read_frames
from thyroid_studio.engine.labels import worklist as worklist_module
from thyroid_studio.engine.labels.worklist import State, Worklist

H, W = 40, 50


@pytest.fixture
def clip(tmp_path):
    frames = np.stack([np.full((H, W), 20 * k + 10, np.uint8) for k in range(4)])
    return write_dicom(tmp_path / "clip.dcm", frames, frames=4)


def square() -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[10:20, 10:30] = True
    return mask


def test_clip_rows_are_the_frames_after_in_frame_order(tmp_path, clip):
    work = Worklist()
    single = tmp_path / "single.dcm"
    write_dicom(single, np.zeros((H, W), np.uint8))
    work.add([single, clip])
    rows = [work.row_of(clip, k) for k in range(4)]
    assert work.clip_rows(rows[1]) == rows[2:] and work.clip_rows(rows[3]) == []
    assert work.clip_rows(work.row_of(single)) == []


def test_a_frame_decoded_elsewhere_is_not_decoded_again(clip, monkeypatch):
    work = Worklist()
    work.add([clip])
    decoded = list(read_frames(clip))
    for frame in decoded:
        work.keep_frame(frame)

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(worklist_module, "read_frame", no_decoding)
    assert work.frame(2) is decoded[2] and work.label(3).mask.shape == (H, W)


def test_propagated_until_accepted_saved_or_discarded(clip, tmp_path):
    work = Worklist()
    changed = []
    work.subscribe(type("L", (), {"rows_inserting": lambda *a: None, "rows_inserted": lambda *a: None,
                                  "row_changed": lambda self, row: changed.append(row)})())
    work.add([clip])
    work.set_propagated(1, square(), "litemedsam (propagated)")
    entry = work[1]
    assert entry.state is State.PROPAGATED and entry.propagated and 1 in changed
    assert len(entry.label.history) == 1 and entry.label.history.undo_text == "Propagate"
    assert work.record(1)["proposed_by"] == "litemedsam (propagated)"
    entry.label.undo()
    assert entry.state is State.NOT_SEGMENTED  # nothing unsaved left: not shown as propagated
    entry.label.redo()
    assert entry.state is State.PROPAGATED

    assert work.accept_propagated(1) and entry.state is State.CORRECTED and not work.accept_propagated(1)
    work.set_propagated(1, square(), "litemedsam (propagated)")  # the same mask again: the mark alone returns
    assert entry.state is State.PROPAGATED and len(entry.label.history) == 1

    work.set_propagated(2, square(), "litemedsam (propagated)")
    work.save(2, DatasetWriter(tmp_path / "dataset"))
    assert work[2].state is State.SAVED and not work[2].propagated

    work.set_propagated(3, square(), "litemedsam (propagated)")
    work.discard(3)
    assert work[3].state is State.NOT_SEGMENTED and not work[3].propagated
