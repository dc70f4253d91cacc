"""The scale burnt into an exported ultrasound frame: the tick marks of its depth ruler (down one side of
the B-mode image) and of its lateral ruler (along the top), found in the pixels and offered as a
:class:`RulerProposal` -- never applied on its own: the app shows it for the user to confirm (Set scale),
and ``segment``/``report --scale auto`` apply it because the user asked for it (:func:`calibrated`).

A tick is a small bright mark (at most ``MAX_MARK`` pixels across) on a dark margin; a ruler is at least
``MIN_TICKS`` of them on one straight line that is dark between them, evenly spaced (at most
``MAX_TICKS`` intervals along the frame: burnt-in text lines are closer), with none between them off the
spacing (gaps for ticks hidden by the image are allowed). Ticks are ``TICK_MM`` apart (DDTI's scanners and most others:
one per centimetre, larger marks every 5 cm). The depth ruler gives the spacing; the lateral ruler,
measured on its own, confirms it (or stands in where no depth ruler is drawn, as on the right half of a
dual view whose one depth ruler was drawn beside the left half). Pixels are taken as square.
bench/ruler_ddti.py measures how often a proposal exists on DDTI and how well the halves of
dual-view frames agree (bench/README.md).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from ..calibration import SPACING_RANGE_MM, Calibration
from ..preprocessing import to_gray
from .frames import Frame

TICK_MM = 10.0  # millimetres between neighbouring ticks
MAX_MARK = 7  # pixels: a tick mark fits in a MAX_MARK x MAX_MARK box (DDTI: 2 x 2 dots, 5 x 5 diamonds)
TOPHAT = 9  # side of the white top-hat's square: marks narrower than it stand out, the image's structures do not
MARK_CONTRAST = 110  # grey levels a mark stands above the darkest of its surroundings (the top-hat)
MARK_DARK = 60  # grey level at most just before and after a mark along its ruler, on at least one of its lines
MARGIN_DARK = 30  # median grey level at most of the ruler's line between its ticks
MIN_TICKS = 3
MIN_SPACING_PX = 12
MAX_TICKS = 16  # at most this many tick intervals along the frame (thyroid depths: a few cm), so spacing >= side / 16
ALIGN_PX = 1.0  # the marks of one ruler lie within this distance of its line
MAX_SKEW_PX = 1.0  # and their centres within this range across it
MAX_MARKS_PER_LINE = 40  # more candidates on one line: speckle or text, not a ruler (bounds the search)
STRAY_EVERY = 4  # a ruler's line may hold one stray mark (a focus marker) per this many intervals
FIT_TOLERANCE = 0.03  # a mark is a tick when within this fraction of the spacing (+ 1 px) of its place
AGREE = 0.02  # two rulers agree when their spacings (or a whole multiple of one) differ by at most this fraction
AXES = ("depth", "lateral")  # depth: ticks down a column; lateral: ticks along a row

Point = tuple[float, float]  # (x, y) frame pixels


@dataclass(frozen=True)
class Ruler:
    """Evenly spaced tick marks on one line of the frame."""

    axis: str  # one of AXES
    ticks: tuple[Point, ...]  # the marks used, in order along the ruler
    steps: tuple[int, ...]  # each tick's number of intervals from the first (gaps: hidden ticks)
    tick_px: float  # the least-squares distance between neighbouring ticks

    @property
    def intervals(self) -> int:
        """Tick intervals from the first tick to the last."""
        return self.steps[-1]


@dataclass(frozen=True)
class RulerProposal:
    """A calibration proposed from the frame's ruler(s), for the user to confirm."""

    ruler: Ruler  # the one the spacing comes from
    other: Ruler | None  # the other axis's ruler, when one was found
    tick_mm: float = TICK_MM

    @property
    def mm_per_px(self) -> float:
        return self.tick_mm / self.ruler.tick_px

    @property
    def spacing_mm(self) -> tuple[float, float]:
        return self.mm_per_px, self.mm_per_px

    @property
    def confirmed(self) -> bool:
        """Whether the other axis's ruler, measured on its own, gives the same spacing (or a whole multiple of
        it: ticks hidden behind the image)."""
        if self.other is None:
            return False
        spacings = sorted((self.ruler.tick_px, self.other.tick_px))
        return _agree(spacings[1], spacings[0], multiple=True)

    @property
    def line(self) -> tuple[Point, Point]:
        """From the first tick used to the last: what the Set scale tool draws."""
        return self.ruler.ticks[0], self.ruler.ticks[-1]

    @property
    def length_mm(self) -> float:
        """The length of :attr:`line` by the ticks."""
        return self.ruler.intervals * self.tick_mm

    def calibration(self) -> Calibration:
        return Calibration(self.spacing_mm, None, "ruler")

    def describe(self) -> str:
        """'10 mm = 50.6 px from 7 depth-ruler ticks (the lateral ruler agrees)'."""
        other = "" if self.other is None else \
            f" (the {self.other.axis} ruler {'agrees' if self.confirmed else 'disagrees'})"
        return (f"{self.tick_mm:g} mm = {self.ruler.tick_px:.1f} px from {len(self.ruler.ticks)} "
                f"{self.ruler.axis}-ruler ticks{other}")


def propose_scale(pixels: np.ndarray, tick_mm: float = TICK_MM) -> RulerProposal | None:
    """The frame's scale read from its ruler(s) (None: no ruler found, or one whose spacing no calibration may
    have: ``calibration.SPACING_RANGE_MM``). Ticks ``tick_mm`` apart."""
    gray = to_gray(np.asarray(pixels))
    depth, lateral = find_ruler(gray, "depth"), find_ruler(gray, "lateral")
    if depth is None or lateral is None:
        found = depth or lateral
        proposal = None if found is None else RulerProposal(found, None, tick_mm)
    elif _agree(depth.tick_px, lateral.tick_px) or depth.tick_px < lateral.tick_px:
        proposal = RulerProposal(depth, lateral, tick_mm)  # agreeing, or the lateral ruler missed ticks (or differs)
    elif _agree(depth.tick_px, lateral.tick_px, multiple=True):
        proposal = RulerProposal(lateral, depth, tick_mm)  # every other depth tick hidden: the finer lateral one holds
    else:
        proposal = RulerProposal(depth, lateral, tick_mm)
    low, high = SPACING_RANGE_MM
    return proposal if proposal is not None and low <= proposal.mm_per_px <= high else None


def find_ruler(gray: np.ndarray, axis: str) -> Ruler | None:
    """The best ruler along ``axis`` ("depth": down a column; "lateral": along a row), or None."""
    if axis not in AXES:
        raise ValueError(f"unknown ruler axis {axis!r}; expected one of {', '.join(AXES)}")
    image = np.ascontiguousarray(gray if axis == "depth" else gray.T)  # rulers run down the columns of `image`
    if min(image.shape) < MIN_TICKS * MIN_SPACING_PX // 2:
        return None
    marks = _marks(image)
    spacings = (max(MIN_SPACING_PX, image.shape[0] / MAX_TICKS), image.shape[0] / (MIN_TICKS - 0.5))
    dark_columns = (image > MARGIN_DARK).mean(axis=0) <= 0.5  # a median at most MARGIN_DARK: dark but for ticks
    best: tuple[float, Ruler] | None = None
    for column in np.unique(np.round(marks[:, 0] * 2) / 2) if len(marks) else ():  # lines on a half-pixel grid
        if not (dark_columns[int(np.floor(column))] or dark_columns[min(int(np.ceil(column)), len(dark_columns) - 1)]):
            continue
        on_line = marks[np.abs(marks[:, 0] - column) <= ALIGN_PX]
        if not MIN_TICKS <= len(on_line) <= MAX_MARKS_PER_LINE:
            continue
        fit = _progression(on_line, *spacings)
        if fit is None or (best is not None and fit[0] <= best[0]):
            continue
        score, ticks, steps, spacing = fit
        if np.ptp(ticks[:, 0]) > MAX_SKEW_PX or not _on_dark_line(image, ticks) or not _on_dark_margin(image, ticks):
            continue
        points = tuple((float(x), float(y)) if axis == "depth" else (float(y), float(x)) for x, y in ticks)
        best = score, Ruler(axis, points, tuple(int(s) for s in steps), float(spacing))
    return None if best is None else best[1]


def calibrated(frame: Frame, scale: float | str | None) -> Frame:
    """``frame`` with the calibration a batch option asks for, where it has none of its own (a DICOM's
    header wins): ``"auto"`` the ruler's proposal (none found: unchanged), a number that many mm per pixel."""
    if scale is None or frame.calibration is not None:
        return frame
    if scale == "auto":
        proposal = propose_scale(frame.pixels)
        return frame if proposal is None else dataclasses.replace(frame, calibration=proposal.calibration())
    return dataclasses.replace(frame, calibration=Calibration((float(scale), float(scale)), None, "option"))


# ----------------------------------------------------------------------------- finding ticks


def _marks(image: np.ndarray) -> np.ndarray:
    """(x, y) centres of small bright marks with a dark pixel just before and after them along one of their
    columns (a tick on a ruler running down the columns), as an (n, 2) float array."""
    tophat = cv2.morphologyEx(image, cv2.MORPH_TOPHAT, np.ones((TOPHAT, TOPHAT), np.uint8))
    _, _, stats, centres = cv2.connectedComponentsWithStats((tophat >= MARK_CONTRAST).astype(np.uint8), 8)
    x, y, w, h = stats[1:, :4].T
    height, width = image.shape
    small = (w <= MAX_MARK) & (h <= MAX_MARK) & (y >= 3) & (y + h + 2 < height)
    x, y, w, h, centres = x[small], y[small], w[small], h[small], centres[1:][small]
    dark = np.zeros(len(x), bool)
    for offset in range(MAX_MARK):  # each column a mark spans
        column = np.minimum(x + offset, width - 1)
        dark |= (offset < w) & (image[y - 3, column] <= MARK_DARK) & (image[y + h + 2, column] <= MARK_DARK)
    return centres[dark].astype(float).reshape(-1, 2)


def _progression(marks: np.ndarray, min_spacing: float,
                 max_spacing: float) -> tuple[float, np.ndarray, np.ndarray, float] | None:
    """The evenly spaced subset of ``marks`` (on one line, y along it) that explains them best:
    (score, ticks, steps from the first, spacing), or None. Every pair of marks proposes a spacing
    and an origin; the score counts the ticks that fit, less half a point per hidden tick in the span and
    two per stray mark in it (one that does not fit: a marker beside the ruler). More than one stray per
    ``STRAY_EVERY`` intervals, or two marks on one tick, rule the pair out: text lines, not a ruler."""
    marks = marks[np.argsort(marks[:, 1])]
    y = marks[:, 1]
    first, second = np.triu_indices(len(y), 1)
    spacing = y[second] - y[first]
    keep = (spacing >= min_spacing) & (spacing <= max_spacing)
    first, spacing = first[keep], spacing[keep]
    if not len(spacing):
        return None
    offset = y[None, :] - y[first][:, None]  # pairs x marks
    step = np.round(offset / spacing[:, None])
    fits = np.abs(offset - step * spacing[:, None]) <= FIT_TOLERANCE * spacing[:, None] + 1
    twice = fits[:, 1:] & fits[:, :-1] & (step[:, 1:] == step[:, :-1])  # two marks on one tick: not a ruler
    found = fits.sum(axis=1)
    stepped = np.where(fits, step, np.nan)
    span = np.nanmax(stepped, axis=1) - np.nanmin(stepped, axis=1) + 1
    low = np.nanmin(np.where(fits, y[None, :], np.nan), axis=1)
    high = np.nanmax(np.where(fits, y[None, :], np.nan), axis=1)
    inside = ((y[None, :] >= low[:, None]) & (y[None, :] <= high[:, None])).sum(axis=1)
    strays = inside - found
    score = found - 0.5 * (span - found) - 2.0 * strays
    score[(found < MIN_TICKS) | twice.any(axis=1) | (strays > (found - 1) // STRAY_EVERY)] = -np.inf
    best = int(np.argmax(score))
    if not np.isfinite(score[best]):
        return None
    chosen = fits[best]
    steps = step[best, chosen] - step[best, chosen].min()
    slope = np.polyfit(steps, y[chosen], 1)[0]
    return float(score[best]), marks[chosen], steps.astype(int), float(slope)


def _on_dark_line(image: np.ndarray, ticks: np.ndarray) -> bool:
    """Whether the ruler's line is dark between its ticks (on one of the two pixel columns its ticks'
    centres fall between: a tick may touch the image on its other side)."""
    centre = float(np.mean(ticks[:, 0]))
    top, bottom = int(ticks[0, 1]), int(np.ceil(ticks[-1, 1])) + 1
    between = np.ones(bottom - top, bool)
    for y in ticks[:, 1]:
        between[max(int(y) - 3 - top, 0):int(y) + 4 - top] = False
    if not between.any():
        return False
    columns = {int(np.floor(centre)), int(np.ceil(centre))}
    return any(np.median(image[top:bottom, c][between]) <= MARGIN_DARK for c in columns if 0 <= c < image.shape[1])


def _on_dark_margin(image: np.ndarray, ticks: np.ndarray) -> bool:
    """Whether most ticks (two in three) have nothing bright 3-5 pixels to one side of them, the same side for
    all: a ruler is drawn on the frame's dark margin, while a glyph of burnt-in text has its neighbours on
    both sides (a label beside a tick, as "0" and "5", and the image on the other side are allowed)."""
    height, width = image.shape
    isolated = np.zeros((2, len(ticks)), bool)
    for i, (x, y) in enumerate(ticks):
        rows = slice(max(int(round(y)) - 2, 0), min(int(round(y)) + 3, height))
        for side, (a, b) in enumerate(((int(np.floor(x)) - 5, int(np.floor(x)) - 2),
                                        (int(np.ceil(x)) + 3, int(np.ceil(x)) + 6))):
            if a >= 0 and b <= width:
                isolated[side, i] = image[rows, a:b].max() <= MARK_DARK
    return bool((isolated.sum(axis=1) * 3 >= 2 * len(ticks)).any())


def _agree(a: float, b: float, multiple: bool = False) -> bool:
    """Whether spacings ``a`` and ``b`` are equal within AGREE (``multiple``: or ``a`` is a whole multiple of ``b``)."""
    ratio = a / b
    whole = max(1, round(ratio)) if multiple else 1
    return abs(ratio - whole) <= AGREE * whole
