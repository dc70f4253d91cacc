"""Raster painting on a bool mask: brush dabs, swept strokes, filled polygons.

Coordinates are (x, y) = (column, row) of pixel centres: pixel (r, c) has its centre at
x = c, y = r (a GUI whose pixel c spans [c, c + 1) subtracts 0.5). Every function edits
the mask in place and returns the :data:`Box` it may have changed (clipped to the mask),
or None when the shape lies wholly outside it, so a caller can record undo data and
redraw only that rectangle.
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

Box = tuple[slice, slice]  # (rows, cols), non-empty and inside the mask
Point = tuple[float, float]


def clip_box(shape: tuple[int, ...], x0: float, y0: float, x1: float, y1: float) -> Box | None:
    """The pixels whose centres lie in [x0, x1] x [y0, y1], clipped to ``shape``; None if none."""
    c0, r0 = max(math.ceil(x0), 0), max(math.ceil(y0), 0)
    c1, r1 = min(math.floor(x1) + 1, shape[1]), min(math.floor(y1) + 1, shape[0])
    if c0 >= c1 or r0 >= r1:
        return None
    return slice(r0, r1), slice(c0, c1)


def union_box(a: Box | None, b: Box | None) -> Box | None:
    """The smallest box holding both (either may be None)."""
    if a is None or b is None:
        return a if b is None else b
    return (slice(min(a[0].start, b[0].start), max(a[0].stop, b[0].stop)),
            slice(min(a[1].start, b[1].start), max(a[1].stop, b[1].stop)))


def snap_centre(x: float, y: float, diameter: int) -> Point:
    """Where a brush of ``diameter`` pixels centred near (x, y) sits so its dab is symmetric.

    An odd diameter centres on a pixel centre, an even one on a pixel corner, so a
    3-pixel brush paints a 3x3 block and a 2-pixel brush a 2x2 block.
    """
    if diameter % 2:
        return float(round(x)), float(round(y))
    return math.floor(x) + 0.5, math.floor(y) + 0.5


def paint_disc(mask: np.ndarray, x: float, y: float, radius: float, value: bool) -> Box | None:
    """Set the pixels whose centres are within ``radius`` of (x, y) to ``value``."""
    return paint_segment(mask, (x, y), (x, y), radius, value)


def paint_segment(mask: np.ndarray, p0: Point, p1: Point, radius: float, value: bool) -> Box | None:
    """Paint the disc swept from ``p0`` to ``p1`` (a capsule): a fast mouse leaves no gaps.

    Exact rather than interpolated dabs: a pixel is painted when its centre is within
    ``radius`` of the segment, and only the segment's bounding box is touched.
    """
    (xa, ya), (xb, yb) = p0, p1
    box = clip_box(mask.shape, min(xa, xb) - radius, min(ya, yb) - radius,
                   max(xa, xb) + radius, max(ya, yb) + radius)
    if box is None:
        return None
    rows, cols = box
    yy = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None] - ya
    xx = np.arange(cols.start, cols.stop, dtype=np.float32)[None, :] - xa
    dx, dy = xb - xa, yb - ya
    length2 = dx * dx + dy * dy
    if length2 > 0:
        t = np.clip((xx * dx + yy * dy) / length2, 0.0, 1.0)
        xx, yy = xx - t * dx, yy - t * dy
    inside = xx * xx + yy * yy <= radius * radius
    mask[box][inside] = value
    return box


def fill_polygon(mask: np.ndarray, points: Sequence[Point] | np.ndarray, value: bool) -> Box | None:
    """Set the pixels inside the closed polygon ``points`` (x, y) to ``value``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return None
    box = clip_box(mask.shape, *pts.min(axis=0), *pts.max(axis=0))
    if box is None:
        return None
    rows, cols = box
    shift = 4  # sub-pixel vertices: cv2 takes fixed-point coordinates
    local = np.round((pts - (cols.start, rows.start)) * (1 << shift)).astype(np.int32)
    inside = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.uint8)
    cv2.fillPoly(inside, [local], 1, lineType=cv2.LINE_8, shift=shift)
    mask[box][inside.astype(bool)] = value
    return box
