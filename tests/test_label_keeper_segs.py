"""The app's Save writes the label of a frame from DICOM into the dataset item as a DICOM SEG too, and says
why a frame gets none; the TN3K folders stay as they are."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from thyroid_studio.app.label_keeper import AS_IS
from thyroid_studio.engine.datasets.index import DatasetIndex
from thyroid_studio.engine.io.dicom_seg import instance_uid, read_seg

from app_driving import SAMPLE, button_named, click_in_next_modal, key, paint, reactivate
from pacs_files import ddti_dicom, ddti_frames

CTRL = Qt.KeyboardModifier.ControlModifier


def test_save_writes_the_seg_of_a_dicom_frame_into_the_dataset_item(qtbot, window, tmp_path, shared_data):
    frame = ddti_dicom(tmp_path / "frame.dcm", ddti_frames(shared_data, 1)[0])
    dataset = tmp_path / "dataset"
    window.settings.setValue("dataset/folder", str(dataset))
    window.open_paths([frame])
    paint(qtbot, window, [(200, 150), (260, 170)])
    click_in_next_modal(qtbot, button_named(AS_IS))
    key(qtbot, window, Qt.Key.Key_S, CTRL)
    reactivate(qtbot, window)
    assert "with its DICOM SEG 0000.dcm" in window.statusBar().currentMessage()
    item = DatasetIndex(dataset).items["0000"]
    seg = read_seg(item.seg)
    assert np.array_equal(seg.label_for(instance_uid(frame), 0, (360, 560)), item.read_mask())
    assert seg.segments[0].algorithm is None  # painted: manual
    assert sorted(p.name for p in dataset.iterdir() if p.is_dir()) == ["test-image", "test-mask", "trainval-image",
                                                                      "trainval-mask", "trainval-seg"]


def test_save_of_a_frame_not_from_dicom_says_why_it_has_no_seg(qtbot, window, tmp_path):
    window.settings.setValue("dataset/folder", str(tmp_path / "dataset"))
    window.open_paths([SAMPLE])
    paint(qtbot, window, [(40, 40), (60, 45)])
    key(qtbot, window, Qt.Key.Key_S, CTRL)
    assert window.statusBar().currentMessage().endswith(
        "(no DICOM SEG: not a DICOM file, so there is no instance for a SEG to reference)")
    assert not (tmp_path / "dataset" / "trainval-seg").exists()
