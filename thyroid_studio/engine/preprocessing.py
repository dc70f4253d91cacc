"""From a frame of any size to the network's input, and from its output back.

Training and inference both go through :func:`prepare` so a model always sees
frames prepared exactly as it was trained: optional crop to the ultrasound
region, optional contrast normalisation, resize (stretched or letterboxed) to
the checkpoint's input size, and per-channel normalisation.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

CONTRAST_MODES = ("none", "equalize", "clahe")  # the checkpoint's ``contrast`` is validated against these


class InputSpec(Protocol):
    """What preprocessing needs of a model (a checkpoint's ``ModelMeta``); the module imports no
    model code, since reading frames uses it and must not import torch."""

    input_size: tuple[int, int]
    keep_aspect: bool
    contrast: str
    in_channels: int
    mean: Sequence[float]
    std: Sequence[float]


@dataclass(frozen=True)
class Box:
    """Rows ``y0:y1`` and columns ``x0:x1`` of an image."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0


@dataclass(frozen=True)
class Geometry:
    """Where the network input came from, to map its output back onto the frame."""

    frame_shape: tuple[int, int]  # (H, W) of the original frame
    crop: Box  # region of the frame that was resized
    content: Box  # region of the network input holding the crop (all of it unless letterboxed)


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 from gray, RGB or RGBA uint8 pixels."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        image = image[..., :3]
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


def apply_contrast(gray: np.ndarray, mode: str) -> np.ndarray:
    """Histogram equalisation or CLAHE, as the U-Net study (seeds 001/004) used; ``"none"`` passes through."""
    if mode == "none":
        return gray
    if mode == "equalize":
        return cv2.equalizeHist(gray)
    if mode == "clahe":
        return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(gray)
    raise ValueError(f"unknown contrast mode {mode!r}; choose one of {', '.join(CONTRAST_MODES)}")


def _longest_run(flags: np.ndarray) -> tuple[int, int]:
    """Start and end (exclusive) of the longest run of True values."""
    best, start = (0, 0), None
    for i, flag in enumerate(np.append(flags, False)):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def ultrasound_region(gray: np.ndarray, dark: int = 12, min_fill: float = 0.35) -> Box:
    """The box of the B-mode image, without black borders, burnt-in text and scale bars at the edges.

    Columns (then rows) in which at least ``min_fill`` of the pixels are brighter
    than ``dark`` form the image; the longest run of them is kept. Annotations
    are sparse, so they fall out. The whole frame is returned when the region
    found is implausibly small (under a quarter of the frame).
    """
    height, width = gray.shape
    bright = gray > dark
    x0, x1 = _longest_run(bright.mean(axis=0) >= min_fill)
    if x1 - x0 > 0:
        y0, y1 = _longest_run(bright[:, x0:x1].mean(axis=1) >= min_fill)
    else:
        y0, y1 = 0, 0
    if (x1 - x0) * (y1 - y0) < 0.25 * height * width:
        return Box(0, height, 0, width)
    return Box(y0, y1, x0, x1)


def _content_box(crop: Box, input_size: tuple[int, int], keep_aspect: bool) -> Box:
    height, width = input_size
    if not keep_aspect:
        return Box(0, height, 0, width)
    scale = min(height / crop.height, width / crop.width)
    h, w = max(1, round(crop.height * scale)), max(1, round(crop.width * scale))
    y0, x0 = (height - h) // 2, (width - w) // 2
    return Box(y0, y0 + h, x0, x0 + w)


def geometry_for(gray: np.ndarray, meta: InputSpec, crop: bool) -> Geometry:
    """Decide the crop and the placement in the network input for one frame."""
    box = ultrasound_region(gray) if crop else Box(0, gray.shape[0], 0, gray.shape[1])
    return Geometry(gray.shape[:2], box, _content_box(box, meta.input_size, meta.keep_aspect))


def _place(image: np.ndarray, geometry: Geometry, size: tuple[int, int], interpolation: int) -> np.ndarray:
    c, content = geometry.crop, geometry.content
    region = image[c.y0 : c.y1, c.x0 : c.x1]
    out = np.zeros(size, dtype=image.dtype)
    out[content.y0 : content.y1, content.x0 : content.x1] = cv2.resize(
        region, (content.width, content.height), interpolation=interpolation
    )
    return out


def normalize(gray: np.ndarray, meta: InputSpec) -> np.ndarray:
    """(C, H, W) float32: the gray image repeated over the model's channels, scaled to [0, 1], standardised."""
    x = gray.astype(np.float32) / 255.0
    mean = np.asarray(meta.mean, np.float32)[:, None, None]
    std = np.asarray(meta.std, np.float32)[:, None, None]
    return (np.broadcast_to(x, (meta.in_channels, *x.shape)) - mean) / std


def crop_and_resize(image: np.ndarray, meta: InputSpec, crop: bool = True) -> tuple[np.ndarray, Geometry]:
    """Frame pixels -> (gray uint8 at the network's input size, geometry to map the output back).

    Training caches this step and augments its output; inference follows it with :func:`to_input`.
    """
    gray = to_gray(image)
    geometry = geometry_for(gray, meta, crop)
    return _place(gray, geometry, meta.input_size, cv2.INTER_AREA), geometry


def to_input(placed: np.ndarray, meta: InputSpec, contrast: str | None = None) -> np.ndarray:
    """Gray uint8 at input size -> normalised (C, H, W) float32, with the model's contrast mode."""
    return normalize(apply_contrast(placed, contrast or meta.contrast), meta)


def prepare(
    image: np.ndarray, meta: InputSpec, crop: bool = True, contrast: str | None = None
) -> tuple[np.ndarray, Geometry]:
    """Frame pixels -> (network input (C, H, W) float32, geometry to map the output back)."""
    placed, geometry = crop_and_resize(image, meta, crop)
    return to_input(placed, meta, contrast), geometry


def prepare_mask(mask: np.ndarray, geometry: Geometry, meta: InputSpec) -> np.ndarray:
    """A frame-sized binary mask -> (H, W) float32 0/1 target aligned with :func:`prepare`'s output."""
    placed = _place((mask > 0).astype(np.uint8), geometry, meta.input_size, cv2.INTER_NEAREST)
    return placed.astype(np.float32)


def restore(probability: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A network-sized probability map -> frame-sized, bilinear, zero outside the crop."""
    c, content = geometry.crop, geometry.content
    inside = probability[content.y0 : content.y1, content.x0 : content.x1]
    out = np.zeros(geometry.frame_shape, dtype=np.float32)
    cv2.resize(np.ascontiguousarray(inside, dtype=np.float32), (c.width, c.height), dst=out[c.y0 : c.y1, c.x0 : c.x1],
               interpolation=cv2.INTER_LINEAR)  # straight into the frame: no second frame-sized array
    return out
