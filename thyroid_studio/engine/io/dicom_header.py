"""What a DICOM file's header says, read without decoding a pixel: the image, how many frames its pixel
data really holds, and the ultrasound calibration.

``frames.DicomReader`` checks every file through :func:`read_header` before decoding, because the
header is a claim: a 200 KB file can say NumberOfFrames = 1e9, and a damaged length field can ask
for gigabytes. Here nothing is allocated from a claim: long elements are left unread, and the frame
count is the smaller of NumberOfFrames and what the pixel data's bytes (or fragments) can hold.
Every problem is a ValueError (or pydicom's own exception, or OSError) for the caller to word.
"""
from __future__ import annotations

import contextlib
import copy
import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import parse_fragments
from pydicom.filebase import DicomFileLike
from pydicom.filereader import read_file_meta_info
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (UID, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian)

from ..calibration import Calibration, Region, checked_spacing

_CENTIMETRES = 3  # PhysicalUnitsX/YDirection code for cm in SequenceOfUltrasoundRegions
_PIXEL_DATA_TAG = (0x7FE0, 0x0010)
_ITEM_TAG = (0xFFFE, 0xE000)
_UNDEFINED_LENGTH = 0xFFFFFFFF
# Elements longer than this are not read until used: a damaged length field would otherwise make the reader
# allocate gigabytes for a few bytes of file (Python's read(n) allocates n bytes before reading).
_DEFER_BYTES = 1 << 20
_META_START = 128 + 4 + 12  # preamble, "DICM", the file meta's group length element; the meta's elements follow



@dataclass(frozen=True)
class DicomHeader:
    ds: Dataset  # every element but the pixel data
    syntax: UID  # the transfer syntax the pixel data is in
    promised: int  # NumberOfFrames (1 when absent)
    present: int  # whole frames the pixel data holds; may be more or fewer than promised
    source: Path | io.BytesIO  # where the pixels are decoded from: the file, or a Deflated file's data set inflated

    @property
    def count(self) -> int:
        """Frames to read: those promised that the pixel data holds."""
        return min(self.promised, self.present)


def read_header(path: str | os.PathLike, inflate_limit: int = 1 << 27) -> DicomHeader:
    """Parse the header of an image DICOM and measure its pixel data; ValueError when it is not one.

    A file in the Deflated transfer syntax is inflated first, but to at most ``inflate_limit`` bytes (a few hundred
    KB of zeros can inflate to gigabytes: the bound is checked before anything is parsed), then read as the
    Explicit VR Little Endian data set it holds.
    """
    path = Path(path)
    inflated = _inflated(path, inflate_limit)
    with (open(path, "rb") if inflated is None else contextlib.nullcontext(inflated)) as f:
        ds = pydicom.dcmread(f, stop_before_pixels=True, force=True, defer_size=_DEFER_BYTES)
        if "Rows" not in ds or "Columns" not in ds or "BitsAllocated" not in ds:
            raise ValueError("not an image: no Rows, Columns or BitsAllocated")
        syntax = transfer_syntax(ds)
        offset, length = _pixel_data_element(f, ds)
        size = f.seek(0, os.SEEK_END)
        present = _frames_present(f, ds, syntax, offset, length, size)
    return DicomHeader(ds, syntax, _number_of_frames(ds), present, path if inflated is None else inflated)


def _inflated(path: Path, limit: int) -> io.BytesIO | None:
    """For a Deflated DICOM, the file with its data set inflated (at most ``limit`` bytes) and its transfer syntax
    rewritten to Explicit VR Little Endian; None for any other file."""
    try:
        meta = read_file_meta_info(path)
    except Exception:  # no file meta, or a damaged one: dcmread says what is wrong
        return None
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian or "FileMetaInformationGroupLength" not in meta:
        return None
    inflater, inflated = zlib.decompressobj(-zlib.MAX_WBITS), bytearray()
    with open(path, "rb") as f:
        f.seek(_META_START + int(meta.FileMetaInformationGroupLength))
        while chunk := f.read(1 << 20):
            while chunk:
                try:
                    inflated += inflater.decompress(chunk, limit + 1 - len(inflated))
                except zlib.error as exc:
                    raise ValueError(f"its Deflated data set cannot be inflated ({exc})") from None
                if len(inflated) > limit:
                    raise ValueError(f"its Deflated data set inflates to more than {limit / 1e6:.0f} MB, the most "
                                     "a frame within the pixel cap needs (a small file that inflates to gigabytes); "
                                     "refused")
                chunk = inflater.unconsumed_tail
    meta = copy.deepcopy(meta)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(DicomFileLike(out), meta, enforce_standard=True)
    out.write(inflated)
    out.seek(0)
    return out


def transfer_syntax(ds: Dataset) -> UID:
    """The file meta's transfer syntax; for files without one (no preamble), the encoding pydicom found."""
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    if syntax is not None:
        return syntax
    implicit, little_endian = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little_endian else ExplicitVRBigEndian


def _pixel_data_element(f, ds: Dataset) -> tuple[int, int]:
    """(offset of the value, its declared length) of the top-level Pixel Data element, where dcmread stopped."""
    implicit, little_endian = ds.original_encoding
    endian = "<" if little_endian is not False else ">"
    header = f.read(8)
    if len(header) < 8 or struct.unpack(endian + "HH", header[:4]) != _PIXEL_DATA_TAG:
        raise ValueError("no pixel data found")
    if implicit:
        (length,) = struct.unpack(endian + "I", header[4:])
    else:
        extra = f.read(4)  # OB/OW: 2 reserved bytes were in header[6:8], then a 32-bit length
        if len(extra) < 4:
            raise ValueError("the pixel data element is cut off")
        (length,) = struct.unpack(endian + "I", extra)
    return f.tell(), length


def _number_of_frames(ds: Dataset) -> int:
    value = ds.get("NumberOfFrames", 1)
    try:
        frames = int(value or 1)
    except (TypeError, ValueError):
        raise ValueError(f"NumberOfFrames {value!r} is not a whole number") from None
    if frames < 1:
        raise ValueError(f"NumberOfFrames is {frames}")
    return frames


def _frames_present(f, ds: Dataset, syntax: UID, value_offset: int, length: int, file_size: int) -> int:
    """Whole frames the pixel data holds: its bytes (those in the file) over a frame's for native data; for
    compressed (encapsulated) data its fragments, since every frame takes at least one."""
    if syntax.is_encapsulated:
        f.seek(value_offset)
        endian = "<" if syntax.is_little_endian else ">"
        item = f.read(8)  # the Basic Offset Table item, possibly empty
        if len(item) < 8 or struct.unpack(endian + "HH", item[:4]) != _ITEM_TAG:
            raise ValueError("encapsulated pixel data does not start with an offset table item")
        f.seek(struct.unpack(endian + "I", item[4:])[0], os.SEEK_CUR)
        fragments, _ = parse_fragments(f, endianness=endian)
        return fragments
    if length == _UNDEFINED_LENGTH:
        raise ValueError("native pixel data with an undefined length")
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    values = int(ds.Rows) * int(ds.Columns) * samples
    if str(ds.get("PhotometricInterpretation", "")) == "YBR_FULL_422":
        values = values // 3 * 2  # two chroma samples shared by each pair of pixels
    bits_per_frame = values * int(ds.BitsAllocated)
    if bits_per_frame <= 0:
        raise ValueError(f"BitsAllocated {ds.BitsAllocated} and SamplesPerPixel {samples} give empty frames")
    return min(length, file_size - value_offset) * 8 // bits_per_frame


def _region_box(region: Dataset, rows: int, columns: int) -> Region | None:
    """An ultrasound region's (x0, y0, x1, y1), inclusive, if it lies inside a rows x columns frame.

    One pixel of slack on the far edges: some writers store the exclusive corner.
    """
    try:
        x0, y0 = int(region.RegionLocationMinX0), int(region.RegionLocationMinY0)
        x1, y1 = int(region.RegionLocationMaxX1), int(region.RegionLocationMaxY1)
    except (AttributeError, TypeError, ValueError):
        return None
    if not (0 <= x0 <= x1 <= columns and 0 <= y0 <= y1 <= rows):
        return None
    return x0, y0, min(x1, columns - 1), min(y1, rows - 1)


def _area(box: Region) -> int:
    return (box[2] - box[0] + 1) * (box[3] - box[1] + 1)


def read_calibration(ds: Dataset) -> tuple[Calibration | None, str | None]:
    """Millimetres per pixel and the region they hold in (None without any), and why a calibration the file gives
    was not used (a phrase for a warning: a region outside the frame, a spacing that is not a sane number), or None.

    Ultrasound regions give PhysicalDeltaX (columns) and PhysicalDeltaY (rows) in cm
    when their units are 3; of the calibrated regions inside the frame the largest
    wins (the first on a tie), since side panels and Doppler strips are smaller than
    the B-mode. Calibrated regions that all lie outside the frame give no millimetres.
    Without calibrated regions, PixelSpacing holds for the whole frame. Every spacing
    goes through ``calibration.checked_spacing``: NaN, infinite, zero-size or absurd
    values (a damaged or crafted file) give no millimetres, never wrong ones.
    """
    calibrated = [
        r
        for r in ds.get("SequenceOfUltrasoundRegions", [])
        if r.get("PhysicalUnitsXDirection") == _CENTIMETRES
        and r.get("PhysicalUnitsYDirection") == _CENTIMETRES
        and r.get("PhysicalDeltaX")
        and r.get("PhysicalDeltaY")
    ]
    if not calibrated:
        spacing = ds.get("PixelSpacing")
        if spacing is None:
            return None, None
        try:
            return Calibration(checked_spacing(spacing, "its PixelSpacing")), None
        except ValueError as exc:
            return None, str(exc)
    rows, columns = int(ds.Rows), int(ds.Columns)
    inside, problem = [], None
    for region in calibrated:
        try:
            centimetres = (abs(float(region.PhysicalDeltaY)), abs(float(region.PhysicalDeltaX)))
            spacing = checked_spacing([10.0 * cm for cm in centimetres],
                                      f"its ultrasound calibration region {describe_region(region)}")
        except ValueError as exc:
            problem = problem or str(exc)
            continue
        box = _region_box(region, rows, columns)
        if box is None:
            problem = problem or (f"its ultrasound calibration region {describe_region(region)} lies outside the "
                                  f"{columns} x {rows} frame; no millimetres for it")
            continue
        inside.append((box, spacing))
    if not inside:
        return None, problem
    box, spacing = max(inside, key=lambda item: _area(item[0]))
    return Calibration(spacing, box), None


def describe_region(region: Dataset) -> str:
    """``(x0, y0)-(x1, y1)`` as the header gives it."""
    corners = [region.get(k) for k in ("RegionLocationMinX0", "RegionLocationMinY0", "RegionLocationMaxX1",
                                       "RegionLocationMaxY1")]
    return "({}, {})-({}, {})".format(*corners)

