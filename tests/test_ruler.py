"""The burnt-in ruler: ticks found on synthetic frames (known spacing, speckle, text, hidden ticks, a ruler
touching the image) and on DDTI frames; no proposal where there is no ruler; batch options applied
only where a frame has no calibration of its own."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from thyroid_studio.engine.calibration import Calibration
from thyroid_studio.engine.io.frames import Frame, read_frame
from thyroid_studio.engine.io.ruler import calibrated, find_ruler, propose_scale

from ruler_frames import draw_ticks, label, speckle_frame


@pytest.mark.parametrize("spacing", [30.0, 47.3, 60.86, 76.0, 95.0])
def test_depth_ruler_spacing_is_found(spacing):
    frame = speckle_frame()
    count = int((340 - 8) // spacing) + 1
    draw_ticks(frame, spacing, count)
    proposal = propose_scale(frame)
    assert proposal is not None and proposal.ruler.axis == "depth"
    assert len(proposal.ruler.ticks) == count
    assert proposal.mm_per_px == pytest.approx(10.0 / spacing, rel=0.005)
    assert proposal.calibration() == Calibration((10.0 / proposal.ruler.tick_px,) * 2, None, "ruler")


def test_ticks_among_text_markers_and_noise():
    frame = speckle_frame(seed=3)
    ticks = draw_ticks(frame, 50.55, 7)
    label(frame, "0", 20, 12)
    label(frame, "5", 20, 265)
    cv2.fillPoly(frame, [np.array([[39, 78], [43, 81], [39, 84]])], 255)  # the focus marker beside the ruler
    for row, text in enumerate(("P100", "12L6", "9.0", "31fps", "DR65")):
        label(frame, text, 284, 10 + 12 * row)
    frame = np.clip(frame + np.random.default_rng(1).normal(0, 4, frame.shape), 0, 255).astype(np.uint8)
    proposal = propose_scale(frame)
    assert proposal is not None and proposal.ruler.tick_px == pytest.approx(50.55, rel=0.005)
    assert np.abs(np.array(proposal.ruler.ticks) - np.array(ticks)).max() <= 0.6


def test_a_ruler_touching_the_image_and_hidden_ticks():
    frame = speckle_frame(image=(36, 10, 280, 330))  # the image starts right after the ticks' column
    draw_ticks(frame, 76.0, 5, at=34, skip=(2,))
    proposal = propose_scale(frame)
    assert proposal is not None and proposal.ruler.steps == (0, 1, 3, 4)
    assert proposal.ruler.tick_px == pytest.approx(76.0, rel=0.005) and proposal.length_mm == 40.0


def test_no_proposal_without_a_ruler():
    frame = speckle_frame(seed=5)
    for row, text in enumerate(("P100", "12L6", "9.0", "31fps", "DR65", "2DG", "92")):
        label(frame, text, 284, 10 + 12 * row)
    label(frame, "IZQ", 60, 350)
    assert propose_scale(frame) is None
    assert propose_scale(np.zeros((360, 560), np.uint8)) is None
    assert propose_scale(np.zeros((8, 8), np.uint8)) is None


def test_speckle_alone_gives_no_ruler_over_many_frames():
    false = [seed for seed in range(20) if propose_scale(speckle_frame(seed=seed, image=(0, 0, 300, 360))) is not None]
    assert false == []


def test_lateral_ruler_stands_in_and_confirms():
    frame = speckle_frame(image=(40, 12, 280, 330))
    draw_ticks(frame, 64.7, 4, at=8, first=12.0, lateral=True)
    alone = propose_scale(frame)
    assert alone is not None and alone.ruler.axis == "lateral" and not alone.confirmed
    assert alone.mm_per_px == pytest.approx(10 / 64.7, rel=0.005)
    draw_ticks(frame, 64.7, 5, at=34, first=12.0)
    both = propose_scale(frame)
    assert both.ruler.axis == "depth" and both.other.axis == "lateral" and both.confirmed
    assert "the lateral ruler agrees" in both.describe()


def test_the_finer_ruler_wins_when_the_other_misses_every_other_tick():
    frame = speckle_frame(image=(40, 12, 280, 330))
    draw_ticks(frame, 50.0, 5, at=8, first=45.0, lateral=True)  # lateral: every 5 mm... as ticks 1 cm apart
    draw_ticks(frame, 100.0, 4, at=34, first=12.0)  # depth: only every other tick visible
    proposal = propose_scale(frame)
    assert proposal.ruler.axis == "lateral" and proposal.confirmed and proposal.ruler.tick_px == pytest.approx(50.0)


def test_colour_frames_and_axis_names():
    frame = speckle_frame()
    draw_ticks(frame, 47.3, 7)
    rgb = np.dstack([frame, frame, frame])
    assert propose_scale(rgb).mm_per_px == pytest.approx(propose_scale(frame).mm_per_px)
    with pytest.raises(ValueError, match="unknown ruler axis"):
        find_ruler(frame, "diagonal")


def test_batch_options_fill_only_frames_without_a_calibration():
    pixels = speckle_frame()
    draw_ticks(pixels, 50.0, 7)
    plain = Frame(pixels, Path("a.png"))
    auto = calibrated(plain, "auto")
    assert auto.calibration.source == "ruler" and auto.calibration.spacing_mm == pytest.approx((0.2, 0.2), rel=0.005)
    assert calibrated(plain, 0.25).calibration == Calibration((0.25, 0.25), None, "option")
    assert calibrated(plain, None) is plain
    dicom = Frame(pixels, Path("a.dcm"), calibration=Calibration((0.1, 0.1), (0, 0, 99, 99)))
    assert calibrated(dicom, "auto") is dicom and calibrated(dicom, 0.3) is dicom
    bare = Frame(speckle_frame(), Path("b.png"))
    assert calibrated(bare, "auto") is bare


# Ticks read off the raw pixels by hand (columns 34-35 / 86-87 / 245-246; the 0 and 5 cm diamonds five
# intervals apart): 1 and 20004 at 8, 57.5, 108.5, ..., 310.5; 10004 at 8, 67.5, ..., 312; 20024 has no
# depth ruler, only lateral ticks at x = 57.5, 138.5, 219.5.
@pytest.mark.parametrize("name, tick_px, axis", [("1", 50.55, "depth"), ("10004", 60.86, "depth"),
                                                 ("20004", 50.55, "depth"), ("20024", 81.0, "lateral")])
def test_ddti_frames(shared_data, name, tick_px, axis):
    proposal = propose_scale(read_frame(shared_data / "ddti" / "image" / f"{name}.png").pixels)
    assert proposal is not None and proposal.ruler.axis == axis
    assert proposal.ruler.tick_px == pytest.approx(tick_px, rel=0.01)
    assert proposal.confirmed == (axis == "depth")
