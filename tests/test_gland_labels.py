"""tools/gland_labels.py: the lobe around a nodule from parenchyma beside it, and when a frame gets none."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from gland_labels import doubt, lobe  # noqa: E402


def _disc(shape, centre, radius) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    cv2.circle(out, centre, radius, 1, -1)
    return out > 0


def test_the_lobe_joins_the_parenchyma_beside_the_nodule_and_leaves_what_does_not_touch_it():
    shape = (200, 300)
    nodule = _disc(shape, (150, 100), 25)
    beside = (_disc(shape, (150, 100), 60) & ~_disc(shape, (150, 100), 32))  # a ring of tissue with a gap round the nodule
    far = _disc(shape, (270, 30), 12)  # a vessel-like blob elsewhere
    gland = lobe(beside | far, nodule)
    assert gland[nodule].all()  # the nodule is in its lobe
    assert gland[beside].mean() > 0.95 and not gland[far].any()
    assert gland[100, 150]  # no hole between the nodule and the ring
    assert doubt(beside, nodule, gland, shape[0] * shape[1]) is None


def test_a_frame_without_parenchyma_at_its_nodule_or_with_a_lobe_over_the_image_is_doubtful():
    shape = (200, 300)
    nodule = _disc(shape, (150, 100), 25)
    nothing = np.zeros(shape, bool)
    assert doubt(nothing, nodule, lobe(nothing, nodule), shape[0] * shape[1]) == "no parenchyma touches the nodule"
    everywhere = np.ones(shape, bool)
    assert "covers over" in doubt(everywhere, nodule, lobe(everywhere, nodule), shape[0] * shape[1])
