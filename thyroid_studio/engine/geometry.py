"""Mask shape operations and clinical measurements (diameters, taller-than-wide).

A mask is a 2-D bool or uint8 array, nonzero = nodule. Components are 8-connected
(holes therefore 4-connected). Coordinates are (x, y) = (column, row); spacing is
``(row_mm, col_mm)`` as in :class:`~thyroid_studio.engine.io.frames.Frame`.

Measurements treat each pixel as a unit square, so a w-pixel-wide rectangle is w
pixels wide (not w - 1), and diameters run between pixel corners.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Point = tuple[float, float]


def _u8(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D, got shape {mask.shape}")
    return np.ascontiguousarray(mask != 0, dtype=np.uint8)


def component_labels(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(label count incl. background, label image, areas per label) with 8-connectivity."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(_u8(mask), connectivity=8)
    return n, labels, stats[:, cv2.CC_STAT_AREA]


def components(mask: np.ndarray) -> int:
    """Number of 8-connected nodule components."""
    n, _, _ = component_labels(mask)
    return n - 1


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component as a bool mask (all False if the mask is empty)."""
    n, labels, areas = component_labels(mask)
    if n <= 1:
        return np.zeros(labels.shape, dtype=bool)
    return labels == 1 + int(np.argmax(areas[1:]))


def select_component(mask: np.ndarray, near: Point | None = None) -> np.ndarray:
    """One nodule of a mask that may hold several: the 8-connected component nearest to pixel
    ``near`` (x, y) (the one under it when there is one), else the largest. All False if empty."""
    if near is None:
        return largest_component(mask)
    n, labels, _ = component_labels(mask)
    if n <= 1:
        return np.zeros(labels.shape, dtype=bool)
    rows, cols = np.nonzero(labels)
    nearest = int(np.argmin((cols - near[0]) ** 2 + (rows - near[1]) ** 2))
    return labels == labels[rows[nearest], cols[nearest]]


def keep_inside(mask: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Keep the whole of every nodule component that touches ``region`` (e.g. the gland).

    A component overlapping the region by one pixel is kept entire (not clipped): a nodule
    at the gland's edge stays whole; components wholly outside are dropped.
    """
    n, labels, _ = component_labels(mask)
    if np.asarray(region).shape != labels.shape:
        raise ValueError(f"region shape {np.asarray(region).shape} differs from mask shape {labels.shape}")
    keep = np.zeros(n, dtype=bool)
    keep[np.unique(labels[np.asarray(region) != 0])] = True
    keep[0] = False
    return keep[labels]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions not connected (4-connectivity) to the image border."""
    m = _u8(mask)
    padded = np.pad(m, 1)
    flood_mask = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, flood_mask, (0, 0), 2, flags=4)
    return padded[1:-1, 1:-1] != 2


def contours(mask: np.ndarray) -> list[np.ndarray]:
    """Outer boundary of each component as an (N, 2) int32 array of (x, y) polygon vertices."""
    found, _ = cv2.findContours(_u8(mask), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1, 2) for c in found]


@dataclass(frozen=True)
class Measurements:
    """Size of a mask. *_mm fields are None without a spacing; ends are (x, y) in pixels."""

    area_px: int
    area_mm2: float | None
    longest_px: float
    longest_mm: float | None
    longest_ends: tuple[Point, Point]
    perpendicular_px: float
    perpendicular_mm: float | None
    perpendicular_ends: tuple[Point, Point]
    height_px: int
    height_mm: float | None
    width_px: int
    width_mm: float | None
    taller_than_wide: bool
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)


@dataclass(frozen=True)
class Caliper:
    """A length measured by hand between two points (x, y), pixel centres at integers."""

    a: Point
    b: Point

    @property
    def length_px(self) -> float:
        return float(np.hypot(self.b[0] - self.a[0], self.b[1] - self.a[1]))

    def length_mm(self, spacing_mm: tuple[float, float] | None) -> float | None:
        """The length in millimetres with a (row, column) spacing; None without one."""
        if spacing_mm is None:
            return None
        row_mm, col_mm = spacing_mm
        return float(np.hypot((self.b[0] - self.a[0]) * col_mm, (self.b[1] - self.a[1]) * row_mm))


def size_text(px: int | float, mm: float | None, unit: str = "mm", px_unit: str = "px") -> str:
    """A size as shown and reported: '12.3 mm (45.6 px)', or the pixels alone without a spacing; a whole
    number of pixels (an area, an extent) without decimals."""
    text = f"{px:.1f} {px_unit}" if isinstance(px, float) else f"{px} {px_unit}"
    return text if mm is None else f"{mm:.1f} {unit} ({text})"


def measure(mask: np.ndarray, spacing_mm: tuple[float, float] | None = None) -> Measurements | None:
    """Measure all nodule pixels together (pass ``select_component`` first for one nodule).

    - longest diameter: the largest distance between two points of the convex hull of the
      pixel squares, found in pixels for the *_px lengths and in millimetres for the *_mm ones
      (the ends drawn are the millimetre chord's when a spacing is known, else the pixel chord's);
    - perpendicular diameter: the longest chord of that hull perpendicular to the longest
      diameter (for a convex nodule, the longest perpendicular chord of the nodule itself);
    - height/width: vertical (antero-posterior) and horizontal extent of the bounding box;
      taller_than_wide compares them in millimetres when the spacing is known.
    The pixel measurements never depend on the spacing. None for an empty mask.
    """
    m = _u8(mask)
    found, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not found:
        return None
    hull_px = _pixel_hull(np.concatenate(found).reshape(-1, 2))
    mm = spacing_mm is not None
    sr, sc = spacing_mm if mm else (1.0, 1.0)
    longest_px, perpendicular_px = _diameters(hull_px)
    longest_ends, perp_ends = (_point(longest_px[0]), _point(longest_px[1])), (_point(perpendicular_px[0]),
                                                                              _point(perpendicular_px[1]))
    longest_mm = perpendicular_mm = None
    if mm:
        scale = np.array([sc, sr], dtype=np.float64)  # (x, y) pixels -> millimetres
        (la, lb), (pa, pb) = _diameters(hull_px * scale)
        longest_mm, perpendicular_mm = float(np.hypot(*(lb - la))), float(np.hypot(*(pb - pa)))
        longest_ends = (_point(la / scale), _point(lb / scale))
        perp_ends = (_point(pa / scale), _point(pb / scale))
    x0, y0, w, h = cv2.boundingRect(m)

    def length(chord: tuple[np.ndarray, np.ndarray]) -> float:
        return float(np.hypot(*(chord[1] - chord[0])))

    return Measurements(
        area_px=int(np.count_nonzero(m)),
        area_mm2=float(np.count_nonzero(m) * sr * sc) if mm else None,
        longest_px=length(longest_px),
        longest_mm=longest_mm,
        longest_ends=longest_ends,
        perpendicular_px=length(perpendicular_px),
        perpendicular_mm=perpendicular_mm,
        perpendicular_ends=perp_ends,
        height_px=h,
        height_mm=h * sr if mm else None,
        width_px=w,
        width_mm=w * sc if mm else None,
        taller_than_wide=(h * sr > w * sc),
        bbox=(x0, y0, x0 + w, y0 + h),
    )


def _point(p: np.ndarray) -> Point:
    return float(p[0]), float(p[1])


def _pixel_hull(centres: np.ndarray) -> np.ndarray:
    """Convex hull (float64 (N, 2) x, y) of the unit squares centred on the given pixels."""
    hull = cv2.convexHull(centres.astype(np.int32)).reshape(-1, 2).astype(np.float64)
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    squares = (hull[:, None, :] + corners[None]).reshape(-1, 2)
    return cv2.convexHull(squares.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def _diameters(hull: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(longest ends, longest perpendicular chord ends) of a convex polygon (ordered vertices)."""
    d2 = ((hull[:, None, :] - hull[None, :, :]) ** 2).sum(axis=2)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    a, b = hull[i], hull[j]
    axis = (b - a) / max(np.sqrt(d2[i, j]), 1e-12)
    normal = np.array([-axis[1], axis[0]])
    u, v = (hull - a) @ axis, (hull - a) @ normal
    # Chord length along the normal at each vertex's u: where the polygon's edges cross u.
    du, dv = np.roll(u, -1) - u, np.roll(v, -1) - v
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (u[:, None] - u[None, :]) / du[None, :]
    crosses = (t >= 0) & (t <= 1) & (du[None, :] != 0)
    vs = v[None, :] + np.where(crosses, t, 0) * dv[None, :]
    top = np.where(crosses, vs, -np.inf).max(axis=1)
    bottom = np.where(crosses, vs, np.inf).min(axis=1)
    top, bottom = np.maximum(top, v), np.minimum(bottom, v)  # the vertex itself is on the chord
    k = int(np.argmax(top - bottom))
    base = a + u[k] * axis
    return (a, b), (base + bottom[k] * normal, base + top[k] * normal)
