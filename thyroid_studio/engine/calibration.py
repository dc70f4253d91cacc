"""Millimetres per pixel, the part of the frame where they hold, and where they came from: one value from
the file (or the user, the burnt-in depth ruler, a command-line option) to every measurement, so no caller
pairs a spacing with a region or an origin of its own."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

Region = tuple[int, int, int, int]  # (x0, y0, x1, y1), inclusive pixel columns and rows
Spacing = tuple[float, float]  # (row, column) millimetres per pixel
# Millimetres per pixel a calibration may give: ultrasound frames have about 0.02 to 1; a value outside (NaN, infinite,
# zero, 1e30 in a damaged or crafted file) would turn every measurement into nonsense, so it is refused where it enters.
SPACING_RANGE_MM = (1e-3, 10.0)


def checked_spacing(values: object, what: str = "spacing") -> Spacing:
    """(row, column) millimetres per pixel: two finite numbers within :data:`SPACING_RANGE_MM`; a ValueError naming
    ``what`` and the values otherwise (every calibration, from a file, a record or the user, goes through here)."""
    low, high = SPACING_RANGE_MM
    try:
        row, column = (float(v) for v in values)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{what} gives {values!r:.60}, not two numbers (row, column); no millimetres") from None
    if not all(math.isfinite(v) and low <= v <= high for v in (row, column)):
        raise ValueError(f"{what} gives ({row:g}, {column:g}) mm per pixel, not numbers from {low:g} to {high:g}; "
                         "no millimetres")
    return row, column


# Where a calibration came from, as the status bar, reports, the CSV and saved items say it. A new origin is one entry.
SOURCES = {
    "dicom": "the DICOM header",
    "user": "a length set by the user",
    "ruler": "the depth ruler's tick marks",
    "option": "the --scale option",
}


@dataclass(frozen=True)
class Calibration:
    """A frame's calibration: ``spacing_mm`` holds inside ``region`` (None: the whole frame).

    Scanners calibrate only the B-mode region; millimetres measured across its border would be
    guesses, so a measurement gets the spacing only when all of it lies inside. A frame without
    any calibration has ``None`` instead of a Calibration.
    """

    spacing_mm: Spacing
    region: Region | None = None
    source: str = "dicom"  # a key of SOURCES

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown calibration source {self.source!r}; expected one of {', '.join(SOURCES)}")
        object.__setattr__(self, "spacing_mm", checked_spacing(self.spacing_mm))

    def describe(self) -> str:
        """'0.198 mm/px from the depth ruler's tick marks' (both spacings when the pixels are not square)."""
        row, column = self.spacing_mm
        size = f"{row:.3g} mm/px" if row == column else f"{row:.3g} x {column:.3g} mm/px (row x column)"
        return f"{size} from {SOURCES[self.source]}"

    def for_mask(self, mask: np.ndarray) -> Spacing | None:
        """The spacing if every pixel of ``mask`` lies inside the region, else None."""
        if self.region is None:
            return self.spacing_mm
        x0, y0, x1, y1 = self.region
        inside = np.count_nonzero(mask[y0 : y1 + 1, x0 : x1 + 1])
        return self.spacing_mm if inside == np.count_nonzero(mask) else None

    def for_points(self, points: Iterable[tuple[float, float]]) -> Spacing | None:
        """The spacing if every (x, y) point (a caliper's ends) lies inside the region, else None."""
        if self.region is None:
            return self.spacing_mm
        x0, y0, x1, y1 = self.region
        return self.spacing_mm if all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in points) else None
