"""Memory per pixel: what makes the pixel cap (``io.frames.max_pixels``) a bound on memory, and what an allocation
that fails anyway says.

Segmenting one frame holds, per pixel of the frame: the decoded frame (3 bytes for RGB), the nodule and gland
probabilities (4 each, float32, as ``Segmentation`` gives them), their masks (1 each), and, one after the other,
the temporaries of reading (OpenCV decodes into a second buffer), writing the overlay and measuring (a frame of
32-bit component labels). The pipeline avoids frame-sized copies where it can (conversions in place, restore
straight into the frame, no int64 mask temporaries, probabilities summed in bands); what is left is
:data:`BYTES_PER_PIXEL`, measured on the worst case (an RGB frame whose ultrasound region is all of it, a nodule
over all of it, a gland head, ``--overlay --gland``) by ``bench/memory_per_pixel.py`` (bench/README.md). The
default cap follows from it: :data:`MEMORY_TARGET_BYTES` minus what the libraries and the shipped model take,
divided by the bytes per pixel, so that one frame at the cap stays under the target.

The batch loop keeps the pixels in flight (read ahead, being segmented, waiting to be written) under
:class:`PixelsInFlight`, so a folder of large frames takes one large frame's budget, not one per frame read ahead.

An allocation that fails all the same (a machine with less memory, a memory limit) is numpy's MemoryError or
OpenCV's ``cv2.error`` "Insufficient memory"; :func:`allocation_problem` words either as one line.
"""
from __future__ import annotations

import threading

import cv2

MEMORY_TARGET_BYTES = 1_500_000_000  # one frame at the cap, segmented with everything written, stays under this
LIBRARY_BYTES = 400_000_000  # torch, OpenCV, pydicom and the shipped model, before any frame (measured: 0.345 GB)
BYTES_PER_PIXEL = 21  # segmenting one frame, the frame included, worst case (measured 20.6 at 50 MP: bench/README.md)
DEFAULT_MAX_PIXELS = (MEMORY_TARGET_BYTES - LIBRARY_BYTES) // BYTES_PER_PIXEL // 10_000_000 * 10_000_000  # 50 million
READ_AHEAD_PIXELS = 12_000_000  # pixels in flight beyond which the batch loop reads no further frame
_OPENCV_OUT_OF_MEMORY = ("insufficient memory", "failed to allocate", "out of memory", "bad_alloc")


def allocation_problem(exc: BaseException) -> str | None:
    """``"out of memory (...)"`` when ``exc`` is a failed allocation of numpy (MemoryError) or OpenCV, else None."""
    if isinstance(exc, MemoryError):
        return f"out of memory ({str(exc).splitlines()[0][:120] if str(exc) else 'numpy could not allocate'})"
    if isinstance(exc, cv2.error):
        text = str(exc).lower()
        if any(sign in text for sign in _OPENCV_OUT_OF_MEMORY):
            return "out of memory (OpenCV could not allocate a frame-sized buffer)"
    return None


class PixelsInFlight:
    """The pixels of the frames read and not yet written. A frame is read only while they are at most
    :data:`READ_AHEAD_PIXELS` (about a dozen ultrasound frames read ahead, being segmented or written), so a frame
    at the cap waits until the frames before it are written and then goes through alone."""

    def __init__(self, room: int | None = None) -> None:
        self.room = READ_AHEAD_PIXELS if room is None else room
        self.pixels = 0
        self._changed = threading.Condition()

    def wait_for_room(self, stop: threading.Event) -> None:
        """Return when there is room to read another frame (or ``stop`` is set)."""
        with self._changed:
            while self.pixels > self.room and not stop.is_set():
                self._changed.wait(0.1)

    def add(self, shape: tuple[int, ...]) -> None:
        with self._changed:
            self.pixels += int(shape[0]) * int(shape[1])

    def done(self, shape: tuple[int, ...]) -> None:
        """The frame of ``shape`` is written (or failed): its pixels are no longer in flight."""
        with self._changed:
            self.pixels -= int(shape[0]) * int(shape[1])
            self._changed.notify_all()
