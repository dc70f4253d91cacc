"""Overlay colours: TRFE-Net, U-Net, the gland and the label, drawn on a copy of the frame."""
from __future__ import annotations

import numpy as np

from thyroid_studio.engine.inference import overlay
from thyroid_studio.engine.inference.segmenter import Segmentation


def test_overlay_colours():
    image = np.full((40, 40), 100, np.uint8)
    nodule = np.zeros((40, 40), bool)
    nodule[10:20, 10:20] = True
    gland = np.zeros((40, 40), bool)
    gland[2:38, 2:38] = True
    label = np.zeros((40, 40), bool)
    label[25:35, 25:35] = True

    def colours(rgb):
        return {tuple(c) for c in rgb.reshape(-1, 3)}

    trfe = overlay.segmentation_overlay(image, Segmentation(nodule, nodule, gland.astype(np.float32), gland), label)
    assert {overlay.TRFE, overlay.GLAND, overlay.LABEL, (100, 100, 100)} <= colours(trfe)
    assert tuple(trfe[10, 10]) == overlay.TRFE and tuple(trfe[25, 25]) == overlay.LABEL
    unet = overlay.segmentation_overlay(image, Segmentation(nodule, nodule))
    assert overlay.UNET in colours(unet) and overlay.TRFE not in colours(unet)
    assert image.ndim == 2 and (image == 100).all()  # drawn on a copy
    assert overlay.TRFE == (255, 0, 0) and overlay.UNET == (255, 255, 0) and overlay.LABEL == (0, 255, 0)
