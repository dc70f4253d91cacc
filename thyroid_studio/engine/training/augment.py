"""Training augmentations on cached uint8 frames: small composable callables.

Each transform takes ``(image, masks, rng)`` -- a (H, W) uint8 frame, a list of
(H, W) uint8 0/1 masks aligned with it, and a ``numpy.random.Generator`` -- and
returns a new ``(image, masks)``. Geometric transforms move masks with the
image (nearest neighbour); photometric ones touch the image only.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

Masks = list[np.ndarray]
Transform = Callable[[np.ndarray, Masks, np.random.Generator], tuple[np.ndarray, Masks]]

AUGMENTATIONS = ("none", "flip", "ultrasound")


def _warp(image: np.ndarray, masks: Masks, matrix: np.ndarray) -> tuple[np.ndarray, Masks]:
    size = (image.shape[1], image.shape[0])
    warped = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return warped, [cv2.warpAffine(m, matrix, size, flags=cv2.INTER_NEAREST) for m in masks]


@dataclass(frozen=True)
class HorizontalFlip:
    """Mirror left-right with probability ``p`` (the paper's only augmentation)."""

    p: float = 0.5

    def __call__(self, image, masks, rng):
        if rng.random() >= self.p:
            return image, masks
        return np.ascontiguousarray(image[:, ::-1]), [np.ascontiguousarray(m[:, ::-1]) for m in masks]


@dataclass(frozen=True)
class Scale:
    """Zoom about the centre by a factor drawn from ``[1 - amount, 1 + amount]``."""

    amount: float = 0.15
    p: float = 0.5

    def __call__(self, image, masks, rng):
        if rng.random() >= self.p:
            return image, masks
        centre = (image.shape[1] / 2, image.shape[0] / 2)
        return _warp(image, masks, cv2.getRotationMatrix2D(centre, 0.0, rng.uniform(1 - self.amount, 1 + self.amount)))


@dataclass(frozen=True)
class ZoomToMask:
    """Zoom in so that the first mask's box spans a share ``fill`` of the frame, at a random place.

    For gland frames: TG3K shows a small gland in a wide field of view, while nodule frames
    (DDTI) are zoomed onto the gland; this shows the gland head glands that fill the frame.
    """

    fill: tuple[float, float] = (0.6, 1.0)
    p: float = 0.5

    def __call__(self, image, masks, rng):
        if rng.random() >= self.p or not masks[0].any():
            return image, masks
        height, width = image.shape
        rows, cols = np.nonzero(masks[0])
        y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        share = rng.uniform(*self.fill)
        scale = min(share * height / (y1 - y0), share * width / (x1 - x0))
        if scale <= 1.0:
            return image, masks
        crop_h, crop_w = height / scale, width / scale
        top = rng.uniform(max(0.0, y1 - crop_h), max(0.0, min(y0, height - crop_h)))
        left = rng.uniform(max(0.0, x1 - crop_w), max(0.0, min(x0, width - crop_w)))
        return _warp(image, masks, np.float32([[scale, 0, -left * scale], [0, scale, -top * scale]]))


@dataclass(frozen=True)
class Rotate:
    """Rotate about the centre by up to ``degrees`` either way (probe tilt)."""

    degrees: float = 10.0
    p: float = 0.5

    def __call__(self, image, masks, rng):
        if rng.random() >= self.p:
            return image, masks
        centre = (image.shape[1] / 2, image.shape[0] / 2)
        return _warp(image, masks, cv2.getRotationMatrix2D(centre, rng.uniform(-self.degrees, self.degrees), 1.0))


@dataclass(frozen=True)
class GainContrast:
    """Scanner gain and contrast: ``(x - mean) * c + mean * g``, c and g near 1."""

    contrast: float = 0.2
    gain: float = 0.2
    p: float = 0.5

    def __call__(self, image, masks, rng):
        if rng.random() >= self.p:
            return image, masks
        x = image.astype(np.float32)
        mean = x.mean()
        x = (x - mean) * rng.uniform(1 - self.contrast, 1 + self.contrast) + mean * rng.uniform(1 - self.gain, 1 + self.gain)
        return np.clip(x, 0, 255).astype(np.uint8), masks


@dataclass(frozen=True)
class Gamma:
    """Gamma curve with exponent drawn from ``[1 - amount, 1 + amount]``."""

    amount: float = 0.3
    p: float = 0.5

    def __call__(self, image, masks, rng):
        if rng.random() >= self.p:
            return image, masks
        lut = (255.0 * (np.arange(256) / 255.0) ** rng.uniform(1 - self.amount, 1 + self.amount)).astype(np.uint8)
        return cv2.LUT(image, lut), masks


@dataclass(frozen=True)
class Speckle:
    """Multiplicative speckle noise, ``x * (1 + sigma * n)`` with n standard normal."""

    sigma: float = 0.1
    p: float = 0.3

    def __call__(self, image, masks, rng):
        if rng.random() >= self.p:
            return image, masks
        noise = 1.0 + rng.uniform(0, self.sigma) * rng.standard_normal(image.shape, dtype=np.float32)
        return np.clip(image.astype(np.float32) * noise, 0, 255).astype(np.uint8), masks


@dataclass(frozen=True)
class Compose:
    """Apply transforms in order."""

    transforms: Sequence[Transform]

    def __call__(self, image, masks, rng):
        for transform in self.transforms:
            image, masks = transform(image, masks, rng)
        return image, masks


def build_augmentation(name: str, zoom_to_mask: float = 0.0) -> Compose:
    """``"none"``, ``"flip"`` (the paper's) or ``"ultrasound"`` (flip, scale, rotation, gain, gamma, speckle).

    ``zoom_to_mask`` > 0 puts :class:`ZoomToMask` with that probability first (for gland frames).
    """
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; choose one of {', '.join(AUGMENTATIONS)}")
    first = (ZoomToMask(p=zoom_to_mask),) if zoom_to_mask > 0 else ()
    rest = {
        "none": (),
        "flip": (HorizontalFlip(),),
        "ultrasound": (HorizontalFlip(), Scale(), Rotate(), GainContrast(), Gamma(), Speckle()),
    }[name]
    return Compose(first + rest)
