"""Hostile and odd files: size caps from headers, frame counts checked against the data, DICOM palette
colour and calibration regions, truncated video, unreadable folders, and a fuzz run over every extension."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.uid import RLELossless

from thyroid_studio.engine.io import frames
from thyroid_studio.engine.io.frames import (MAX_PIXELS_VARIABLE, SUPPORTED_EXTENSIONS, Frame, FrameReadError,
                                             count_frames, find_inputs, read_frame, read_frames)
from thyroid_studio.engine.io.image_header import image_size

from frame_files import (
    avi_claiming,
    bigtiff_claiming,
    bmp_claiming,
    dicom_bomb,
    jpeg_claiming,
    png_bomb,
    png_claiming,
    tiff_claiming,
    us_region,
    write_avi,
    write_dicom,
)

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the pixel cap, from headers


@pytest.mark.parametrize(
    ("suffix", "content", "size"),
    [
        (".png", png_claiming(20000, 20000), (20000, 20000)),
        (".jpg", jpeg_claiming(65535, 65535), (65535, 65535)),
        (".tif", tiff_claiming(60000, 50000), (50000, 60000)),
        (".tiff", bigtiff_claiming(70000, 70000), (70000, 70000)),
        (".bmp", bmp_claiming(30000, 30000), (30000, 30000)),
    ],
)
def test_a_huge_image_header_is_refused_before_decoding(tmp_path, monkeypatch, suffix, content, size):
    assert image_size(content) == size
    path = tmp_path / f"bomb{suffix}"
    path.write_bytes(content)

    def no_decoding(*_args):
        raise AssertionError("decoded despite the cap")

    monkeypatch.setattr(frames.cv2, "imdecode", no_decoding)
    height, width = size
    with pytest.raises(FrameReadError, match=rf"^bomb{suffix}: a frame of {width} x {height} pixels exceeds the limit "
                       rf"of 50 megapixels \(set {MAX_PIXELS_VARIABLE} to raise it\)$"):
        read_frame(path)


def test_the_cap_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    ok, encoded = cv2.imencode(".png", np.zeros((20, 30), np.uint8))
    path.write_bytes(encoded.tobytes())
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "600")
    assert read_frame(path).pixels.shape == (20, 30)
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "599")
    with pytest.raises(FrameReadError, match="30 x 20 pixels exceeds the limit of 0.000599 megapixels"):
        read_frame(path)
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "lots")
    with pytest.raises(FrameReadError, match=f"small.png: {MAX_PIXELS_VARIABLE}='lots' is not a positive whole number"):
        read_frame(path)


def test_a_file_that_is_not_the_image_format_it_claims(tmp_path):
    path = tmp_path / "webp.png"
    path.write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\0" * 40)
    with pytest.raises(FrameReadError, match="webp.png: not a readable image \\(not a PNG, JPEG, BMP or TIFF file"):
        read_frame(path)


def test_a_large_16_bit_frame_converts_in_slices(tmp_path):
    """Rescaling 16-bit data never makes a full-size float copy: peak traced memory stays near the frame's size."""
    pixels = np.tile(np.arange(1500, dtype=np.uint16) * 40, (4000, 1))
    tracemalloc.start()
    try:
        converted = frames._to_uint8(pixels)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert converted.dtype == np.uint8 and converted[0, 0] == 0 and converted[0, -1] == 255
    assert peak < 2 * pixels.size  # the uint8 result (1x) plus slices; a float32 copy would be 4x


# ---------------------------------------------------------------- DICOM


def test_dicom_claiming_a_billion_frames_gives_the_frames_it_holds(tmp_path):
    path = dicom_bomb(tmp_path / "bomb.dcm")
    assert path.stat().st_size < 250_000
    assert count_frames(path) == 3
    frames_read = []
    with pytest.raises(FrameReadError, match="bomb.dcm: the pixel data holds only 3 of the 1000000000 frames its header "
                       r"gives \(truncated or damaged file\); 999999997 missing"):
        for frame in read_frames(path):
            frames_read.append(frame)
    assert [f.index for f in frames_read] == [0, 1, 2] and all(f.count == 3 for f in frames_read)
    with pytest.raises(FrameReadError, match="holds only 3 of the 1000000000"):
        read_frame(path, 7)


def test_dicom_frame_size_is_capped(tmp_path):
    path = write_dicom(tmp_path / "wide.dcm", np.zeros((4, 4), np.uint8), Rows=65535, Columns=65535)
    with pytest.raises(FrameReadError, match="wide.dcm: a frame of 65535 x 65535 pixels exceeds the limit"):
        count_frames(path)


@pytest.mark.parametrize("value", ["-3", "many"])
def test_dicom_nonsense_frame_count(tmp_path, value):
    path = write_dicom(tmp_path / "odd.dcm", np.zeros((3, 4, 4), np.uint8), frames=3)
    ds = pydicom.dcmread(path)
    ds.add_new(0x00280008, "LO", value)  # LO: pydicom would refuse "many" as an IS
    ds.save_as(path)
    with pytest.raises(FrameReadError, match="^odd.dcm: .*NumberOfFrames"):
        count_frames(path)


def test_compressed_dicom_frame_count_is_checked_against_its_fragments(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 4, (3, 16, 16), dtype=np.uint8)
    path = write_dicom(tmp_path / "rle.dcm", pixels, frames=3)
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless, pixels, encoding_plugin="pydicom")
    ds.NumberOfFrames = 5000
    ds.save_as(path)
    assert count_frames(path) == 3
    decoded = []
    with pytest.raises(FrameReadError, match="holds only 3 of the 5000 frames"):
        for frame in read_frames(path):
            decoded.append(frame.pixels)
    assert all(np.array_equal(d, p) for d, p in zip(decoded, pixels)) and len(decoded) == 3


def _palette_dicom(path: Path, indices: np.ndarray, lut: np.ndarray, bits: int) -> Path:
    """PALETTE COLOR with a 256-entry lookup table of ``bits`` per entry (lut: (256, 3))."""
    dtype = np.uint8 if bits == 8 else np.uint16
    tables = {}
    for channel, colour in enumerate(("Red", "Green", "Blue")):
        tables[f"{colour}PaletteColorLookupTableDescriptor"] = [256, 0, bits]
        tables[f"{colour}PaletteColorLookupTableData"] = lut[:, channel].astype(dtype).tobytes()
    return write_dicom(path, indices, "PALETTE COLOR", **tables)


@pytest.mark.parametrize("bits", [8, 16])
def test_dicom_palette_colour_is_applied(tmp_path, bits):
    rng = np.random.default_rng(2)
    lut8 = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    lut = lut8.astype(np.uint16) * 257 if bits == 16 else lut8
    indices = rng.integers(0, 256, (6, 7), dtype=np.uint8)
    frame = read_frame(_palette_dicom(tmp_path / "palette.dcm", indices, lut, bits))
    assert frame.pixels.shape == (6, 7, 3) and frame.pixels.dtype == np.uint8
    assert np.array_equal(frame.pixels, lut8[indices])


def test_pydicom_palette_example(tmp_path):
    from pydicom.data import get_testdata_file

    path = get_testdata_file("examples_palette.dcm")
    if path is None:
        pytest.skip("pydicom's test files are not installed")
    frame = read_frame(path)
    expected = pydicom.pixels.apply_color_lut(pydicom.dcmread(path).pixel_array, pydicom.dcmread(path))
    assert frame.pixels.shape == (350, 800, 3)
    assert np.array_equal(frame.pixels, (expected >> 8).astype(np.uint8))


def test_calibration_region_inside_the_frame_gives_spacing_there_only(tmp_path):
    region = us_region(29, 19, 0.01, 0.02)
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 10, 5
    path = write_dicom(tmp_path / "us.dcm", np.zeros((20, 30), np.uint8), SequenceOfUltrasoundRegions=[region])
    frame = read_frame(path)
    assert frame.calibration.spacing_mm == pytest.approx((0.2, 0.1)) and frame.calibration.region == (10, 5, 29, 19)
    mask = np.zeros((20, 30), bool)
    mask[6:10, 12:20] = True
    assert frame.spacing_for(mask) == frame.calibration.spacing_mm
    mask[2, 2] = True  # one pixel outside the calibrated region
    assert frame.spacing_for(mask) is None


def test_calibration_region_outside_the_frame_warns_and_gives_no_mm(tmp_path, caplog):
    outside = us_region(595, 414, 0.05, 0.05)  # like pydicom's examples_ybr_color.dcm on its 320 x 240 frame
    path = write_dicom(tmp_path / "far.dcm", np.zeros((3, 240, 320), np.uint8), frames=3,
                       SequenceOfUltrasoundRegions=[outside], PixelSpacing=[0.3, 0.3])
    with caplog.at_level(logging.WARNING, logger="thyroid_studio.engine.io.frames"):
        frames_read = list(read_frames(path))
        read_frame(path, 1)
    assert all(f.calibration is None for f in frames_read)
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["far.dcm: its ultrasound calibration region (0, 0)-(595, 414) lies outside the 320 x 240 frame; "
                        "no millimetres for it"]  # once per file, not once per frame
    assert Frame(np.zeros((2, 2), np.uint8), path).spacing_for(np.ones((2, 2), bool)) is None


def test_calibration_uses_the_region_inside_the_frame(tmp_path):
    inside, outside = us_region(15, 10, 0.01, 0.01), us_region(900, 900, 0.05, 0.05)
    path = write_dicom(tmp_path / "two.dcm", np.zeros((20, 30), np.uint8), SequenceOfUltrasoundRegions=[outside, inside])
    frame = read_frame(path)
    assert frame.calibration.spacing_mm == pytest.approx((0.1, 0.1)) and frame.calibration.region == (0, 0, 15, 10)


def test_pixel_spacing_holds_for_the_whole_frame(tmp_path):
    frame = read_frame(write_dicom(tmp_path / "ps.dcm", np.zeros((4, 4), np.uint8), PixelSpacing=[0.3, 0.4]))
    assert frame.calibration.region is None and frame.spacing_for(np.ones((4, 4), bool)) == (0.3, 0.4)


# ---------------------------------------------------------------- video


def test_truncated_avi_reports_the_missing_frames(tmp_path):
    whole = write_avi(tmp_path / "whole.avi", list(range(0, 200, 20)))
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.8)])
    assert count_frames(whole) == 10 and len(list(read_frames(whole))) == 10
    decoded = []
    with pytest.raises(FrameReadError, match=r"cut.avi: the video holds only \d of the 10 frames its header gives "
                       r"\(truncated or damaged file\); \d missing"):
        for frame in read_frames(cut):
            decoded.append(frame)
    assert 0 < len(decoded) < 10


def test_video_frame_count_is_not_taken_from_the_header(tmp_path):
    path = avi_claiming(tmp_path / "liar.avi", 1_000_000_000)
    assert count_frames(path) == 10
    with pytest.raises(FrameReadError, match="holds only 10 of the 1000000000 frames"):
        list(read_frames(path))
    with pytest.raises(FrameReadError, match="holds only 10 of the 1000000000 frames"):
        read_frame(path, 500)


# ---------------------------------------------------------------- folders


def test_an_unreadable_subfolder_is_reported_not_skipped(tmp_path, monkeypatch):
    (tmp_path / "ok").mkdir()
    locked = tmp_path / "locked"
    locked.mkdir()
    ok, encoded = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    (tmp_path / "ok" / "a.png").write_bytes(encoded.tobytes())
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)  # as if chmod 000 (which root ignores)
    found = find_inputs(tmp_path)
    assert found == [tmp_path / "locked", tmp_path / "ok" / "a.png"]
    with pytest.raises(FrameReadError, match="^locked: is a folder that cannot be read \\(Permission denied\\)$"):
        count_frames(found[0])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their permissions")
def test_a_chmod_000_subfolder_is_reported(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        assert find_inputs(tmp_path) == [locked]
        with pytest.raises(FrameReadError, match="cannot be read"):
            count_frames(locked)
    finally:
        locked.chmod(0o755)


# ---------------------------------------------------------------- fuzz


def _valid_samples(folder: Path) -> dict[str, bytes]:
    """One valid file per kind of content, to truncate and corrupt."""
    rng = np.random.default_rng(3)
    gray = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    samples = {ext: cv2.imencode(ext, gray)[1].tobytes() for ext in (".png", ".jpg", ".bmp", ".tif")}
    samples[".png16"] = cv2.imencode(".png", gray.astype(np.uint16) * 200)[1].tobytes()
    samples[".dcm"] = write_dicom(folder / "s.dcm", rng.integers(0, 256, (3, 16, 16), dtype=np.uint8), frames=3).read_bytes()
    samples[".avi"] = write_avi(folder / "s.avi", [10, 90, 170]).read_bytes()
    return samples


READ_EVERY_FILE = r"""
import json, resource, sys, tracemalloc
from pathlib import Path
from thyroid_studio.engine.io.frames import FrameReadError, count_frames, read_frame, read_frames
outcomes = {}
tracemalloc.start()
for path in sorted(Path(sys.argv[1]).iterdir()):
    results = []
    for call in (lambda: count_frames(path), lambda: sum(1 for _ in read_frames(path)), lambda: read_frame(path, 0)):
        try:
            call()
            results.append("ok")
        except FrameReadError as exc:
            results.append(str(exc))
        except Exception as exc:
            results.append(f"TRACEBACK {type(exc).__name__}: {exc}")
    outcomes[path.name] = results
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"outcomes": outcomes, "traced_peak": peak,
                  "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _run_isolated(script: str, folder: Path) -> dict:
    """Run ``script`` in a fresh interpreter (its peak memory is its own) under an 8 GB address-space limit,
    so a regression fails the test instead of taking the machine's memory."""
    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
    done = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True, env=env,
                          preexec_fn=limit, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_fuzz_random_and_damaged_files_under_every_extension(tmp_path):
    """A few hundred random, truncated and corrupted files under every supported extension: each call either
    works or raises a one-line FrameReadError naming the file; never another exception; memory stays bounded."""
    rng = np.random.default_rng(20260101)
    samples = _valid_samples(tmp_path)
    fuzz = tmp_path / "fuzz"
    fuzz.mkdir()
    extensions = sorted(SUPPORTED_EXTENSIONS) + [""]
    for number in range(360):
        ext = extensions[number % len(extensions)]
        kind = number // len(extensions) % 4
        base = samples[list(samples)[rng.integers(len(samples))]]
        if kind == 0:  # random bytes
            data = rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8).tobytes()
        elif kind == 1:  # truncated
            data = base[: int(rng.integers(0, len(base)))]
        elif kind == 2:  # corrupted bytes, the header included
            data = bytearray(base)
            for position in rng.integers(0, len(data), int(rng.integers(1, 20))):
                data[position] = int(rng.integers(0, 256))
            data = bytes(data)
        else:  # a valid header followed by garbage
            data = base[: min(len(base), 200)] + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
        (fuzz / f"f{number:03d}{ext}").write_bytes(data)
    report = _run_isolated(READ_EVERY_FILE, fuzz)
    outcomes = report["outcomes"]
    assert len(outcomes) == 360
    problems = {name: r for name, results in outcomes.items() for r in results
                if r != "ok" and (r.startswith("TRACEBACK") or not r.startswith(f"{name}: ") or "\n" in r)}
    assert not problems
    assert sum(r != "ok" for results in outcomes.values() for r in results) > 500  # the damage was seen
    assert report["traced_peak"] < 200 << 20


def test_bombs_stay_under_the_memory_target(tmp_path):
    """The issue's bombs (a 20000 x 20000 PNG of ~400 KB, a DICOM claiming a billion frames, an AVI claiming
    a billion frames, a JPEG claiming 65535 x 65535) in a fresh process: refused or read as what they hold,
    with the process's peak resident memory far below the 3 GB target."""
    bombs = tmp_path / "bombs"
    bombs.mkdir()
    (bombs / "bomb.png").write_bytes(png_bomb(20000, 20000))
    (bombs / "bomb.jpg").write_bytes(jpeg_claiming(65535, 65535))
    dicom_bomb(bombs / "bomb.dcm")
    avi_claiming(bombs / "bomb.avi", 1_000_000_000)
    report = _run_isolated(READ_EVERY_FILE, bombs)
    outcomes = report["outcomes"]
    assert outcomes["bomb.png"] == ["ok", *["bomb.png: a frame of 20000 x 20000 pixels exceeds the limit of 50 megapixels "
                                           f"(set {MAX_PIXELS_VARIABLE} to raise it)"] * 2]
    assert outcomes["bomb.dcm"][0] == "ok" and "holds only 3 of the 1000000000" in outcomes["bomb.dcm"][1]
    assert outcomes["bomb.avi"][0] == "ok" and "holds only 10 of the 1000000000" in outcomes["bomb.avi"][1]
    assert "65535 x 65535 pixels exceeds" in outcomes["bomb.jpg"][2]
    assert report["maxrss"] < 1 << 30
