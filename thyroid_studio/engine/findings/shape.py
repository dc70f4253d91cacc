"""A nodule's shape from its mask: taller-than-wide, and how irregular its margin is.

These feed the ACR TI-RADS shape and margin categories (``engine/findings/tirads.py``). The shape is
that of the mask's largest component, the nodule; specks elsewhere do not change it.

**Margin irregularity is the solidity**: the area inside the nodule's outer contour divided
by the area of that contour's convex hull (the "solidity" of MATLAB's and scikit-image's
``regionprops``; a standard shape descriptor, e.g. J. C. Russ, *The Image Processing
Handbook*). A smooth oval has a solidity near 1; lobulations, spiculations and indentations
leave parts of the hull empty and lower it. It does not depend on size, and it barely depends
on the pixel grid (a contour's staircase changes its perimeter a lot, its area little), so it
behaves the same on a 280- and a 560-pixel-wide frame. On the DDTI ground-truth masks it
separates the radiologists' lobulated/spiculated margins from smooth and ill-defined ones
with an AUC of 0.70, as well as the perimeter-based convexity (Peura and Iivarinen, 1997) and
Fourier contour roughness we tried; ``IRREGULAR_BELOW`` is the cut chosen there
(``docs/tirads.md``, reproduced by ``tools/margin_study.py``).

Taller-than-wide is ``geometry.measure``'s: vertical extent greater than horizontal, in
millimetres when the spacing is known.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .. import geometry

IRREGULAR_BELOW = 0.96  # solidity under this: "lobulated or irregular" margin (docs/tirads.md)


@dataclass(frozen=True)
class Shape:
    """The shape of a mask's largest component."""

    taller_than_wide: bool
    solidity: float  # contour area / convex hull area, in (0, 1]
    components: int  # components in the whole mask (the shape is the largest one's)

    @property
    def irregular(self) -> bool:
        """A lobulated or irregular margin by the solidity cut (``IRREGULAR_BELOW``)."""
        return self.solidity < IRREGULAR_BELOW


def solidity(mask: np.ndarray) -> float | None:
    """Area / convex hull area of the outer contour of the mask's largest component; None for an empty mask.

    A component without area (one pixel, a line) is convex: 1.0.
    """
    return _solidity_of(geometry.largest_component(mask))


def _solidity_of(nodule: np.ndarray) -> float | None:
    """:func:`solidity` of a mask that is one component already."""
    outlines = geometry.contours(nodule)
    if not outlines:
        return None
    outline = max(outlines, key=cv2.contourArea)
    hull_area = cv2.contourArea(cv2.convexHull(outline))
    return float(cv2.contourArea(outline) / hull_area) if hull_area > 0 else 1.0


def shape_of(mask: np.ndarray, spacing_mm: tuple[float, float] | None = None) -> Shape | None:
    """The nodule's shape (largest component); None for an empty mask. ``spacing_mm`` = (row_mm, col_mm)."""
    count, labels, areas = geometry.component_labels(mask)  # once: each labelling is a frame of 32-bit labels
    if count <= 1:
        return None
    nodule = labels == 1 + int(np.argmax(areas[1:]))
    del labels
    measured = geometry.measure(nodule, spacing_mm)
    return Shape(measured.taller_than_wide, _solidity_of(nodule), count - 1)
