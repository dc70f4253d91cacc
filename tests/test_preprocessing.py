"""Crop to the ultrasound region, resize, normalise, and map back."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from thyroid_studio.engine.models.checkpoint import ModelMeta
from thyroid_studio.engine.preprocessing import apply_contrast, prepare, prepare_mask, restore, ultrasound_region


def _frame_with_annotations() -> np.ndarray:
    """A 200x300 frame: textured image at rows 20:180, cols 60:240, text and a scale bar outside."""
    rng = np.random.default_rng(0)
    frame = np.zeros((200, 300), np.uint8)
    frame[20:180, 60:240] = rng.integers(30, 200, (160, 180))
    cv2.putText(frame, "12L6 9.0", (245, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1)
    frame[60:140, 10:14] = 255  # grey-scale bar on the left
    return frame


def test_region_drops_borders_text_and_scale_bar() -> None:
    box = ultrasound_region(_frame_with_annotations())
    assert (box.y0, box.y1, box.x0, box.x1) == (20, 180, 60, 240)


def test_region_of_a_plain_frame_is_the_whole_frame() -> None:
    assert ultrasound_region(np.zeros((50, 80), np.uint8)).width == 80


def test_real_ddti_frame_region(shared_data) -> None:
    gray = cv2.imread(str(shared_data / "ddti/image/1.png"), cv2.IMREAD_GRAYSCALE)
    mask = cv2.imread(str(shared_data / "ddti/mask/1.png"), cv2.IMREAD_GRAYSCALE) > 0
    box = ultrasound_region(gray)
    assert box.width < 0.6 * gray.shape[1]  # the side text and scale bar are gone
    # The annotation spills a few pixels past the image here; nearly all of it stays inside.
    assert mask[box.y0 : box.y1, box.x0 : box.x1].sum() > 0.98 * mask.sum()


@pytest.mark.parametrize("keep_aspect", [False, True])
def test_mask_survives_the_round_trip(keep_aspect: bool) -> None:
    frame = _frame_with_annotations()
    mask = np.zeros(frame.shape, bool)
    mask[60:120, 100:170] = True
    meta = ModelMeta(arch="unet", width=4, input_size=(64, 96), keep_aspect=keep_aspect)
    x, geometry = prepare(frame, meta)
    assert x.shape == (3, 64, 96) and x.dtype == np.float32
    back = restore(prepare_mask(mask, geometry, meta), geometry) > 0.5
    assert back.shape == frame.shape
    assert (back & mask).sum() / (back | mask).sum() > 0.9


def test_normalisation_uses_the_checkpoint_statistics() -> None:
    meta = ModelMeta(arch="unet", width=4, input_size=(16, 16), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    x, _ = prepare(np.full((16, 16), 255, np.uint8), meta, crop=False)
    assert np.allclose(x, 2.0)


def test_contrast_modes() -> None:
    gray = np.tile(np.arange(100, 140, dtype=np.uint8), (40, 1))
    assert apply_contrast(gray, "none") is gray
    assert apply_contrast(gray, "equalize").max() == 255
    with pytest.raises(ValueError, match="clahe"):
        apply_contrast(gray, "sharpen")
