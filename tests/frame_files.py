"""Frame files written for the tests: a minimal ultrasound DICOM (one or many frames, any attributes), its
calibration regions, an MJPEG AVI, a DICOM frame with text burnt in beside the image; and hostile files
whose headers claim what their data does not hold (huge sizes, a billion frames)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    frames: int = 1,
    syntax: str = ExplicitVRLittleEndian,
    **attributes,
) -> Path:
    """A minimal ultrasound DICOM file; ``pixels`` is (H, W[, 3]) or (frames, H, W[, 3])."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    colour = photometric not in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR")
    ds.Rows, ds.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric
    if colour:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixels.tobytes() if syntax == ExplicitVRLittleEndian else encapsulate([b"\xff\xd8 not decodable"])
    ds.save_as(path, enforce_file_format=True)
    return path


def us_region(x1: int, y1: int, delta_x: float, delta_y: float, units: int = 3) -> Dataset:
    region = Dataset()
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = x1, y1
    region.PhysicalUnitsXDirection, region.PhysicalUnitsYDirection = units, units
    region.PhysicalDeltaX, region.PhysicalDeltaY = delta_x, delta_y
    return region


def write_avi(path: Path, levels: list[int], size: tuple[int, int] = (48, 32)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for level in levels:
        frame = np.full((size[1], size[0], 3), level, np.uint8)
        frame[:, : size[0] // 2, 2] = 255  # left half reddish, so frames stay RGB
        writer.write(frame)
    writer.release()
    return path


def burnt_in_dicom(path: Path) -> tuple[Path, np.ndarray]:
    """An 80x120 ultrasound frame: the image in rows 8-72, columns 10-110, and text burnt in above it;
    pixel spacing 0.2 x 0.25 mm inside the image's region."""
    rng = np.random.default_rng(1)
    pixels = np.zeros((80, 120), np.uint8)
    pixels[8:72, 10:110] = rng.integers(60, 200, (64, 100), dtype=np.uint8)
    pixels[1:4, 12:30] = 255  # "PATIENT NAME"
    return write_dicom(path, pixels, PixelSpacing=[0.2, 0.25]), pixels


# ---------------------------------------------------------------- hostile files


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose valid IHDR claims width x height 8-bit gray, with a tiny compressed body of zero rows."""
    body = zlib.compress(b"\0" * 4096, 9)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))


def png_bomb(width: int, height: int) -> bytes:
    """A real PNG of width x height zero pixels: a few hundred KB that decode to width * height bytes."""
    compressor = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))


def jpeg_claiming(width: int, height: int) -> bytes:
    ok, encoded = cv2.imencode(".jpg", np.zeros((8, 8), np.uint8))
    data = bytearray(encoded.tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def tiff_claiming(width: int, height: int) -> bytes:
    """A little-endian TIFF whose first directory claims width x height (LONG values)."""
    ok, encoded = cv2.imencode(".tif", np.zeros((8, 8), np.uint8))
    data = bytearray(encoded.tobytes())
    (offset,) = struct.unpack("<I", data[4:8])
    (entries,) = struct.unpack("<H", data[offset : offset + 2])
    for index in range(entries):
        start = offset + 2 + 12 * index
        tag, _ = struct.unpack("<HH", data[start : start + 4])
        if tag in (256, 257):
            data[start + 2 : start + 12] = struct.pack("<HII", 4, 1, width if tag == 256 else height)
    return bytes(data)


def bigtiff_claiming(width: int, height: int) -> bytes:
    entries = [struct.pack("<HHQQ", 256, 16, 1, width), struct.pack("<HHQQ", 257, 16, 1, height)]
    return b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", len(entries)) + b"".join(entries) + b"\0" * 8


def bmp_claiming(width: int, height: int) -> bytes:
    ok, encoded = cv2.imencode(".bmp", np.zeros((8, 8), np.uint8))
    data = bytearray(encoded.tobytes())
    data[18:26] = struct.pack("<ii", width, -height)  # top-down: a negative height
    return bytes(data)


def dicom_bomb(path: Path, frames_claimed: int = 1_000_000_000) -> Path:
    """About 200 KB of pixel data (3 frames of 256 x 256) whose header claims ``frames_claimed`` frames."""
    pixels = np.random.default_rng(0).integers(0, 256, (3, 256, 256), dtype=np.uint8)
    return write_dicom(path, pixels, frames=3, NumberOfFrames=frames_claimed)


def avi_claiming(path: Path, frames_claimed: int) -> Path:
    """A real 10-frame MJPEG AVI whose main and stream headers claim ``frames_claimed`` frames."""
    data = bytearray(write_avi(path, list(range(0, 200, 20))).read_bytes())
    main = data.find(b"avih")
    data[main + 24 : main + 28] = struct.pack("<I", frames_claimed)
    stream = data.find(b"strh")
    data[stream + 40 : stream + 44] = struct.pack("<I", frames_claimed)
    path.write_bytes(bytes(data))
    return path
