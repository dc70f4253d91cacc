"""How unsure a model is about a frame, to correct first the frames that teach it most.

MONAI Label's active learning on the desktop: the frame list can be ordered "worst first"
by :func:`contour_uncertainty`, the mean binary entropy of the nodule probability in a
band around the predicted contour. Inside a nodule or far from it a model is usually
sure; where it hesitates is the border, which is what a correction fixes.
"""
from __future__ import annotations

import cv2
import numpy as np

BAND_FRACTION = 0.01  # band half-width as a fraction of the frame's longer side
MIN_BAND_PX = 2


def binary_entropy(prob: np.ndarray) -> np.ndarray:
    """Entropy in bits of each probability: 0 when sure (0 or 1), 1 at 0.5."""
    p = np.clip(np.asarray(prob, dtype=np.float64), 1e-7, 1 - 1e-7)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def contour_band(mask: np.ndarray, half_width: int) -> np.ndarray:
    """Pixels within ``half_width`` pixels of the mask's border, on either side."""
    m = np.ascontiguousarray(np.asarray(mask) != 0, dtype=np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * half_width + 1, 2 * half_width + 1))
    return cv2.dilate(m, kernel) != cv2.erode(m, kernel)


def contour_uncertainty(prob: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean binary entropy (bits, 0..1) of ``prob`` in a band around the contour of ``mask``
    (default ``prob >= 0.5``). With nothing predicted there is no contour: the whole frame counts."""
    prob = np.asarray(prob, dtype=np.float32)
    mask = prob >= 0.5 if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != prob.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the probabilities' {prob.shape}")
    band = contour_band(mask, max(MIN_BAND_PX, round(BAND_FRACTION * max(prob.shape))))
    values = prob[band] if band.any() else prob
    return float(binary_entropy(values).mean())
