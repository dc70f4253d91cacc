"""Where a model is unsure: binary entropy in a band around the predicted contour."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from thyroid_studio.engine.inference.uncertainty import binary_entropy, contour_band, contour_uncertainty


def disc(shape=(100, 120), centre=(60, 50), radius=20) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, centre, radius, 1, -1)
    return mask.astype(bool)


def test_entropy_is_zero_when_sure_and_one_bit_at_a_half() -> None:
    assert binary_entropy(np.array([0.0, 1.0])) == pytest.approx([0, 0], abs=1e-5)
    assert binary_entropy(np.array([0.5]))[0] == pytest.approx(1.0)
    assert binary_entropy(np.array([0.1]))[0] == pytest.approx(binary_entropy(np.array([0.9]))[0])


def test_band_surrounds_the_contour_only() -> None:
    mask = disc()
    band = contour_band(mask, 3)
    assert band[50, 60 + 20] and band[50, 60 - 20]  # on the border
    assert not band[50, 60] and not band[5, 5]  # the centre and far away


def test_a_soft_border_is_less_sure_than_a_sharp_one_and_a_confident_map_scores_zero() -> None:
    mask = disc()
    sharp = mask.astype(np.float32)
    soft = cv2.GaussianBlur(sharp, (0, 0), 4)
    assert contour_uncertainty(sharp) == pytest.approx(0, abs=1e-4)
    assert contour_uncertainty(soft) > 0.3
    assert contour_uncertainty(np.full((50, 50), 0.5, np.float32)) == pytest.approx(1.0)  # nothing predicted: whole frame
    with pytest.raises(ValueError):
        contour_uncertainty(sharp, np.zeros((3, 3), bool))
