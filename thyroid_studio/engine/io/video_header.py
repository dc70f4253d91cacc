"""Whether a Matroska or WebM video ends before its header says, read from the header without decoding.

AVI, MP4 and MOV headers give an exact frame count, so ``frames`` finds frames a truncated file
lost by counting. Matroska (``.mkv``, ``.webm``) gives only a duration, from which OpenCV
estimates the count; what does tell a cut is the size of the ``Segment`` element (everything
after the EBML header), written when the file was finished: a file shorter than its Segment
says was cut. A live-written file may leave that size "unknown"; then nothing can be told.
"""
from __future__ import annotations

import os
from pathlib import Path

_EBML_ID = b"\x1a\x45\xdf\xa3"
_SEGMENT_ID = b"\x18\x53\x80\x67"
MATROSKA_EXTENSIONS = frozenset({".mkv", ".webm"})


def _size(data: bytes, at: int) -> tuple[int | None, int]:
    """An EBML element size (a variable-length integer) at ``at``: (value, or None when "unknown"; next offset)."""
    if at >= len(data) or data[at] == 0:
        raise ValueError("no size")
    length = 8 - data[at].bit_length() + 1  # the leading zero bits of the first byte, plus one
    if at + length > len(data):
        raise ValueError("size cut off")
    value = int.from_bytes(data[at:at + length], "big") & ((1 << (7 * length)) - 1)
    return (None if value == (1 << (7 * length)) - 1 else value), at + length


def truncated_matroska(path: str | os.PathLike) -> bool:
    """True when ``path`` is a Matroska/WebM file shorter than the size its Segment element gives."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(1024)  # the EBML header is a few dozen bytes
            file_size = os.fstat(handle.fileno()).st_size
        if not data.startswith(_EBML_ID):
            return False
        header_size, at = _size(data, len(_EBML_ID))
        at += header_size or 0
        if data[at:at + len(_SEGMENT_ID)] != _SEGMENT_ID:
            return False
        segment_size, start = _size(data, at + len(_SEGMENT_ID))
    except (OSError, ValueError):
        return False
    return segment_size is not None and start + segment_size > file_size
