"""Synthetic frames with a burnt-in ruler for the tests: a speckled B-mode image on a black frame, 2 x 2 tick
dots at a known spacing down a column (or along a row), burnt-in text."""
from __future__ import annotations

import cv2
import numpy as np


def speckle_frame(height: int = 360, width: int = 300, seed: int = 0, image=(40, 10, 280, 330)) -> np.ndarray:
    """A black frame holding a speckled B-mode image in ``image`` (x0, y0, x1, y1, exclusive)."""
    rng = np.random.default_rng(seed)
    frame = np.zeros((height, width), np.uint8)
    x0, y0, x1, y1 = image
    frame[y0:y1, x0:x1] = np.clip(rng.rayleigh(45, (y1 - y0, x1 - x0)), 0, 255).astype(np.uint8)
    return frame


def draw_ticks(frame: np.ndarray, spacing: float, count: int, *, at: int = 34, first: float = 8.0,
               lateral: bool = False, skip: tuple[int, ...] = ()) -> list[tuple[float, float]]:
    """2 x 2 dots every ``spacing`` px down column ``at`` (``lateral``: along row ``at``); returns their centres."""
    centres = []
    for k in range(count):
        if k in skip:
            continue
        along = int(round(first + k * spacing))
        y, x = (along, at) if not lateral else (at, along)
        frame[y:y + 2, x:x + 2] = 250
        centres.append((x + 0.5, y + 0.5))
    return centres


def label(frame: np.ndarray, text: str, x: int, y: int) -> None:
    cv2.putText(frame, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.35, 255, 1)
