"""The app's Qt-free document model: opening frames, states, labels, Dice, saving and batch results; the
worklist's side of cine propagation (a clip's following rows, frames decoded by a worker joining the cache, the
"propagated" state and what clears it)."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.datasets.writer import AlreadySaved, DatasetWriter
from thyroid_studio.engine.findings.fields import Findings, read_labels
from thyroid_studio.engine.inference.segmenter import Segmentation
from thyroid_studio.engine.io.frames import read_frames
from thyroid_studio.engine.labels import worklist as worklist_module
from thyroid_studio.engine.labels.worklist import State, Worklist, natural_key

from frame_files import us_region, write_dicom

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def rows_inserting(self, first: int, last: int) -> None:
        self.events.append(("inserting", first, last))

    def rows_inserted(self) -> None:
        self.events.append(("inserted",))

    def row_changed(self, row: int) -> None:
        self.events.append(("changed", row))


def _seg(mask: np.ndarray) -> Segmentation:
    return Segmentation(mask.astype(np.float32), mask.astype(bool))


def _open_gray(work: Worklist, path: Path, shape: tuple[int, int] = (20, 30)) -> int:
    """Write a plain gray frame at ``path`` and open it; its row."""
    cv2.imwrite(str(path), np.full(shape, 90, np.uint8))
    (row,), _ = work.add([path])
    return row


@pytest.fixture
def worklist() -> tuple[Worklist, Recorder]:
    work, recorder = Worklist(), Recorder()
    work.subscribe(recorder)
    return work, recorder


def test_opening_a_sample_folder_finds_frames_and_ground_truth(worklist):
    work, recorder = worklist
    rows, errors = work.add([SAMPLES / "image"])
    assert rows == [0, 1, 2] and errors == []
    assert recorder.events == [("inserting", 0, 2), ("inserted",)]
    assert all(e.ground_truth_file is not None for e in work.entries)  # found now, read with the frame
    assert work.add([SAMPLES / "image" / "1.png"])[0] == [work.row_of(SAMPLES / "image" / "1.png")]
    assert len(work) == 3
    frame = work.frame(0)
    assert work[0].ground_truth.any() and frame.pixels.shape[:2] == work[0].ground_truth.shape


def test_unreadable_file_is_reported_not_opened(worklist, tmp_path):
    work, _ = worklist
    rows, errors = work.add([tmp_path / "gone.png"])
    assert rows == [] and len(errors) == 1 and "gone.png" in errors[0]


def test_states_follow_predictions_edits_undo_and_save(worklist, tmp_path):
    work, recorder = worklist
    image = tmp_path / "frame.png"
    row = _open_gray(work, image)
    entry = work[row]
    assert entry.state is State.NOT_SEGMENTED and entry.ground_truth is None
    ai = np.zeros((20, 30), bool)
    ai[5:15, 5:15] = True
    work.set_prediction(row, "trfe", _seg(ai), "trfe-a-w16")
    assert entry.state is State.AI and ("changed", row) in recorder.events
    assert work.dice(row) == {"trfe": None, "unet": None}

    proposal = work.proposal(row, "trfe")
    label = work.label(row)  # the one owner of the frame's mask and its history
    changes = len([e for e in recorder.events if e == ("changed", row)])
    assert label.replace(proposal, "Accept")
    assert entry.state is State.CORRECTED and work.unsaved_rows() == [row]
    assert len([e for e in recorder.events if e == ("changed", row)]) == changes + 1  # told once the edit is complete
    assert not label.replace(proposal, "Accept again")  # unchanged: no edit
    assert label.undo()  # edits undone: back to the empty baseline
    assert entry.state is State.AI and work.unsaved_rows() == []

    edited = ai.copy()
    edited[5:15, 15:20] = True
    label.replace(edited, "Edit")
    sample = work.save(row, DatasetWriter(tmp_path / "dataset"))
    assert entry.state is State.SAVED and not entry.unsaved
    saved = cv2.imread(str(sample.mask), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(saved)) == {0, 255} and np.array_equal(saved > 0, edited)
    assert sample.image.read_bytes() == image.read_bytes()
    record = json.loads((tmp_path / "dataset" / "records.jsonl").read_text().splitlines()[-1])
    assert record["proposed_by"] == "trfe-a-w16"
    assert record["dice_ai_vs_label"]["trfe-a-w16"] == pytest.approx(2 * 100 / (100 + 150), abs=1e-4)
    assert record["source"] == str(image) and "saved_at" in record

    label.replace(np.zeros_like(ai), "Clear")
    assert entry.state is State.CORRECTED
    work.discard(row)  # back to the saved label, as an edit that can itself be undone
    assert np.array_equal(entry.current_label(), edited) and entry.state is State.SAVED
    label.undo()
    assert not label.mask.any() and entry.state is State.CORRECTED


def test_a_label_and_its_history_belong_to_the_frame(worklist, tmp_path):
    work, _ = worklist
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((20, 30), 90, np.uint8))
    (a, b), _ = work.add([tmp_path])
    painted = np.zeros((20, 30), bool)
    painted[2:8, 3:9] = True
    work.label(a).replace(painted, "Paint")
    work.label(b)
    work.release(a)  # leaving a frame with edits keeps them, with their history
    work.release(b)  # a frame never edited gives its label back
    assert work[a].label is not None and work[b].label is None
    assert work.label(a).history.undo_text == "Paint" and work.label(a).undo()
    assert not work[a].unsaved and work.label(a).history.can_redo
    work.release(a)
    assert work[a].label is not None  # a redo is still possible


def test_an_entry_can_start_saved(worklist, tmp_path):
    """Resuming a case: a frame found in the dataset opens with its saved label and state "saved"."""
    work, _ = worklist
    row = _open_gray(work, tmp_path / "a.png")
    saved = np.zeros((20, 30), bool)
    saved[4:9, 4:9] = True
    work.set_saved(row, saved)
    assert work[row].state is State.SAVED and np.array_equal(work.label(row).mask, saved)
    assert not work[row].unsaved and not work.label(row).history.can_undo


def test_folders_open_in_natural_order_without_their_masks(worklist, tmp_path):
    work, _ = worklist
    case = tmp_path / "case"
    for folder in ("image", "mask"):
        (case / folder).mkdir(parents=True)
        for number in (100, 71, 101, 9):
            cv2.imwrite(str(case / folder / f"{number}.png"), np.full((20, 30), 90, np.uint8))
    rows, errors = work.add([case])
    assert errors == [] and [work[r].name for r in rows] == ["9", "71", "100", "101"]
    assert all(work[r].source.parent.name == "image" and work[r].ground_truth_file is not None for r in rows)
    rows, _ = work.add([case / "mask"])  # asked for by name, the masks are frames
    assert [work[r].source.parent.name for r in rows] == ["mask"] * 4
    assert natural_key("img9.png") < natural_key("img10.png") < natural_key("img71b.png")


def test_new_models_keep_batch_results(worklist):
    work, _ = worklist
    (first, second, *_), _ = work.add([SAMPLES / "image"])
    mask = np.zeros((4, 4), bool)
    work.set_prediction(first, "trfe", _seg(mask), "batch-model", from_batch=True)
    work.set_prediction(second, "trfe", _seg(mask), "live-model")
    work.set_prediction(second, "unet", _seg(mask), "unet-model")
    work.set_uncertainty(second, 0.3)
    work.clear_predictions(["trfe"])
    assert set(work[first].predictions) == {"trfe"} and work[first].models["trfe"] == "batch-model"
    assert set(work[second].predictions) == {"unet"} and work[second].uncertainty is None


def test_dice_against_ground_truth(worklist):
    work, _ = worklist
    (row, *_), _ = work.add([SAMPLES / "image"])
    work.frame(row)
    truth = work[row].ground_truth
    work.set_prediction(row, "trfe", _seg(truth), "t")
    work.set_prediction(row, "unet", _seg(np.zeros_like(truth)), "u")
    assert work.dice(row) == {"trfe": 1.0, "unet": 0.0}
    assert np.array_equal(work[row].current_label(), truth)  # the green layer starts as the ground truth


def test_batch_results_become_predictions(worklist, tmp_path):
    work, _ = worklist
    out = tmp_path / "out"
    out.mkdir()
    source = tmp_path / "in" / "a.png"
    source.parent.mkdir()
    shutil.copy(SAMPLES / "image" / "1.png", source)
    truth = read_mask(SAMPLES / "mask" / "1.png")
    cv2.imwrite(str(out / "a.png"), truth.astype(np.uint8) * 255)
    with open(out / "segmentation.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "frame", "model", "mask"])
        writer.writeheader()
        writer.writerow({"file": str(source), "frame": "0", "model": "trfe-a-w16", "mask": "a.png"})
    rows, errors = work.load_batch_results(out / "segmentation.csv")
    assert errors == []
    assert rows == [0]
    assert work[0].state is State.AI and np.array_equal(work[0].predictions["trfe"].nodule_mask, truth)


def test_a_ground_truth_of_the_wrong_size_is_ignored_with_a_message(tmp_path):
    (tmp_path / "image").mkdir()
    (tmp_path / "mask").mkdir()
    cv2.imwrite(str(tmp_path / "image" / "a.png"), np.full((20, 30), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "mask" / "a.png"), np.full((10, 10), 255, np.uint8))
    worklist = Worklist()
    rows, errors = worklist.add([tmp_path / "image" / "a.png"])
    assert errors == [] and worklist[rows[0]].ground_truth_file is not None
    assert worklist.frame(rows[0]).pixels.shape == (20, 30)
    assert worklist[rows[0]].ground_truth is None
    assert "mask ignored" in worklist[rows[0]].error


def test_findings_make_a_label_unsaved_and_are_saved_with_it(worklist, tmp_path):
    work, _ = worklist
    row = _open_gray(work, tmp_path / "a.png")
    label = work.label(row)
    label.set_finding("calcifications", "microcalcification")
    assert work[row].unsaved and work[row].findings == Findings({"calcifications": "microcalcification"})
    writer = DatasetWriter(tmp_path / "dataset")
    work.save(row, writer)
    assert work[row].state is State.SAVED and work[row].saved_findings == work[row].findings
    labels = read_labels(tmp_path / "dataset" / "labels.csv")
    assert labels == {"0000": Findings({"calcifications": "microcalcification"})}
    label.set_finding("calcifications", None)
    with pytest.raises(AlreadySaved) as saved:
        work.save(row, writer)  # never silently replaced
    assert saved.value.same_mask and saved.value.item.findings == Findings({"calcifications": "microcalcification"})
    work.save(row, writer, replace=True)
    assert read_labels(tmp_path / "dataset" / "labels.csv") == {}  # the findings cleared in the dataset too
    assert work[row].state is State.SAVED and work[row].saved_findings == Findings()


def test_a_clean_label_takes_the_saved_one_and_unsaved_edits_stay(worklist, tmp_path):
    """Resuming while a frame is shown: its label (no edits) becomes the saved one, as an undoable edit."""
    work, _ = worklist
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.full((20, 30), 90 if name == "a" else 50, np.uint8))
    (a, b), _ = work.add([tmp_path])
    saved = np.zeros((20, 30), bool)
    saved[2:6, 2:6] = True
    edited = np.zeros((20, 30), bool)
    edited[10:12, 10:12] = True
    work.label(a)
    work.label(b).replace(edited, "Paint")
    for row in (a, b):
        work.set_saved(row, saved, Findings({"tirads": "4a"}))
    assert np.array_equal(work.label(a).mask, saved) and work.label(a).findings == Findings({"tirads": "4a"})
    assert work[a].state is State.SAVED and work.label(a).history.undo_text == "Open the saved label"
    assert np.array_equal(work.label(b).mask, edited) and work[b].state is State.CORRECTED


def test_report_page_of_a_frame_measures_the_label_and_lists_the_users_findings(worklist, tmp_path):
    work, _ = worklist
    row = _open_gray(work, tmp_path / "a.png", (40, 50))
    ai = np.zeros((40, 50), bool)
    ai[5:30, 5:15] = True
    work.set_prediction(row, "trfe", _seg(ai), "tiny")
    assert "Measured on the model's mask." in work.report_page(row).tables[0].note  # no label drawn
    drawn = np.zeros((40, 50), bool)
    drawn[10:20, 10:40] = True
    work.label(row).replace(drawn, "Paint")
    work.label(row).set_finding("margins", "spiculated")
    page = work.report_page(row)
    assert page.title == "a" and "Measured on the label." in page.tables[0].note
    findings = {r[0]: r[1:] for r in page.tables[1].rows}
    assert findings["Margins"] == ("spiculated", "", "user")


def test_millimetres_only_for_a_label_inside_the_calibrated_region(worklist, tmp_path):
    work, _ = worklist
    path = write_dicom(tmp_path / "us.dcm", np.zeros((30, 40), np.uint8), SequenceOfUltrasoundRegions=[us_region(25, 20, 0.01, 0.01)])
    (row,), _ = work.add([path])
    work.frame(row)
    mask = np.zeros((30, 40), bool)
    mask[5:10, 5:10] = True
    assert work.spacing_for(row, mask) == pytest.approx((0.1, 0.1))
    mask[25:28, 30:35] = True  # a piece outside the calibrated region
    assert work.spacing_for(row, mask) is None


# ----------------------------------------------------------------------------- cine propagation (the worklist's side)


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
