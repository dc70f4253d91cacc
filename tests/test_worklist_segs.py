"""DICOM SEGs in the worklist: opened with the frames they reference they are the frames' ground truth (and so
the green label), a SEG that does not fit is one line; saving a frame from DICOM stores its label as a SEG."""
from __future__ import annotations

import cv2
import numpy as np
import pydicom
import pytest

from thyroid_studio.engine.datasets.index import DatasetIndex
from thyroid_studio.engine.datasets.writer import DatasetWriter
from thyroid_studio.engine.inference.segmenter import Segmentation
from thyroid_studio.engine.io.dicom_seg import Algorithm, Segment, instance_uid, read_seg, write_seg
from thyroid_studio.engine.labels.worklist import Worklist

from pacs_files import ddti_dicom, ddti_frames

SHAPE = (360, 560)
MODEL = Algorithm("trfe-tiny", "3")


def mask(seed: int) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[100 + 10 * seed: 180, 200: 300 + 20 * seed] = True
    return m


@pytest.fixture
def cine(tmp_path, shared_data):
    return ddti_dicom(tmp_path / "study" / "cine.dcm", ddti_frames(shared_data, 3))


def test_segs_opened_with_their_cine_are_ground_truth_and_label(tmp_path, cine):
    write_seg(cine.parent / "seg0.dcm", cine, 0, [Segment("nodule", mask(0))])
    write_seg(cine.parent / "seg2.dcm", cine, 2, [Segment("nodule", mask(2), MODEL), Segment("nodule", mask(1))])
    worklist = Worklist()
    rows, errors = worklist.add([cine.parent])
    assert errors == [] and len(rows) == 3 and {worklist[r].source.name for r in rows} == {"cine.dcm"}
    for row, truth in zip(rows, (mask(0), None, mask(1))):  # frame 2: the manual nodule of its two
        worklist.frame(row)
        entry = worklist[row]
        assert (entry.ground_truth is None) == (truth is None) and entry.error is None
        if truth is not None:
            assert np.array_equal(entry.ground_truth, truth)
            assert np.array_equal(worklist.label(row).mask, truth)  # the green label starts as the SEG's segment


def test_a_seg_opened_after_its_frame_becomes_the_shown_label(tmp_path, cine):
    worklist = Worklist()
    rows, _ = worklist.add([cine])
    label = worklist.label(rows[1])
    assert not label.mask.any()
    seg = write_seg(tmp_path / "later.dcm", cine, 1, [Segment("nodule", mask(1))])
    assert worklist.add([seg]) == ([], [])
    assert np.array_equal(worklist[rows[1]].ground_truth, mask(1)) and np.array_equal(label.mask, mask(1))
    assert label.undo() and not label.mask.any()


def test_a_seg_of_another_instance_or_size_is_one_line(tmp_path, cine, shared_data):
    other = ddti_dicom(tmp_path / "other.dcm", ddti_frames(shared_data, 1)[0])
    stranger = write_seg(tmp_path / "stranger.dcm", other, 0, [Segment("nodule", mask(0))])
    worklist = Worklist()
    rows, errors = worklist.add([cine, stranger])
    assert len(rows) == 3
    assert errors == [f"stranger.dcm: references another instance ({instance_uid(other)}), not one of the frames open"]

    # the same instance exported again at another size: the SEG no longer fits its frame
    seg = write_seg(tmp_path / "seg.dcm", other, 0, [Segment("nodule", mask(0))])
    ds = pydicom.dcmread(other)
    small = tmp_path / "small" / "other.dcm"
    small.parent.mkdir()
    ds.Rows, ds.Columns, ds.PixelData = 240, 320, np.zeros((240, 320), np.uint8).tobytes()
    ds.save_as(small)
    rows, errors = worklist.add([small, seg])
    worklist.frame(rows[0])
    assert errors == [] and worklist[rows[0]].ground_truth is None
    assert worklist[rows[0]].error == "other: seg.dcm: its masks are 560x360, the frame 320x240; no ground truth"


def test_saving_a_frame_from_dicom_stores_its_label_as_a_seg(tmp_path, cine, shared_data):
    worklist = Worklist()
    rows, _ = worklist.add([cine])
    predicted = Segmentation(mask(2).astype(np.float32), mask(2), model=MODEL)
    worklist.set_prediction(rows[0], "trfe", predicted, "trfe-tiny")
    worklist.label(rows[0]).replace(worklist.proposal(rows[0], "trfe"), "Accept")  # the model's mask, unedited
    worklist.label(rows[1]).replace(mask(1), "Paint")
    writer = DatasetWriter(tmp_path / "ds")
    first, second = worklist.save(rows[0], writer), worklist.save(rows[1], writer)
    uid = instance_uid(cine)
    for sample, index, truth, algorithm in ((first, 0, mask(2), MODEL), (second, 1, mask(1), None)):
        seg = read_seg(sample.seg)
        assert np.array_equal(seg.label_for(uid, index, SHAPE), truth)
        assert seg.segments[0].algorithm == algorithm  # an accepted AI mask names its model; a drawn one is manual
    assert DatasetIndex(tmp_path / "ds").items["0000"].seg == first.seg

    png = tmp_path / "frame.png"
    cv2.imwrite(str(png), ddti_frames(shared_data, 4)[3])  # a frame not saved yet
    row = worklist.add([png])[0][0]
    assert worklist.save(row, writer).seg is None
    assert worklist.seg_problem(row) == "not a DICOM file, so there is no instance for a SEG to reference"


def test_the_models_masks_go_along_when_asked(cine):
    worklist = Worklist()
    rows, _ = worklist.add([cine])
    gland = np.ones(SHAPE, bool)
    worklist.set_prediction(rows[0], "trfe", Segmentation(mask(0).astype(np.float32), mask(0), None, gland,
                                                          model=MODEL), "trfe-tiny")
    worklist.set_prediction(rows[0], "unet", Segmentation(mask(1).astype(np.float32), mask(1)), "unet-batch")
    worklist.label(rows[0]).replace(mask(2), "Paint")
    assert [(s.structure, s.algorithm) for s in worklist.seg_segments(rows[0])] == [("nodule", None)]
    segments = worklist.seg_segments(rows[0], with_models=True)
    assert [(s.structure, s.algorithm) for s in segments] == [
        ("nodule", None), ("nodule", MODEL), ("gland", MODEL), ("nodule", Algorithm("unet-batch", "unknown"))]
    assert np.array_equal(segments[2].mask, gland)
