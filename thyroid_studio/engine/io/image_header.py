"""Width and height of a PNG, JPEG, BMP or TIFF file read from its header, without decoding a pixel, and its EXIF
orientation.

``frames`` checks a still image's size against the pixel cap before handing it to
OpenCV, because a few hundred bytes of PNG or JPEG can describe a frame that takes
gigabytes to decode. One parser per format, picked by the file's signature (its
content, as OpenCV's decoder picks it, not its extension); the parsers read only
header fields and never trust a length beyond the end of the data.

:func:`orientation` reads the EXIF Orientation (JPEG APP1, PNG eXIf, TIFF tag 274) that
``frames`` has OpenCV apply when it decodes, so that the dataset writer can tell a file
whose stored pixels are not the ones shown (it stores what it shows instead).
"""
from __future__ import annotations

import struct
from collections.abc import Callable

Size = tuple[int, int]  # (height, width)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC), which are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM carry no length
_TIFF_WIDTH, _TIFF_LENGTH = 256, 257
_TIFF_SHORT, _TIFF_LONG, _TIFF_LONG8 = 3, 4, 16


def _png(data: memoryview) -> Size | None:
    """IHDR, which the PNG standard requires to be the first chunk."""
    if len(data) < 24 or bytes(data[12:16]) != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return height, width


def _jpeg(data: memoryview) -> Size | None:
    """The first start-of-frame segment, walking the marker segments from the start of the file."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker == 0xDA:  # start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_SOF:
            if position + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return (height, width) if height else None  # height 0: defined later by a DNL marker
        position += 2 + length
    return None


def _bmp(data: memoryview) -> Size | None:
    """BITMAPCOREHEADER (12 bytes, 16-bit sizes) or any later info header (signed 32-bit; height < 0: top-down)."""
    if len(data) < 26:
        return None
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size == 12:
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return abs(height), abs(width)


def _tiff(data: memoryview) -> Size | None:
    """ImageWidth and ImageLength of the first image file directory (classic TIFF and BigTIFF)."""
    endian = "<" if bytes(data[:2]) == b"II" else ">"
    (version,) = struct.unpack(endian + "H", data[2:4])
    if version == 42:
        count_format, entry_format, entry_size = "H", "HHI4s", 12
        (offset,) = struct.unpack(endian + "I", data[4:8])
    elif version == 43 and len(data) >= 16:
        count_format, entry_format, entry_size = "Q", "HHQ8s", 20
        (offset,) = struct.unpack(endian + "Q", data[8:16])
    else:
        return None
    count_size = struct.calcsize(count_format)
    if offset + count_size > len(data):
        return None
    (entries,) = struct.unpack(endian + count_format, data[offset : offset + count_size])
    found: dict[int, int] = {}
    for index in range(min(entries, (len(data) - offset - count_size) // entry_size)):
        start = offset + count_size + index * entry_size
        tag, kind, _, value = struct.unpack(endian + entry_format, data[start : start + entry_size])
        if tag in (_TIFF_WIDTH, _TIFF_LENGTH) and kind in (_TIFF_SHORT, _TIFF_LONG, _TIFF_LONG8):
            fmt = {_TIFF_SHORT: "H", _TIFF_LONG: "I", _TIFF_LONG8: "Q"}[kind]
            found[tag] = struct.unpack_from(endian + fmt, value)[0]
    if _TIFF_WIDTH not in found or _TIFF_LENGTH not in found:
        return None
    return found[_TIFF_LENGTH], found[_TIFF_WIDTH]


_PARSERS: dict[bytes, Callable[[memoryview], Size | None]] = {
    _PNG_SIGNATURE: _png,
    b"\xff\xd8": _jpeg,
    b"BM": _bmp,
    b"II*\x00": _tiff,
    b"MM\x00*": _tiff,
    b"II+\x00": _tiff,
    b"MM\x00+": _tiff,
}

FORMATS = "PNG, JPEG, BMP or TIFF"


def image_size(data: bytes | memoryview) -> Size | None:
    """(height, width) from the header of an encoded image (bytes, or a memoryview of a whole file, which
    is not copied), or None when ``data`` is not one of :data:`FORMATS` or its header is damaged or cut short."""
    data = memoryview(data).cast("B")
    head = bytes(data[:8])
    for signature, parser in _PARSERS.items():
        if head.startswith(signature):
            try:
                return parser(data)
            except struct.error:  # a field cut off by the end of the data
                return None
    return None


_ORIENTATION_TAG = 0x0112
_EXIF_HEADER = b"Exif\0\0"


def _tiff_orientation(data: memoryview) -> int:
    """The Orientation (tag 274) of a TIFF structure's first directory (EXIF is one), 1 when absent."""
    if bytes(data[:2]) not in (b"II", b"MM") or len(data) < 8:
        return 1
    endian = "<" if bytes(data[:2]) == b"II" else ">"
    (offset,) = struct.unpack(endian + "I", data[4:8])
    if offset + 2 > len(data):
        return 1
    (entries,) = struct.unpack(endian + "H", data[offset : offset + 2])
    for index in range(min(entries, (len(data) - offset - 2) // 12)):
        start = offset + 2 + 12 * index
        tag, kind = struct.unpack(endian + "HH", data[start : start + 4])
        if tag == _ORIENTATION_TAG and kind == _TIFF_SHORT:
            (value,) = struct.unpack(endian + "H", data[start + 8 : start + 10])
            return value if 1 <= value <= 8 else 1
    return 1


def _jpeg_orientation(data: memoryview) -> int:
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker == 0xDA:  # start of scan: the metadata segments are behind
            return 1
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        body = data[position + 4 : position + 2 + length]
        if marker == 0xE1 and bytes(body[: len(_EXIF_HEADER)]) == _EXIF_HEADER:
            return _tiff_orientation(body[len(_EXIF_HEADER) :])
        position += 2 + length
    return 1


def _png_orientation(data: memoryview) -> int:
    position = len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = bytes(data[position + 4 : position + 8])
        if kind == b"eXIf":
            return _tiff_orientation(data[position + 8 : position + 8 + length])
        if kind in (b"IDAT", b"IEND"):
            return 1
        position += 12 + length
    return 1


def orientation(data: bytes | memoryview) -> int:
    """The EXIF Orientation of an encoded image, 1 (as stored) to 8; 1 when it has none or is not JPEG, PNG or TIFF."""
    data = memoryview(data).cast("B")
    head = bytes(data[:8])
    try:
        if head.startswith(b"\xff\xd8"):
            return _jpeg_orientation(data)
        if head.startswith(_PNG_SIGNATURE):
            return _png_orientation(data)
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_orientation(data)
    except struct.error:  # a field cut off by the end of the data
        return 1
    return 1
