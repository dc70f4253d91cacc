"""The dataset writer keeps a DICOM SEG beside the mask of a frame from DICOM (trainval-seg/), through adds,
replaces, checks, repairs and crashes at every step; the TN3K folders stay as they are."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from thyroid_studio.engine.datasets.check import check, repair
from thyroid_studio.engine.datasets.index import DatasetIndex, bytes_hash
from thyroid_studio.engine.datasets.layouts import open_dataset
from thyroid_studio.engine.datasets.writer import JOURNAL, SEGS, DatasetWriter
from thyroid_studio.engine.io.dicom_seg import Segment, instance_uid, read_seg, seg_bytes

from dataset_files import Crash, failing_at, gray, square_mask
from frame_files import write_dicom


@pytest.fixture
def source(tmp_path):
    """A 12 x 16 DICOM frame (its pixels are gray(seed=0)) that SEGs can reference."""
    return write_dicom(tmp_path / "frame.dcm", gray(seed=0), StudyInstanceUID="1.2.826.0.1.3680043.10.1",
                       SeriesInstanceUID="1.2.826.0.1.3680043.10.2", PatientID="P1")


def seg_of(source, mask) -> bytes:
    return seg_bytes(source, 0, [Segment("nodule", mask)])


def test_a_saved_frame_from_dicom_keeps_its_seg_and_a_replace_gets_a_new_one(tmp_path, source):
    root = tmp_path / "ds"
    writer = DatasetWriter(root)
    first = seg_of(source, square_mask(x=2))
    sample = writer.add(gray(seed=0), square_mask(x=2), source=source, seg=first)
    assert sample.seg == root / SEGS / "0000.dcm" and sample.seg.read_bytes() == first
    item = DatasetIndex(root).items["0000"]
    assert (item.seg, item.seg_sha256) == (sample.seg, bytes_hash(first))
    assert item.record["seg"] == f"{SEGS}/0000.dcm"
    assert np.array_equal(read_seg(item.seg).label_for(instance_uid(source), 0, (12, 16)), square_mask(x=2))
    assert open_dataset(root).layout == "tn3k" and check(root) == []

    second = seg_of(source, square_mask(x=6))
    replaced = writer.add(gray(seed=0), square_mask(x=6), source=source, seg=second, replace=True)
    assert replaced.seg == root / SEGS / "0000.r1.dcm" and not (root / SEGS / "0000.dcm").exists()
    assert DatasetIndex(root).items["0000"].seg == replaced.seg and check(root) == []

    writer.add(gray(seed=0), square_mask(x=8), source=source, replace=True)  # no SEG: the old one no longer fits
    item = DatasetIndex(root).items["0000"]
    assert item.seg is None and item.record["seg"] is None and not list((root / SEGS).iterdir())
    assert check(root) == []


def test_frames_not_from_dicom_add_no_seg_folder(tmp_path):
    root = tmp_path / "ds"
    DatasetWriter(root).add(gray(seed=3), square_mask(), source="a.png")
    assert not (root / SEGS).exists() and "seg" not in DatasetIndex(root).items["0000"].record


def test_check_reports_and_repair_moves_a_seg_the_records_do_not_know(tmp_path, source):
    root = tmp_path / "ds"
    writer = DatasetWriter(root)
    writer.add(gray(seed=0), square_mask(), source=source, seg=seg_of(source, square_mask()))
    shutil.copy(root / SEGS / "0000.dcm", root / SEGS / "0007.dcm")
    assert check(root) == [f"{SEGS}/0007.dcm: not in the records (an orphan)"]
    (root / SEGS / "0000.dcm").write_bytes(b"changed")
    assert f"0000: {SEGS}/0000.dcm is not the SEG saved (changed outside the writer)" in check(root)
    fixed, remaining = repair(root)
    assert any("0007.dcm: not in the records; moved to orphans/" in line for line in fixed)
    assert remaining == [f"0000: {SEGS}/0000.dcm is not the SEG saved (changed outside the writer)"]


@pytest.mark.parametrize("op", ["add", "replace"])
def test_a_crash_at_any_step_leaves_the_seg_of_the_last_commit(tmp_path, monkeypatch, source, op):
    """Fail each os.replace/os.fsync of an add or replace with a SEG in turn, then reopen: the dataset checks
    clean, and the item has the SEG of whichever mask it has."""
    base = tmp_path / "base"
    DatasetWriter(base).add(gray(seed=0), square_mask(x=2), source=source, seg=seg_of(source, square_mask(x=2)))
    change = (dict(image=gray(seed=0), mask=square_mask(x=6), replace=True) if op == "replace" else
              dict(image=gray(seed=5), mask=square_mask(x=6)))
    new_seg = seg_of(source, square_mask(x=6))
    with monkeypatch.context() as m:
        steps = failing_at(m, None, Crash)
        DatasetWriter(shutil.copytree(base, tmp_path / "count")).add(source=source, seg=new_seg, **change)
    outcomes = set()
    for step in range(1, steps["n"] + 1):
        root = shutil.copytree(base, tmp_path / f"{op}-{step}")
        writer = DatasetWriter(root)
        with monkeypatch.context() as m:
            failing_at(m, step, Crash)
            with pytest.raises(Crash):
                writer.add(source=source, seg=new_seg, **change)
        reopened = DatasetWriter(root)
        assert check(root) == [], (step, reopened.recovered)
        items = reopened.index.items
        key = "0000" if op == "replace" else "0001"
        done = key in items and np.array_equal(items[key].read_mask(), square_mask(x=6))
        if done:
            assert items[key].seg.read_bytes() == new_seg
        assert np.array_equal(read_seg(items["0000"].seg).label_for(instance_uid(source), 0, (12, 16)),
                              items["0000"].read_mask())  # the SEG always fits the mask
        assert len(list((root / SEGS).iterdir())) == len(items) and not (root / JOURNAL).exists()
        outcomes.add(done)
    assert outcomes == {False, True}
