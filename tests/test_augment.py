"""Augmentations move the masks with the image and keep them binary; zoom to the mask."""
from __future__ import annotations

import numpy as np

from thyroid_studio.engine.training.augment import HorizontalFlip, build_augmentation


def test_flip_moves_masks_with_the_image():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    mask = (image % 2).astype(np.uint8)
    flipped, (fmask,) = HorizontalFlip(p=1.0)(image, [mask], np.random.default_rng(0))
    assert np.array_equal(flipped, image[:, ::-1]) and np.array_equal(fmask, mask[:, ::-1])


def test_ultrasound_augmentation_keeps_shapes_and_binary_masks():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64), dtype=np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 1
    augmentation = build_augmentation("ultrasound")
    for _ in range(20):
        out, (out_mask,) = augmentation(image, [mask], rng)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert set(np.unique(out_mask)) <= {0, 1}


def test_zoom_to_mask_makes_the_gland_fill_more_of_the_frame():
    from thyroid_studio.engine.training.augment import ZoomToMask

    image = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[28:36, 20:40] = 1
    rng = np.random.default_rng(1)
    for _ in range(10):
        out, (zoomed,) = ZoomToMask(p=1.0)(image, [mask], rng)
        assert out.shape == image.shape and set(np.unique(zoomed)) <= {0, 1}
        assert zoomed.sum() > 1.5 * mask.sum()
