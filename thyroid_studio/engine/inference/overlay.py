"""Contours drawn on a frame in the TRFE-Net paper's Fig. 1 colours.

Green is the ground truth (label), yellow U-Net, red TRFE-Net; the gland is a
quieter thin cyan layer under the nodule contours. Drawing is on an RGB copy,
so the frame itself is never changed.
"""
from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

from .. import geometry
from ..models.roles import RGB, ROLES
from .segmenter import Segmentation

LABEL, UNET, TRFE, GLAND = (ROLES[key].colour for key in ("label", "unet", "trfe", "gland"))
NODULE_THICKNESS = ROLES["trfe"].thickness
GLAND_THICKNESS = ROLES["gland"].thickness


def to_rgb(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 copy of a gray, RGB or RGBA frame."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image[..., :3]).copy()


def draw_mask(rgb: np.ndarray, mask: np.ndarray, colour: RGB, thickness: int = NODULE_THICKNESS) -> np.ndarray:
    """Draw the outline of ``mask`` on ``rgb`` in place; returns ``rgb``."""
    cv2.drawContours(rgb, geometry.contours(mask), -1, colour, thickness)
    return rgb


def overlay(image: np.ndarray, layers: Iterable[tuple[np.ndarray, RGB, int]]) -> np.ndarray:
    """An RGB copy of ``image`` with each (mask, colour, thickness) layer outlined, first layer underneath."""
    rgb = to_rgb(image)
    for mask, colour, thickness in layers:
        draw_mask(rgb, mask, colour, thickness)
    return rgb


def segmentation_overlay(image: np.ndarray, result: Segmentation, label: np.ndarray | None = None) -> np.ndarray:
    """The frame with the gland (thin cyan), the label (green) and the nodule: red for TRFE-Net
    (a model with a gland head), yellow for U-Net."""
    layers = []
    if result.informative_gland is not None:
        layers.append((result.informative_gland, GLAND, GLAND_THICKNESS))
    if label is not None:
        layers.append((label, LABEL, NODULE_THICKNESS))
    colour = TRFE if result.gland_prob is not None else UNET
    layers.append((result.nodule_mask, colour, NODULE_THICKNESS))
    return overlay(image, layers)
