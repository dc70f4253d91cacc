"""Tiny inputs for the command-line tests: a gray frame with a dark square, and a folder that
``evaluate`` scores (images/, masks/, predictions/)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np


def image(path: Path, shape=(24, 32), level: int = 90) -> Path:
    """A gray frame with a dark 8 x 12 square (the "nodule"), making the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full(shape, level, np.uint8)
    pixels[6:14, 8:20] = 30
    assert cv2.imwrite(str(path), pixels)
    return path


def scored_folder(root: Path, stems: Iterable[str]) -> Path:
    """For each stem a frame, and the same square as its ground truth and as its prediction."""
    mask = np.zeros((24, 32), np.uint8)
    mask[6:14, 8:20] = 255
    for stem in stems:
        image(root / "images" / f"{stem}.png")
        for folder in ("masks", "predictions"):
            (root / folder).mkdir(exist_ok=True)
            assert cv2.imwrite(str(root / folder / f"{stem}.png"), mask)
    return root
