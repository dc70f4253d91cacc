"""argparse types with ranges, shared by the subcommands.

Each is a ``type=`` function: a value out of range becomes argparse's one-line usage
error on stderr (exit status 2) before any work starts, e.g.
``thyroid-studio segment: error: argument --threshold: must be a number between 0 and 1 (exclusive), got 'nan'``.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from ..engine.calibration import SPACING_RANGE_MM, checked_spacing
from ..engine.models.checkpoint import INPUT_MULTIPLE, MAX_INPUT_SIDE, MAX_WIDTH, MIN_INPUT_SIDE


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` (to ``high``, inclusive, when given)."""
    described = f"a whole number from {low}" + (f" to {high}" if high is not None else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {described}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {described}, got {value}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in "invalid ... value" messages
    return parse


def number(low: float, high: float = math.inf, *, include_low: bool = False) -> Callable[[str], float]:
    """A finite number above ``low`` (or at it, with ``include_low``) and below ``high``; never NaN."""
    if high == math.inf:
        described = f"a finite number {'>=' if include_low else '>'} {low:g}"
    else:
        described = f"a number between {low:g} and {high:g} (exclusive)"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {described}, got {text!r}") from None
        above = value >= low if include_low else value > low
        if not (math.isfinite(value) and above and value < high):
            raise argparse.ArgumentTypeError(f"must be {described}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def scale(text: str) -> str | float:
    """``--scale``: "auto" (the frame's burnt-in ruler) or millimetres per pixel, as any calibration
    (``calibration.SPACING_RANGE_MM``)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return checked_spacing((float(text),) * 2)[0]
    except ValueError:
        low, high = SPACING_RANGE_MM
        raise argparse.ArgumentTypeError(f"must be 'auto' or millimetres per pixel from {low:g} to {high:g}, "
                                         f"got {text!r}") from None


def scale_help(said_where: str) -> str:
    """``--scale``'s help; ``said_where``: where the output says each frame's scale came from."""
    return ("millimetres for frames without a calibration of their own (a DICOM's header is kept): 'auto' reads "
            "each frame's burnt-in depth ruler (ticks 1 cm apart; frames without one stay in pixels), a number is "
            f"millimetres per pixel for all of them; {said_where} says where the millimetres came from")


probability = number(0.0, 1.0)  # thresholds, fractions: strictly between 0 and 1
positive = number(0.0)  # learning rates
non_negative = number(0.0, include_low=True)  # weights, ratios, weight decay
network_width = whole(1, MAX_WIDTH)


def input_size(text: str) -> int:
    """A square network input side: a multiple of 16 within the checkpoint limits (32 to 2048)."""
    value = whole(MIN_INPUT_SIDE, MAX_INPUT_SIDE)(text)
    if value % INPUT_MULTIPLE:
        raise argparse.ArgumentTypeError(f"must be divisible by {INPUT_MULTIPLE} (the network halves it four times), "
                                         f"got {value}")
    return value


def file_named(suffix: str, why: str) -> Callable[[str], Path]:
    """A file to write, whose name must end in ``suffix`` (so it can never be an input image, mask or table)."""

    def parse(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() != suffix:
            raise argparse.ArgumentTypeError(f"must name a {suffix} file ({why}), got {text!r}")
        return path

    parse.__name__ = f"{suffix} file"
    return parse


checkpoint_path = file_named(".pt", "its card goes beside it as .md")
json_path = file_named(".json", "so that it can never overwrite an image, mask or CSV")
