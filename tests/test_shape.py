"""Shape from the mask: solidity (hand-computed polygons), taller-than-wide with spacing, the largest component."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.findings.shape import shape_of, solidity


def plus_sign() -> np.ndarray:
    """Bars x 0..29 / y 10..19 and x 10..19 / y 0..29 (pixel centres)."""
    mask = np.zeros((40, 40), bool)
    mask[10:20, 0:30] = True
    mask[0:30, 10:20] = True
    return mask


def test_solidity_of_a_plus_sign_is_its_polygon_over_its_octagonal_hull():
    # Outline through the boundary pixels' centres: 29x9 bar + two 9x10 arms = 441, plus four half-pixel
    # triangles where it cuts each inner corner diagonally (8-connected tracing) = 443;
    # hull: 29x29 less four 10x10/2 corners = 641.
    assert solidity(plus_sign()) == pytest.approx(443 / 641)
    assert shape_of(plus_sign()).irregular


def test_a_filled_rectangle_and_an_ellipse_are_regular():
    rect = np.zeros((50, 50), bool)
    rect[5:25, 5:45] = True
    assert solidity(rect) == pytest.approx(1.0)
    ellipse = cv2.ellipse(np.zeros((200, 300), np.uint8), (150, 100), (120, 60), 20, 0, 360, 1, -1).astype(bool)
    assert 0.98 < solidity(ellipse) <= 1.0
    assert not shape_of(ellipse).irregular


def test_degenerate_and_empty_masks():
    assert solidity(np.zeros((5, 5), bool)) is None and shape_of(np.zeros((5, 5), bool)) is None
    dot = np.zeros((5, 5), bool)
    dot[2, 2] = True
    assert solidity(dot) == 1.0


def test_taller_than_wide_follows_the_spacing():
    mask = np.zeros((60, 60), bool)
    mask[10:30, 10:40] = True  # 20 rows x 30 columns
    assert not shape_of(mask).taller_than_wide
    assert shape_of(mask, spacing_mm=(2.0, 1.0)).taller_than_wide  # 40 mm tall, 30 mm wide


def test_the_shape_is_the_largest_components():
    mask = plus_sign()
    mask[36:38, 36:38] = True  # a speck far from the nodule
    shape = shape_of(mask)
    assert shape.components == 2 and shape.solidity == pytest.approx(443 / 641)


def test_spiculated_ddti_nodule_is_irregular_and_a_well_defined_one_is_not(shared_data):
    # labels.csv: frame 3 is spiculated, frame 15 well-defined; their ground-truth masks agree with the cut.
    masks = shared_data / "ddti" / "mask"
    assert shape_of(read_mask(masks / "3.png")).irregular
    assert not shape_of(read_mask(masks / "15.png")).irregular
