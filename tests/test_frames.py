"""Frames from images, DICOM and video; input discovery; every failure a FrameReadError."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.pixels import convert_color_space, get_decoder
from pydicom.uid import JPEGLosslessSV1

from thyroid_studio.engine.io.frames import (Frame, FrameReadError, count_frames, find_inputs, is_dicom, read_frame,
                                             read_frames)

from frame_files import us_region, write_avi, write_dicom

RNG = np.random.default_rng(0)


def write_image(path: Path, pixels: np.ndarray) -> Path:
    """Write with OpenCV through bytes so non-ASCII names work; ``pixels`` in OpenCV's BGR(A) order."""
    ok, encoded = cv2.imencode(path.suffix, pixels)
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


# ---------------------------------------------------------------- Frame


def test_frame_names_and_gray():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 255
    single = Frame(rgb, Path("exam/scan.png"))
    assert single.name == "scan"
    assert Frame(rgb, Path("clip.avi"), index=3, count=10).name == "clip_f0003"
    assert single.gray().shape == (2, 3) and single.gray().dtype == np.uint8
    gray = np.full((2, 3), 7, np.uint8)
    assert Frame(gray, Path("a.png")).gray() is gray


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_gray_8bit_round_trips(tmp_path, suffix):
    pixels = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
    frame = read_frame(write_image(tmp_path / f"scan{suffix}", pixels))
    assert frame.pixels.dtype == np.uint8 and np.array_equal(frame.pixels, pixels)
    assert (frame.index, frame.count, frame.calibration, frame.name) == (0, 1, None, "scan")


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff"])
def test_colour_is_rgb_order(tmp_path, suffix):
    rgb = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    frame = read_frame(write_image(tmp_path / f"c{suffix}", rgb[..., ::-1]))
    assert np.array_equal(frame.pixels, rgb)


def test_rgba_drops_alpha(tmp_path):
    rgb = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    bgra = np.dstack([rgb[..., ::-1], np.full((4, 6), 9, np.uint8)])
    assert np.array_equal(read_frame(write_image(tmp_path / "a.png", bgra)).pixels, rgb)


def test_rgb_saved_gray_becomes_2d(tmp_path):
    gray = RNG.integers(0, 256, (4, 6), dtype=np.uint8)
    frame = read_frame(write_image(tmp_path / "g.png", np.dstack([gray] * 3)))
    assert frame.pixels.shape == (4, 6) and np.array_equal(frame.pixels, gray)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_rescales_data_min_max(tmp_path, suffix):
    pixels = np.array([[1000, 1510], [3550, 3550]], np.uint16)
    frame = read_frame(write_image(tmp_path / f"deep{suffix}", pixels))
    assert frame.pixels.dtype == np.uint8
    assert frame.pixels.tolist() == [[0, 51], [255, 255]]


def test_16bit_colour(tmp_path):
    bgr = np.zeros((2, 2, 3), np.uint16)
    bgr[..., 2] = 60000  # red channel
    bgr[0, 0, 0] = 30000
    frame = read_frame(write_image(tmp_path / "deep.png", bgr))
    assert frame.pixels.shape == (2, 2, 3)
    assert frame.pixels[1, 1].tolist() == [255, 0, 0] and frame.pixels[0, 0, 2] == 128


def test_jpeg_gray_and_unicode_path(tmp_path):
    pixels = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
    frame = read_frame(write_image(tmp_path / "échographie_图像.jpg", pixels))
    assert frame.pixels.shape == (16, 16)
    assert np.abs(frame.pixels.astype(int) - pixels).max() <= 8
    assert frame.name == "échographie_图像"


def test_image_read_frames_and_count(tmp_path):
    path = write_image(tmp_path / "one.png", np.zeros((3, 3), np.uint8))
    frames = list(read_frames(path))
    assert len(frames) == 1 and count_frames(path) == 1 and frames[0].source == path
    with pytest.raises(FrameReadError, match="one.png: frame 1 is out of range"):
        read_frame(path, 1)


# ---------------------------------------------------------------- failures


def test_truncated_png(tmp_path):
    path = write_image(tmp_path / "scan.png", RNG.integers(0, 256, (64, 64), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(FrameReadError, match=r"scan.png: not a readable image \(corrupt or truncated file\)"):
        read_frame(path)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("noise.png", RNG.integers(0, 256, 500, dtype=np.uint8).tobytes(), "not a readable image"),
        ("empty.png", b"", "empty file"),
        ("notes.dcm", b"patient notes, not an image\n" * 20, "DICOM"),
        ("noise.avi", RNG.integers(0, 256, 5000, dtype=np.uint8).tobytes(), "video"),
        ("table.csv", b"a,b\n1,2\n", "unsupported file type '.csv'"),
    ],
)
def test_bad_files_raise_frame_read_error(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FrameReadError, match=f"^{name}: .*{problem}"):
        list(read_frames(path))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FrameReadError, match="gone.png: file not found"):
        read_frames(tmp_path / "gone.png")  # fails at the call, not at the first next()
    with pytest.raises(FrameReadError, match="is a folder"):
        count_frames(tmp_path)


# ---------------------------------------------------------------- DICOM


def test_dicom_ultrasound_regions_give_spacing(tmp_path):
    pixels = RNG.integers(0, 256, (20, 30), dtype=np.uint8)
    regions = [us_region(5, 5, 0.05, 0.05), us_region(30, 20, 0.01, 0.02), us_region(30, 20, 0.5, 0.5, units=0)]
    path = write_dicom(tmp_path / "us.dcm", pixels, SequenceOfUltrasoundRegions=regions, PixelSpacing=[9, 9])
    frame = read_frame(path)
    assert np.array_equal(frame.pixels, pixels) and frame.name == "us" and frame.count == 1
    assert frame.calibration.spacing_mm == pytest.approx((0.2, 0.1))  # largest cm region wins over PixelSpacing


def test_dicom_single_region_0_01_cm_is_0_1_mm(tmp_path):
    path = write_dicom(tmp_path / "us.dcm", np.zeros((4, 4), np.uint8), SequenceOfUltrasoundRegions=[us_region(4, 4, 0.01, 0.01)])
    assert read_frame(path).calibration.spacing_mm == pytest.approx((0.1, 0.1))


def test_dicom_pixel_spacing_only_and_none(tmp_path):
    pixels = np.zeros((4, 4), np.uint8)
    assert read_frame(write_dicom(tmp_path / "ps.dcm", pixels, PixelSpacing=[0.3, 0.4])).calibration.spacing_mm == (0.3, 0.4)
    assert read_frame(write_dicom(tmp_path / "none.dcm", pixels)).calibration is None


def test_dicom_multi_frame(tmp_path):
    pixels = RNG.integers(0, 256, (3, 8, 10), dtype=np.uint8)
    path = write_dicom(tmp_path / "clip.dcm", pixels, frames=3, PixelSpacing=[0.2, 0.2])
    assert count_frames(path) == 3
    frames = list(read_frames(path))
    assert [f.name for f in frames] == ["clip_f0000", "clip_f0001", "clip_f0002"]
    assert all(np.array_equal(f.pixels, p) for f, p in zip(frames, pixels))
    assert all(f.count == 3 and f.calibration.spacing_mm == (0.2, 0.2) for f in frames)
    middle = read_frame(path, 1)
    assert middle.index == 1 and np.array_equal(middle.pixels, pixels[1])
    with pytest.raises(FrameReadError, match="clip.dcm: frame 3 is out of range"):
        read_frame(path, 3)


def test_dicom_rgb(tmp_path):
    rgb = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    assert np.array_equal(read_frame(write_dicom(tmp_path / "rgb.dcm", rgb, "RGB")).pixels, rgb)


def test_dicom_ybr_full_becomes_rgb(tmp_path):
    rgb = RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    frame = read_frame(write_dicom(tmp_path / "ybr.dcm", ybr, "YBR_FULL"))
    assert frame.pixels.shape == (6, 5, 3)
    assert np.abs(frame.pixels.astype(int) - rgb).max() <= 3


def test_dicom_monochrome1_inverted(tmp_path):
    pixels = np.array([[0, 100], [200, 255]], np.uint8)
    assert read_frame(write_dicom(tmp_path / "m1.dcm", pixels, "MONOCHROME1")).pixels.tolist() == [[255, 155], [55, 0]]


def test_dicom_16bit_and_rescale(tmp_path):
    pixels = np.array([[0, 200], [1000, 1000]], np.uint16)
    assert read_frame(write_dicom(tmp_path / "deep.dcm", pixels)).pixels.tolist() == [[0, 51], [255, 255]]
    flipped = write_dicom(tmp_path / "slope.dcm", pixels, RescaleSlope=-1, RescaleIntercept=0)
    assert read_frame(flipped).pixels.tolist() == [[255, 204], [0, 0]]


def test_dicom_without_extension_found_and_read(tmp_path):
    pixels = RNG.integers(0, 256, (4, 4), dtype=np.uint8)
    path = write_dicom(tmp_path / "IM0001", pixels)
    (tmp_path / "README").write_text("not dicom")
    assert is_dicom(path) and not is_dicom(tmp_path / "README")
    assert find_inputs([tmp_path]) == [path]
    assert np.array_equal(read_frame(path).pixels, pixels) and read_frame(path).name == "IM0001"


def test_dicom_without_preamble_or_file_meta(tmp_path):
    pixels = RNG.integers(0, 256, (4, 4), dtype=np.uint8)
    ds = pydicom.dcmread(write_dicom(tmp_path / "full.dcm", pixels))
    ds.file_meta, ds.preamble = FileMetaDataset(), None
    ds.save_as(tmp_path / "legacy.dcm", implicit_vr=True, little_endian=True)
    assert np.array_equal(read_frame(tmp_path / "legacy.dcm").pixels, pixels)


def test_dicom_compressed_without_decoder(tmp_path):
    # JPEG Lossless SV1: no decoder among the dependencies (pyjpegls, which highdicom brings, decodes JPEG-LS)
    if get_decoder(JPEGLosslessSV1).is_available:
        pytest.skip("a JPEG Lossless decoder plugin is installed here")
    path = write_dicom(tmp_path / "jpl.dcm", np.zeros((4, 4), np.uint8), syntax=JPEGLosslessSV1)
    with pytest.raises(FrameReadError, match="jpl.dcm: DICOM transfer syntax JPEG Lossless.*decoder plugin"):
        read_frame(path)


def test_dicom_truncated_pixel_data_gives_the_frames_it_holds_then_the_missing_ones(tmp_path):
    pixels = RNG.integers(0, 256, (3, 32, 32), dtype=np.uint8)
    path = write_dicom(tmp_path / "cut.dcm", pixels, frames=3)
    path.write_bytes(path.read_bytes()[:-1500])  # frame 0 whole, frame 1 cut, frame 2 gone
    assert count_frames(path) == 1
    frames = read_frames(path)
    assert np.array_equal(next(frames).pixels, pixels[0])  # decoded frame by frame, not all at once
    with pytest.raises(FrameReadError, match="cut.dcm: the pixel data holds only 1 of the 3 frames its header gives "
                       r"\(truncated or damaged file\); 2 missing") as caught:
        list(frames)
    assert "\n" not in str(caught.value)
    with pytest.raises(FrameReadError, match="holds only 1 of the 3 frames"):
        read_frame(path, 2)


# ---------------------------------------------------------------- video


def test_video_round_trip(tmp_path):
    levels = [20, 80, 140, 200]
    path = write_avi(tmp_path / "clip.avi", levels)
    assert abs(count_frames(path) - len(levels)) <= 1
    frames = list(read_frames(path))
    assert len(frames) == len(levels)
    for index, (frame, level) in enumerate(zip(frames, levels)):
        assert frame.pixels.shape == (32, 48, 3) and frame.index == index
        assert frame.name == f"clip_f{index:04d}"
        assert abs(int(frame.pixels[16, 40, 1]) - level) <= 8  # right half, green channel
        assert frame.pixels[16, 4, 0] >= 240  # left half red in RGB order
    third = read_frame(path, 2)
    assert np.array_equal(third.pixels, frames[2].pixels)
    with pytest.raises(FrameReadError, match="clip.avi: frame 9 is out of range"):
        read_frame(path, 9)


def test_video_reading_can_stop_early(tmp_path):
    frames = read_frames(write_avi(tmp_path / "clip.avi", [10, 20, 30]))
    assert next(frames).index == 0
    frames.close()


# ---------------------------------------------------------------- discovery


def test_find_inputs_recursion_and_hidden(tmp_path):
    root = tmp_path / "exam"
    (root / "sub").mkdir(parents=True)
    (root / ".cache").mkdir()
    gray = np.zeros((2, 2), np.uint8)
    top = write_image(root / "b.png", gray)
    deep = write_image(root / "sub" / "a.JPG", gray)
    clip = root / "sub" / "c.mp4"
    clip.write_bytes(b"")
    write_image(root / ".hidden.png", gray)
    write_image(root / ".cache" / "x.png", gray)
    (root / "notes.txt").write_text("x")
    assert find_inputs(root) == sorted([top, deep, clip])
    assert find_inputs([root], recursive=False) == [top]
    assert find_inputs([str(root), top, root / "notes.txt"]) == sorted([top, deep, clip, root / "notes.txt"])


# ---------------------------------------------------------------- real data


def test_real_ddti_frame(shared_data):
    frame = read_frame(shared_data / "ddti" / "image" / "1.png")
    assert frame.pixels.shape[:2] == (360, 560) and frame.pixels.dtype == np.uint8
    assert frame.gray().shape == (360, 560) and frame.name == "1"
