"""DICOM SEG out and in (engine/io/dicom_seg.py): segments, references to the source instance and frame,
algorithm identification, pixel spacing; checked by highdicom's reader, pydicom, and dciodvfy where it is
installed; every mismatch one line."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.uid import SegmentationStorage

from thyroid_studio import cli
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.io.dicom_seg import (STRUCTURES, Algorithm, Segment, SegError, SegLabels, covered_frames,
                                                index_segs, instance_uid, is_seg, read_seg, seg_problem, write_seg)
from thyroid_studio.engine.io.frames import FrameReadError, read_frame

from frame_files import write_dicom
from pacs_files import SPACING_CM, ddti_dicom, ddti_frames, pydicom_us

MODEL = Algorithm("trfe-a-lite0", "1")
REPO = Path(__file__).resolve().parents[1]


def random_mask(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) > 0.6


def dciodvfy_errors(path) -> list[str]:
    """The errors dciodvfy (dicom3tools) finds in a file; skips where it is not installed."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


@pytest.fixture
def ddti_frame(tmp_path, shared_data):
    return ddti_dicom(tmp_path / "ddti-1.dcm", ddti_frames(shared_data, 1)[0])


def test_single_frame_seg_holds_each_segment_references_the_instance_and_carries_the_spacing(tmp_path, ddti_frame):
    shape = read_frame(ddti_frame).pixels.shape
    label, nodule, gland = random_mask(shape, 1), random_mask(shape, 2), random_mask(shape, 3)
    path = write_seg(tmp_path / "seg.dcm", ddti_frame, 0, [Segment("nodule", label), Segment("nodule", nodule, MODEL),
                                                         Segment("gland", gland, MODEL)])
    source = pydicom.dcmread(ddti_frame, stop_before_pixels=True)

    seg = read_seg(path)
    assert seg.frames == ((source.SOPInstanceUID, 0),) and seg.shape == shape
    assert [(s.number, s.structure, s.algorithm) for s in seg.segments] == [(1, "nodule", None), (2, "nodule", MODEL),
                                                                           (3, "gland", MODEL)]
    for segment, mask in zip(seg.segments, (label, nodule, gland)):
        assert np.array_equal(segment.masks[(source.SOPInstanceUID, 0)], mask)  # bit for bit
    assert seg.spacing_mm == pytest.approx((SPACING_CM * 10, SPACING_CM * 10))
    assert np.array_equal(seg.label_for(source.SOPInstanceUID, 0, shape), label)  # the manual nodule is the truth

    ds = pydicom.dcmread(path)  # pydicom's view: a binary SEG of this patient, study and instance
    assert ds.SOPClassUID == SegmentationStorage and ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert (ds.PatientID, ds.StudyInstanceUID) == (source.PatientID, source.StudyInstanceUID)
    referenced = ds.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == source.SeriesInstanceUID
    assert referenced.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert [s.SegmentAlgorithmType for s in ds.SegmentSequence] == ["MANUAL", "AUTOMATIC", "AUTOMATIC"]
    algorithm = ds.SegmentSequence[1].SegmentationAlgorithmIdentificationSequence[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("trfe-a-lite0", "1")
    assert ds.SegmentSequence[2].SegmentedPropertyTypeCodeSequence[0].CodeValue == STRUCTURES["gland"].type[0]
    assert "not diagnosis" in ds.SeriesDescription

    opened = hd.seg.segread(path)  # highdicom's reader: the right referenced instance
    assert (source.StudyInstanceUID, source.SeriesInstanceUID, source.SOPInstanceUID) in opened.get_source_image_uids()
    pixels = opened.get_pixels_by_source_instance([source.SOPInstanceUID])
    assert np.array_equal(pixels[0, :, :, 1].astype(bool), nodule)


def test_a_frame_of_a_cine_is_referenced_by_its_frame_number(tmp_path, shared_data):
    cine = ddti_dicom(tmp_path / "cine.dcm", ddti_frames(shared_data, 5))
    uid = instance_uid(cine)
    mask = random_mask((360, 560), 4)
    path = write_seg(tmp_path / "f3.dcm", cine, 3, [Segment("nodule", mask, MODEL)])

    item = pydicom.dcmread(path).PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    assert (item.ReferencedSOPInstanceUID, item.ReferencedFrameNumber) == (uid, 4)
    assert item.ReferencedSOPClassUID == pydicom.dcmread(cine, stop_before_pixels=True).SOPClassUID
    assert np.array_equal(hd.seg.segread(path).get_pixels_by_source_frame(uid, [4])[0, :, :, 0].astype(bool), mask)
    assert covered_frames(path) == ((uid, 3),)
    seg = read_seg(path)
    assert np.array_equal(seg.label_for(uid, 3, (360, 560)), mask)
    with pytest.raises(SegError, match=r"^f3.dcm: covers frame 4 of its source, not frame 2$"):
        seg.label_for(uid, 1, (360, 560))


def test_the_seg_passes_dciodvfy(tmp_path, shared_data, ddti_frame):
    cine = ddti_dicom(tmp_path / "cine.dcm", ddti_frames(shared_data, 3))
    single = write_seg(tmp_path / "single.dcm", ddti_frame, 0, [Segment("nodule", random_mask((360, 560)), MODEL)])
    frame = write_seg(tmp_path / "frame.dcm", cine, 2, [Segment("nodule", random_mask((360, 560))),
                                                      Segment("gland", random_mask((360, 560), 9), MODEL)])
    assert dciodvfy_errors(single) == []
    assert dciodvfy_errors(frame) == []


@pytest.mark.parametrize("name", ["examples_rgb_color.dcm", "examples_palette.dcm", "examples_ybr_color.dcm",
                                  "ExplVR_BigEnd.dcm"])
def test_pydicom_ultrasound_files_give_segs_that_read_back(tmp_path, name):
    source = pydicom_us(name)
    frame = read_frame(source, 0)
    mask = random_mask(frame.pixels.shape[:2], 5)
    seg = read_seg(write_seg(tmp_path / "seg.dcm", source, 0, [Segment("nodule", mask, MODEL)]))
    assert np.array_equal(seg.label_for(instance_uid(source), 0, mask.shape), mask)


def test_an_empty_label_is_a_seg_of_an_empty_segment(tmp_path, ddti_frame):
    seg = read_seg(write_seg(tmp_path / "empty.dcm", ddti_frame, 0, [Segment("nodule", np.zeros((360, 560), bool))]))
    assert not seg.label_for(instance_uid(ddti_frame), 0, (360, 560)).any()


def test_a_seg_that_does_not_fit_is_one_line(tmp_path, ddti_frame):
    path = write_seg(tmp_path / "seg.dcm", ddti_frame, 0, [Segment("nodule", random_mask((360, 560)))])
    seg = read_seg(path)
    with pytest.raises(SegError, match=r"^seg.dcm: references another instance \(.+\), not this frame's \(1.2.3\)$"):
        seg.label_for("1.2.3", 0, (360, 560))
    with pytest.raises(SegError, match=r"^seg.dcm: its masks are 560x360, the frame 320x240$"):
        seg.label_for(instance_uid(ddti_frame), 0, (240, 320))
    liver = pydicom_us("liver_1frame.dcm")  # pydicom's SEG of three CT slices, not pixel-aligned with any
    with pytest.raises(SegError, match=r"^liver_1frame.dcm: its frames do not say they keep the pixel positions"):
        read_seg(liver)
    with pytest.raises(SegError, match=r"^ddti-1.dcm: not a DICOM SEG"):
        read_seg(ddti_frame)


def test_what_cannot_have_a_seg_says_why(tmp_path, ddti_frame):
    png = tmp_path / "frame.png"
    png.write_bytes(b"\x89PNG")
    assert seg_problem(png) == "not a DICOM file, so there is no instance for a SEG to reference"
    bare = write_dicom(tmp_path / "bare.dcm", np.zeros((8, 8), np.uint8))  # no study or series UID
    assert seg_problem(bare) == "has no StudyInstanceUID, SeriesInstanceUID, so no SEG can reference it"
    assert seg_problem(ddti_frame) is None
    with pytest.raises(SegError, match=r"^ddti-1.dcm: a 10x10 mask for its 560x360 frames$"):
        write_seg(tmp_path / "x.dcm", ddti_frame, 0, [Segment("nodule", np.zeros((10, 10), bool))])
    with pytest.raises(SegError, match=r"^ddti-1.dcm: has no frame 1 \(it holds 1\)$"):
        write_seg(tmp_path / "x.dcm", ddti_frame, 1, [Segment("nodule", np.zeros((360, 560), bool))])
    assert not (tmp_path / "x.dcm").exists() and not list(tmp_path.glob(".x.*"))


def test_a_seg_is_not_a_frame_to_segment(tmp_path, ddti_frame):
    path = write_seg(tmp_path / "seg.dcm", ddti_frame, 0, [Segment("nodule", random_mask((360, 560)))])
    assert is_seg(path) and not is_seg(ddti_frame)
    with pytest.raises(FrameReadError, match=r"^seg.dcm: is a DICOM SEG \(a segmentation, not an image\)"):
        read_frame(path)


def test_segs_beside_frames_are_found_by_what_they_reference(tmp_path, shared_data, ddti_frame):
    cine = ddti_dicom(tmp_path / "cine.dcm", ddti_frames(shared_data, 3))
    masks = [random_mask((360, 560), seed) for seed in range(3)]
    segs = [write_seg(tmp_path / f"cine_{i}.dcm", cine, i, [Segment("nodule", m)]) for i, m in enumerate(masks)]
    stranger = write_seg(tmp_path / "other.dcm", ddti_frame, 0, [Segment("nodule", masks[0])])
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(segs[0].read_bytes()[:400])
    found, problems = index_segs(sorted(tmp_path.iterdir()))
    assert set(found.values()) == {*segs, stranger}
    assert problems == [] or all(p.startswith("broken.dcm: ") for p in problems)
    labels = SegLabels(found)
    for i, mask in enumerate(masks):
        assert np.array_equal(labels.label(cine, i, (360, 560)), mask)
    assert labels.strangers() == [(stranger, instance_uid(ddti_frame))]


# ---------------------------------------------------------------- segment --seg-out, evaluate --masks

SHIPPED = REPO / "models" / "trfe-a-lite0.pt"


@pytest.fixture
def dicom_inputs(tmp_path, shared_data):
    """A folder with a single DDTI frame as DICOM, a 3-frame DDTI cine and the first frame as a PNG."""
    folder = tmp_path / "in"
    folder.mkdir()
    frames = ddti_frames(shared_data, 3)
    ddti_dicom(folder / "still.dcm", frames[0])
    ddti_dicom(folder / "cine.dcm", frames)
    cv2.imwrite(str(folder / "frame.png"), frames[0])
    return folder


@pytest.mark.slow
def test_segment_seg_out_writes_a_seg_beside_each_mask_of_a_dicom_frame(tmp_path, dicom_inputs, capsys):
    out = tmp_path / "out"
    status = cli.main(["segment", str(dicom_inputs), "--out", str(out), "--model", str(SHIPPED), "--seg-out",
                       "--gland", "--threads", "1"])
    assert status == cli.EXIT_OK
    assert "warning: frame.png: no DICOM SEG for its frames: not a DICOM file" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*_seg.dcm")) == ["cine_f0000_seg.dcm", "cine_f0001_seg.dcm",
                                                           "cine_f0002_seg.dcm", "still_seg.dcm"]
    uid = instance_uid(dicom_inputs / "cine.dcm")
    series = set()
    for index in range(3):
        path = out / f"cine_f{index:04d}_seg.dcm"
        seg = read_seg(path)
        nodule, gland = seg.segments
        assert (nodule.structure, gland.structure) == ("nodule", "gland")
        assert nodule.algorithm == gland.algorithm == Algorithm("trfe-a-lite0", "1")
        png = read_mask(out / f"cine_f{index:04d}.png")
        assert png.any() and np.array_equal(seg.label_for(uid, index, png.shape), png)  # bit for bit
        assert np.array_equal(gland.masks[(uid, index)], read_mask(out / f"cine_f{index:04d}_gland.png"))
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        series.add(ds.SeriesInstanceUID)
        assert ds.InstanceNumber == index + 1
    assert len(series) == 1  # one SEG series per input
    assert np.array_equal(read_seg(out / "still_seg.dcm").label_for(instance_uid(dicom_inputs / "still.dcm"), 0,
                                                                   (360, 560)), read_mask(out / "still.png"))
    shutil.copy(out / "still_seg.dcm", dicom_inputs / "still_seg.dcm")  # a folder pulled from a PACS holds SEGs
    assert cli.main(["segment", str(dicom_inputs), "--out", str(tmp_path / "again"), "--model", str(SHIPPED),
                     "--threads", "1"]) == cli.EXIT_OK  # a SEG in a folder is a label, not a frame to segment
    assert not (tmp_path / "again" / "still_seg.png").exists()


@pytest.mark.slow
def test_evaluate_takes_segs_as_ground_truth(tmp_path, dicom_inputs, capsys):
    out = tmp_path / "out"
    assert cli.main(["segment", str(dicom_inputs / "cine.dcm"), "--out", str(out), "--model", str(SHIPPED),
                     "--seg-out", "--threads", "1"]) == cli.EXIT_OK
    truth = tmp_path / "truth"
    truth.mkdir()
    for path in out.glob("*_seg.dcm"):
        shutil.copy(path, truth / path.name)
    capsys.readouterr()
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(dicom_inputs / "cine.dcm", images / "cine.dcm")
    assert cli.main(["evaluate", "--predictions", str(out), "--images", str(images), "--masks", str(truth)]) == 0
    table = capsys.readouterr().out
    assert "per image (n=3)" in table and "100.00 ± 0.00" in table
    for path in truth.iterdir():  # a study as pulled: the cine and its SEGs in one folder
        shutil.copy(path, images / path.name)
    assert cli.main(["evaluate", "--predictions", str(out), "--images", str(images), "--masks", str(images)]) == 0
    assert "per image (n=3)" in capsys.readouterr().out
    shutil.copy(pydicom_us("liver_1frame.dcm"), truth / "liver.dcm")  # a SEG of other instances (CT slices)
    assert cli.main(["evaluate", "--predictions", str(out), "--images", str(images), "--masks", str(truth)]) == 1
    err = capsys.readouterr().err
    assert "not scored: liver.dcm: references another instance (1.2.392." in err
    assert "none of the frames of --images" in err
