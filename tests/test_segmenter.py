"""Segmenter on tiny untrained networks; resolve_device; the gland share (overlay colours: test_overlay.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from thyroid_studio.engine.inference.segmenter import PostProcess, Segmentation, Segmenter, resolve_device
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, save_checkpoint


def tiny(arch: str = "trfe-a") -> tuple[torch.nn.Module, ModelMeta]:
    torch.manual_seed(0)
    return build_model(arch, 4), ModelMeta(arch, 4, input_size=(64, 64), name=f"{arch}-tiny")


def frame(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("arch", ["trfe-a", "unet"])
@pytest.mark.parametrize("shape", [(97, 131), (75, 61, 3)])
def test_frame_sized_outputs_for_gray_and_rgb(arch, shape):
    result = Segmenter(*tiny(arch), device="cpu")(frame(shape))
    assert result.nodule_prob.shape == result.nodule_mask.shape == shape[:2]
    assert result.nodule_prob.dtype == np.float32 and result.nodule_mask.dtype == bool
    assert 0.0 <= result.nodule_prob.min() and result.nodule_prob.max() <= 1.0
    if arch == "unet":
        assert result.gland_prob is None and result.gland_mask is None
    else:
        assert result.gland_prob.shape == result.gland_mask.shape == shape[:2]


def test_batch_equals_single():
    segmenter = Segmenter(*tiny(), device="cpu")
    images = [frame((90, 120), 1), frame((64, 64, 3), 2), frame((201, 77), 3)]
    batched = segmenter.segment(images)
    for image, together in zip(images, batched):
        alone = segmenter(image)
        np.testing.assert_allclose(together.nodule_prob, alone.nodule_prob, atol=1e-5)
        np.testing.assert_allclose(together.gland_prob, alone.gland_prob, atol=1e-5)
    assert segmenter.segment([]) == []


def test_threshold_from_meta_and_override():
    model, meta = tiny()
    image = frame((80, 80))
    prob = Segmenter(model, meta, device="cpu")(image).nodule_prob
    meta.threshold = float(np.median(prob[prob > 0]))
    assert (Segmenter(model, meta, device="cpu")(image).nodule_mask == (prob > meta.threshold)).all()
    assert not Segmenter(model, meta, device="cpu", threshold=1.0)(image).nodule_mask.any()


def test_postprocess_options(monkeypatch):
    model, meta = tiny()
    meta.threshold = 0.5
    two_blobs_with_hole = np.zeros((64, 64), np.float32)
    two_blobs_with_hole[5:30, 5:30] = 0.9
    two_blobs_with_hole[15:18, 15:18] = 0.1
    two_blobs_with_hole[40:45, 40:45] = 0.9
    gland = np.zeros((64, 64), np.float32)
    gland[38:50, 38:50] = 0.9
    segmenter = Segmenter(model, meta, device="cpu", crop=False)
    monkeypatch.setattr(segmenter, "_forward", lambda batch: {"nodule": two_blobs_with_hole[None], "gland": gland[None]})
    image = frame((64, 64))
    plain = segmenter(image).nodule_mask
    assert plain.sum() == 25 * 25 - 9 + 25
    segmenter.postprocess = PostProcess(largest_only=True)
    assert segmenter(image).nodule_mask.sum() == 25 * 25 - 9
    segmenter.postprocess = PostProcess(largest_only=True, fill_holes=True)
    assert segmenter(image).nodule_mask.sum() == 25 * 25
    segmenter.postprocess = PostProcess(inside_gland=True)
    inside = segmenter(image).nodule_mask
    assert inside.sum() == 25 and inside[42, 42]


def test_inside_gland_needs_a_gland_head():
    with pytest.raises(ValueError, match="gland"):
        Segmenter(*tiny("unet"), device="cpu", postprocess=PostProcess(inside_gland=True))


def test_from_checkpoint(tmp_path):
    model, meta = tiny("trfe-b")
    path = save_checkpoint(tmp_path / "m.pt", model, meta)
    segmenter = Segmenter.from_checkpoint(path, device="cpu", crop=False)
    assert segmenter.meta.arch == "trfe-b" and not segmenter.crop
    assert segmenter(frame((50, 70))).nodule_mask.shape == (50, 70)


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device(None).type in ("cpu", "mps")
    assert resolve_device("auto") == resolve_device(None)
    with pytest.raises(ValueError, match="not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"


def test_a_gland_over_the_whole_ultrasound_image_is_not_drawn_as_a_gland():
    from thyroid_studio.engine.inference.segmenter import Segmentation
    from thyroid_studio.engine.models.roles import WHOLE_IMAGE_GLAND

    mask = np.zeros((40, 40), bool)
    gland = np.ones((40, 40), bool)
    prob = mask.astype(np.float32)
    whole = Segmentation(prob, mask, gland.astype(np.float32), gland, gland_share=1.0)
    part = Segmentation(prob, mask, gland.astype(np.float32), gland, gland_share=WHOLE_IMAGE_GLAND - 0.1)
    assert whole.informative_gland is None and part.informative_gland is gland
    assert Segmentation(prob, mask).informative_gland is None


def test_segmenter_measures_the_gland_share_of_the_ultrasound_region():
    torch.manual_seed(0)
    meta = ModelMeta("trfe-a", 4, input_size=(64, 64))
    model = build_model("trfe-a", 4)
    with torch.no_grad():
        model.gland_decoder.head.bias.fill_(50.0)  # the gland everywhere
    frame = np.zeros((90, 120), np.uint8)
    frame[10:80, 20:100] = np.random.default_rng(0).integers(40, 200, (70, 80))  # the ultrasound image, black borders
    result = Segmenter(model, meta, device="cpu")(frame)
    assert result.gland_share == pytest.approx(1.0) and result.informative_gland is None


def test_the_lobe_is_the_gland_component_that_holds_the_nodule():
    shape = (60, 100)
    gland = np.zeros(shape, bool)
    gland[10:50, 5:40] = True  # the right lobe, holding the nodule
    gland[5:55, 60:98] = True  # the left lobe, larger
    nodule = np.zeros(shape, bool)
    nodule[20:30, 15:25] = True
    result = Segmentation(nodule.astype(np.float32), nodule, gland.astype(np.float32), gland, gland_share=0.5)
    lobe = result.lobe()
    assert lobe[25, 20] and not lobe[30, 80] and lobe.sum() == 40 * 35
    other = np.zeros(shape, bool)
    other[30, 70] = True
    assert result.lobe(other)[30, 80]  # the user's label in the other lobe: that lobe
    empty = Segmentation(nodule.astype(np.float32) * 0, nodule & False, gland.astype(np.float32), gland, gland_share=0.5)
    assert empty.lobe().sum() == 50 * 38  # no nodule: the largest
    whole = Segmentation(nodule.astype(np.float32), nodule, gland.astype(np.float32), gland, gland_share=0.95)
    assert whole.lobe() is None  # a gland over the whole image is no lobe
